"""Fine-tuning and evaluation: targets, losses, COCO-format data, metrics and the COCO test protocol."""

from .dataset import Augmentation, CocoKeypointDataset, PersonRecord
from .evaluate import evaluate, find_coco_split, format_stats
from .loop import freeze_stages, train_one_epoch
from .losses import JointsMSELoss, JointsOHKMMSELoss
from .metrics import COCO_STAT_NAMES, coco_keypoint_ap, oks, oks_nms, pckh, rescore
from .synthetic import SYNTHETIC_CATEGORY, make_synthetic_dataset
from .targets import encode_heatmaps

__all__ = [
    "COCO_STAT_NAMES",
    "SYNTHETIC_CATEGORY",
    "Augmentation",
    "CocoKeypointDataset",
    "JointsMSELoss",
    "JointsOHKMMSELoss",
    "PersonRecord",
    "coco_keypoint_ap",
    "encode_heatmaps",
    "evaluate",
    "find_coco_split",
    "format_stats",
    "freeze_stages",
    "make_synthetic_dataset",
    "oks",
    "oks_nms",
    "pckh",
    "rescore",
    "train_one_epoch",
]
