"""HRNet backbone and pose models, their configurations, metadata, pretrained configurations and weight loading.

Example:
    >>> from hrnet_zoo.models import HRNetConfig, HRNetPose, load_checkpoint
    >>> model = HRNetPose(HRNetConfig.from_original(extra), num_joints=17)
    >>> load_checkpoint(model, "pose_hrnet_w32_256x192.pth")  # the original's file, checked before copying
"""

from ._checkpoint import load_checkpoint, read_checkpoint
from ._layouts import detect_layout, to_package_layout
from ._weights import load_imagenet_backbone, load_pretrained
from .backbone import HighResolutionNet
from .config import HRNetConfig, StageSpec
from .meta import PoseMeta, WeightsOrigin, weights_fingerprint
from .pose_hrnet import ARCHITECTURES, Architecture, HRNetFeatures, HRNetPose, HRNetV2Pose
from .pretrained import PRETRAINED_CFGS, PosePretrainedCfg

__all__ = [
    "ARCHITECTURES",
    "PRETRAINED_CFGS",
    "Architecture",
    "HRNetConfig",
    "HRNetFeatures",
    "HRNetPose",
    "HRNetV2Pose",
    "HighResolutionNet",
    "PoseMeta",
    "PosePretrainedCfg",
    "StageSpec",
    "WeightsOrigin",
    "detect_layout",
    "load_checkpoint",
    "load_imagenet_backbone",
    "load_pretrained",
    "read_checkpoint",
    "to_package_layout",
    "weights_fingerprint",
]
