"""Temporal smoothing of tracked keypoints in video.

Two filters, both fed with each frame's ``(P, K, 3)`` keypoints (x, y in pixels, score) and the ``(P,)`` integer
track ids a tracker gave the persons (ids < 0: untracked, passed through unchanged):

- :class:`OneEuroSmoother`, online (webcams, streams): one One-Euro filter (Casiez, Roussel and Vogel, "1€ filter:
  a simple speed-based low-pass filter for noisy input in interactive systems", CHI 2012) per track and keypoint
  coordinate, configured by :class:`OneEuro`;
- :func:`smooth_savgol`, offline (files): per track, gaps filled by linear interpolation, then a Savitzky-Golay
  filter over the whole clip, configured by :class:`Savgol`.

Only x and y are smoothed; scores are returned unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike
from scipy.signal import savgol_filter

__all__ = ["OneEuro", "OneEuroFilter", "OneEuroSmoother", "Savgol", "smooth_savgol"]

SIZE_MIN_SCORE = 0.3
"""Joints scoring at least this span a person's size, the unit of :class:`OneEuroSmoother`'s speeds."""

MIN_SIZE_PX = 1.0
"""Lower bound of a person's size in pixels (all joints at one point)."""


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class OneEuro:
    """Parameters of the One-Euro filter (Casiez et al., CHI 2012).

    The filter is a first-order low-pass filter whose cutoff rises with the speed of the signal:
    ``cutoff = min_cutoff + beta * |speed|``, the speed itself low-passed at ``d_cutoff``. At rest the cutoff is
    ``min_cutoff`` (jitter removed); when moving it rises (lag cut). :class:`OneEuroSmoother` measures speeds in
    person sizes per second, so ``beta`` does not depend on the image resolution.

    The defaults were measured on synthetic COCO tracks (``benchmarks/smoothing.py``: a person 200 px tall, 2 px
    Gaussian keypoint noise, 25 and 30 fps): ``d_cutoff`` 1 Hz as the paper advises, ``min_cutoff`` 0.5 Hz, and
    ``beta`` the smallest (in steps of 2) keeping the error of a walk at 0.8 heights per second below the
    unfiltered one at both frame rates. At 30 fps they remove 81% of a still person's frame-to-frame jitter; the
    walk trails the truth by 11 ms (error 2.5 px, unfiltered 2.8 px), a 1 Hz sway of a quarter height by 15 ms
    (error 4.2 px). Lower ``beta`` or ``min_cutoff`` for steadier, later poses.

    Attributes:
        min_cutoff: Cutoff at rest, Hz (> 0). Lower: less jitter, more lag at low speeds.
        beta: Cutoff added per unit of speed, Hz per (person size per second) (>= 0). Higher: less lag when
            moving, more jitter.
        d_cutoff: Cutoff of the speed estimate, Hz (> 0).
    """

    min_cutoff: float = 0.5
    beta: float = 12.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff"):
            value = getattr(self, name)
            if not _is_real(value) or not 0 < value < math.inf:
                raise ValueError(f"OneEuro.{name} must be a positive number of Hz, got {value!r}")
        if not _is_real(self.beta) or not 0 <= self.beta < math.inf:
            raise ValueError(f"OneEuro.beta must be a number >= 0, got {self.beta!r}")


class OneEuroFilter:
    """One One-Euro filter for an array of independent signals of a fixed shape (each element filtered on its own).

    The paper's algorithm with a variable sampling period ``te`` (the time since the previous call): the first
    value passes unchanged (speed 0); then ``speed = (x - previous output) / te / scale``, low-passed at
    ``d_cutoff``, sets the cutoff ``min_cutoff + beta * |speed|`` of the low-pass of ``x``. A low-pass with cutoff
    ``fc`` mixes in ``alpha = 1 / (1 + 1 / (2 pi fc te))`` of the new value.
    """

    def __init__(self, config: OneEuro = OneEuro()) -> None:
        self.config = config
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._timestamp = -math.inf

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of the filtered values, ``None`` before the first call."""
        return None if self._value is None else self._value.shape

    def __call__(self, value: ArrayLike, timestamp: float, scale: ArrayLike = 1.0) -> np.ndarray:
        """Filter ``value`` (any shape, the same at every call) observed at ``timestamp`` seconds.

        ``scale`` (broadcastable to ``value``, > 0) is the unit the speed is measured in: the speed entering
        ``beta`` is ``dx / dt / scale``. Returns the filtered values, float64, shaped like ``value``.
        """
        x = np.asarray(value, dtype=np.float64)
        if self._value is not None and x.shape != self._value.shape:
            raise ValueError(f"expected values of shape {self._value.shape} (as before), got {x.shape}")
        if not timestamp > self._timestamp:
            raise ValueError(f"timestamps must increase: {timestamp} follows {self._timestamp}")
        if not np.all(np.asarray(scale) > 0):
            raise ValueError(f"scale must be positive, got {scale!r}")
        if self._value is None or self._speed is None:
            self._value, self._speed = x.copy(), np.zeros_like(x)
        else:
            period = timestamp - self._timestamp
            speed = (x - self._value) / (period * np.asarray(scale, dtype=np.float64))
            self._speed = self._speed + _alpha(self.config.d_cutoff, period) * (speed - self._speed)
            cutoff = self.config.min_cutoff + self.config.beta * np.abs(self._speed)
            self._value = self._value + _alpha(cutoff, period) * (x - self._value)
        self._timestamp = timestamp
        return self._value.copy()


class OneEuroSmoother:
    """Online: one One-Euro filter per track and keypoint coordinate.

    Speeds are measured in person sizes per second: a person's size, per frame, is the larger side of the box
    spanned by their joints scoring at least :data:`SIZE_MIN_SCORE` (all their joints when fewer than two do),
    at least :data:`MIN_SIZE_PX` pixels. A person 100 px tall and one 1000 px tall moving alike are smoothed
    alike.

    Every joint is filtered, whatever its score. A track keeps its filter across gaps (frames it was not seen):
    its next observation is filtered with the time since it was last seen as the sampling period, which lets the
    filter follow that observation the more, the longer the gap (after 1 s, with the default ``min_cutoff``, the
    output moves at least 76% of the way to it). Tracks are remembered until :meth:`reset`.
    """

    def __init__(self, config: OneEuro = OneEuro()) -> None:
        self.config = config
        self._filters: dict[int, OneEuroFilter] = {}
        self._timestamp = -math.inf

    def __call__(self, keypoints: np.ndarray, track_ids: np.ndarray, timestamp: float) -> np.ndarray:
        """Smooth one frame.

        Args:
            keypoints: ``(P, K, 3)`` x, y, score of the persons of the frame (float32).
            track_ids: ``(P,)`` integer track ids; ids < 0 are untracked persons, returned unchanged.
            timestamp: Time of the frame in seconds (frame index / fps), larger than the previous call's.

        Returns:
            A new ``(P, K, 3)`` array (the input's float dtype, else float32): x, y filtered per track, scores
            unchanged.

        Raises:
            ValueError: Malformed shapes, a track id twice in the frame, a track whose ``K`` changed, or a
                timestamp not after the previous one. The smoother's state is then unchanged.
        """
        points, ids = _check_frame(keypoints, track_ids, "")
        if not _is_real(timestamp) or not math.isfinite(timestamp):
            raise ValueError(f"timestamp must be a finite number of seconds, got {timestamp!r}")
        if not timestamp > self._timestamp:
            raise ValueError(f"timestamps must increase: {timestamp} follows {self._timestamp}")
        for track_id in ids[ids >= 0]:
            known = self._filters.get(int(track_id))
            if known is not None and known.shape != (points.shape[1], 2):
                raise ValueError(f"track {track_id} had {known.shape[0]} keypoints, now {points.shape[1]}")
        self._timestamp = timestamp
        smoothed = points.copy()
        sizes = _person_sizes(points)
        for person in np.flatnonzero(ids >= 0):
            track = self._filters.setdefault(int(ids[person]), OneEuroFilter(self.config))
            smoothed[person, :, :2] = track(points[person, :, :2], timestamp, sizes[person])
        return smoothed

    def reset(self) -> None:
        """Forget every track and the last timestamp (a new video)."""
        self._filters.clear()
        self._timestamp = -math.inf


@dataclass(frozen=True)
class Savgol:
    """Parameters of :func:`smooth_savgol`.

    Savitzky-Golay filtering is symmetric: no lag. The default window, 9 frames (0.3 s at 30 fps; take about
    ``0.3 * fps``, odd, at other frame rates), was measured on the synthetic tracks of ``benchmarks/smoothing.py``
    (30 fps, a person 200 px tall, 2 px noise): the window with the least error on a 2 Hz sway of a tenth of the
    height (1.6 px, unfiltered 2.9 px), it removes 78% of a still person's frame-to-frame jitter and halves the
    error of a walk or a 1 Hz sway (1.4 px, unfiltered 2.8 px). Longer windows steady the pose more but flatten
    fast motion (15 frames: 3.8 px on the 2 Hz sway).

    Attributes:
        window: Odd window length in frames (>= 3).
        polyorder: Order of the fitted polynomial (0 <= polyorder < window).
        min_score: Joints scoring below are gaps, interpolated before filtering.
    """

    window: int = 9
    polyorder: int = 2
    min_score: float = 0.3

    def __post_init__(self) -> None:
        if not _is_integer(self.window) or self.window < 3 or self.window % 2 == 0:
            raise ValueError(f"Savgol.window must be an odd integer >= 3, got {self.window!r}")
        if not _is_integer(self.polyorder) or not 0 <= self.polyorder < self.window:
            raise ValueError(
                f"Savgol.polyorder must be an integer in [0, window={self.window}), got {self.polyorder!r}"
            )
        if not _is_real(self.min_score) or math.isnan(self.min_score):
            raise ValueError(f"Savgol.min_score must be a number, got {self.min_score!r}")


def smooth_savgol(frames: Sequence[tuple[np.ndarray, np.ndarray]], config: Savgol = Savgol()) -> list[np.ndarray]:
    """Offline: smooth every track of a whole clip.

    Per track, the x, y series over the frames from its first to its last appearance is filled where the track is
    missing or a joint scores below ``config.min_score``, by linear interpolation from the neighbouring confident
    observations of that joint (``np.interp``: constant before the first and after the last), then filtered with
    ``scipy.signal.savgol_filter(..., axis=0, mode="interp")``. A track spanning fewer frames than the window uses
    the longest odd window it has; one too short for the polynomial (that window ``<= polyorder``) is left as is.

    Args:
        frames: One ``(track_ids (P,), keypoints (P, K, 3))`` per frame; ``P`` may differ between frames (and be
            0), a track's ``K`` may not.
        config: Window, polynomial order and the score below which joints are gaps.

    Returns:
        Each frame's ``(P, K, 3)`` keypoints (new arrays, the input's float dtype, else float32): x, y smoothed
        where the person is tracked, low-scoring joints included; scores unchanged. A joint never scoring
        ``min_score`` in a track, and untracked persons (id < 0), keep their values. The inputs are not modified.

    Raises:
        ValueError: A frame not a pair, malformed shapes, a track id twice in a frame, or a track whose ``K``
            changed.
    """
    checked = []
    for index, frame in enumerate(frames):
        if not isinstance(frame, tuple | list) or len(frame) != 2:
            raise ValueError(f"frame {index}: expected a pair (track_ids (P,), keypoints (P, K, 3))")
        points, ids = _check_frame(frame[1], frame[0], f"frame {index}: ")
        checked.append((points, ids))
    appearances: dict[int, list[tuple[int, int]]] = {}
    num_keypoints: dict[int, int] = {}
    for index, (points, ids) in enumerate(checked):
        for person in np.flatnonzero(ids >= 0):
            track_id = int(ids[person])
            if num_keypoints.setdefault(track_id, points.shape[1]) != points.shape[1]:
                raise ValueError(
                    f"frame {index}: track {track_id} has {points.shape[1]} keypoints, {num_keypoints[track_id]} before"
                )
            appearances.setdefault(track_id, []).append((index, int(person)))
    smoothed = [points.copy() for points, _ in checked]
    for seen in appearances.values():
        series = np.stack([checked[index][0][person] for index, person in seen]).astype(np.float64)
        track_xy = _savgol_track(np.array([index for index, _ in seen]), series, config)
        for (index, person), xy in zip(seen, track_xy):
            smoothed[index][person, :, :2] = xy
    return smoothed


def _savgol_track(frame_indices: np.ndarray, series: np.ndarray, config: Savgol) -> np.ndarray:
    """One track's ``(N, K, 2)`` smoothed x, y from its ``(N, K, 3)`` observations at ``(N,)`` increasing frames."""
    steps = frame_indices - frame_indices[0]
    length = int(steps[-1]) + 1
    window = min(config.window, length if length % 2 else length - 1)
    if window <= config.polyorder:
        return series[..., :2]
    confident = np.zeros((length, series.shape[1]), dtype=bool)
    confident[steps] = series[..., 2] >= config.min_score
    xy = np.zeros((length, series.shape[1], 2))
    xy[steps] = series[..., :2]
    filtered = savgol_filter(_interpolate_gaps(xy, confident), window, config.polyorder, axis=0, mode="interp")
    ever_confident = confident.any(axis=0)[:, None]
    return np.where(ever_confident, filtered[steps], series[..., :2])


def _interpolate_gaps(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``(T, K, 2)`` values with the entries where ``known`` ``(T, K)`` is false interpolated along ``T`` from the
    known ones of their joint, as ``np.interp`` does (held constant beyond the first and last known entry).
    Joints never known keep their values."""
    length = len(values)
    index = np.arange(length)[:, None]
    before = np.maximum.accumulate(np.where(known, index, -1), axis=0)
    after = np.minimum.accumulate(np.where(known, index, length)[::-1], axis=0)[::-1]
    low = np.clip(np.where(before >= 0, before, after), 0, length - 1)
    high = np.clip(np.where(after < length, after, before), 0, length - 1)
    span = high - low
    weight = np.divide(index - low, span, out=np.zeros(span.shape), where=span > 0)[..., None]
    low_values = np.take_along_axis(values, low[..., None], axis=0)
    high_values = np.take_along_axis(values, high[..., None], axis=0)
    filled = low_values + weight * (high_values - low_values)
    return np.where(known.any(axis=0)[:, None], filled, values)


def _check_frame(keypoints: ArrayLike, track_ids: ArrayLike, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A frame's ``(P, K, 3)`` keypoints as floats (maybe the input itself) and ``(P,)`` int64 track ids, or a
    ValueError whose message starts with ``where``."""
    points = np.asarray(keypoints)
    if points.ndim != 3 or points.shape[2] != 3 or (len(points) and points.shape[1] == 0):
        raise ValueError(
            f"{where}keypoints: expected a (P, K, 3) array (x, y, score per joint, K >= 1), got {points.shape}"
        )
    if not np.issubdtype(points.dtype, np.number) or np.issubdtype(points.dtype, np.complexfloating):
        raise ValueError(f"{where}keypoints: expected real numbers, got {points.dtype}")
    ids = np.asarray(track_ids)
    if ids.shape != (len(points),):
        raise ValueError(f"{where}track_ids: expected shape ({len(points)},), one id per person, got {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{where}track_ids: expected integers, got {ids.dtype}")
    tracked = ids[ids >= 0]
    if len(np.unique(tracked)) != len(tracked):
        raise ValueError(f"{where}track_ids: a track id appears twice in one frame: {tracked.tolist()}")
    dtype = points.dtype if np.issubdtype(points.dtype, np.floating) else np.float32
    return points.astype(dtype, copy=False), ids.astype(np.int64)


def _person_sizes(keypoints: np.ndarray) -> np.ndarray:
    """``(P,)`` larger side in pixels of the box spanned by each person's confident joints of ``(P, K, 3)``."""
    confident = keypoints[..., 2] >= SIZE_MIN_SCORE
    spanning = np.where(confident.sum(axis=1, keepdims=True) >= 2, confident, True)[..., None]
    low = np.where(spanning, keypoints[..., :2], np.inf).min(axis=1)
    high = np.where(spanning, keypoints[..., :2], -np.inf).max(axis=1)
    return np.maximum((high - low).max(axis=1, initial=0.0), MIN_SIZE_PX)


def _alpha(cutoff: float | np.ndarray, period: float) -> float | np.ndarray:
    """Share of the new value a first-order low-pass with ``cutoff`` Hz mixes in after ``period`` seconds."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * period))
