"""Run SadTalker's face renderer and Wav2Lip's inference model on a device, with random
weights (nothing is downloaded), and save what they produce.

    python benchmarks/talking_heads.py sadtalker --repo PATH/TO/SadTalker --device cuda:1 --out a.pt
    python benchmarks/talking_heads.py wav2lip   --repo PATH/TO/Wav2Lip   --device cuda:1 --out b.pt
    python benchmarks/talking_heads.py compare a.pt b.pt

The renderer is built from the repository's own `src/config/facerender.yaml` (the four
networks `AnimateFromCoeff` builds) and runs `make_animation`, the loop SadTalker renders
every video with; Wav2Lip's `Wav2Lip()` runs on face and mel windows of its inference
shapes. Weights and inputs come from a fixed seed on the CPU and are then moved to the
device, so two runs (before and after `devlint check --fix`, or on two GPUs) compute the
same thing. Prints the time per frame (median of --repeats after a warm-up) and a
checksum; `compare` says whether two outputs agree. For `devlint run`, run this script
under it: `devlint run --device cuda:1 benchmarks/talking_heads.py sadtalker ...`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


def _seeded(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sadtalker(repo: Path, device: torch.device, frames: int):
    """One `make_animation` over `frames` frames of a 256x256 face (the size its keypoint
    detector is built for)."""
    import yaml

    sys.path.insert(0, str(repo))
    from src.facerender.modules.generator import OcclusionAwareSPADEGenerator
    from src.facerender.modules.keypoint_detector import HEEstimator, KPDetector
    from src.facerender.modules.make_animation import make_animation
    from src.facerender.modules.mapping import MappingNet

    config = yaml.safe_load((repo / "src" / "config" / "facerender.yaml").read_text())["model_params"]
    generator = _seeded(0) and OcclusionAwareSPADEGenerator(**config["generator_params"], **config["common_params"])
    kp_detector = _seeded(1) and KPDetector(**config["kp_detector_params"], **config["common_params"])
    he_estimator = _seeded(2) and HEEstimator(**config["he_estimator_params"], **config["common_params"])
    mapping = _seeded(3) and MappingNet(**config["mapping_params"])
    for net in (generator, kp_detector, he_estimator, mapping):
        net.to(device).eval()
    rng = _seeded(4)
    coeffs = config["mapping_params"]["coeff_nc"]
    source_image = torch.rand(1, 3, 256, 256, generator=rng).to(device)
    source_semantics = torch.randn(1, coeffs, 27, generator=rng).mul(0.1).to(device)
    target_semantics = torch.randn(1, frames, coeffs, 27, generator=rng).mul(0.1).to(device)

    def run():
        return make_animation(source_image, source_semantics, target_semantics, generator, kp_detector, he_estimator, mapping)

    return run


def wav2lip(repo: Path, device: torch.device, frames: int):
    """Wav2Lip on `frames` face windows (6x96x96) and mel windows (1x80x16)."""
    sys.path.insert(0, str(repo))
    from models import Wav2Lip

    model = _seeded(0) and Wav2Lip()
    model.to(device).eval()
    rng = _seeded(1)
    mel = torch.randn(frames, 1, 80, 16, generator=rng).to(device)
    faces = torch.rand(frames, 6, 96, 96, generator=rng).to(device)

    def run():
        with torch.no_grad():
            return model(mel, faces)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="program", required=True)
    for name in ("sadtalker", "wav2lip"):
        p = sub.add_parser(name)
        p.add_argument("--repo", type=Path, required=True, help="a checkout of the program")
        p.add_argument("--device", default="cuda:0")
        p.add_argument("--frames", type=int, default=32)
        p.add_argument("--repeats", type=int, default=5)
        p.add_argument("--out", type=Path, help="save the output here (on the CPU)")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args()

    if args.program == "compare":
        a, b = torch.load(args.a, map_location="cpu"), torch.load(args.b, map_location="cpu")
        diff = (a - b).abs().max().item() if a.shape == b.shape else float("inf")
        same = a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)
        print(f"shapes {tuple(a.shape)} {tuple(b.shape)}, max abs difference {diff:.3g}: {'same' if same else 'DIFFERENT'}")
        return 0 if same else 1

    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    device = torch.device(args.device)
    build = sadtalker if args.program == "sadtalker" else wav2lip
    run = build(args.repo.resolve(), device, args.frames)
    output = run()  # warm-up, and the output compared
    _synchronize(device)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run()
        _synchronize(device)
        times.append((time.perf_counter() - start) / args.frames)
    print(f"{args.program} on {device}: {statistics.median(times) * 1e3:.3f} ms/frame (median of {args.repeats}), "
          f"output {tuple(output.shape)} on {output.device}, checksum {output.double().sum().item():.6f}")
    if args.out:
        torch.save(output.detach().cpu(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
