"""A convolutional model's inference loop: the workload benchmarks/overhead.py times with
and without `devlint run`. Prints one JSON line: milliseconds per iteration.

    python benchmarks/conv_inference.py --device cuda:1 [--batch 32 --size 224 --iterations 100]
"""

import argparse
import json
import time

import torch
from torch import nn


def block(channels_in: int, channels_out: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
    )


def model() -> nn.Module:
    """ResNet-18-sized, without skip connections: 8 conv blocks, 4 stages."""
    stages = [block(64, 64, 1), block(64, 64, 1), block(64, 128, 2), block(128, 128, 1), block(128, 256, 2), block(256, 256, 1), block(256, 512, 2), block(512, 512, 1)]
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1), *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    net = model().to(device).eval()
    batches = [torch.randn(args.batch, 3, args.size, args.size).pin_memory() for _ in range(4)]
    with torch.inference_mode():
        for step in range(args.warmup + args.iterations):
            if step == args.warmup:
                torch.cuda.synchronize(device)
                start = time.perf_counter()
            images = batches[step % len(batches)].to(device, non_blocking=True)
            logits = net(images)
            predictions = logits.argmax(dim=1)
        predictions.cpu()
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    print(json.dumps({"ms_per_iteration": 1000 * elapsed / args.iterations, "batch": args.batch, "size": args.size}))


if __name__ == "__main__":
    main()
