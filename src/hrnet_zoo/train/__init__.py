"""Fine-tuning: COCO-format data with the original augmentation, heatmap losses, stage freezing, a training epoch;
and the bottom-up models' targets and losses (DEKR's heatmaps and offsets, associative embedding's push/pull).

Crops and targets come from the model's top-down transform (``model.pose_meta.transform``, the predictor's);
evaluation lives in :mod:`hrnet_zoo.evaluation`.
"""

from .bottom_up_losses import AssociativeEmbeddingLoss, DEKRLoss, HigherHRNetLoss, HigherHRNetLosses
from .bottom_up_targets import AETargets, DEKRTargets, ae_targets, dekr_person_areas, dekr_targets
from .dataset import Augmentation, CocoKeypointDataset, PersonRecord
from .loop import freeze_stages, train_one_epoch
from .losses import JointsMSELoss, JointsOHKMMSELoss
from .synthetic import SYNTHETIC_CATEGORY, make_synthetic_dataset

__all__ = [
    "SYNTHETIC_CATEGORY",
    "AETargets",
    "AssociativeEmbeddingLoss",
    "Augmentation",
    "CocoKeypointDataset",
    "DEKRLoss",
    "DEKRTargets",
    "HigherHRNetLoss",
    "HigherHRNetLosses",
    "JointsMSELoss",
    "JointsOHKMMSELoss",
    "PersonRecord",
    "ae_targets",
    "dekr_person_areas",
    "dekr_targets",
    "freeze_stages",
    "make_synthetic_dataset",
    "train_one_epoch",
]
