"""HRNet backbone, pose models, their configurations, metadata, checkpoint layouts and weight loading."""

from .backbone import HighResolutionNet
from .checkpoint import CheckpointMismatchError, load_checkpoint, read_checkpoint
from .config import MODEL_CONFIGS, HRNetConfig, StageSpec
from .layouts import detect_layout, to_package_layout
from .meta import PoseMeta, WeightsOrigin, weights_fingerprint
from .pose_hrnet import HRNetFeatures, HRNetPose
from .pretrained import PRETRAINED_CFGS, PosePretrainedCfg, default_pretrained_cfg
from .weights import IMAGENET_HUB_IDS, load_imagenet_backbone, load_pretrained

__all__ = [
    "IMAGENET_HUB_IDS",
    "MODEL_CONFIGS",
    "PRETRAINED_CFGS",
    "CheckpointMismatchError",
    "HRNetConfig",
    "HRNetFeatures",
    "HRNetPose",
    "HighResolutionNet",
    "PoseMeta",
    "PosePretrainedCfg",
    "StageSpec",
    "WeightsOrigin",
    "default_pretrained_cfg",
    "detect_layout",
    "load_checkpoint",
    "load_imagenet_backbone",
    "load_pretrained",
    "read_checkpoint",
    "to_package_layout",
    "weights_fingerprint",
]
