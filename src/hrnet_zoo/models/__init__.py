"""HRNet backbone, pose models, their configurations and registration."""

from .backbone import HighResolutionNet
from .config import MODEL_CONFIGS, HRNetConfig, StageSpec
from .convert import detect_layout, to_package_layout
from .pose_hrnet import HRNetFeatures, HRNetPose
from .pretrained import PRETRAINED_CFGS, PosePretrainedCfg

__all__ = [
    "MODEL_CONFIGS",
    "PRETRAINED_CFGS",
    "HRNetConfig",
    "HRNetFeatures",
    "HRNetPose",
    "HighResolutionNet",
    "PosePretrainedCfg",
    "StageSpec",
    "detect_layout",
    "to_package_layout",
]
