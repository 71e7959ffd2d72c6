"""Imported by every scenario: at interpreter exit (after devlint has written its report),
write what the driver and NVML say about this process to $DEVLINT_PROBE. Independent of
devlint's own NVML code, since it checks devlint; creates no context."""

import atexit
import json
import os
import subprocess

# The GPU a scenario means to use: cuda:1 on two GPUs. scenario_check.py sets 0 when it runs
# the scenarios with only the CPU allowed (one GPU is enough then: every CUDA touch leaks).
GPU = int(os.environ.get("DEVLINT_SCENARIO_GPU", "1"))
INTENDED = f"cuda:{GPU}"


def _nvml_memory(pid):
    """{physical GPU index: bytes this PID holds}, and where the numbers came from."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            memory = {}
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if process.pid == pid:
                        memory[index] = memory.get(index, 0) + (process.usedGpuMemory or 0)
            return memory, "pynvml"
        finally:
            pynvml.nvmlShutdown()
    except ImportError:
        pass
    gpus = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid", "--format=csv,noheader"], capture_output=True, text=True, check=True).stdout
    index_of = {uuid.strip(): int(index) for index, uuid in (line.split(",") for line in gpus.strip().splitlines())}
    apps = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory,gpu_uuid", "--format=csv,noheader,nounits"], capture_output=True, text=True, check=True).stdout
    memory = {}
    for line in apps.strip().splitlines():
        app_pid, used, uuid = (field.strip() for field in line.split(","))
        if int(app_pid) == pid:
            memory[index_of[uuid]] = memory.get(index_of[uuid], 0) + int(used) * 2**20
    return memory, "nvidia-smi"


def _probe():
    import torch

    initialised = torch.cuda.is_initialized()
    contexts = [bool(torch._C._cuda_hasPrimaryContext(i)) for i in range(torch.cuda.device_count())] if initialised else []
    memory, source = _nvml_memory(os.getpid())
    result = {"cuda_initialised": initialised, "contexts": contexts, "memory": memory, "source": source}
    with open(os.environ["DEVLINT_PROBE"], "w") as out:
        json.dump(result, out)


if os.environ.get("DEVLINT_PROBE"):
    atexit.register(_probe)
