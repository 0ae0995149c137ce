"""timm's feature wrappers around HRNet's feature model (``create_model(..., features_only=True, feature_cls=...)``).

HRNet's stages pass lists of branches, which timm's sequential ``"list"``/``"dict"`` wrappers cannot follow; the
``"getter"`` (``forward_intermediates``), ``"hook"`` and ``"fx"`` wrappers work, tapping the named identities
``taps.{i}`` of :class:`~hrnet_zoo.models.HRNetFeatures`.
"""

from __future__ import annotations

from timm.models import FeatureHookNet
from timm.models._builder import pretrained_cfg_for_features
from timm.models._features import FeatureGetterNet
from timm.models._features_fx import FeatureGraphNet
from torch import Tensor, nn

__all__ = ["FEATURE_WRAPPERS", "check_feature_cls", "wrap_features"]

FEATURE_WRAPPERS = {"getter": FeatureGetterNet, "hook": FeatureHookNet, "fx": FeatureGraphNet}


def check_feature_cls(feature_cls: str | None) -> str | None:
    """``feature_cls`` when HRNet supports it (``None``: no wrapper, the feature model itself)."""
    if feature_cls is not None and feature_cls not in FEATURE_WRAPPERS:
        raise ValueError(
            f"feature_cls must be one of {sorted(FEATURE_WRAPPERS)} for HRNet (its stages pass lists of "
            f"branches, which timm's sequential 'list'/'dict' wrappers cannot follow), got {feature_cls!r}"
        )
    return feature_cls


class _LastOutput(nn.Module):
    """A feature model whose forward returns its last output: timm's hook wrapper expects a tensor from the model
    it runs, and collects the features from the hooked ``taps``."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.feature_info = [dict(d, module=f"features.{d['module']}") for d in features.feature_info.get_dicts()]

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[-1]


def wrap_features(model: nn.Module, feature_cls: str, out_indices: tuple[int, ...]) -> nn.Module:
    """timm's feature wrapper ``feature_cls`` around a (loaded) feature model, with its metadata."""
    inner = _LastOutput(model) if feature_cls == "hook" else model
    wrapped = FEATURE_WRAPPERS[feature_cls](inner, out_indices=out_indices)
    wrapped.pretrained_cfg = wrapped.default_cfg = pretrained_cfg_for_features(model.pretrained_cfg)
    wrapped.pose_meta, wrapped.in_chans = model.pose_meta, model.in_chans
    return wrapped
