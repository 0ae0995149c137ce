"""Evaluation: OKS, OKS-NMS, rescoring, COCO AP through pycocotools, PCKh, and the original COCO test protocol."""

from .coco import evaluate, find_coco_split, format_stats
from .metrics import COCO_STAT_NAMES, coco_keypoint_ap, oks, oks_nms, pckh, rescore

__all__ = [
    "COCO_STAT_NAMES",
    "coco_keypoint_ap",
    "evaluate",
    "find_coco_split",
    "format_stats",
    "oks",
    "oks_nms",
    "pckh",
    "rescore",
]
