"""Regenerate ``tests/data/higherhrnet_*`` by running the reference HigherHRNet on CPU.

Reads, from a checkout of https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation (MIT), the network
``lib/models/pose_higher_hrnet.py`` (imported from there, never copied) and the COCO experiment configs
``experiments/coco/higher_hrnet/{w32_512,w48_640}_adam_lr1e-3.yaml``, and writes:

- ``higherhrnet_keys_coco_w32_512.json``, ``higherhrnet_keys_coco_w48_640.json``: ``[[key, shape], ...]`` of the
  reference's state_dict, in order;
- ``higherhrnet_tiny_config.json``: a small network in the reference's config form (``MODEL``, ``LOSS``);
- ``higherhrnet_tiny.safetensors``: its seeded weights (random, with non-trivial BatchNorm statistics), reference
  key names, stored as float8 (E4M3) to keep the file small: the values are float8-exact and the networks run in
  float32, so nothing is rounded between the reference and the package;
- ``higherhrnet_tiny_io.npz``: ``input`` (1, 3, 96, 64) (float16-exact) and the reference's eval-mode outputs
  ``output0`` (1/4: heatmaps + tags) and ``output1`` (1/2: heatmaps).

    python tools/make_higherhrnet_golden.py /path/to/HigherHRNet-Human-Pose-Estimation
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

DATA = Path(__file__).parent.parent / "tests" / "data"
WEIGHT_DTYPE = torch.float8_e4m3fn
EXPERIMENTS = {"coco_w32_512": "w32_512_adam_lr1e-3.yaml", "coco_w48_640": "w48_640_adam_lr1e-3.yaml"}


def _stage(modules: int, blocks: list[int], channels: list[int]) -> dict[str, Any]:
    return {
        "NUM_MODULES": modules,
        "NUM_BRANCHES": len(channels),
        "BLOCK": "BASIC",
        "NUM_BLOCKS": blocks,
        "NUM_CHANNELS": channels,
        "FUSE_METHOD": "SUM",
    }


#: Small widths, few modules; one deconvolution with concatenated output, tags at 1/4 only (as on COCO).
TINY_CONFIG: dict[str, Any] = {
    "MODEL": {
        "NUM_JOINTS": 3,
        "TAG_PER_JOINT": True,
        "EXTRA": {
            "FINAL_CONV_KERNEL": 3,
            "PRETRAINED_LAYERS": ["*"],
            "STEM_INPLANES": 64,
            "STAGE2": _stage(1, [1, 1], [4, 8]),
            "STAGE3": _stage(2, [1, 2, 1], [4, 8, 16]),
            "STAGE4": _stage(2, [1, 1, 1, 2], [4, 8, 16, 32]),
            "DECONV": {
                "NUM_DECONVS": 1,
                "NUM_CHANNELS": [8],
                "KERNEL_SIZE": [4],
                "NUM_BASIC_BLOCKS": 2,
                "CAT_OUTPUT": [True],
            },
        },
    },
    "LOSS": {"WITH_AE_LOSS": [True, False]},
}


class AttrDict(dict):
    """The part of yacs' ``CfgNode`` the reference network uses: items readable as attributes, nested."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__({k: AttrDict(v) if isinstance(v, dict) else v for k, v in data.items()})

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error


def load_reference(checkout: Path) -> ModuleType:
    """Import ``lib/models/pose_higher_hrnet.py`` from the checkout (pure torch, no package imports)."""
    path = checkout / "lib" / "models" / "pose_higher_hrnet.py"
    spec = importlib.util.spec_from_file_location("pose_higher_hrnet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def keys_and_shapes(model: nn.Module) -> list[list[Any]]:
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def seed_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Conv weights of variance ``1 / fan_in`` (activations stay near 1 through the residual stacks), small biases,
    BatchNorm affine and running statistics away from identity; every value float8-exact."""

    def draw(tensor: torch.Tensor, value: torch.Tensor) -> None:
        tensor.copy_(value.to(WEIGHT_DTYPE).float())

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                k = m.kernel_size[0] * m.kernel_size[1]
                # a stride-2 transposed conv sums over a quarter of its kernel per output pixel
                fan_in = m.in_channels * k // (4 if isinstance(m, nn.ConvTranspose2d) else 1)
                draw(m.weight, torch.randn(m.weight.shape, generator=generator) * math.sqrt(1.0 / fan_in))
                if m.bias is not None:
                    draw(m.bias, torch.randn(m.bias.shape, generator=generator) * 0.2)
            elif isinstance(m, nn.BatchNorm2d):
                draw(m.weight, torch.rand(m.weight.shape, generator=generator) + 0.5)
                draw(m.bias, torch.randn(m.bias.shape, generator=generator) * 0.2)
                draw(m.running_mean, torch.randn(m.running_mean.shape, generator=generator) * 0.2)
                draw(m.running_var, torch.rand(m.running_var.shape, generator=generator) * 1.5 + 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path, help="checkout of HRNet/HigherHRNet-Human-Pose-Estimation")
    args = parser.parse_args()
    reference = load_reference(args.reference)
    for tag, experiment in EXPERIMENTS.items():
        cfg = yaml.safe_load((args.reference / "experiments" / "coco" / "higher_hrnet" / experiment).read_text())
        model = reference.PoseHigherResolutionNet(AttrDict(cfg))
        (DATA / f"higherhrnet_keys_{tag}.json").write_text(json.dumps(keys_and_shapes(model)))
        print(tag, f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")

    torch.manual_seed(0)
    model = reference.PoseHigherResolutionNet(AttrDict(TINY_CONFIG))
    seed_weights(model, torch.Generator().manual_seed(0))
    model.eval()
    image = torch.randn((1, 3, 96, 64), generator=torch.Generator().manual_seed(1)).half().float()
    with torch.no_grad():
        outputs = model(image.clone())
    for i, y in enumerate(outputs):
        print(f"output{i}", tuple(y.shape), f"std {y.std():.3f}")
    (DATA / "higherhrnet_tiny_config.json").write_text(json.dumps(TINY_CONFIG, indent=1))
    save_file(
        {k: v.to(WEIGHT_DTYPE) if v.is_floating_point() else v for k, v in model.state_dict().items()},
        str(DATA / "higherhrnet_tiny.safetensors"),
    )
    np.savez_compressed(
        DATA / "higherhrnet_tiny_io.npz",
        input=image.half().numpy(),
        **{f"output{i}": y.numpy() for i, y in enumerate(outputs)},
    )


if __name__ == "__main__":
    main()
