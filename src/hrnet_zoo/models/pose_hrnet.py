"""HRNet top-down pose models.

Paper: "Deep High-Resolution Representation Learning for Human Pose Estimation", Sun et al., CVPR 2019
(https://arxiv.org/abs/1902.09212). Original implementation (MIT):
https://github.com/leoxiaobin/deep-high-resolution-net.pytorch. This file rebuilds the same network from the
blocks in :mod:`hrnet_zoo.layers`; :mod:`hrnet_zoo.models.convert` maps the original checkpoints onto it.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from timm.models import FeatureInfo, build_model_with_cfg, generate_default_cfgs, register_model
from torch import Tensor, nn

from ..pose.keypoints import KeypointSet
from .backbone import HighResolutionNet
from .config import MODEL_CONFIGS, HRNetConfig
from .convert import to_package_layout
from .pretrained import PRETRAINED_CFGS, PosePretrainedCfg

__all__ = ["HRNetFeatures", "HRNetPose"]

_logger = logging.getLogger(__name__)


def init_weights(module: nn.Module) -> None:
    """The original implementation's initialisation: conv weights N(0, 0.001), zero biases, BN to identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def generic_keypoints(num_joints: int) -> KeypointSet:
    """Placeholder metadata for a head without named keypoints."""
    return KeypointSet("custom", tuple(f"joint_{i}" for i in range(num_joints)))


def _convert_on_load(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook: accept the original and OpenMMLab layouts too (renamed in place)."""
    own = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not own or any(k.startswith("backbone.stem.") for k in own):
        return
    try:
        converted = to_package_layout(own)
    except ValueError:
        return  # not an HRNet layout: let torch report the mismatch
    for key in own:
        del state_dict[prefix + key]
    state_dict.update({prefix + k: v for k, v in converted.items()})


class HRNetPose(nn.Module):
    """HRNet pose network: the backbone's stride-4 branch followed by a conv giving one heatmap per joint.

    Shapes: ``(B, in_chans, H, W) -> (B, num_joints, H / 4, W / 4)``; ``H`` and ``W`` multiples of 32.
    Inputs are RGB in ``[0, 1]`` normalised with ``pretrained_cfg["mean"]``/``["std"]``.

    ``load_state_dict`` also accepts the original implementation's and OpenMMLab's key layouts.

    Args:
        cfg: Backbone architecture.
        num_joints: Heatmaps to predict (defaults to ``len(keypoints)``).
        keypoints: What the heatmaps are; generic names when not given.
        in_chans: Input channels.
        head_kernel_size: Kernel of the heatmap conv (1 in the paper, 3 allowed as in the original).

    Example:
        >>> model = hrnet_zoo.create_model("hrnet_w32_pose").eval()
        >>> model(torch.randn(1, 3, 256, 192)).shape
        torch.Size([1, 17, 64, 48])
    """

    def __init__(
        self,
        cfg: HRNetConfig,
        num_joints: int | None = None,
        keypoints: KeypointSet | None = None,
        in_chans: int = 3,
        head_kernel_size: int = 1,
    ) -> None:
        super().__init__()
        if num_joints is None and keypoints is None:
            raise ValueError("give num_joints or keypoints")
        num_joints = len(keypoints) if num_joints is None else int(num_joints)
        if keypoints is not None and len(keypoints) != num_joints:
            raise ValueError(f"num_joints={num_joints} does not match the {len(keypoints)} keypoints given")
        if num_joints < 1:
            raise ValueError(f"num_joints must be positive, got {num_joints}")
        if head_kernel_size not in (1, 3):
            raise ValueError(f"head_kernel_size must be 1 or 3, got {head_kernel_size}")
        self.keypoints = keypoints if keypoints is not None else generic_keypoints(num_joints)
        self.head_kernel_size = head_kernel_size
        self.backbone = HighResolutionNet(cfg, in_chans, multi_scale_output=False)
        self.num_features = self.backbone.out_channels[0]
        self.head = self._make_head(num_joints)
        self.feature_info = [dict(num_chs=self.num_features, reduction=4, module="backbone")]
        init_weights(self)
        self.register_load_state_dict_pre_hook(_convert_on_load)

    def _make_head(self, num_joints: int) -> nn.Conv2d:
        k = self.head_kernel_size
        return nn.Conv2d(self.num_features, num_joints, kernel_size=k, padding=k // 2)

    @property
    def num_joints(self) -> int:
        """Number of predicted heatmaps."""
        return self.head.out_channels

    @property
    def num_classes(self) -> int:
        """timm's name for the head's outputs: the number of joints."""
        return self.num_joints

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        """The heatmap head (timm convention)."""
        return self.head

    def reset_head(self, num_joints: int, keypoints: KeypointSet | None = None) -> None:
        """Replace the heatmap head by a freshly initialised one for ``num_joints`` joints (e.g. to fine-tune)."""
        if keypoints is not None and len(keypoints) != num_joints:
            raise ValueError(f"num_joints={num_joints} does not match the {len(keypoints)} keypoints given")
        device, dtype = self.head.weight.device, self.head.weight.dtype
        self.head = self._make_head(num_joints).to(device=device, dtype=dtype)
        init_weights(self.head)
        self.keypoints = keypoints if keypoints is not None else generic_keypoints(num_joints)

    def reset_classifier(self, num_classes: int, *args: Any, **kwargs: Any) -> None:
        """timm's name for :meth:`reset_head`."""
        self.reset_head(num_classes)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Trade compute for memory: recompute each HRModule during the backward pass."""
        self.backbone.set_grad_checkpointing(enable)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, num_features, H / 4, W / 4)``: the fused stride-4 branch."""
        return self.backbone(x)[0]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(B, num_features, h, w) -> (B, num_joints, h, w)`` heatmaps (features when ``pre_logits``)."""
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class HRNetFeatures(nn.Module):
    """HRNet as a feature extractor: all four branches out of the last stage (strides 4, 8, 16, 32).

    Unlike the pose network, the last module fuses into every branch. Pose checkpoints do not hold those extra
    fusion paths (see :meth:`optional_checkpoint_keys`); they keep their initialisation when such weights load.

    Shapes: ``(B, in_chans, H, W) -> [(B, feature_info.channels()[k], H / r_k, W / r_k) for k in out_indices]``.

    Example:
        >>> model = hrnet_zoo.create_model("hrnet_w32_pose", features_only=True, out_indices=(1, 3))
        >>> model.feature_info.channels(), model.feature_info.reduction()
        ([64, 256], [8, 32])
    """

    def __init__(self, cfg: HRNetConfig, in_chans: int = 3, out_indices: tuple[int, ...] = (0, 1, 2, 3)) -> None:
        super().__init__()
        self.backbone = HighResolutionNet(cfg, in_chans, multi_scale_output=True)
        num = len(self.backbone.out_channels)
        out_indices = tuple(out_indices)
        if not out_indices or any(not -num <= i < num for i in out_indices):
            raise ValueError(f"out_indices must select among the {num} branches (0..{num - 1}), got {out_indices}")
        self.out_indices = tuple(i % num for i in out_indices)
        info = [
            dict(num_chs=c, reduction=r, module=f"backbone.stage{len(cfg.stages) + 1}", index=i)
            for i, (c, r) in enumerate(zip(self.backbone.out_channels, self.backbone.reductions))
        ]
        self.feature_info = FeatureInfo(info, self.out_indices)
        init_weights(self)
        self.register_load_state_dict_pre_hook(_convert_on_load)

    def optional_checkpoint_keys(self) -> set[str]:
        """Keys a pose checkpoint lacks: the fusion paths into the lower branches of the very last module."""
        last_stage = f"stage{len(self.backbone.cfg.stages) + 1}"
        last_module = len(getattr(self.backbone, last_stage)) - 1
        prefix = f"backbone.{last_stage}.{last_module}.fuse.paths."
        return {k for k in self.state_dict() if k.startswith(prefix) and not k.startswith(prefix + "0.")}

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Trade compute for memory: recompute each HRModule during the backward pass."""
        self.backbone.set_grad_checkpointing(enable)

    def forward(self, x: Tensor) -> list[Tensor]:
        xs = self.backbone(x)
        return [xs[i] for i in self.out_indices]


def _build_pose(cfg: HRNetConfig, num_classes: int, **kwargs: Any) -> HRNetPose:
    return HRNetPose(cfg, num_joints=num_classes, **kwargs)


def _pose_cfg_of(model: nn.Module) -> PosePretrainedCfg:
    """The pose configuration matching the timm config timm resolved: a registered tag, or one built from the
    timm config itself (e.g. from a Hub repository's ``config.json`` read by ``timm.create_model("hf-hub:...")``)."""
    timm_cfg = model.pretrained_cfg
    arch, tag = timm_cfg["architecture"], timm_cfg.get("tag") or ""
    name = f"{arch}.{tag}" if tag else arch
    if name in PRETRAINED_CFGS and timm_cfg.get("source") != "hf-hub":
        return PRETRAINED_CFGS[name]
    num_joints = timm_cfg.get("num_classes") or 0
    names = tuple(timm_cfg.get("label_names") or ())
    keypoints = KeypointSet("custom", names) if len(names) == num_joints > 0 else generic_keypoints(num_joints or 1)
    return PosePretrainedCfg(
        architecture=arch,
        tag=tag,
        keypoints=keypoints,
        input_size=tuple(timm_cfg.get("input_size", (3, 256, 192))[-2:]),
        mean=tuple(timm_cfg.get("mean", PosePretrainedCfg.mean)),
        std=tuple(timm_cfg.get("std", PosePretrainedCfg.std)),
        hf_hub_id=timm_cfg.get("hf_hub_id"),
    )


def _create_pose_hrnet(variant: str, pretrained: bool | str = False, **kwargs: Any) -> nn.Module:
    # Imported here: the hub package builds on the model definitions.
    from ..hub import load_pretrained

    arch = MODEL_CONFIGS[variant.removesuffix("_pose")]
    features_only = kwargs.pop("features_only", False)
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    num_joints = kwargs.pop("num_joints", None)
    if num_joints is not None:
        if kwargs.get("num_classes", num_joints) != num_joints:
            raise ValueError(f"num_joints={num_joints} and num_classes={kwargs['num_classes']} disagree: give one")
        kwargs["num_classes"] = num_joints
    keypoints = kwargs.pop("keypoints", None)
    if keypoints is not None:
        kwargs.setdefault("num_classes", len(keypoints))
    asked_joints = kwargs.get("num_classes")
    if features_only:
        model = build_model_with_cfg(
            HRNetFeatures,
            variant,
            False,
            model_cfg=arch,
            out_indices=out_indices,
            kwargs_filter=("num_classes",),
            **kwargs,
        )
    else:
        model = build_model_with_cfg(_build_pose, variant, False, model_cfg=arch, keypoints=keypoints, **kwargs)
    pose_cfg = _pose_cfg_of(model)
    model.pose_cfg = pose_cfg
    if not features_only and keypoints is None and model.num_joints == pose_cfg.num_joints:
        model.keypoints = pose_cfg.keypoints
    if pretrained:
        reset_head = asked_joints is not None and asked_joints != pose_cfg.num_joints
        load_pretrained(model, pose_cfg, source=pretrained, reset_head=reset_head)
    return model


default_cfgs = generate_default_cfgs({name: cfg.to_timm() for name, cfg in PRETRAINED_CFGS.items()})


@register_model
def hrnet_w18_small_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HRNet-W18-Small (v2 layout: fewer modules and blocks) pose network."""
    return _create_pose_hrnet("hrnet_w18_small_pose", pretrained, **kwargs)


@register_model
def hrnet_w18_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HRNet-W18 pose network (branch widths 18/36/72/144)."""
    return _create_pose_hrnet("hrnet_w18_pose", pretrained, **kwargs)


@register_model
def hrnet_w32_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HRNet-W32 pose network (branch widths 32/64/128/256), the paper's base model."""
    return _create_pose_hrnet("hrnet_w32_pose", pretrained, **kwargs)


@register_model
def hrnet_w48_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HRNet-W48 pose network (branch widths 48/96/192/384), the paper's large model."""
    return _create_pose_hrnet("hrnet_w48_pose", pretrained, **kwargs)
