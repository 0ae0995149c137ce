"""Evaluation: the original COCO test protocol (person boxes, flip test, OKS-NMS, rescoring, pycocotools AP),
OKS and PCKh, and the landmark metrics of the face and hand benchmarks (NME, PCK, AUC, EPE)."""

from .coco import evaluate, find_coco_split, format_stats
from .landmarks import auc, epe, interocular_distance, nme, pck
from .metrics import COCO_STAT_NAMES, coco_keypoint_ap, oks, oks_nms, pckh, rescore

__all__ = [
    "COCO_STAT_NAMES",
    "auc",
    "coco_keypoint_ap",
    "epe",
    "evaluate",
    "find_coco_split",
    "format_stats",
    "interocular_distance",
    "nme",
    "oks",
    "oks_nms",
    "pck",
    "pckh",
    "rescore",
]
