"""The public model factory: timm's registry restricted to hrnet_zoo's models, with clear errors."""

from __future__ import annotations

import difflib
import os
from typing import Any

import timm
from timm.models import split_model_name_tag
from torch import nn

from .hub.checkpoint import load_checkpoint
from .hub.publish import create_from_folder, create_from_hub
from .models import pose_hrnet
from .models.pretrained import PRETRAINED_CFGS, PosePretrainedCfg

__all__ = ["create_model", "get_pretrained_cfg", "is_model", "list_models", "list_pretrained"]

_MODULE = pose_hrnet.__name__.rsplit(".", 1)[-1]
_PREFIXED_SOURCES = {"hf-hub:": create_from_hub, "local-dir:": create_from_folder}


def list_models(pattern: str = "", pretrained: bool = False) -> list[str]:
    """Names of hrnet_zoo's architectures matching a wildcard ``pattern``.

    With ``pretrained=True``, the ``arch.tag`` names of every configuration with weights instead.

    Example:
        >>> hrnet_zoo.list_models("*w32*", pretrained=True)
        ['hrnet_w32_pose.coco_256x192', 'hrnet_w32_pose.coco_384x288', 'hrnet_w32_pose.mpii_256x256']
    """
    return timm.list_models(pattern or "", module=_MODULE, pretrained=pretrained)


def list_pretrained(pattern: str = "") -> list[str]:
    """``arch.tag`` names of every configuration with weights (same as ``list_models(pattern, pretrained=True)``)."""
    return list_models(pattern, pretrained=True)


def is_model(name: str) -> bool:
    """Whether ``name`` (``arch`` or ``arch.tag``) is one of hrnet_zoo's models."""
    arch, tag = split_model_name_tag(name)
    return arch in list_models() and (not tag or f"{arch}.{tag}" in PRETRAINED_CFGS)


def _unknown_name_error(name: str) -> ValueError:
    arch, tag = split_model_name_tag(name)
    if arch in list_models():
        tags = [n for n in PRETRAINED_CFGS if n.startswith(arch + ".")]
        return ValueError(f"{arch} has no weight tag {tag!r}; available: {', '.join(tags) or 'none'}")
    candidates = list_models() + list(PRETRAINED_CFGS)
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return ValueError(f"unknown model {name!r}{hint} See hrnet_zoo.list_models() for all names")


def get_pretrained_cfg(name: str) -> PosePretrainedCfg:
    """The pretrained configuration of ``arch.tag``, or of the architecture's default tag for a bare ``arch``."""
    if name not in PRETRAINED_CFGS:
        if not is_model(name):
            raise _unknown_name_error(name)
        name = f"{name}.{timm.models.get_pretrained_cfg(name).tag}".rstrip(".")
    return PRETRAINED_CFGS[name]


def create_model(
    model_name: str,
    pretrained: bool | str = False,
    *,
    checkpoint_path: str | os.PathLike | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Create an hrnet_zoo model, as ``timm.create_model`` does, with checkpoints of any known layout.

    Args:
        model_name: ``arch`` or ``arch.tag`` (see :func:`list_models`), ``hf-hub:org/repo`` (a Hub repository in
            the package's layout) or ``local-dir:PATH`` (a folder written by :func:`hrnet_zoo.save_pretrained`,
            loaded with ``pretrained=True``).
        pretrained: ``True`` loads the tag's weights (see :func:`hrnet_zoo.hub.load_pretrained`);
            ``"imagenet"`` initialises the backbone from timm's ImageNet HRNet.
        checkpoint_path: A ``.safetensors`` or ``.pth`` file in the package, original or OpenMMLab layout,
            loaded strictly after creation.
        **kwargs: ``num_joints``, ``keypoints``, ``in_chans``, ``features_only``, ``out_indices``,
            ``pretrained_cfg_overlay`` (e.g. ``dict(file=PATH)``), ``cache_dir``, ...

    Raises:
        ValueError: Unknown name (with close matches), or a checkpoint that does not fit (nothing loaded).

    Example:
        >>> model = hrnet_zoo.create_model("hrnet_w32_pose.coco_256x192", pretrained=True).eval()
        >>> heatmaps = model(torch.randn(1, 3, 256, 192))  # (1, 17, 64, 48)
    """
    for prefix, build in _PREFIXED_SOURCES.items():
        if model_name.startswith(prefix):
            return build(model_name[len(prefix) :], pretrained=pretrained, checkpoint_path=checkpoint_path, **kwargs)
    if not is_model(model_name):
        raise _unknown_name_error(model_name)
    model = timm.create_model(model_name, pretrained=pretrained, **kwargs)
    if checkpoint_path is not None:
        load_checkpoint(model, checkpoint_path, reset_head="num_joints" in kwargs or "keypoints" in kwargs)
    return model
