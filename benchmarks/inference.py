"""Inference speed of the pose networks against this machine's measured convolution throughput.

For W32 256x192 and W48 384x288 at batch 1 and 8: ms per person for eager, fused + channels-last
(``optimize_for_inference``), ``torch.compile`` of the fused model, and ONNX Runtime; the model's GMACs; the
achieved GFLOP/s (2 x MACs / time); and, measured in the same run, the dense 3x3 convolution throughput of
this machine, so the table shows how close each path gets to the limit. Also the peak resident memory of a
single-image W32 inference in a fresh process.

    python benchmarks/inference.py [--device cpu|cuda] [--repeats 5] [--skip-compile] [--skip-onnx]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import hrnet_zoo

CASES = [("hrnet_w32_pose.coco_256x192", (256, 192)), ("hrnet_w48_pose.coco_384x288", (384, 288))]


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Best wall time in seconds over ``repeats`` runs, after two warm-up runs."""
    best = float("inf")
    for i in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            best = min(best, time.perf_counter() - start)
    return best


def conv_throughput(device: torch.device, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    """Best GFLOP/s of large dense 3x3 convolutions (channels-last), the practical limit for these networks."""
    best = 0.0
    for channels, size in ((64, (128, 96)), (256, (64, 48))):
        x = torch.randn(8, channels, *size, device=device, dtype=dtype).to(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype).to(memory_format=torch.channels_last)
        with torch.inference_mode():
            seconds = timed(lambda x=x, w=w: F.conv2d(x, w, padding=1), repeats, device)
        flops = 2 * 8 * channels * channels * 9 * size[0] * size[1]
        best = max(best, flops / seconds / 1e9)
    return best


def onnx_runner(model: torch.nn.Module, size: tuple[int, int]) -> Callable[[torch.Tensor], object] | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    path = tempfile.mkdtemp() + "/model.onnx"
    hrnet_zoo.export_onnx(model, path, size)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"images": x.numpy()})


def peak_memory_single_image() -> tuple[float, float]:
    """Peak resident memory (MiB) of a fresh process: after importing torch + hrnet_zoo, and after creating W32
    and running one 256x192 image. Read from the kernel's high-water mark (``VmHWM``), which starts afresh at
    ``exec`` (``ru_maxrss`` would include the parent's memory)."""
    code = (
        "import re, torch, hrnet_zoo\n"
        "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "base = hwm()\n"
        "m = hrnet_zoo.optimize_for_inference(hrnet_zoo.create_model('hrnet_w32_pose'), inplace=True)\n"
        "with torch.inference_mode(): m(torch.randn(1, 3, 256, 192))\n"
        "print(base, hwm())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    base, peak = (int(v) / 1024 for v in out.stdout.strip().splitlines()[-1].split())
    return base, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--skip-onnx", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    limit = conv_throughput(device, args.repeats)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {name}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"measured dense 3x3 convolution throughput: {limit:.0f} GFLOP/s (fp32)\n")
    print("| model | batch | path | ms / person | GFLOP/s | % of conv limit | vs eager |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for model_name, size in CASES:
        eager = hrnet_zoo.create_model(model_name).to(device).eval()
        gmacs = hrnet_zoo.get_pretrained_cfg(model_name).gmacs
        fused = hrnet_zoo.optimize_for_inference(eager)
        paths: dict[str, Callable[[torch.Tensor], object]] = {"eager": eager, "fused + channels-last": fused}
        if not args.skip_compile:
            paths["compiled (fused)"] = torch.compile(fused, dynamic=False)
        if not args.skip_onnx and device.type == "cpu":
            runner = onnx_runner(hrnet_zoo.optimize_for_inference(eager, channels_last=False), size)
            if runner is not None:
                paths["ONNX Runtime"] = runner
        for batch in args.batches:
            x = torch.randn(batch, 3, *size, device=device)
            base = None
            for path, fn in paths.items():
                with torch.inference_mode():
                    seconds = timed(lambda fn=fn, x=x: fn(x), args.repeats, device)
                base = base or seconds
                gflops = 2 * gmacs * batch / seconds
                print(
                    f"| {model_name} | {batch} | {path} | {seconds / batch * 1e3:.1f} | {gflops:.0f} | "
                    f"{100 * gflops / limit:.0f}% | {base / seconds:.2f}x |",
                    flush=True,
                )
    if device.type == "cpu":
        base, peak = peak_memory_single_image()
        print(f"\npeak resident memory, single-image W32 256x192 inference in a fresh process: {peak:.0f} MiB")
        print(f"(of which {base:.0f} MiB after importing torch and hrnet_zoo, before creating the model)")


if __name__ == "__main__":
    main()
