"""HRNet backbone and pose models (and the family built from the same blocks: Lite-HRNet, DEKR, HigherHRNet), their
configurations, metadata, pretrained configurations and weight loading.

Example:
    >>> from hrnet_zoo.models import HRNetConfig, HRNetPose, load_checkpoint
    >>> model = HRNetPose(HRNetConfig.from_original(extra), num_joints=17)
    >>> load_checkpoint(model, "pose_hrnet_w32_256x192.pth")  # the original's file, checked before copying
"""

from ._checkpoint import load_checkpoint, read_checkpoint
from ._layouts import detect_layout, litehrnet_to_package_layout, to_package_layout
from ._weights import load_imagenet_backbone, load_pretrained
from .backbone import HighResolutionNet
from .config import Architecture, HRNetConfig, StageSpec
from .dekr import DEKR, DEKR_CONFIGS, DEKRConfig, DEKRHead, RescoreNet, to_dekr_layout
from .higherhrnet import (
    HIGHERHRNET_CONFIGS,
    HigherHeadSpec,
    HigherHRNet,
    HigherHRNetConfig,
    HigherHRNetHead,
    higherhrnet_config,
    to_higherhrnet_layout,
)
from .litehrnet import (
    LITE_HRNET_18,
    LITE_HRNET_30,
    LiteHRNet,
    LiteHRNetConfig,
    LiteHRNetFeatures,
    LiteHRNetPose,
    LiteStageSpec,
)
from .meta import PoseMeta, WeightsOrigin, weights_fingerprint
from .pose_hrnet import ARCHITECTURES
from .pretrained import PRETRAINED_CFGS, PosePretrainedCfg
from .top_down import HRNetFeatures, HRNetPose, HRNetV2Pose

__all__ = [
    "ARCHITECTURES",
    "DEKR",
    "DEKR_CONFIGS",
    "HIGHERHRNET_CONFIGS",
    "LITE_HRNET_18",
    "LITE_HRNET_30",
    "PRETRAINED_CFGS",
    "Architecture",
    "DEKRConfig",
    "DEKRHead",
    "HRNetConfig",
    "HRNetFeatures",
    "HRNetPose",
    "HRNetV2Pose",
    "HighResolutionNet",
    "HigherHRNet",
    "HigherHRNetConfig",
    "HigherHRNetHead",
    "HigherHeadSpec",
    "LiteHRNet",
    "LiteHRNetConfig",
    "LiteHRNetFeatures",
    "LiteHRNetPose",
    "LiteStageSpec",
    "PoseMeta",
    "PosePretrainedCfg",
    "RescoreNet",
    "StageSpec",
    "WeightsOrigin",
    "detect_layout",
    "higherhrnet_config",
    "litehrnet_to_package_layout",
    "load_checkpoint",
    "load_imagenet_backbone",
    "load_pretrained",
    "read_checkpoint",
    "to_dekr_layout",
    "to_higherhrnet_layout",
    "to_package_layout",
    "weights_fingerprint",
]
