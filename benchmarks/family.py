"""Size and CPU speed of the HRNet family side by side: HRNet-W32, Lite-HRNet-18/30, DEKR-W32, HigherHRNet-W32.

For each network at its usual input (256x192 for the top-down ones, 512x512 for the bottom-up ones): parameters,
GMACs (``torch.utils.flop_counter`` on the meta device, as the project counts them elsewhere; DEKR's deformable
convolutions count as plain convolutions of the same shape) and the best ms per image at batch 1 of the model after
``hrnet_zoo.deploy.optimize_for_inference`` (BatchNorms folded, channels-last), with each one's time relative to
W32 in the same run. Best of ``--repeats`` runs, or of as many as fit in ``--budget`` seconds (at least three) for a
slow model, so that other processes on the machine disturb them less: run it twice and keep the run with the lower
W32 time. The BatchNorms folded out of all the model's BatchNorms are shown: only those directly after a
convolution inside HRNet's containers fold. Random weights: speed does not depend on them.

    python benchmarks/family.py [--threads 2] [--repeats 10] [--budget 15]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import torch
from inference import cpu_flags
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

import hrnet_zoo
from hrnet_zoo.deploy import optimize_for_inference
from hrnet_zoo.models import DEKR, DEKR_CONFIGS, HIGHERHRNET_CONFIGS, HigherHRNet

CASES: list[tuple[str, Callable[[], nn.Module], tuple[int, int]]] = [
    ("HRNet-W32 (top-down)", lambda: hrnet_zoo.create_model("hrnet_w32_pose"), (256, 192)),
    ("Lite-HRNet-18 (top-down)", lambda: hrnet_zoo.create_model("litehrnet_18_pose"), (256, 192)),
    ("Lite-HRNet-30 (top-down)", lambda: hrnet_zoo.create_model("litehrnet_30_pose"), (256, 192)),
    ("DEKR-W32 (bottom-up)", lambda: DEKR(DEKR_CONFIGS["dekr_hrnet_w32"]), (512, 512)),
    ("HigherHRNet-W32 (bottom-up)", lambda: HigherHRNet(HIGHERHRNET_CONFIGS["higherhrnet_w32"]), (512, 512)),
]


def deform_conv_flops(x_shape: Any, weight_shape: Any, *args: Any, out_shape: Any, **kwargs: Any) -> int:
    """FLOPs of ``torchvision::deform_conv2d``: those of the plain convolution of the same shapes."""
    return conv_flop_count(list(x_shape), list(weight_shape), list(out_shape), transposed=False)


def size_of(build: Callable[[], nn.Module], size: tuple[int, int]) -> tuple[float, float]:
    """Parameters (millions) and GMACs of one ``size`` image, counted on the meta device (no compute)."""
    with torch.device("meta"):
        model = build().eval()
        x = torch.empty(1, 3, *size)
    counter = FlopCounterMode(
        display=False, custom_mapping={torch.ops.torchvision.deform_conv2d.default: deform_conv_flops}
    )
    with counter:
        model(x)
    return sum(p.numel() for p in model.parameters()) / 1e6, counter.get_total_flops() / 2e9


def best_ms(model: nn.Module, x: torch.Tensor, repeats: int, budget_s: float) -> tuple[float, int]:
    """Best wall time in ms after one warm-up run, over ``repeats`` runs or as many (at least three) as fit in
    ``budget_s`` seconds; and how many runs that was."""
    times: list[float] = []
    with torch.inference_mode():
        model(x)
        while len(times) < repeats and (len(times) < 3 or sum(times) < budget_s):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return min(times) * 1e3, len(times)


def count_batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--budget", type=float, default=15.0, help="seconds of timed runs per model, at most")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"CPU: {platform.processor() or platform.machine()}, flags: {cpu_flags()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1")
    print("\n| model | input | params (M) | GMACs | BatchNorms folded | ms / image (best of) | vs W32 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    w32_ms = None
    for name, build, size in CASES:
        params, macs = size_of(build, size)
        model = build().eval()
        norms = count_batch_norms(model)
        fast = optimize_for_inference(model, inplace=True)
        folded = norms - count_batch_norms(fast)
        ms, runs = best_ms(fast, torch.randn(1, 3, *size), args.repeats, args.budget)
        w32_ms = w32_ms or ms
        print(
            f"| {name} | {size[0]}x{size[1]} | {params:.2f} | {macs:.2f} | {folded}/{norms} | {ms:.1f} ({runs}) | "
            f"{ms / w32_ms:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
