"""Keypoint metrics: OKS, OKS-based NMS, rescoring, COCO AP through pycocotools, and PCKh."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["COCO_STAT_NAMES", "coco_keypoint_ap", "oks", "oks_nms", "pckh", "rescore"]

COCO_STAT_NAMES = ("AP", "AP .5", "AP .75", "AP (M)", "AP (L)", "AR", "AR .5", "AR .75", "AR (M)", "AR (L)")


def oks(
    reference: np.ndarray,
    others: np.ndarray,
    reference_area: float,
    other_areas: np.ndarray,
    sigmas: Sequence[float],
    visibility_threshold: float | None = None,
) -> np.ndarray:
    """Object keypoint similarity of one pose with ``M`` others, as the original's OKS-NMS computes it.

    Args:
        reference: ``(K, 3)`` x, y, score of the reference pose.
        others: ``(M, K, 3)`` poses to compare.
        reference_area: Area of the reference person.
        other_areas: ``(M,)`` areas of the others; each pair uses the mean of the two areas.
        sigmas: Per-keypoint falloff constants (COCO's OKS sigmas).
        visibility_threshold: Count only joints scoring above it in both poses (all joints when ``None``).

    Returns:
        ``(M,)`` OKS values: ``mean_k exp(-d_k^2 / (2 * area * (2 * sigma_k)^2))`` over counted joints.
    """
    variances = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    d2 = ((others[..., :2] - reference[None, :, :2]) ** 2).sum(-1)
    area = (reference_area + np.asarray(other_areas, dtype=np.float64)) / 2
    e = d2 / variances / (area[:, None] + np.spacing(1)) / 2
    counted = np.ones(e.shape, bool)
    if visibility_threshold is not None:
        counted = (reference[None, :, 2] > visibility_threshold) & (others[..., 2] > visibility_threshold)
    n = counted.sum(1)
    return np.where(n > 0, np.where(counted, np.exp(-e), 0.0).sum(1) / np.maximum(n, 1), 0.0)


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    sigmas: Sequence[float],
    threshold: float = 0.9,
    visibility_threshold: float | None = None,
) -> list[int]:
    """Greedy non-maximum suppression by OKS: keep the best pose, drop those with OKS above ``threshold`` to it.

    Args:
        keypoints: ``(M, K, 3)`` poses of one image.
        scores: ``(M,)`` pose scores.
        areas: ``(M,)`` person areas.
        sigmas: OKS sigmas.
        threshold: Poses with OKS > threshold to a kept pose are suppressed (0.9 in the original).
        visibility_threshold: Joint score above which joints count in the OKS (all joints in the original).

    Returns:
        Indices of the kept poses, best first.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while len(order):
        best, rest = int(order[0]), order[1:]
        keep.append(best)
        similarity = oks(
            keypoints[best], keypoints[rest], float(areas[best]), areas[rest], sigmas, visibility_threshold
        )
        order = rest[similarity <= threshold]
    return keep


def rescore(keypoint_scores: np.ndarray, box_scores: np.ndarray, visibility_threshold: float = 0.2) -> np.ndarray:
    """The original's pose score: box score x mean score of the joints scoring above ``visibility_threshold``.

    Shapes: ``(M, K)``, ``(M,)`` -> ``(M,)``; a pose with no joint above the threshold keeps a joint mean of 0.
    """
    confident = keypoint_scores > visibility_threshold
    count = confident.sum(1)
    mean = np.where(count > 0, (keypoint_scores * confident).sum(1) / np.maximum(count, 1), 0.0)
    return mean * box_scores


def coco_keypoint_ap(
    annotation_file: str | os.PathLike | dict[str, Any],
    results: list[dict[str, Any]],
    sigmas: Sequence[float] | None = None,
    image_ids: Sequence[int] | None = None,
) -> dict[str, float]:
    """COCO keypoint AP/AR of ``results`` (COCO results format) with pycocotools' ``COCOeval``.

    Args:
        annotation_file: Ground-truth annotation JSON path, or the loaded dict.
        results: ``[{"image_id", "category_id", "keypoints", "score"}, ...]``.
        sigmas: OKS sigmas for a custom keypoint set (COCO's by default).
        image_ids: Restrict the evaluation to these images.

    Returns:
        The ten COCO statistics, named as in :data:`COCO_STAT_NAMES`.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as err:
        raise ImportError('COCO evaluation needs pycocotools: pip install "hrnet-zoo[coco]"') from err
    if not results:
        raise ValueError("no predictions to evaluate")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = annotation_file if isinstance(annotation_file, dict) else json.loads(open(annotation_file).read())
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "keypoints")
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.params.useSegm = None
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, evaluator.stats)}


def pckh(
    predictions: np.ndarray,
    ground_truth: np.ndarray,
    visible: np.ndarray,
    head_sizes: np.ndarray,
    threshold: float = 0.5,
    excluded: Sequence[int] = (6, 7),
) -> dict[str, Any]:
    """PCKh: the share of visible joints predicted within ``threshold`` x head size of the ground truth.

    As the MPII evaluation of the original: ``head_sizes`` is the head box diagonal times 0.6 and the mean skips
    the pelvis and thorax (``excluded``), weighting each joint by its number of visible instances.

    Args:
        predictions: ``(N, K, 2)`` predicted x, y.
        ground_truth: ``(N, K, 2)`` true x, y.
        visible: ``(N, K)`` whether each joint is annotated.
        head_sizes: ``(N,)`` normalising lengths.
        threshold: Fraction of the head size (0.5 for PCKh@0.5).
        excluded: Joints left out of the mean.

    Returns:
        ``{"per_joint": (K,) array in [0, 1], "mean": float}``.
    """
    distances = np.linalg.norm(predictions - ground_truth, axis=-1) / head_sizes[:, None]
    visible = visible.astype(bool)
    hits = (distances <= threshold) & visible
    counts = visible.sum(0)
    per_joint = hits.sum(0) / np.maximum(counts, 1)
    included = np.ones(len(per_joint), bool)
    included[list(excluded)] = False
    weights = counts * included
    mean = float((per_joint * weights).sum() / max(weights.sum(), 1))
    return {"per_joint": per_joint, "mean": mean}
