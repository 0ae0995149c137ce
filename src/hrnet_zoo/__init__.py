"""hrnet_zoo: HRNet for human pose estimation, timm-style.

The top level holds the factory, listing, saving, the estimators and their result, and keypoint sets; everything else
lives in a namespace: :mod:`~hrnet_zoo.layers` (blocks), :mod:`~hrnet_zoo.models`, :mod:`~hrnet_zoo.codec`,
:mod:`~hrnet_zoo.pose`, :mod:`~hrnet_zoo.train`, :mod:`~hrnet_zoo.evaluation`, :mod:`~hrnet_zoo.deploy`,
:mod:`~hrnet_zoo.hub`, :mod:`~hrnet_zoo.io` and :mod:`~hrnet_zoo.errors`.

Example:
    >>> import hrnet_zoo
    >>> model = hrnet_zoo.create_model("hrnet_w32_pose", pretrained=True).eval()
    >>> result = hrnet_zoo.PoseEstimator(model).predict("people.jpg", boxes=[[100, 20, 230, 470]])[0]
    >>> crowd = hrnet_zoo.BottomUpEstimator("dekr_hrnet_w32.coco_512x512").predict("crowd.jpg")[0]  # no detector
"""

# The namespaces, as attributes after `import hrnet_zoo` (hrnet_zoo.pose, hrnet_zoo.models, ...).
from . import codec, deploy, errors, evaluation, hub, io, keypoints, layers, models, pose, train  # noqa: F401
from ._factory import create_model, get_pretrained_cfg, is_model, list_models, list_pretrained
from .hub import push_to_hub, save_pretrained
from .keypoints import KeypointSet
from .pose.bottom_up import BottomUpEstimator
from .pose.predictor import PoseEstimator
from .pose.result import PoseResult

__version__ = "0.3.0"

__all__ = [
    "BottomUpEstimator",
    "KeypointSet",
    "PoseEstimator",
    "PoseResult",
    "create_model",
    "get_pretrained_cfg",
    "is_model",
    "list_models",
    "list_pretrained",
    "push_to_hub",
    "save_pretrained",
]
