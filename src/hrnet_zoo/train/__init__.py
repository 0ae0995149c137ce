"""Fine-tuning: COCO-format data with the original augmentation, heatmap losses, stage freezing, a training epoch;
and the bottom-up models' whole-image data set, targets and losses (DEKR's heatmaps and offsets, associative
embedding's push/pull) and training epoch.

Crops and targets come from the model's top-down transform (``model.pose_meta.transform``, the predictor's);
evaluation lives in :mod:`hrnet_zoo.evaluation`.
"""

from .bottom_up_dataset import (
    AESample,
    BottomUpAugmentation,
    BottomUpImage,
    BottomUpWarp,
    CocoBottomUpDataset,
    DEKRSample,
)
from .bottom_up_losses import AssociativeEmbeddingLoss, DEKRLoss, HigherHRNetLoss, HigherHRNetLosses
from .bottom_up_targets import AETargets, DEKRTargets, ae_targets, dekr_person_areas, dekr_targets
from .dataset import Augmentation, CocoKeypointDataset, PersonRecord
from .loop import bottom_up_loss, freeze_stages, train_bottom_up_epoch, train_one_epoch
from .losses import JointsMSELoss, JointsOHKMMSELoss
from .synthetic import SYNTHETIC_CATEGORY, make_synthetic_dataset

__all__ = [
    "SYNTHETIC_CATEGORY",
    "AESample",
    "AETargets",
    "AssociativeEmbeddingLoss",
    "Augmentation",
    "BottomUpAugmentation",
    "BottomUpImage",
    "BottomUpWarp",
    "CocoBottomUpDataset",
    "CocoKeypointDataset",
    "DEKRLoss",
    "DEKRSample",
    "DEKRTargets",
    "HigherHRNetLoss",
    "HigherHRNetLosses",
    "JointsMSELoss",
    "JointsOHKMMSELoss",
    "PersonRecord",
    "ae_targets",
    "bottom_up_loss",
    "dekr_person_areas",
    "dekr_targets",
    "freeze_stages",
    "make_synthetic_dataset",
    "train_bottom_up_epoch",
    "train_one_epoch",
]
