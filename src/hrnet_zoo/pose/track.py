"""Multi-person tracking for top-down pose estimation in video, in ByteTrack's manner (Zhang et al., "ByteTrack:
multi-object tracking by associating every detection box", ECCV 2022), so each person keeps one id through a clip.

:class:`PoseTracker` is called once per frame with the frame's person boxes, their scores and the poses the pose
network found in them. Each update:

1. predicts every track, tracked and lost, one frame ahead with a constant-velocity Kalman filter on its box
   (:class:`KalmanBoxFilter`); a lost track's height velocity is set to zero first, as ByteTrack does;
2. honours the caller's ``track_ids``: a detection given a track's id updates that track and takes no part in the
   associations (for boxes the caller derived from the track's own last pose with :func:`boxes_from_poses`);
3. first association: the detections scoring at least ``high_score`` against all the other tracks, tracked and
   lost. The similarity of a pair is ``(1 - oks_weight) * IoU + oks_weight * OKS``: the IoU of the detection box
   with the track's predicted box, and the OKS of the detection's pose with the track's last pose carried
   (translated and scaled, x with the width and y with the height) from the box the track had when that pose was
   seen (its Kalman estimate after that update) to the predicted box. A pair without a joint confident in both poses
   uses IoU alone. Pairs with zero IoU or with a cost ``1 - similarity`` of ``match_threshold`` or more are never
   matched;
4. second association: the detections scoring in ``[low_score, high_score)`` against the tracked (not lost) tracks
   still unmatched, by IoU alone, with ``low_match_threshold``;
5. matched tracks get a Kalman update with their detection's box and keep its pose and score; the other tracks are
   lost, and a track lost for more than ``track_buffer`` consecutive updates is removed;
6. detections of the first association left unmatched and scoring at least ``new_track_score`` start tracks, with
   fresh ids 1, 2, 3... never reused by the tracker; the other detections left over get -1.

OKS is COCO's: the mean over the joints confident in both poses of ``exp(-d^2 / (2 s^2 k^2))``, with ``d`` the
distance of the joint in the two poses, ``s^2`` the detection box's area and ``k = 2 sigma`` (the keypoint set's
OKS sigma of that joint).

Both associations are exact minimum-cost matchings: leaving a detection and a track unmatched costs the threshold,
the matching ByteTrack finds with ``lap.lapjv(cost, extend_cost=True, cost_limit=threshold)``. That matching
minimises the sum of ``cost - threshold`` over the matched pairs, which :func:`scipy.optimize.linear_sum_assignment`
solves exactly. scipy rather than ``lap``: scipy's solver is as exact, scipy is a common, maintained package with
wheels wherever NumPy has them (``lap`` is a small compiled package ByteTrack installs for this alone), and at tens
of persons a solve is negligible: about 10 µs for 30 x 30 and 1 µs for 10 x 10 (measured); a whole update of 30
persons with 17 joints takes about 1 ms on one CPU core, next to tens of milliseconds for the pose network.

Unlike ByteTrack, a new track is reported at once (ByteTrack holds a new track back as unconfirmed until its
second frame, except in the first frame), detection scores are not fused into the IoU cost, and no duplicates are
removed between tracked and lost tracks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["KalmanBoxFilter", "PoseTracker", "TrackerConfig", "boxes_from_poses"]

UNIFORM_SIGMA = 0.05
"""OKS sigma of every joint when :class:`PoseTracker` is given no sigmas (COCO's body sigmas span 0.025-0.107)."""


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds of :class:`PoseTracker` (see the module docstring for the algorithm).

    Attributes:
        high_score: Detections scoring at least this go to the first association (in [0, 1]).
        low_score: Detections scoring in ``[low_score, high_score)`` go to the second association only; lower ones
            are ignored (in [0, high_score]).
        new_track_score: An unmatched first-association detection starts a track at this score or above (in
            [high_score, 1]: only first-association detections start tracks).
        match_threshold: First association: a pair is matched only when its cost ``1 - similarity`` is below this
            (in (0, 1]).
        low_match_threshold: Second association (IoU only): the same for ``1 - IoU`` (in (0, 1]).
        track_buffer: Consecutive updates a lost track waits to be found again before it is removed (>= 0).
        oks_weight: Weight ``w`` of OKS in the similarity ``(1 - w) * IoU + w * OKS`` (in [0, 1]; 0: IoU only).
        keypoint_threshold: Joints scoring at least this count in the OKS (in [0, 1]).
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.5
    match_threshold: float = 0.8
    low_match_threshold: float = 0.5
    track_buffer: int = 30
    oks_weight: float = 0.5
    keypoint_threshold: float = 0.3

    def __post_init__(self) -> None:
        ranges = {
            "high_score": (0.0, 1.0, False),
            "low_score": (0.0, self.high_score, False),
            "new_track_score": (self.high_score, 1.0, False),
            "match_threshold": (0.0, 1.0, True),
            "low_match_threshold": (0.0, 1.0, True),
            "oks_weight": (0.0, 1.0, False),
            "keypoint_threshold": (0.0, 1.0, False),
        }
        for name, (low, high, low_open) in ranges.items():
            value = getattr(self, name)
            inside = _is_real(value) and (low < value if low_open else low <= value) and value <= high
            if not inside:
                interval = f"{'(' if low_open else '['}{low}, {high}]"
                raise ValueError(f"TrackerConfig.{name} must be a number in {interval}, got {value!r}")
        if not isinstance(self.track_buffer, Integral) or isinstance(self.track_buffer, bool) or self.track_buffer < 0:
            raise ValueError(f"TrackerConfig.track_buffer must be an integer >= 0, got {self.track_buffer!r}")


def _xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` x1, y1, x2, y2 -> ``(N, 4)`` centre x, centre y, aspect ratio (width / height), height."""
    size = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    return np.stack([centre[:, 0], centre[:, 1], size[:, 0] / size[:, 1], size[:, 1]], axis=1)


def _diagonal(values: np.ndarray) -> np.ndarray:
    """``(N, D)`` -> ``(N, D, D)`` diagonal matrices."""
    matrices = np.zeros((*values.shape, values.shape[-1]))
    index = np.arange(values.shape[-1])
    matrices[:, index, index] = values
    return matrices


def _state_std(height: np.ndarray, position_weight: float, velocity_weight: float) -> np.ndarray:
    """``(N,)`` box heights -> ``(N, 8)`` standard deviations of the Kalman state's entries (x, y, a, h and their
    velocities): the weights times the height, constants for the aspect ratio."""
    position, velocity = position_weight * height, velocity_weight * height
    constant = np.ones_like(height)
    return np.stack([position, position, 1e-2 * constant, position, velocity, velocity, 1e-5 * constant, velocity], 1)


class KalmanBoxFilter:
    """Constant-velocity Kalman filter on boxes, vectorised over tracks (the filter of DeepSORT and ByteTrack).

    The state is the box's centre x, centre y, aspect ratio (width / height) and height, then their velocities per
    frame; a box is observed as its first four entries. Noise standard deviations are proportional to the box's
    height: ``position_std * height`` for positions, ``velocity_std * height`` for velocities (constants for the
    aspect ratio: 1e-2 and 1e-5 in the motion, 1e-1 in the observation). A new track starts with twice the position
    and ten times the velocity deviations.

    Args:
        position_std: Position noise per unit of height (DeepSORT's 1/20).
        velocity_std: Velocity noise per unit of height (DeepSORT's 1/160).
    """

    def __init__(self, position_std: float = 1 / 20, velocity_std: float = 1 / 160) -> None:
        for name, value in (("position_std", position_std), ("velocity_std", velocity_std)):
            if not _is_real(value) or value <= 0:
                raise ValueError(f"KalmanBoxFilter: {name} must be a positive number, got {value!r}")
        self.position_std = float(position_std)
        self.velocity_std = float(velocity_std)
        self._motion = np.eye(8)
        self._motion[np.arange(4), np.arange(4, 8)] = 1.0

    def initiate(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States of new tracks: ``(N, 4)`` xyxy boxes -> mean ``(N, 8)`` (velocities 0), covariance ``(N, 8, 8)``."""
        measurement = _xyxy_to_xyah(np.asarray(boxes, dtype=np.float64))
        std = _state_std(measurement[:, 3], 2 * self.position_std, 10 * self.velocity_std)
        mean = np.concatenate([measurement, np.zeros_like(measurement)], axis=1)
        return mean, _diagonal(std**2)

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead: mean ``(N, 8)``, covariance ``(N, 8, 8)`` -> the predicted ones (new arrays)."""
        std = _state_std(mean[:, 3], self.position_std, self.velocity_std)
        predicted_mean = mean @ self._motion.T
        predicted_covariance = self._motion @ covariance @ self._motion.T + _diagonal(std**2)
        return predicted_mean, predicted_covariance

    def update(self, mean: np.ndarray, covariance: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct with observed ``(N, 4)`` xyxy boxes: mean ``(N, 8)``, covariance ``(N, 8, 8)`` -> the corrected
        ones (new arrays)."""
        measurement = _xyxy_to_xyah(np.asarray(boxes, dtype=np.float64))
        height = mean[:, 3]
        position = self.position_std * height
        std = np.stack([position, position, np.full_like(height, 1e-1), position], axis=1)
        innovation_covariance = covariance[:, :4, :4] + _diagonal(std**2)
        # gain = P H^T S^-1; S is symmetric, so gain^T = S^-1 (H P)
        gain = np.linalg.solve(innovation_covariance, covariance[:, :4, :]).transpose(0, 2, 1)
        innovation = measurement - mean[:, :4]
        corrected_mean = mean + (gain @ innovation[:, :, None])[:, :, 0]
        corrected_covariance = covariance - gain @ innovation_covariance @ gain.transpose(0, 2, 1)
        return corrected_mean, corrected_covariance

    @staticmethod
    def to_boxes(mean: np.ndarray) -> np.ndarray:
        """The boxes of states: mean ``(N, 8)`` -> ``(N, 4)`` xyxy."""
        centre, height = mean[:, :2], mean[:, 3]
        half = np.stack([mean[:, 2] * height, height], axis=1) / 2
        return np.concatenate([centre - half, centre + half], axis=1)


def _box_areas(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` xyxy -> ``(N,)`` areas (0 for inverted boxes)."""
    return np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)


def _pairwise_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """``(A, 4)`` and ``(B, 4)`` xyxy -> ``(A, B)`` IoU (0 where the union is empty)."""
    top_left = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    union = _box_areas(boxes_a)[:, None] + _box_areas(boxes_b)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def _pairwise_oks(
    poses_a: np.ndarray, areas_a: np.ndarray, poses_b: np.ndarray, variances: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """COCO's OKS between ``(A, K, 3)`` poses with ``(A,)`` box areas and ``(B, K, 3)`` poses, over the joints
    scoring at least ``threshold`` in both; ``variances`` ``(K,)`` are ``(2 sigma)^2``.

    Returns ``(A, B)`` OKS and ``(A, B)`` whether the pair has a joint in common (OKS 0 where not)."""
    common = (poses_a[:, None, :, 2] >= threshold) & (poses_b[None, :, :, 2] >= threshold)
    squared_distances = np.sum((poses_a[:, None, :, :2] - poses_b[None, :, :, :2]) ** 2, axis=3)
    similarities = np.exp(-squared_distances / (2 * areas_a[:, None, None] * variances))
    counted = common.sum(axis=2)
    oks = np.sum(similarities * common, axis=2) / np.maximum(counted, 1)
    return oks, counted > 0


def _carried_poses(poses: np.ndarray, from_boxes: np.ndarray, to_boxes: np.ndarray) -> np.ndarray:
    """``(T, K, 3)`` poses seen in ``(T, 4)`` xyxy ``from_boxes`` moved to ``(T, 4)`` ``to_boxes``: translated with
    the centre, x scaled with the width and y with the height (scores unchanged)."""
    from_centre, to_centre = (from_boxes[:, :2] + from_boxes[:, 2:]) / 2, (to_boxes[:, :2] + to_boxes[:, 2:]) / 2
    scale = (to_boxes[:, 2:] - to_boxes[:, :2]) / (from_boxes[:, 2:] - from_boxes[:, :2])
    xy = to_centre[:, None] + (poses[:, :, :2] - from_centre[:, None]) * scale[:, None]
    return np.concatenate([xy, poses[:, :, 2:]], axis=2)


def _match(cost: np.ndarray, allowed: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost matching of the rows and columns of ``(R, C)`` ``cost`` in which leaving a row and a column
    unmatched costs ``threshold``: pairs where ``allowed`` is False, or whose cost is ``threshold`` or more, are
    never matched. Returns the matched ``(M,)`` row and ``(M,)`` column indices."""
    allowed = allowed & (cost < threshold)
    if not allowed.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, columns = linear_sum_assignment(np.where(allowed, cost - threshold, 0.0))
    kept = allowed[rows, columns]
    return rows[kept], columns[kept]


class PoseTracker:
    """ByteTrack for poses: gives each person one integer id through a video (algorithm in the module docstring).

    Args:
        config: The thresholds.
        sigmas: OKS sigmas of the keypoint set (``KeypointSet.sigmas``: COCO's for COCO); they fix the number of
            keypoints. ``None``: every joint gets :data:`UNIFORM_SIGMA`, and the number of keypoints is fixed by the
            first update given keypoints.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig(), sigmas: Sequence[float] | None = None) -> None:
        self.config = config
        self._filter = KalmanBoxFilter()
        self._variances: np.ndarray | None = None
        if sigmas is not None:
            sigma_array = np.asarray(sigmas, dtype=np.float64)
            if (
                sigma_array.ndim != 1
                or sigma_array.size == 0
                or not np.all(np.isfinite(sigma_array) & (sigma_array > 0))
            ):
                raise ValueError(f"sigmas must be a non-empty sequence of positive numbers, got {sigmas!r}")
            self._variances = (2 * sigma_array) ** 2
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (a new video); ids keep counting, so an id is never reused by this tracker."""
        num_keypoints = 0 if self._variances is None else len(self._variances)
        self._ids = np.zeros(0, dtype=np.int64)
        self._means = np.zeros((0, 8))
        self._covariances = np.zeros((0, 8, 8))
        self._poses = np.zeros((0, num_keypoints, 3))
        self._pose_boxes = np.zeros((0, 4))  # each track's Kalman box when its pose was seen
        self._scores = np.zeros(0)
        self._missed = np.zeros(0, dtype=np.int64)  # consecutive updates without a detection (0: tracked)
        self._lost_in_last_update = False

    @property
    def lost_in_last_update(self) -> bool:
        """A track that was matched in the previous frame found no detection in the last update."""
        return self._lost_in_last_update

    def active_poses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tracks matched in the last update, in id order: ids ``(T,)`` int64, their last poses ``(T, K, 3)``
        float32 and detection scores ``(T,)`` float32. A track matched without keypoints has a pose of zeros, and
        ``K`` is 0 while the tracker has seen no keypoints."""
        tracked = self._missed == 0
        return (
            self._ids[tracked].copy(),
            self._poses[tracked].astype(np.float32),
            self._scores[tracked].astype(np.float32),
        )

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        keypoints: np.ndarray | None = None,
        track_ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Track one frame.

        Args:
            boxes: ``(P, 4)`` xyxy pixel boxes of the frame's persons (positive width and height).
            scores: ``(P,)`` their detection scores.
            keypoints: ``(P, K, 3)`` x, y, score of their poses, ``K`` the same at every update; ``None``: match by
                IoU only (the matched tracks' poses are cleared).
            track_ids: ``(P,)`` integers or ``None``: where >= 0, the detection belongs to that track (one the
                tracker holds, tracked or lost), which it updates directly, whatever its score; -1 entries are
                associated normally.

        Returns:
            ``(P,)`` int64: each detection's track id, or -1 for a detection no track took and that starts none.

        Raises:
            ValueError: An input of the wrong shape, non-finite values, a box without area, a ``K`` other than
                before (or than the sigmas'), or a track id the tracker does not hold (or given twice).
        """
        boxes, scores, keypoints, track_of_detection = self._checked(boxes, scores, keypoints, track_ids)
        if keypoints is not None and self._variances is None:
            self._variances = np.full(keypoints.shape[1], (2 * UNIFORM_SIGMA) ** 2)
            self._poses = np.zeros((len(self._ids), keypoints.shape[1], 3))
        config = self.config
        if len(self._ids):
            means = self._means.copy()
            means[self._missed > 0, 7] = 0.0  # a lost track's height stops changing, as in ByteTrack
            self._means, self._covariances = self._filter.predict(means, self._covariances)
        predicted = self._filter.to_boxes(self._means)

        associated = track_of_detection < 0
        taken = np.zeros(len(self._ids), dtype=bool)
        taken[track_of_detection[~associated]] = True

        high = np.flatnonzero(associated & (scores >= config.high_score))
        pool = np.flatnonzero(~taken)
        similarity, iou = self._similarity(boxes[high], None if keypoints is None else keypoints[high], pool, predicted)
        rows, columns = _match(1 - similarity, iou > 0, config.match_threshold)
        track_of_detection[high[rows]] = pool[columns]
        taken[pool[columns]] = True

        low = np.flatnonzero(associated & (scores >= config.low_score) & (scores < config.high_score))
        pool = np.flatnonzero(~taken & (self._missed == 0))
        iou = _pairwise_iou(boxes[low], predicted[pool])
        rows, columns = _match(1 - iou, iou > 0, config.low_match_threshold)
        track_of_detection[low[rows]] = pool[columns]
        taken[pool[columns]] = True

        detections = np.flatnonzero(track_of_detection >= 0)
        tracks = track_of_detection[detections]
        self._means[tracks], self._covariances[tracks] = self._filter.update(
            self._means[tracks], self._covariances[tracks], boxes[detections]
        )
        self._pose_boxes[tracks] = self._filter.to_boxes(self._means[tracks])
        self._poses[tracks] = 0.0 if keypoints is None else keypoints[detections]
        self._scores[tracks] = scores[detections]
        assigned = np.full(len(boxes), -1, dtype=np.int64)
        assigned[detections] = self._ids[tracks]

        self._lost_in_last_update = bool(np.any(~taken & (self._missed == 0)))
        self._missed = np.where(taken, 0, self._missed + 1)
        self._keep_tracks(self._missed <= config.track_buffer)

        unmatched = high[track_of_detection[high] < 0]
        new = unmatched[scores[unmatched] >= config.new_track_score]
        assigned[new] = self._start_tracks(boxes[new], scores[new], None if keypoints is None else keypoints[new])
        return assigned

    def _checked(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        keypoints: np.ndarray | None,
        track_ids: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """The inputs of :meth:`update` checked, as float64 arrays, and ``(P,)`` the index of the track the
        caller gave each detection (-1: none)."""
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must be (P, 4) xyxy, got shape {boxes.shape}")
        num_detections = len(boxes)
        if not np.all(np.isfinite(boxes)):
            raise ValueError("boxes must be finite")
        flat = np.any(boxes[:, 2:] <= boxes[:, :2], axis=1)
        if np.any(flat):
            raise ValueError(
                f"boxes must have a positive width and height (x2 > x1, y2 > y1), got {boxes[flat].tolist()}"
            )
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (num_detections,):
            raise ValueError(f"scores must be ({num_detections},) for {num_detections} boxes, got shape {scores.shape}")
        if not np.all(np.isfinite(scores)):
            raise ValueError("scores must be finite")
        if keypoints is not None:
            keypoints = np.asarray(keypoints, dtype=np.float64)
            if keypoints.ndim != 3 or keypoints.shape[0] != num_detections or keypoints.shape[2] != 3:
                raise ValueError(
                    f"keypoints must be ({num_detections}, K, 3) x, y, score for {num_detections} boxes, "
                    f"got shape {keypoints.shape}"
                )
            if not np.all(np.isfinite(keypoints)):
                raise ValueError("keypoints must be finite")
            if self._variances is not None and keypoints.shape[1] != len(self._variances):
                raise ValueError(
                    f"keypoints must have K = {len(self._variances)} joints (as before or as the sigmas), "
                    f"got {keypoints.shape[1]}"
                )
        given_tracks = np.full(num_detections, -1, dtype=np.int64)
        if track_ids is not None:
            track_ids = np.asarray(track_ids)
            if track_ids.shape != (num_detections,) or not np.issubdtype(track_ids.dtype, np.integer):
                raise ValueError(
                    f"track_ids must be ({num_detections},) integers for {num_detections} boxes, "
                    f"got shape {track_ids.shape} of {track_ids.dtype}"
                )
            given = track_ids >= 0
            if np.any(track_ids < -1) or not np.all(np.isin(track_ids[given], self._ids)):
                raise ValueError(
                    f"track_ids must be -1 or ids of tracks this tracker holds ({self._ids.tolist()}), "
                    f"got {track_ids.tolist()}"
                )
            if len(np.unique(track_ids[given])) != np.count_nonzero(given):
                raise ValueError(f"track_ids gives a track more than one detection: {track_ids.tolist()}")
            given_tracks[given] = np.searchsorted(self._ids, track_ids[given])
        return boxes, scores, keypoints, given_tracks

    def _similarity(
        self, boxes: np.ndarray, keypoints: np.ndarray | None, pool: np.ndarray, predicted: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """First association: ``(D, 4)`` boxes and ``(D, K, 3)`` poses (or ``None``) against the tracks ``pool``
        ``(T,)`` with their ``(all tracks, 4)`` predicted boxes -> ``(D, T)`` similarity and ``(D, T)`` IoU."""
        iou = _pairwise_iou(boxes, predicted[pool])
        if keypoints is None or self._variances is None or self.config.oks_weight == 0:
            return iou, iou
        carried = _carried_poses(self._poses[pool], self._pose_boxes[pool], predicted[pool])
        oks, in_common = _pairwise_oks(
            keypoints, _box_areas(boxes), carried, self._variances, self.config.keypoint_threshold
        )
        weight = self.config.oks_weight
        return np.where(in_common, (1 - weight) * iou + weight * oks, iou), iou

    def _keep_tracks(self, kept: np.ndarray) -> None:
        """Keep the tracks where ``kept`` ``(T,)`` is True, remove the others."""
        self._ids, self._means, self._covariances = self._ids[kept], self._means[kept], self._covariances[kept]
        self._poses, self._pose_boxes = self._poses[kept], self._pose_boxes[kept]
        self._scores, self._missed = self._scores[kept], self._missed[kept]

    def _start_tracks(self, boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray | None) -> np.ndarray:
        """New tracks for ``(N, 4)`` boxes with ``(N,)`` scores and ``(N, K, 3)`` poses (or ``None``) -> their
        ``(N,)`` fresh ids."""
        ids = np.arange(self._next_id, self._next_id + len(boxes), dtype=np.int64)
        self._next_id += len(boxes)
        means, covariances = self._filter.initiate(boxes)
        poses = np.zeros((len(boxes), *self._poses.shape[1:])) if keypoints is None else keypoints
        self._ids = np.concatenate([self._ids, ids])
        self._means = np.concatenate([self._means, means])
        self._covariances = np.concatenate([self._covariances, covariances])
        self._poses = np.concatenate([self._poses, poses])
        self._pose_boxes = np.concatenate([self._pose_boxes, boxes])
        self._scores = np.concatenate([self._scores, scores])
        self._missed = np.concatenate([self._missed, np.zeros(len(boxes), dtype=np.int64)])
        return ids


def boxes_from_poses(
    keypoints: np.ndarray,
    threshold: float = 0.3,
    padding: float = 1.2,
    min_keypoints: int = 3,
    image_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes from poses, for frames where the detector does not run.

    Each box is the extent of the pose's joints scoring at least ``threshold``, grown by the factor ``padding``
    about its centre (a detector's box also holds the head top and the feet, beyond the outermost joints), then
    clipped to ``image_size`` ``(height, width)`` when given.

    Args:
        keypoints: ``(P, K, 3)`` x, y, score.
        threshold: Joints scoring at least this count.
        padding: Factor (> 0) on the width and height of the joints' extent.
        min_keypoints: Joints (>= 1) a pose needs to give a box.
        image_size: ``(height, width)`` to clip to, or ``None``.

    Returns:
        ``(P, 4)`` xyxy float32 boxes and ``(P,)`` bool valid: at least ``min_keypoints`` confident joints and a box
        at least 1 px wide and tall. Boxes that are not valid are zeros.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3:
        raise ValueError(f"keypoints must be (P, K, 3) x, y, score, got shape {keypoints.shape}")
    if not _is_real(padding) or padding <= 0:
        raise ValueError(f"padding must be a positive number, got {padding!r}")
    if not isinstance(min_keypoints, Integral) or isinstance(min_keypoints, bool) or min_keypoints < 1:
        raise ValueError(f"min_keypoints must be an integer >= 1, got {min_keypoints!r}")
    if image_size is not None and (len(image_size) != 2 or not all(_is_real(s) and s > 0 for s in image_size)):
        raise ValueError(f"image_size must be (height, width), both positive, got {image_size!r}")
    confident = keypoints[:, :, 2] >= threshold
    enough = confident.sum(axis=1) >= min_keypoints
    points, counted = keypoints[enough, :, :2], confident[enough, :, None]
    low = np.min(np.where(counted, points, np.inf), axis=1, initial=np.inf)
    high = np.max(np.where(counted, points, -np.inf), axis=1, initial=-np.inf)
    centre, half_size = (low + high) / 2, (high - low) / 2 * padding
    boxes = np.zeros((len(keypoints), 4))
    boxes[enough] = np.concatenate([centre - half_size, centre + half_size], axis=1)
    if image_size is not None:
        height, width = image_size
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    valid = enough & np.all(boxes[:, 2:] - boxes[:, :2] >= 1, axis=1)
    boxes[~valid] = 0.0
    return boxes.astype(np.float32), valid
