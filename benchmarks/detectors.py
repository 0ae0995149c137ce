"""Person detectors on a CPU: torchvision's own box AP, GFLOPs and parameters beside the measured time per frame.

Each detector of :data:`hrnet_zoo.pose.DETECTORS` runs as :class:`~hrnet_zoo.pose.PersonDetector` runs it
(BatchNorms folded, channels-last) on a 640x480 frame, in float32 and, on CPUs with bf16 units (AMX or
AVX512-BF16), under bfloat16 autocast. Random weights: the time is the same as with the real ones (the R-CNNs
always keep 1000 proposals; the one-stage detectors score every anchor).

    python benchmarks/detectors.py [--repeats 3] [--size 480 640]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from inference import cpu_flags

from hrnet_zoo._utils import cpu_has_bf16_units
from hrnet_zoo.pose import DETECTORS, PersonDetector


def milliseconds(detector: PersonDetector, image: torch.Tensor, repeats: int) -> float:
    """Best time of ``repeats`` calls, after one warm-up call."""
    detector(image)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        detector(image)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("HEIGHT", "WIDTH"))
    args = parser.parse_args()
    image = (torch.rand(3, *args.size) * 255).to(torch.uint8)
    bf16 = cpu_has_bf16_units()
    folder = Path(tempfile.mkdtemp())
    machine = platform.processor() or platform.machine()
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {machine} ({torch.get_num_threads()} "
        f"threads), CPU flags: {cpu_flags()}; frame {args.size[1]}x{args.size[0]}\n"
    )
    header = "| detector | box AP (COCO val2017) | GFLOPs | parameters (M) | ms / frame, fp32 |"
    print(header + (" bf16 |" if bf16 else ""))
    print("|---|---|---|---|---|" + ("---|" if bf16 else ""))
    for name in DETECTORS:
        meta = torchvision.models.get_model_weights(name).DEFAULT.meta
        net = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=91)
        checkpoint = folder / f"{name}.pth"
        torch.save(net.state_dict(), checkpoint)
        fp32 = milliseconds(PersonDetector(name, checkpoint=checkpoint, device="cpu"), image, args.repeats)
        row = (
            f"| {name} | {meta['_metrics']['COCO-val2017']['box_map']} | {meta['_ops']:.1f} | "
            f"{meta['num_params'] / 1e6:.1f} | {fp32:.0f} |"
        )
        if bf16:
            fast = PersonDetector(name, checkpoint=checkpoint, device="cpu", amp=torch.bfloat16)
            row += f" {milliseconds(fast, image, args.repeats):.0f} |"
        print(row)


if __name__ == "__main__":
    main()
