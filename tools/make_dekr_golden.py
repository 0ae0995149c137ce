"""Make the DEKR golden data in tests/data from the original implementation (github.com/HRNet/DEKR, MIT).

Usage: ``python tools/make_dekr_golden.py --reference /path/to/DEKR [--out tests/data]``, where the reference is a
checkout of the original (its ``lib/models`` and ``experiments/coco`` are read). The original runs on CPU in
float64; the tiny network's weights are rounded to float16 first, so the stored float16 weights are exactly the
ones the outputs were computed with.

Writes:

- ``dekr_tiny_config.json``: the tiny network as the original's ``MODEL.SPEC``, ``num_joints`` and ``input_size``;
- ``dekr_tiny_original.safetensors``: its seeded weights in the original's layout (float16, counters int64);
- ``dekr_tiny_io.npz``: ``input`` (1, 3, 64, 64; float16 values) and the eval-mode ``heatmap`` and ``offset``
  (float32);
- ``dekr_keys_w32_512x512.json.gz``, ``dekr_keys_w48_640x640.json.gz``: ``[[key, shape], ...]`` of the published
  configurations' state dicts, in order (gzipped JSON, to keep the data small).
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

TINY_SPEC: dict[str, Any] = {
    "FINAL_CONV_KERNEL": 1,
    "PRETRAINED_LAYERS": ["*"],
    "STAGES": {
        "NUM_STAGES": 3,
        "NUM_MODULES": [1, 2, 1],
        "NUM_BRANCHES": [2, 3, 4],
        "BLOCK": ["BASIC", "BASIC", "BASIC"],
        "NUM_BLOCKS": [[1, 1], [1, 1, 1], [1, 1, 1, 1]],
        "NUM_CHANNELS": [[4, 8], [4, 8, 12], [4, 8, 12, 16]],
        "FUSE_METHOD": ["SUM", "SUM", "SUM"],
    },
    "HEAD_HEATMAP": {"BLOCK": "BASIC", "NUM_BLOCKS": 1, "NUM_CHANNELS": 8, "DILATION_RATE": 1},
    "HEAD_OFFSET": {"BLOCK": "ADAPTIVE", "NUM_BLOCKS": 2, "NUM_CHANNELS_PERKPT": 4, "DILATION_RATE": 1},
}
TINY_JOINTS = 5
TINY_SIZE = 64
PUBLISHED = {
    "dekr_keys_w32_512x512.json.gz": "experiments/coco/w32/w32_4x_reg03_bs10_512_adam_lr1e-3_coco_x140.yaml",
    "dekr_keys_w48_640x640.json.gz": "experiments/coco/w48/w48_4x_reg03_bs5_640_adam_lr1e-3_coco_x140.yaml",
}


class Node(dict):
    """The part of yacs' ``CfgNode`` the original reads: items as attributes, nested."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__({k: Node(v) if isinstance(v, dict) else v for k, v in data.items()})

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error


def reference_net(reference: Path, spec: dict[str, Any], num_joints: int) -> nn.Module:
    """The original's ``PoseHigherResolutionNet`` for ``MODEL.SPEC`` and ``DATASET.NUM_JOINTS``."""
    sys.path.insert(0, str(reference / "lib"))
    hrnet_dekr = importlib.import_module("models.hrnet_dekr")
    cfg = Node({"MODEL": {"SPEC": spec}, "DATASET": {"NUM_JOINTS": num_joints}})
    return hrnet_dekr.PoseHigherResolutionNet(cfg)


def seed_weights(net: nn.Module, generator: torch.Generator) -> None:
    """Random weights that keep activations in range, non-trivial BN statistics and adaptive transforms near the
    identity (the original initialises them to zero, which would hide errors in the offsets)."""

    def normal(shape: torch.Size, std: float) -> torch.Tensor:
        return torch.randn(shape, generator=generator, dtype=torch.float64) * std

    def uniform(shape: torch.Size, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)

    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(uniform(module.weight.shape, 0.5, 1.0))
                module.bias.copy_(normal(module.bias.shape, 0.1))
                module.running_mean.copy_(normal(module.running_mean.shape, 0.1))
                module.running_var.copy_(uniform(module.running_var.shape, 0.5, 2.0))
                module.num_batches_tracked.fill_(7)
            elif isinstance(module, nn.Conv2d) or type(module).__name__ == "DeformConv2d":
                fan_in = module.weight[0].numel()
                module.weight.copy_(normal(module.weight.shape, 1 / math.sqrt(fan_in)))
                if module.bias is not None:
                    module.bias.copy_(normal(module.bias.shape, 0.1))
        for module in net.modules():
            if hasattr(module, "transform_matrix_conv"):
                conv = module.transform_matrix_conv
                conv.weight.copy_(normal(conv.weight.shape, 0.1 / math.sqrt(conv.weight[0].numel())))
                conv.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64) + normal((4,), 0.2))
                conv = module.translation_conv
                conv.weight.copy_(normal(conv.weight.shape, 0.2 / math.sqrt(conv.weight[0].numel())))
                conv.bias.copy_(normal((2,), 0.5))
        for value in net.state_dict().values():
            if value.is_floating_point():
                value.copy_(value.half().double())


def write_keys(path: Path, net: nn.Module) -> None:
    rows = [[key, list(value.shape)] for key, value in net.state_dict().items()]
    path.write_bytes(gzip.compress(json.dumps(rows, separators=(",", ":")).encode() + b"\n", mtime=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout of github.com/HRNet/DEKR")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "tests" / "data")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    generator = torch.Generator().manual_seed(2021)
    net = reference_net(args.reference, TINY_SPEC, TINY_JOINTS).double()
    seed_weights(net, generator)
    net.eval()
    image = torch.randn(1, 3, TINY_SIZE, TINY_SIZE, generator=generator, dtype=torch.float64).half()
    with torch.no_grad():
        heatmap, offset = net(image.double())
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, str(args.out / "dekr_tiny_original.safetensors"))
    np.savez_compressed(
        args.out / "dekr_tiny_io.npz",
        input=image.numpy(),
        heatmap=heatmap.float().numpy(),
        offset=offset.float().numpy(),
    )
    config = {"spec": TINY_SPEC, "num_joints": TINY_JOINTS, "input_size": TINY_SIZE}
    (args.out / "dekr_tiny_config.json").write_text(json.dumps(config, indent=1) + "\n")

    for name, experiment in PUBLISHED.items():
        cfg = yaml.safe_load((args.reference / experiment).read_text())
        write_keys(args.out / name, reference_net(args.reference, cfg["MODEL"]["SPEC"], cfg["DATASET"]["NUM_JOINTS"]))


if __name__ == "__main__":
    main()
