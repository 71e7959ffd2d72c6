#!/usr/bin/env bash
# Issue 24 (and issue 25's tracer cost) on ONE GPU, no network: run from the repository root.
#   OUT=/some/dir bash tests/gpu/run_issue24.sh
# Writes under $OUT: probe.txt/probe.json (the sweep of torch.cuda calls against NVML),
# gpu_tests.txt (the pooled-load and thread-pool tests, the job and history tests),
# overhead.txt/overhead.json. Exits non-zero if any step failed; every step runs anyway.
set -u
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
{
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
  "$PY" -c 'import transformers, accelerate; print("transformers", transformers.__version__, "accelerate", accelerate.__version__)' 2>/dev/null \
    || echo "transformers/accelerate absent: the tiny-transformers test will be SKIPPED"
  "$PY" -c 'import pynvml' 2>/dev/null && echo "NVML: pynvml" || echo "NVML: nvidia-smi fallback"
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

echo "== probe: issue 24's sixteen calls and the torch.cuda sweep, --device cpu"
"$PY" benchmarks/cuda_probe.py --device cpu --sweep --json "$OUT/probe.json" 2>&1 | tee "$OUT/probe.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== GPU tests: pooled loads, thread pools, jobs, the allocator's history"
"$PY" -m pytest tests/gpu/test_issue24_gpu.py tests/gpu/test_history_gpu.py tests/gpu/test_job_gpu.py -v -rs 2>&1 | tee "$OUT/gpu_tests.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
"$PY" -m pytest tests/gpu/test_scenarios.py -k only_the_cpu -v -rs 2>&1 | tee -a "$OUT/gpu_tests.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== tracer overhead on cuda:0 (batch 1, batch 32, small CPU ops)"
"$PY" benchmarks/overhead.py --device cuda:0 --json "$OUT/overhead.json" 2>&1 | tee "$OUT/overhead.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "results in $OUT (status $status)"
exit $status
