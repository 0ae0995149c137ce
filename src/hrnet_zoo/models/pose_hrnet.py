"""The registered pose architectures (:data:`ARCHITECTURES`) and their entrypoints in timm's registry.

Top-down: HRNet (Sun et al., CVPR 2019, https://arxiv.org/abs/1902.09212) and Lite-HRNet (Yu et al., CVPR 2021,
https://arxiv.org/abs/2104.06403), in :mod:`hrnet_zoo.models.top_down` and :mod:`hrnet_zoo.models.litehrnet`.
Bottom-up: DEKR (Geng et al., CVPR 2021, https://arxiv.org/abs/2104.02300) and HigherHRNet (Cheng et al., CVPR 2020,
https://arxiv.org/abs/1908.10357), in :mod:`hrnet_zoo.models.dekr` and :mod:`hrnet_zoo.models.higherhrnet`.
Every registry entry comes from the table: its configuration, pose and feature classes, and the ImageNet
classifier sharing its backbone. The pretrained configurations (``arch.tag``) come from
the data files (:data:`~hrnet_zoo.models.PRETRAINED_CFGS`). timm groups the entrypoints under this module's name,
``pose_hrnet``, by which ``hrnet_zoo.list_models`` finds them.
"""

from __future__ import annotations

from typing import Any

from timm.models import generate_default_cfgs, register_model
from torch import nn

from ._builder import build_pose_model
from .config import Architecture, hrnet_config
from .dekr import DEKR, DEKR_CONFIGS
from .higherhrnet import HIGHERHRNET_CONFIGS, HigherHRNet
from .litehrnet import LITE_HRNET_18, LITE_HRNET_30, LiteHRNetFeatures, LiteHRNetPose
from .pretrained import PRETRAINED_CFGS
from .top_down import HRNetFeatures, HRNetPose, HRNetV2Pose

__all__ = ["ARCHITECTURES"]

#: Every registered pose architecture.
ARCHITECTURES: dict[str, Architecture] = {
    # HRNet-W18-Small-v2 of the HRNet family (Wang et al., TPAMI 2020): fewer modules and blocks.
    "hrnet_w18_small_pose": Architecture(
        hrnet_config(18, stage1_blocks=2, modules=(1, 3, 2), blocks=2),
        HRNetPose,
        HRNetFeatures,
        "timm/hrnet_w18_small_v2.ms_in1k",
    ),
    "hrnet_w18_pose": Architecture(hrnet_config(18), HRNetPose, HRNetFeatures, "timm/hrnet_w18.ms_in1k"),
    "hrnetv2_w18_pose": Architecture(hrnet_config(18), HRNetV2Pose, HRNetFeatures),
    "hrnet_w32_pose": Architecture(hrnet_config(32), HRNetPose, HRNetFeatures, "timm/hrnet_w32.ms_in1k"),
    "hrnet_w48_pose": Architecture(hrnet_config(48), HRNetPose, HRNetFeatures, "timm/hrnet_w48.ms_in1k"),
    "litehrnet_18_pose": Architecture(LITE_HRNET_18, LiteHRNetPose, LiteHRNetFeatures),
    "litehrnet_30_pose": Architecture(LITE_HRNET_30, LiteHRNetPose, LiteHRNetFeatures),
    "dekr_hrnet_w32": Architecture(DEKR_CONFIGS["dekr_hrnet_w32"], DEKR, None, "timm/hrnet_w32.ms_in1k"),
    "dekr_hrnet_w48": Architecture(DEKR_CONFIGS["dekr_hrnet_w48"], DEKR, None, "timm/hrnet_w48.ms_in1k"),
    "higherhrnet_w32": Architecture(
        HIGHERHRNET_CONFIGS["higherhrnet_w32"], HigherHRNet, None, "timm/hrnet_w32.ms_in1k"
    ),
    "higherhrnet_w48": Architecture(
        HIGHERHRNET_CONFIGS["higherhrnet_w48"], HigherHRNet, None, "timm/hrnet_w48.ms_in1k"
    ),
}


def _create(variant: str, pretrained: bool | str = False, **kwargs: Any) -> nn.Module:
    """Build a registered architecture with its metadata and weights (see :func:`~._builder.build_pose_model`)."""
    return build_pose_model(variant, ARCHITECTURES[variant], pretrained, **kwargs)


default_cfgs = generate_default_cfgs(
    {
        name: cfg.to_timm(ARCHITECTURES[cfg.architecture].classifier, ARCHITECTURES[cfg.architecture].first_conv)
        for name, cfg in PRETRAINED_CFGS.items()
    }
)


@register_model
def hrnet_w18_small_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HRNet-W18-Small (v2 layout: fewer modules and blocks) pose network."""
    return _create("hrnet_w18_small_pose", pretrained, **kwargs)


@register_model
def hrnet_w18_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HRNet-W18 pose network (branch widths 18/36/72/144)."""
    return _create("hrnet_w18_pose", pretrained, **kwargs)


@register_model
def hrnetv2_w18_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HRNetV2-W18 pose network: all branches concatenated before the head (OpenMMLab's face and hand models)."""
    return _create("hrnetv2_w18_pose", pretrained, **kwargs)


@register_model
def hrnet_w32_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HRNet-W32 pose network (branch widths 32/64/128/256), the paper's base model."""
    return _create("hrnet_w32_pose", pretrained, **kwargs)


@register_model
def hrnet_w48_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HRNet-W48 pose network (branch widths 48/96/192/384), the paper's large model."""
    return _create("hrnet_w48_pose", pretrained, **kwargs)


@register_model
def litehrnet_18_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Lite-HRNet-18 pose network (Yu et al., CVPR 2021; branches 40/80/160/320, 2/4/2 modules; 1.1 M parameters)."""
    return _create("litehrnet_18_pose", pretrained, **kwargs)


@register_model
def litehrnet_30_pose(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Lite-HRNet-30 pose network (3/8/3 modules; 1.8 M parameters)."""
    return _create("litehrnet_30_pose", pretrained, **kwargs)


@register_model
def dekr_hrnet_w32(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DEKR with HRNet-W32 (bottom-up: centre heatmap and per-keypoint offsets; 29.6 M parameters), 512x512."""
    return _create("dekr_hrnet_w32", pretrained, **kwargs)


@register_model
def dekr_hrnet_w48(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DEKR with HRNet-W48 (bottom-up), 640x640."""
    return _create("dekr_hrnet_w48", pretrained, **kwargs)


@register_model
def higherhrnet_w32(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HigherHRNet-W32 (bottom-up: heatmaps at 1/4 and 1/2 with associative-embedding tags; 28.6 M parameters)."""
    return _create("higherhrnet_w32", pretrained, **kwargs)


@register_model
def higherhrnet_w48(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """HigherHRNet-W48 (bottom-up), 640x640."""
    return _create("higherhrnet_w48", pretrained, **kwargs)
