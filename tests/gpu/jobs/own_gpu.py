"""Run a Python script with only this torchrun rank's GPU visible (CUDA_VISIBLE_DEVICES=$LOCAL_RANK,
and GPU=0 for jobs/ddp_train.py): the old way to keep every rank off GPU0, whose loss the
fixed job must match. Usage: torchrun --nproc-per-node 2 own_gpu.py SCRIPT [ARGS]"""

import os
import sys

os.environ["CUDA_VISIBLE_DEVICES"] = os.environ["LOCAL_RANK"]
os.environ["GPU"] = "0"
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
