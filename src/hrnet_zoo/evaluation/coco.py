"""The original COCO test protocols, then COCO keypoint AP: top-down (person boxes, flip test, OKS-NMS, rescoring) and
bottom-up (whole images, every pose kept with its own score)."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .._utils import coco_keypoint_result
from ..codec import MIN_BOX_SIDE
from ..io.coco_files import read_coco_keypoints, read_detections
from ..io.outputs import finite_records, plan_outputs, write_json
from ..pose.bottom_up import BottomUpEstimator
from ..pose.predictor import PoseEstimator
from .metrics import COCO_STAT_NAMES, coco_keypoint_ap, oks_nms, rescore

__all__ = ["evaluate", "find_coco_split", "format_stats"]

_logger = logging.getLogger(__name__)


def find_coco_split(coco_root: str | os.PathLike, split: str = "val2017") -> tuple[Path, Path]:
    """Annotation file and image folder of a COCO split, in the standard or the original's layout.

    Looks for ``annotations/person_keypoints_<split>.json`` and images in ``<split>/`` or ``images/<split>/``.
    """
    root = Path(coco_root)
    annotation = root / "annotations" / f"person_keypoints_{split}.json"
    if not annotation.is_file():
        raise FileNotFoundError(f"{annotation} does not exist: expected COCO's annotations/ folder under {root}")
    for images in (root / split, root / "images" / split):
        if images.is_dir():
            return annotation, images
    raise FileNotFoundError(f"no image folder {root / split} or {root / 'images' / split}")


def _boxes_per_image(
    annotations: dict[str, Any], detections: list[dict[str, Any]] | None, score_threshold: float
) -> dict[int, list[tuple[list[float], float]]]:
    """``image_id -> [(xywh box, box score)]`` from a detection file, or from the ground truth (score 1); boxes
    with a side under :data:`~hrnet_zoo.codec.MIN_BOX_SIDE` pixel hold no person to crop and are left out."""
    boxes: dict[int, list[tuple[list[float], float]]] = defaultdict(list)
    if detections is None:
        for ann in annotations["annotations"]:
            if not ann.get("iscrowd", 0) and ann.get("num_keypoints", 1) > 0 and max(ann.get("keypoints", [1])) > 0:
                boxes[ann["image_id"]].append((list(ann["bbox"]), 1.0))
    else:
        for det in detections:
            if det.get("category_id", 1) == 1 and det["score"] >= score_threshold:
                boxes[det["image_id"]].append((list(det["bbox"]), float(det["score"])))
    return {i: [b for b in found if min(b[0][2:]) >= MIN_BOX_SIDE] for i, found in boxes.items()}


def _check_keypoint_count(
    annotations: dict[str, Any], estimator: PoseEstimator | BottomUpEstimator, annotation_file: Path
) -> None:
    """Fail before any inference when the model predicts another number of joints than the data holds."""
    counts = {len(c["keypoints"]) for c in annotations.get("categories", []) if c.get("keypoints")}
    counts |= {len(a["keypoints"]) // 3 for a in annotations["annotations"] if a.get("keypoints")}
    wrong = counts - {len(estimator.keypoints)}
    if wrong:
        raise ValueError(
            f"the model predicts {len(estimator.keypoints)} joints but {annotation_file} has "
            f"{'/'.join(map(str, sorted(counts)))} keypoints per person; evaluate a model made for this data set"
        )


def _top_down_results(
    estimator: PoseEstimator,
    paths: dict[int, Path],
    boxes: dict[int, list[tuple[list[float], float]]],
    oks_threshold: float,
    visibility_threshold: float,
    images_per_batch: int,
) -> list[dict[str, Any]]:
    """The original's top-down protocol: each box's pose, rescored by box score x mean confident joint score, then
    OKS-NMS per image."""
    sigmas = estimator.keypoints.sigmas
    wanted = [i for i in paths if boxes.get(i)]
    results: list[dict[str, Any]] = []
    for start in tqdm(range(0, len(wanted), images_per_batch), desc="evaluate", unit="batch"):
        chunk = wanted[start : start + images_per_batch]
        predictions = estimator.predict([paths[i] for i in chunk], boxes=[[b for b, _ in boxes[i]] for i in chunk])
        for image_id, prediction in zip(chunk, predictions):
            box_scores = np.array([s for _, s in boxes[image_id]])
            kpts = prediction.keypoints
            scores = rescore(kpts[..., 2], box_scores, visibility_threshold)
            kept = oks_nms(kpts, scores, prediction.areas, sigmas, oks_threshold)
            results += [coco_keypoint_result(image_id, kpts[p], float(scores[p])) for p in kept]
    return results


def _bottom_up_results(estimator: BottomUpEstimator, paths: dict[int, Path]) -> list[dict[str, Any]]:
    """The bottom-up references' protocol: every image whole, every pose kept with the decoder's person score (no
    rescoring, no NMS: the decoders did their own)."""
    results: list[dict[str, Any]] = []
    for image_id, path in tqdm(paths.items(), desc="evaluate", unit="image"):
        (prediction,) = estimator.predict([path])
        poses = zip(prediction.keypoints, prediction.scores)
        results += [coco_keypoint_result(image_id, keypoints, float(score)) for keypoints, score in poses]
    return results


def evaluate(
    estimator: PoseEstimator | BottomUpEstimator,
    annotation_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    detections: str | os.PathLike | list[dict[str, Any]] | None = None,
    det_score_threshold: float = 0.0,
    oks_threshold: float = 0.9,
    visibility_threshold: float = 0.2,
    images_per_batch: int = 8,
    output: str | os.PathLike | None = None,
    image_ids: Sequence[int] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate a pose estimator on a COCO-format keypoint set with the original protocol.

    Top-down (:class:`~hrnet_zoo.PoseEstimator`): person boxes come from ``detections`` (COCO detection results;
    only ``category_id`` 1 above ``det_score_threshold``) or, without it, from the ground truth. Each pose is
    rescored as box score x mean score of its joints above ``visibility_threshold``, and poses are suppressed by
    OKS-NMS (``oks_threshold``) per image. Bottom-up (:class:`~hrnet_zoo.BottomUpEstimator`): every image of the
    set (or of ``image_ids``) is estimated whole and each pose keeps its decoder's score, as the DEKR and
    HigherHRNet references evaluate; ``detections`` and the thresholds do not apply. Then pycocotools computes
    AP/AR. Flip test, scales and decoder are the estimator's settings.

    ``output`` gets the results JSON. It is checked before any inference: never the annotation file, the
    detection file or an image of the set, never through a symbolic link, and an existing file only with
    ``overwrite``.

    Returns:
        ``{"stats": {name: value}, "results": [COCO results]}``.

    Raises:
        hrnet_zoo.errors.OutputRefusedError: ``output`` may not be written (its ``reason`` says why).
    """
    bottom_up = isinstance(estimator, BottomUpEstimator)
    if bottom_up and detections is not None:
        raise ValueError("a bottom-up model finds the persons itself: evaluate it without detections")
    annotation_file, image_dir = Path(annotation_file), Path(image_dir)
    annotations = read_coco_keypoints(annotation_file)
    if output is not None:
        inputs = [annotation_file, *(image_dir / im["file_name"] for im in annotations["images"])]
        inputs += [detections] if isinstance(detections, (str, os.PathLike)) else []
        plan_outputs([Path(output)], inputs, overwrite)
    if detections is not None:
        detections = read_detections(detections)
    _check_keypoint_count(annotations, estimator, annotation_file)
    sigmas = estimator.keypoints.sigmas
    if sigmas is None:
        raise ValueError(f"the keypoint set {estimator.keypoints.name!r} has no OKS sigmas; set KeypointSet.sigmas")
    images = {im["id"]: im for im in annotations["images"]}
    paths = {i: image_dir / images[i]["file_name"] for i in (image_ids or images) if i in images}
    if bottom_up:
        results = _bottom_up_results(estimator, paths)
    else:
        boxes = _boxes_per_image(annotations, detections, det_score_threshold)
        results = _top_down_results(estimator, paths, boxes, oks_threshold, visibility_threshold, images_per_batch)
    results, dropped = finite_records(results)
    if dropped:
        _logger.warning("%d poses with non-finite keypoints are left out of the evaluation", dropped)
    if output is not None:
        write_json(Path(output), results)
    stats = coco_keypoint_ap(annotations, results, sigmas=sigmas, image_ids=image_ids)
    return {"stats": stats, "results": results}


def format_stats(stats: dict[str, float]) -> str:
    """The ten COCO statistics as a Markdown table, in the paper's column order."""
    header = "| " + " | ".join(COCO_STAT_NAMES) + " |"
    rule = "|" + "---|" * len(COCO_STAT_NAMES)
    row = "| " + " | ".join(f"{stats[n]:.3f}" for n in COCO_STAT_NAMES) + " |"
    return "\n".join((header, rule, row))
