"""A CPU program of 50,000 small ops (add, mul, relu, an 8x8 matmul, cat): the workload
benchmarks/overhead.py runs as `python small_ops.py` and under `devlint run --device cpu`.
None of its ops can choose a device, so under the default tracing mode they should cost
nothing. Prints a checksum, so the two runs can be compared.

    python benchmarks/small_ops.py [--iterations 10000]
"""

import argparse

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=10_000, help="five ops each")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.rand(8, 8)
    weight = torch.rand(8, 8) / 8
    h = x
    for _ in range(args.iterations):
        h = torch.relu((h + 0.5) * 0.9) @ weight
        both = torch.cat([h, x])
    print(f"{both.sum().item():.6f}")


if __name__ == "__main__":
    main()
