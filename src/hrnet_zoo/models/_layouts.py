"""Checkpoint key layouts: detect them and rename them to the package's own.

The package's layout differs from the original implementation's only in names:

============================================  ==========================================
original (``pose_hrnet_w32_256x192.pth``)     hrnet_zoo
============================================  ==========================================
``conv1``, ``bn1``, ``conv2``, ``bn2``        ``backbone.stem.conv1`` ... ``backbone.stem.bn2``
``layer1.*``                                  ``backbone.stage1.*``
``transition{k}.{i}.*``                       ``backbone.transition{k}.branches.{i}.*``
``stage{k}.{m}.branches.*``                   ``backbone.stage{k}.{m}.branches.*``
``stage{k}.{m}.fuse_layers.{i}.{j}.*``        ``backbone.stage{k}.{m}.fuse.paths.{i}.{j}.*``
``final_layer.*``                             ``head.*``
============================================  ==========================================

OpenMMLab checkpoints hold the original names under ``backbone.``, with the head under
``keypoint_head.final_layer.`` (mmpose 0.x) or ``head.final_layer.`` (mmpose 1.x). HRNetV2 heads (conv, BN,
ReLU, then the heatmap conv) are one ``final_layer`` sequence in 0.x and the package (``head.0``, ``head.1``,
``head.3``), ``head.conv_layers`` + ``head.final_layer`` in 1.x. timm's ImageNet HRNet
classifiers hold the original backbone names plus a classification head (``incre_modules``, ``downsamp_modules``,
``final_layer``, ``classifier``), which is dropped.

Lite-HRNet's checkpoints (the reference repository's are mmpose 0.x ``TopDown`` models, the backbone under
``backbone.`` and the heatmap conv as ``keypoint_head.final_layer``; mmpose 1.x names the head
``head.final_layer``) differ from the package's in three renames (:func:`litehrnet_to_package_layout`):

===================================================  ===================================================
reference / OpenMMLab                                hrnet_zoo
===================================================  ===================================================
``backbone.transition{k}.{i}.*``                     ``backbone.transition{k}.branches.{i}.*``
``backbone.stage{k}.{m}.fuse_layers.{i}.{j}.*``      ``backbone.stage{k}.{m}.fuse.paths.{i}.{j}.*``
``keypoint_head.final_layer.*`` (0.x),               ``head.*``
``head.final_layer.*`` (1.x)
===================================================  ===================================================

Every other key (``backbone.stem.*``, ``backbone.stage{k}.{m}.layers.*``, ``backbone.head_layer.*``) is the same.
A bare backbone state dict (the reference ``LiteHRNet``'s own keys, ``stem.*``...) is read as under ``backbone.``.
Lite-HRNet is told from HRNet by its stages, numbered from 0 (HRNet's from 1), and its weighting blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal, TypeVar

__all__ = [
    "Layout",
    "detect_layout",
    "is_litehrnet",
    "litehrnet_to_package_layout",
    "original_to_package",
    "strip_wrappers",
    "to_package_layout",
]

Layout = Literal["hrnet_zoo", "original", "openmmlab", "openmmlab1", "timm_imagenet", "litehrnet", "litehrnet1"]
V = TypeVar("V")

_ORIGINAL_RULES = (
    (re.compile(r"^(conv1|bn1|conv2|bn2)\."), r"backbone.stem.\1."),
    (re.compile(r"^layer1\."), "backbone.stage1."),
    (re.compile(r"^transition(\d+)\.(\d+)\."), r"backbone.transition\1.branches.\2."),
    (re.compile(r"^stage(\d+)\.(\d+)\.fuse_layers\."), r"backbone.stage\1.\2.fuse.paths."),
    (re.compile(r"^stage(\d+)\."), r"backbone.stage\1."),
    (re.compile(r"^final_layer\."), "head."),
)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_IMAGENET_HEAD = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")
_OPENMMLAB_HEADS = {"openmmlab": "keypoint_head.final_layer.", "openmmlab1": "head.final_layer."}
_LITE_RULES = (
    (re.compile(r"^backbone\.transition(\d+)\.(\d+)\."), r"backbone.transition\1.branches.\2."),
    (re.compile(r"^(backbone\.stage\d+\.\d+)\.fuse_layers\."), r"\1.fuse.paths."),
    (re.compile(r"^(?:keypoint_head|head)\.final_layer\."), "head."),
)
_LITE_BARE_BACKBONE = re.compile(r"^(?:stem|transition\d+|stage\d+|head_layer)\.")
_LITE_MARKERS = re.compile(r"^(?:backbone\.)?stage0\.|\.cross_resolution_weighting\.")


def strip_wrappers(state_dict: Mapping[str, V]) -> dict[str, V]:
    """Remove the prefixes DataParallel/DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) add to keys."""
    out = dict(state_dict)
    for prefix in _WRAPPER_PREFIXES:
        if out and all(k.startswith(prefix) for k in out):
            out = {k[len(prefix) :]: v for k, v in out.items()}
    return out


def is_litehrnet(keys: Iterable[str]) -> bool:
    """Whether state-dict ``keys`` are Lite-HRNet's (any layout): a stage 0, or cross-resolution weighting."""
    return any(_LITE_MARKERS.search(k) for k in keys)


def litehrnet_to_package_layout(state_dict: Mapping[str, V]) -> dict[str, V]:
    """Rename a Lite-HRNet checkpoint of the reference's, mmpose 0.x's or 1.x's layout to the package's.

    Keys already in the package's layout pass unchanged (the renames are idempotent), as do unknown keys, so that
    a strict load reports them; ``module.`` and ``_orig_mod.`` wrappers are stripped. Key order is kept.

    Example:
        >>> state = torch.load("litehrnet_18_coco_256x192.pth")["state_dict"]
        >>> model.load_state_dict(litehrnet_to_package_layout(state))
    """
    state_dict = strip_wrappers(state_dict)
    bare = bool(state_dict) and all(_LITE_BARE_BACKBONE.match(k) for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        key = "backbone." + key if bare else key
        for pattern, replacement in _LITE_RULES:
            key, count = pattern.subn(replacement, key)
            if count:
                break
        out[key] = value
    return out


def detect_layout(state_dict: Mapping[str, object]) -> Layout:
    """Tell which layout a state dict uses from its keys.

    Lite-HRNet's are told first (their ``backbone.stem.`` is not the package's HRNet stem): ``"hrnet_zoo"`` when
    already in the package's layout, ``"litehrnet1"`` with mmpose 1.x's head, ``"litehrnet"`` otherwise (the
    reference's, mmpose 0.x's, or a bare backbone).

    Raises:
        ValueError: When the keys fit none of the known HRNet or Lite-HRNet layouts.
    """
    keys = set(state_dict)
    if is_litehrnet(keys):
        if list(litehrnet_to_package_layout(state_dict)) == list(state_dict):
            return "hrnet_zoo"
        return "litehrnet1" if any(k.startswith("head.final_layer.") for k in keys) else "litehrnet"
    if any(k.startswith("backbone.stem.") for k in keys):
        return "hrnet_zoo"
    if "backbone.conv1.weight" in keys:
        return "openmmlab1" if any(k.startswith("head.final_layer.") for k in keys) else "openmmlab"
    if "conv1.weight" in keys and any(k.startswith("layer1.") for k in keys):
        imagenet = any(k.startswith(("incre_modules.", "classifier.")) for k in keys)
        return "timm_imagenet" if imagenet else "original"
    sample = ", ".join(sorted(keys)[:5]) or "no keys"
    raise ValueError(
        "the checkpoint is not an HRNet checkpoint in a known layout (hrnet_zoo, original "
        f"deep-high-resolution-net, OpenMMLab 0.x/1.x, timm ImageNet, Lite-HRNet): its first keys are {sample}"
    )


def _number_conv_head(state_dict: Mapping[str, V]) -> dict[str, V]:
    """mmpose 1.x splits a head with conv layers (HRNetV2's) into ``head.conv_layers.{i}`` (conv, BN, ReLU per
    layer) and ``head.final_layer``; mmpose 0.x numbers them in one ``final_layer`` sequence, as the package does."""
    conv = [int(k.split(".")[2]) for k in state_dict if k.startswith("head.conv_layers.")]
    if not conv:
        return dict(state_dict)
    final = 3 * ((max(conv) + 2) // 3)  # after the last conv layer's (conv, BN, ReLU)
    renamed = {}
    for key, value in state_dict.items():
        if key.startswith("head.conv_layers."):
            key = "head.final_layer." + key[len("head.conv_layers.") :]
        elif key.startswith("head.final_layer."):
            key = f"head.final_layer.{final}." + key[len("head.final_layer.") :]
        renamed[key] = value
    return renamed


def original_to_package(key: str) -> str:
    """Rename one key of the original layout to the package's layout (unknown keys are returned unchanged)."""
    for pattern, replacement in _ORIGINAL_RULES:
        new, count = pattern.subn(replacement, key)
        if count:
            return new
    return key


def _to_original(key: str, layout: Layout) -> str | None:
    """The original-layout name of ``key``; ``None`` to drop it; the key itself when the layout does not know it."""
    if layout == "timm_imagenet":
        return None if key.startswith(_IMAGENET_HEAD) else key
    if layout in _OPENMMLAB_HEADS:
        head = _OPENMMLAB_HEADS[layout]
        if key.startswith("backbone."):
            return key[len("backbone.") :]
        if key.startswith(head):
            return "final_layer." + key[len(head) :]
        return "\0" + key  # unknown to the layout: kept as is, reported as unexpected by a strict load
    return key


def to_package_layout(state_dict: Mapping[str, V]) -> tuple[dict[str, V], Layout]:
    """Convert a state dict of any known layout to the package's layout, keeping the key order.

    Keys the layout does not know (e.g. an OpenMMLab head with extra layers) are kept as they are, so that a
    strict load reports them as unexpected; timm's ImageNet classification head is dropped.

    Returns:
        The converted state dict and the layout it was in.
    """
    state_dict = strip_wrappers(state_dict)
    layout = detect_layout(state_dict)
    if layout == "hrnet_zoo":
        return state_dict, layout
    if layout in ("litehrnet", "litehrnet1"):
        return litehrnet_to_package_layout(state_dict), layout
    if layout == "openmmlab1":
        state_dict = _number_conv_head(state_dict)
    out = {}
    for key, value in state_dict.items():
        original = _to_original(key, layout)
        if original is None:
            continue
        out[original[1:] if original.startswith("\0") else original_to_package(original)] = value
    return out, layout
