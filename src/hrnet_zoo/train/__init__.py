"""Fine-tuning: COCO-format data with the original augmentation, heatmap losses, stage freezing, a training epoch.

Crops and targets come from the model's top-down transform (``model.pose_meta.transform``, the predictor's);
evaluation lives in :mod:`hrnet_zoo.evaluation`.
"""

from .dataset import Augmentation, CocoKeypointDataset, PersonRecord
from .loop import freeze_stages, train_one_epoch
from .losses import JointsMSELoss, JointsOHKMMSELoss
from .synthetic import SYNTHETIC_CATEGORY, make_synthetic_dataset

__all__ = [
    "SYNTHETIC_CATEGORY",
    "Augmentation",
    "CocoKeypointDataset",
    "JointsMSELoss",
    "JointsOHKMMSELoss",
    "PersonRecord",
    "freeze_stages",
    "make_synthetic_dataset",
    "train_one_epoch",
]
