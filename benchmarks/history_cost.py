"""What the CUDA allocator's history costs per op on a GPU: the recording devlint switches on
once a context nobody asked for appeared on a disallowed GPU (DL101, then DL106). Prints
one JSON line: microseconds per `x + 1` (one allocation each) without and with it.

    python benchmarks/history_cost.py --device cuda:0
"""

import argparse
import json
import time

import torch

from devlint.runtime.history import MAX_ENTRIES


def _per_op_us(x, device, number: int) -> float:
    best = float("inf")
    for _ in range(5):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(number):
            x + 1
        torch.cuda.synchronize(device)
        best = min(best, (time.perf_counter() - start) / number * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", required=True)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    device = torch.device(args.device)
    x = torch.ones(16, device=device)
    plain = _per_op_us(x, device, args.number)
    torch.cuda.memory._record_memory_history("all", context="alloc", stacks="python", max_entries=MAX_ENTRIES)
    try:
        recorded = _per_op_us(x, device, args.number)
    finally:
        torch.cuda.memory._record_memory_history(None)
    print(json.dumps({"plain_us": plain, "recorded_us": recorded}))


if __name__ == "__main__":
    main()
