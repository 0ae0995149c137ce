"""Landmark metrics as face and hand benchmarks report them: NME, PCK, AUC and EPE.

Each follows OpenMMLab's definition (``mmpose.evaluation.functional``), so numbers compare with the model zoo's
tables: a keypoint counts where ``mask`` is true and its sample's normaliser is non-zero, and the mean runs over
all counted keypoints (NME, EPE) or over keypoints of per-keypoint accuracies (PCK). Arrays are NumPy:
``pred`` and ``gt`` ``(N, K, 2)`` pixels, ``mask`` ``(N, K)`` booleans.
"""

from __future__ import annotations

import numpy as np

__all__ = ["auc", "epe", "interocular_distance", "nme", "pck"]


def _distances(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, normalizer: np.ndarray) -> np.ndarray:
    """Normalised distances ``(K, N)``; -1 where the keypoint does not count."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred and gt must both be (N, K, 2), got {pred.shape} and {gt.shape}")
    mask = np.asarray(mask, bool).copy()
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask must be (N, K) = {pred.shape[:2]}, got {mask.shape}")
    norm = np.broadcast_to(np.asarray(normalizer, np.float64).reshape(len(pred), -1), (len(pred), 2))
    mask[(norm == 0).any(1)] = False
    distances = np.full(mask.shape, -1.0)
    distances[mask] = np.linalg.norm((pred - gt)[mask] / np.broadcast_to(norm[:, None, :], pred.shape)[mask], axis=-1)
    return distances.T


def _mean_counted(distances: np.ndarray) -> float:
    counted = distances[distances != -1]
    return float(counted.sum() / max(1, len(counted)))


def nme(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, normalizer: np.ndarray) -> float:
    """Normalised mean error: mean over counted keypoints of ``|pred - gt| / normalizer``.

    Args:
        normalizer: ``(N,)`` per sample: the inter-ocular distance (WFLW, 300W, COFW; see
            :func:`interocular_distance`) or the box size (AFLW).
    """
    return _mean_counted(_distances(pred, gt, mask, normalizer))


def epe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """End-point error: mean pixel distance over counted keypoints."""
    return _mean_counted(_distances(pred, gt, mask, np.ones(len(pred))))


def pck(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, normalizer: np.ndarray, threshold: float = 0.2) -> float:
    """Percentage of correct keypoints: per keypoint, the share of samples with ``|pred - gt| / normalizer <
    threshold``, averaged over the keypoints that have any counted sample.

    Args:
        normalizer: ``(N,)`` or ``(N, 2)`` per sample (per axis): for hands, the longer side of the box.
    """
    accuracies = []
    for distances in _distances(pred, gt, mask, normalizer):
        counted = distances[distances != -1]
        if len(counted):
            accuracies.append(float((counted < threshold).mean()))
    return float(np.mean(accuracies)) if accuracies else 0.0


def auc(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, normalizer: float = 30.0, num_thresholds: int = 20
) -> float:
    """Area under the PCK curve for thresholds ``0, 1/T, ... (T-1)/T`` of ``normalizer`` pixels (30 for hands)."""
    norm = np.full(len(pred), float(normalizer))
    return float(np.mean([pck(pred, gt, mask, norm, i / num_thresholds) for i in range(num_thresholds)]))


def interocular_distance(gt: np.ndarray, left: int, right: int) -> np.ndarray:
    """``(N,)`` distances between keypoints ``left`` and ``right`` (the outer eye corners for face NME)."""
    gt = np.asarray(gt, np.float64)
    return np.linalg.norm(gt[:, left] - gt[:, right], axis=-1)
