"""Inference speed of the pose networks against this machine's measured convolution throughput, fp32 and int8.

For W32 256x192, W48 384x288, Lite-HRNet-18/30 256x192 (top-down, batch 1 and 8) and DEKR-W32 512x512 (bottom-up,
batch 1): ms per input (person crop or whole image) for eager, fused + channels-last
(``optimize_for_inference``), ``torch.compile`` of the fused model, ONNX Runtime fp32 and int8
(``hrnet_zoo.deploy.quantize``), a bfloat16 copy of the fused model where the CPU has bf16 units (AMX or
AVX512-BF16; the estimator's ``amp=torch.bfloat16``), and optionally PyTorch's PT2E int8 flow (torchao's X86
Inductor quantizer, compiled; ``--pt2e``); the model's GMACs; the achieved GOP/s (2 x MACs / time); and, measured
in the same run, the dense 3x3 convolution throughput of this machine in fp32 (PyTorch), int8 (ONNX Runtime, QDQ)
and bf16 (PyTorch, where the CPU has bf16 units), so each row shows
how close it gets to its limit. The CPU's flags (AVX2, AVX-512, VNNI, AMX) are printed: int8 convolutions are
fast with VNNI/AMX and gain little without. Also the peak resident memory of a single-image W32 inference.

    python benchmarks/inference.py [--device cpu|cuda] [--repeats 5] [--cases NAME ...] [--batches N ...]
        [--skip-compile] [--skip-onnx] [--pt2e]
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
import hrnet_zoo.deploy.onnx_model
from hrnet_zoo._utils import cpu_has_bf16_units

#: Model (at its input size) -> batch sizes: persons per batch for top-down, whole images for bottom-up (DEKR).
CASES = {
    "hrnet_w32_pose.coco_256x192": (1, 8),
    "hrnet_w48_pose.coco_384x288": (1, 8),
    "litehrnet_18_pose.coco_256x192": (1, 8),
    "litehrnet_30_pose.coco_256x192": (1, 8),
    "dekr_hrnet_w32.coco_512x512": (1,),
}


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
    hrnet_zoo.deploy.export_onnx(model, path, size)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"images": x.numpy()})


def cpu_flags() -> str:
    """The SIMD features that decide int8 speed, from /proc/cpuinfo."""
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return " ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted)


def int8_conv_throughput(repeats: int) -> float:
    """Best GOP/s of the same dense 3x3 convolutions as :func:`conv_throughput`, quantized to int8 (QDQ) and run
    by ONNX Runtime: the practical int8 limit of this machine."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    best = 0.0
    for channels, size in ((64, (128, 96)), (256, (64, 48))):
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval()
        x = torch.randn(8, channels, *size)
        folder = tempfile.mkdtemp()
        torch.onnx.export(conv, (x,), folder + "/conv.onnx", input_names=["x"], dynamo=True)

        class Reader:
            batches = iter([{"x": x.numpy()}])

            def get_next(self) -> dict | None:
                return next(self.batches, None)

        quantize_static(
            folder + "/conv.onnx",
            folder + "/int8.onnx",
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        session = ort.InferenceSession(folder + "/int8.onnx", providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        seconds = timed(lambda session=session, feed=feed: session.run(None, feed), repeats, torch.device("cpu"))
        best = max(best, 2 * 8 * channels * channels * 9 * size[0] * size[1] / seconds / 1e9)
    return best


def pt2e_runner(model: torch.nn.Module, size: tuple[int, int]) -> Callable[[torch.Tensor], object] | None:
    """PyTorch's PT2E int8 flow: torchao's X86 Inductor quantizer, calibrated on random crops, then compiled."""
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError:
        print("(PT2E row skipped: pip install torchao)")
        return None
    x = torch.randn(8, 3, *size)
    try:
        with torch.no_grad():
            quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
            prepared = prepare_pt2e(torch.export.export(model.eval(), (x,)).module(), quantizer)
            prepared(x)
            compiled = torch.compile(convert_pt2e(prepared))
            compiled(x)
    except Exception as err:  # report why the row is missing instead of stopping the benchmark
        print(f"(PT2E row skipped: {type(err).__name__}: {err})")
        return None
    return compiled


def peak_memory_single_image() -> tuple[float, float]:
    """Peak resident memory (MiB) of a fresh process: after importing torch + hrnet_zoo, and after creating W32
    and running one 256x192 image. Read from the kernel's high-water mark (``VmHWM``), which starts afresh at
    ``exec`` (``ru_maxrss`` would include the parent's memory)."""
    code = (
        "import re, torch, hrnet_zoo\n"
        "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "base = hwm()\n"
        "m = hrnet_zoo.deploy.optimize_for_inference(hrnet_zoo.create_model('hrnet_w32_pose'), inplace=True)\n"
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
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--batches", type=int, nargs="+", help="batch sizes for every case (default: the case's)")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--pt2e", action="store_true", help="add PyTorch's PT2E int8 path (needs torchao)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    limit = conv_throughput(device, args.repeats)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    int8 = device.type == "cpu" and not args.skip_onnx
    int8_limit = int8_conv_throughput(args.repeats) if int8 else float("nan")
    bf16 = device.type == "cuda" or cpu_has_bf16_units()  # on other CPUs bfloat16 is emulated, slower than fp32
    bf16_limit = conv_throughput(device, args.repeats, torch.bfloat16) if bf16 else float("nan")
    print(f"device: {name}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    if device.type == "cpu":
        print(
            f"CPU flags: {cpu_flags()}"
            + (
                ""
                if hrnet_zoo.deploy.onnx_model.cpu_has_vnni()
                else " (no VNNI: int8 convolutions have no fast dot-product instruction here)"
            )
        )
    print(f"measured dense 3x3 convolution throughput: {limit:.0f} GFLOP/s (fp32, PyTorch)")
    if int8:
        print(f"measured dense 3x3 convolution throughput: {int8_limit:.0f} GOP/s (int8, ONNX Runtime)")
    if bf16:
        print(f"measured dense 3x3 convolution throughput: {bf16_limit:.0f} GFLOP/s (bf16, PyTorch)")
    print("\n| model | batch | path | ms / input | GOP/s | % of its limit | vs eager | vs fused |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for model_name in args.cases:
        eager = hrnet_zoo.create_model(model_name, pretrained=False).to(device).eval()
        cfg = hrnet_zoo.get_pretrained_cfg(model_name)
        gmacs, size = cfg.gmacs, cfg.pose_meta.input_size
        unavailable: dict[str, str] = {}
        fused = hrnet_zoo.deploy.optimize_for_inference(eager)
        paths: dict[str, Callable[[torch.Tensor], object]] = {"eager": eager, "fused + channels-last": fused}
        if bf16:  # the CPU estimator's amp=torch.bfloat16: a bfloat16 copy of the folded model
            fused_bf16 = hrnet_zoo.deploy.optimize_for_inference(eager).to(torch.bfloat16)
            paths["fused bf16"] = lambda x, model=fused_bf16: model(x.to(torch.bfloat16))
        if not args.skip_compile:
            paths["compiled (fused)"] = torch.compile(fused, dynamic=False)
        if not args.skip_onnx and device.type == "cpu":
            runner = onnx_runner(hrnet_zoo.deploy.optimize_for_inference(eager, channels_last=False), size)
            if runner is not None:
                paths["ONNX Runtime"] = runner
                try:
                    # 16 person crops, or 4 whole images: calibrating keeps every activation of every input
                    calibration = torch.randn(4 if cfg.pose_meta.bottom_up else 16, 3, *size)
                    paths["ONNX Runtime int8"] = hrnet_zoo.deploy.quantize(eager, calibration)
                except Exception as err:  # e.g. an operator the int8 export path cannot handle: say so in the table
                    unavailable["ONNX Runtime int8"] = str(err).splitlines()[0].rsplit("Error ", 1)[-1]
        if args.pt2e and device.type == "cpu":
            runner = pt2e_runner(eager, size)
            if runner is not None:
                paths["PT2E int8 (compiled)"] = runner
        for batch in args.batches or CASES[model_name]:
            x = torch.randn(batch, 3, *size, device=device)
            seconds_of: dict[str, float] = {}
            for path, fn in paths.items():
                with torch.inference_mode():
                    seconds_of[path] = timed(lambda fn=fn, x=x: fn(x), args.repeats, device)
            for path, seconds in seconds_of.items():
                gops = 2 * gmacs * batch / seconds
                path_limit = int8_limit if "int8" in path else bf16_limit if "bf16" in path else limit
                print(
                    f"| {model_name} | {batch} | {path} | {seconds / batch * 1e3:.1f} | {gops:.0f} | "
                    f"{100 * gops / path_limit:.0f}% | {seconds_of['eager'] / seconds:.2f}x | "
                    f"{seconds_of['fused + channels-last'] / seconds:.2f}x |",
                    flush=True,
                )
            for path, reason in unavailable.items():
                print(f"| {model_name} | {batch} | {path} | not available: {reason} | | | | |", flush=True)
    if device.type == "cpu":
        base, peak = peak_memory_single_image()
        print(f"\npeak resident memory, single-image W32 256x192 inference in a fresh process: {peak:.0f} MiB")
        print(f"(of which {base:.0f} MiB after importing torch and hrnet_zoo, before creating the model)")


if __name__ == "__main__":
    main()
