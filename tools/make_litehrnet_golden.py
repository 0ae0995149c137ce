"""Make the Lite-HRNet golden data in tests/data from the reference implementation.

The reference is github.com/HRNet/Lite-HRNet's ``models/backbones/litehrnet.py`` (Apache-2.0), read from the path
given with ``--reference``; it is not part of this repository. It imports mmcv's ``ConvModule``,
``DepthwiseSeparableConvModule``, ``build_conv_layer``, ``build_norm_layer``, ``constant_init``, ``normal_init``
and ``is_tuple_of`` and mmpose 0.x's ``BACKBONES`` registry, ``get_root_logger``, ``resnet.BasicBlock`` /
``Bottleneck``, ``load_checkpoint`` and ``channel_shuffle``: ``--shim`` names a directory with stand-in ``mmcv``
and ``mmpose`` packages providing them (``ConvModule`` with mmcv's ``conv``/``bn``/``activate`` names and
``bias="auto"``), so mmcv need not be installed. The head is mmpose 0.x's ``TopdownHeatmapSimpleHead`` with
``num_deconv_layers=0`` and ``final_conv_kernel=1``, i.e. one 1x1 conv, ``keypoint_head.final_layer``.

Writes, for each tiny network (``tiny``: lite modules as in the paper's configs; ``tiny_naive``: naive modules, a
stage without fusion):

- ``litehrnet_<name>.safetensors``: seeded float32 weights in the reference checkpoint layout (``backbone.*``,
  ``keypoint_head.final_layer.*``), BN statistics and affine parameters random;
- ``litehrnet_<name>_io.npz``: ``input`` (float32) and the reference's eval-mode ``output``, computed in float64;
- ``litehrnet_<name>.json``: the reference ``extra``, ``num_joints``, and how it was made;

and for Lite-HRNet-18 and -30 (the configs of ``configs/top_down/lite_hrnet/coco/litehrnet_{18,30}_coco_256x192``)
``litehrnet_{18,30}_keys.json``: ``[[key, shape], ...]`` of their state dict in that layout, plus the parameter count.

Usage::

    git --git-dir=<Lite-HRNet mirror> show HEAD:models/backbones/litehrnet.py > /tmp/lite_ref/litehrnet.py
    python tools/make_litehrnet_golden.py --reference /tmp/lite_ref/litehrnet.py --shim /tmp/lite_shim \\
        --commit 7b9049d264fa40402a27d1f175deff3b46a6b91b --out tests/data
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

NUM_JOINTS = 17
SEED = 0

TINY = {
    "stem": {"stem_channels": 16, "out_channels": 16, "expand_ratio": 1},
    "num_stages": 3,
    "stages_spec": {
        "num_modules": (1, 2, 1),
        "num_branches": (2, 3, 4),
        "num_blocks": (2, 1, 2),
        "module_type": ("LITE", "LITE", "LITE"),
        "with_fuse": (True, True, True),
        "reduce_ratios": (8, 8, 8),
        "num_channels": ((8, 16), (8, 16, 32), (8, 16, 32, 64)),
    },
    "with_head": True,
}
TINY_NAIVE = {
    "stem": {"stem_channels": 16, "out_channels": 24, "expand_ratio": 2},
    "num_stages": 2,
    "stages_spec": {
        "num_modules": (1, 2),
        "num_branches": (2, 3),
        "num_blocks": (2, 1),
        "module_type": ("NAIVE", "NAIVE"),
        "with_fuse": (True, False),
        "reduce_ratios": (8, 8),
        "num_channels": ((8, 16), (8, 16, 32)),
    },
    "with_head": True,
}


def _full(num_modules: tuple[int, int, int]) -> dict[str, Any]:
    """``litehrnet_{18,30}_coco_256x192.py``'s backbone ``extra``."""
    return {
        "stem": {"stem_channels": 32, "out_channels": 32, "expand_ratio": 1},
        "num_stages": 3,
        "stages_spec": {
            "num_modules": num_modules,
            "num_branches": (2, 3, 4),
            "num_blocks": (2, 2, 2),
            "module_type": ("LITE", "LITE", "LITE"),
            "with_fuse": (True, True, True),
            "reduce_ratios": (8, 8, 8),
            "num_channels": ((40, 80), (40, 80, 160), (40, 80, 160, 320)),
        },
        "with_head": True,
    }


def load_reference(path: Path, shim: Path) -> ModuleType:
    """Import the reference file as a module, its mmcv/mmpose imports served by ``shim``."""
    sys.path.insert(0, str(shim))
    spec = importlib.util.spec_from_file_location("litehrnet_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TopDown(nn.Module):
    """mmpose 0.x's ``TopDown`` as far as the checkpoint keys and the eval forward go."""

    def __init__(self, reference: ModuleType, extra: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = reference.LiteHRNet(extra, in_channels=3)
        self.keypoint_head = nn.Module()
        channels = extra["stages_spec"]["num_channels"][-1][0]
        self.keypoint_head.final_layer = nn.Conv2d(channels, NUM_JOINTS, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.keypoint_head.final_layer(self.backbone(x)[0])


def seed_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Conv weights ~ N(0, 1 / fan_in), biases ~ N(0, 0.1); BN weight U(0.5, 1.5), bias N(0, 0.1), running mean
    N(0, 0.1), running var U(0.5, 1.5)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) / fan_in**0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=generator))
                m.bias.copy_(0.1 * torch.randn(n, generator=generator))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(n, generator=generator))


def provenance(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "reference": "https://github.com/HRNet/Lite-HRNet models/backbones/litehrnet.py",
        "commit": args.commit,
        "reference_sha256": hashlib.sha256(args.reference.read_bytes()).hexdigest(),
        "torch": torch.__version__,
        "seed": SEED,
        "tool": "tools/make_litehrnet_golden.py",
    }


def make_tiny(
    reference: ModuleType, name: str, extra: dict[str, Any], shape: tuple[int, ...], args: argparse.Namespace
) -> None:
    generator = torch.Generator().manual_seed(SEED)
    model = TopDown(reference, extra)
    seed_weights(model, generator)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    x = torch.randn(shape, generator=generator)
    with torch.no_grad():
        output = model.double().eval()(x.double())
    save_file(state, str(args.out / f"litehrnet_{name}.safetensors"))
    np.savez_compressed(args.out / f"litehrnet_{name}_io.npz", input=x.numpy(), output=output.numpy())
    record = {"extra": extra, "num_joints": NUM_JOINTS, "input_shape": list(shape), **provenance(args)}
    (args.out / f"litehrnet_{name}.json").write_text(json.dumps(record, indent=1) + "\n")


def make_keys(reference: ModuleType, name: str, extra: dict[str, Any], args: argparse.Namespace) -> None:
    model = TopDown(reference, extra)
    keys = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    params = sum(p.numel() for p in model.parameters())
    record = {"extra": extra, "num_joints": NUM_JOINTS, "num_params": params, "keys": keys, **provenance(args)}
    (args.out / f"litehrnet_{name}_keys.json").write_text(json.dumps(record, separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="the reference models/backbones/litehrnet.py")
    parser.add_argument("--shim", type=Path, required=True, help="directory with stand-in mmcv and mmpose packages")
    parser.add_argument("--commit", required=True, help="the reference repository's commit the file is from")
    parser.add_argument("--out", type=Path, default=Path("tests/data"))
    args = parser.parse_args()
    reference = load_reference(args.reference, args.shim)
    make_tiny(reference, "tiny", TINY, (2, 3, 96, 64), args)
    make_tiny(reference, "tiny_naive", TINY_NAIVE, (2, 3, 64, 48), args)
    make_keys(reference, "18", _full((2, 4, 2)), args)
    make_keys(reference, "30", _full((3, 8, 3)), args)


if __name__ == "__main__":
    main()
