"""hrnet_zoo: HRNet for human pose estimation, timm-style.

Example:
    >>> import hrnet_zoo
    >>> model = hrnet_zoo.create_model("hrnet_w32_pose", pretrained=True).eval()
"""

from timm.models import register_model

from .codec import HeatmapCodec
from .export import export_onnx, export_program
from .factory import create_model, get_pretrained_cfg, is_model, list_models, list_pretrained
from .hub.publish import push_to_hub, save_pretrained
from .keypoints import KeypointSet
from .layers import BasicBlock, Bottleneck, HRModule, MultiScaleFusion, Stem, Transition
from .models import (
    CheckpointMismatchError,
    HighResolutionNet,
    HRNetConfig,
    HRNetFeatures,
    HRNetPose,
    PoseMeta,
    PosePretrainedCfg,
    StageSpec,
    WeightsOrigin,
    load_checkpoint,
    read_checkpoint,
)
from .onnx_model import OnnxPoseModel
from .optimize import optimize_for_inference
from .pose import PersonDetector, PoseEstimator, PoseResult
from .quantize import quantize

__version__ = "0.2.0"

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CheckpointMismatchError",
    "HRModule",
    "HRNetConfig",
    "HRNetFeatures",
    "HRNetPose",
    "HeatmapCodec",
    "HighResolutionNet",
    "KeypointSet",
    "MultiScaleFusion",
    "OnnxPoseModel",
    "PersonDetector",
    "PoseEstimator",
    "PoseMeta",
    "PosePretrainedCfg",
    "PoseResult",
    "StageSpec",
    "Stem",
    "Transition",
    "WeightsOrigin",
    "create_model",
    "export_onnx",
    "export_program",
    "get_pretrained_cfg",
    "is_model",
    "list_models",
    "list_pretrained",
    "load_checkpoint",
    "optimize_for_inference",
    "push_to_hub",
    "quantize",
    "read_checkpoint",
    "register_model",
    "save_pretrained",
]
