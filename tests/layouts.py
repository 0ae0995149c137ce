"""Package state dicts written back in the original implementation's and OpenMMLab's key layouts (the inverse of
``hrnet_zoo.models._layouts``), for tests that need upstream-style checkpoint files."""

from __future__ import annotations

import re

from torch import Tensor

_TO_ORIGINAL = [
    (r"^backbone\.stem\.", ""),
    (r"^backbone\.stage1\.", "layer1."),
    (r"^backbone\.transition(\d+)\.branches\.", r"transition\1."),
    (r"^backbone\.(stage\d+\.\d+)\.fuse\.paths\.", r"\1.fuse_layers."),
    (r"^backbone\.", ""),
    (r"^head\.", "final_layer."),
]


def to_original_layout(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The package layout renamed to the original implementation's keys."""
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in _TO_ORIGINAL:
            key, count = re.subn(pattern, replacement, key)
            if count:
                break
        out[key] = value
    return out


def original_to_openmmlab(original: dict[str, Tensor], v1: bool = False) -> dict[str, Tensor]:
    """Original-layout keys as OpenMMLab names them: the backbone under ``backbone.``, the head under
    ``keypoint_head.final_layer.`` (mmpose 0.x) or ``head.final_layer.`` / ``head.conv_layers.`` (1.x, HRNetV2)."""
    out = {}
    for key, value in original.items():
        if not key.startswith("final_layer."):
            out["backbone." + key] = value
            continue
        rest = key[len("final_layer.") :]
        if not v1:
            out["keypoint_head.final_layer." + rest] = value
        elif re.match(r"\d+\.", rest):  # HRNetV2 head: conv layers, then the heatmap conv (index 3)
            index, tail = rest.split(".", 1)
            out[f"head.final_layer.{tail}" if index == "3" else f"head.conv_layers.{rest}"] = value
        else:
            out["head.final_layer." + rest] = value
    return out


def to_openmmlab_layout(state_dict: dict[str, Tensor], v1: bool = False) -> dict[str, Tensor]:
    """The package layout in OpenMMLab's keys (see :func:`original_to_openmmlab`)."""
    return original_to_openmmlab(to_original_layout(state_dict), v1)
