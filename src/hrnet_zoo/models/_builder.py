"""Building a registered pose architecture: its metadata resolved once, timm's builder, then its weights.

The model file only names the architecture; this module turns ``create_model``'s keyword arguments into a model:

1. timm's pretrained configuration for the variant (``pretrained_cfg``, ``pretrained_cfg_overlay``);
2. the :class:`~hrnet_zoo.models.PoseMeta` it starts from: given (``config.json``'s ``model_args``), the tag's, or
   read from timm's configuration;
3. the overlay's ``input_size``, ``mean`` and ``std`` applied to that metadata (fields the metadata owns that an
   overlay cannot set are refused);
4. the head asked for (:func:`~hrnet_zoo.models.meta.head_meta`) and ``input_size=``;
5. ``timm.models.build_model_with_cfg``, the weights (:func:`~hrnet_zoo.models.load_pretrained`), and timm's
   feature wrappers for ``features_only`` (:mod:`._features`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from timm.models import build_model_with_cfg, resolve_pretrained_cfg
from torch import nn

from ..codec import HeatmapCodec
from ..keypoints import KeypointSet
from ._features import check_feature_cls, wrap_features
from ._weights import load_pretrained
from .config import Architecture
from .meta import PoseMeta, head_meta
from .pretrained import PRETRAINED_CFGS, registered_cfg

__all__ = ["apply_overlay", "build_pose_model", "starting_meta"]

#: Fields of timm's pretrained configuration that the pose metadata owns but an overlay cannot set, and what to
#: pass to ``create_model`` instead.
_OWNED_ELSEWHERE = {
    "num_classes": "num_joints= (or keypoints=)",
    "label_names": "keypoints=",
    "pool_size": "input_size= (the heatmaps are a quarter of it)",
}


def apply_overlay(meta: PoseMeta, overlay: Mapping[str, Any], in_chans: int = 3) -> PoseMeta:
    """``meta`` with the ``input_size``, ``mean`` and ``std`` of timm's ``pretrained_cfg_overlay``.

    Raises:
        ValueError: The overlay sets a field the metadata owns but cannot take from it (``num_classes``,
            ``label_names``, ``pool_size``), or malformed values.
    """
    refused = sorted(set(overlay) & set(_OWNED_ELSEWHERE))
    if refused:
        instead = "; ".join(f"for {key} pass {_OWNED_ELSEWHERE[key]}" for key in refused)
        raise ValueError(
            f"pretrained_cfg_overlay sets {', '.join(refused)}, which the model's pose metadata owns: {instead}"
        )
    if "input_size" in overlay:
        size = tuple(overlay["input_size"])
        if len(size) == 3:
            if size[0] != in_chans:
                raise ValueError(
                    f"pretrained_cfg_overlay input_size {size} has {size[0]} channels, the model {in_chans}; "
                    "give (height, width), or pass in_chans="
                )
            size = size[1:]
        if len(size) != 2:
            raise ValueError(f"pretrained_cfg_overlay input_size must be (C, H, W) or (H, W), got {size}")
        meta = meta.at_input_size(size)
    if "mean" in overlay or "std" in overlay:
        meta = replace(meta, mean=tuple(overlay.get("mean", meta.mean)), std=tuple(overlay.get("std", meta.std)))
    return meta


def _architecture_default(variant: str) -> PoseMeta:
    return next(cfg.pose_meta for cfg in PRETRAINED_CFGS.values() if cfg.architecture == variant)


def starting_meta(variant: str, timm_cfg: Mapping[str, Any], given: PoseMeta | Mapping[str, Any] | None) -> PoseMeta:
    """The metadata a model starts from: given (``config.json``'s ``model_args``), the tag's, or timm's config
    (a ``config.json`` written by other tools, such as timm's ``save_for_hf`` without ``pose_meta``)."""
    if isinstance(given, PoseMeta):
        return given
    if given is not None:
        return PoseMeta.from_dict(given)
    registered = registered_cfg(timm_cfg)
    if registered is not None:
        return registered.pose_meta
    labels = tuple(timm_cfg.get("label_names") or ())
    keypoints = KeypointSet("custom", labels) if labels else _architecture_default(variant).keypoints
    codec = HeatmapCodec(tuple(timm_cfg["input_size"][-2:]))
    return PoseMeta(keypoints, codec, tuple(timm_cfg["mean"]), tuple(timm_cfg["std"]))


def build_pose_model(variant: str, arch: Architecture, pretrained: bool | str = False, **kwargs: Any) -> nn.Module:
    """Build ``variant`` of ``arch`` from ``create_model``'s keyword arguments, with its metadata and weights.

    Args:
        variant: Registered name (``hrnet_w32_pose``).
        arch: Its entry of :data:`~hrnet_zoo.models.ARCHITECTURES` (model and feature classes, configuration).
        pretrained: ``True``, ``False`` or ``"imagenet"`` (see :func:`~hrnet_zoo.models.load_pretrained`).
        **kwargs: timm's and hrnet_zoo's ``create_model`` arguments.
    """
    cache = kwargs.pop("cache_dir", None)
    overlay = kwargs.pop("pretrained_cfg_overlay", None) or {}
    timm_cfg = resolve_pretrained_cfg(
        variant, pretrained_cfg=kwargs.pop("pretrained_cfg", None), pretrained_cfg_overlay=overlay
    ).to_dict()
    base = apply_overlay(
        starting_meta(variant, timm_cfg, kwargs.pop("pose_meta", None)), overlay, kwargs.get("in_chans", 3)
    )
    num_joints, num_classes = kwargs.pop("num_joints", None), kwargs.pop("num_classes", None)
    meta = head_meta(base, num_joints=num_joints, num_classes=num_classes, keypoints=kwargs.pop("keypoints", None))
    input_size = kwargs.pop("input_size", None)
    if input_size is not None:
        meta = meta.at_input_size(input_size)
    if not pretrained:
        meta = replace(meta, origin=None)
    features_only = kwargs.pop("features_only", False)
    feature_cls = check_feature_cls(kwargs.pop("feature_cls", None))
    out_indices = tuple(kwargs.pop("out_indices", (0, 1, 2, 3)))
    if features_only and arch.features_cls is None:
        raise ValueError(
            f"{variant} is a bottom-up model and has no features_only form; its features are "
            f"create_model({variant!r}).forward_features(x) (stride 4), or an HRNet backbone's: "
            "create_model('hrnet_w32_pose', features_only=True)"
        )
    if features_only:
        model_cls: type[nn.Module] = arch.features_cls
        kwargs["out_indices"] = (0, 1, 2, 3) if feature_cls else out_indices
    else:
        model_cls = arch.model_cls
    model = build_model_with_cfg(
        model_cls,
        variant,
        False,
        pretrained_cfg=timm_cfg,
        model_cfg=arch.config,
        pose_meta=meta,
        kwargs_filter=("num_classes",),
        **kwargs,
    )
    if pretrained:
        load_pretrained(
            model,
            pretrained,
            reset_head=meta.num_joints != base.num_joints,
            cache=cache,
            imagenet_hub_id=arch.imagenet_hub_id,
        )
    if features_only and feature_cls:
        model = wrap_features(model, feature_cls, out_indices)
    return model
