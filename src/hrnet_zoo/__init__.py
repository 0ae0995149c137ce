"""hrnet_zoo: HRNet for human pose estimation, timm-style.

Example:
    >>> import hrnet_zoo
    >>> model = hrnet_zoo.create_model("hrnet_w32_pose", pretrained=True).eval()
"""

from timm.models import register_model

from .export import export_onnx, export_program
from .factory import create_model, get_pretrained_cfg, is_model, list_models, list_pretrained
from .hub import CheckpointMismatchError, load_checkpoint, read_checkpoint
from .hub.publish import push_to_hub, save_pretrained
from .inference import optimize_for_inference
from .layers import BasicBlock, Bottleneck, HRModule, MultiScaleFusion, Stem, Transition
from .models import HighResolutionNet, HRNetConfig, HRNetFeatures, HRNetPose, PosePretrainedCfg, StageSpec
from .pose import KeypointSet, PoseEstimator, PoseResult

__version__ = "0.1.0"

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CheckpointMismatchError",
    "HRModule",
    "HRNetConfig",
    "HRNetFeatures",
    "HRNetPose",
    "HighResolutionNet",
    "KeypointSet",
    "MultiScaleFusion",
    "PoseEstimator",
    "PosePretrainedCfg",
    "PoseResult",
    "StageSpec",
    "Stem",
    "Transition",
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
    "read_checkpoint",
    "register_model",
    "save_pretrained",
]
