"""Video that stays coherent and keeps up: persons tracked from frame to frame, the detector run every N-th frame,
keypoints smoothed over time.

``PoseEstimator.stream(..., track=True, detect_every=N, smooth=...)`` (and so ``PoseEstimator.run`` and the
command line) comes here. Frames are estimated one at a time, in order, since each frame's boxes may come from the
poses of the frame before:

1. **Boxes.** A frame with given boxes uses them. Otherwise the detector runs on the first frame of every video,
   then on every N-th frame after its last detection, and at once when the frame before lost a track or when a
   tracked person's pose has fewer than ``min_keypoints`` confident joints. Every other frame takes each tracked
   person's box from their last pose (:func:`~hrnet_zoo.pose.track.boxes_from_poses`: the confident joints'
   extent, grown by ``box_padding``), so the pose network follows the persons without the detector.
2. **Poses.** The estimator runs on those boxes (its flip test, decoder and batch size).
3. **Identity.** A :class:`~hrnet_zoo.pose.track.PoseTracker` (ByteTrack's association with Kalman-predicted
   boxes and an OKS term) gives every person a track id. A person whose box came from their own pose keeps their
   id directly. Detections no track takes and that start none (ByteTrack's low-score leftovers) are not reported.
   One tracker serves the whole call and is reset between inputs, so an id is never reused within a run.
4. **Smoothing** (optional, for the output only: tracking sees the raw poses). ``"one_euro"``: online, per track
   and joint, as each frame is done (webcams). ``"savgol"``: offline, per track over the whole video
   (Savitzky-Golay with gaps interpolated): a video's frames are estimated first, then read again and yielded with
   the smoothed poses; not for webcams.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from .result import PoseResult
from .smooth import OneEuro, OneEuroSmoother, Savgol, smooth_savgol
from .sources import Frame, GivenBoxes, Source, read_frames
from .track import PoseTracker, TrackerConfig, boxes_from_poses

if TYPE_CHECKING:
    from .estimator_base import EstimatorBase

__all__ = ["CPU_VIDEO_DEFAULTS", "CpuVideoDefaults", "Smoothing", "VideoOptions"]

#: Keypoint smoothing over time: ``"one_euro"`` (online), ``"savgol"`` (offline), or either's parameters.
Smoothing = Literal["one_euro", "savgol"] | OneEuro | Savgol


@dataclass(frozen=True)
class VideoOptions:
    """How a stream follows persons through a video.

    Attributes:
        tracker: The tracker's parameters.
        detect_every: Run the detector on every N-th frame (1: every frame); see the module docstring for the
            frames that ask for a detection sooner.
        smooth: ``None``, :class:`~hrnet_zoo.pose.smooth.OneEuro` or :class:`~hrnet_zoo.pose.smooth.Savgol`.
        min_keypoints: A tracked person with fewer joints scoring at least the tracker's ``keypoint_threshold``
            asks for a detection on the next frame (``None``: a third of the joints, 5 of COCO's 17).
        box_padding: A box taken from a pose is the joints' extent grown this much about its centre.
    """

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    detect_every: int = 1
    smooth: OneEuro | Savgol | None = None
    min_keypoints: int | None = None
    box_padding: float = 1.2

    def __post_init__(self) -> None:
        if isinstance(self.detect_every, bool) or not isinstance(self.detect_every, int) or self.detect_every < 1:
            raise ValueError(f"detect_every must be a positive whole number of frames, got {self.detect_every!r}")
        if self.min_keypoints is not None and self.min_keypoints < 1:
            raise ValueError(f"min_keypoints must be at least 1, got {self.min_keypoints}")
        if not self.box_padding >= 1.0:
            raise ValueError(f"box_padding must be at least 1 (the joints' extent itself), got {self.box_padding}")

    @classmethod
    def of(
        cls,
        track: bool | TrackerConfig,
        detect_every: int,
        smooth: Smoothing | None,
    ) -> VideoOptions | None:
        """The options ``stream``'s arguments ask for, or ``None`` when they ask for none (frames are then
        estimated in batches, untracked). Detecting every N-th frame and smoothing both need tracks, so either
        turns tracking on.

        Raises:
            ValueError: An unknown smoothing name, a ``detect_every`` below 1, a ``track`` of another type.
        """
        if smooth == "one_euro":
            smooth = OneEuro()
        elif smooth == "savgol":
            smooth = Savgol()
        elif smooth is not None and not isinstance(smooth, (OneEuro, Savgol)):
            raise ValueError(f"smooth must be 'one_euro', 'savgol', a OneEuro or a Savgol, got {smooth!r}")
        if not isinstance(track, (bool, TrackerConfig)):
            raise ValueError(f"track must be True, False or a TrackerConfig, got {type(track).__name__}")
        options = cls(track if isinstance(track, TrackerConfig) else TrackerConfig(), detect_every, smooth)
        return options if track is not False or detect_every > 1 or smooth is not None else None


@dataclass(frozen=True)
class CpuVideoDefaults:
    """The video pipeline a CPU user gets from ``hrnet-zoo predict`` for videos and webcams (measured in
    ``benchmarks/video.py`` and docs/video.md): the light detector, which on a CPU takes about a fiftieth of the
    default one's time for half its box AP, run on every ``detect_every``-th frame with tracking, and no flip
    test (which would double the pose network's time). Photos, and every input on a GPU, keep the accurate
    defaults."""

    detector: str = "fasterrcnn_mobilenet_v3_large_320_fpn"
    detect_every: int = 5
    flip_test: bool = False


CPU_VIDEO_DEFAULTS = CpuVideoDefaults()


class _TrackedFrames:
    """One frame after the other: boxes (given, detected, or from the tracked poses), poses, track ids."""

    def __init__(self, estimator: EstimatorBase, options: VideoOptions) -> None:
        self.estimator = estimator
        self.options = options
        self.tracker = PoseTracker(options.tracker, sigmas=estimator.keypoints.sigmas)
        self.smoother = OneEuroSmoother(options.smooth) if isinstance(options.smooth, OneEuro) else None
        self.min_keypoints = options.min_keypoints or max(1, len(estimator.keypoints) // 3)
        self._since_detection: int | None = None

    def start(self) -> None:
        """A new input: no tracks, no filter state (ids keep counting)."""
        self.tracker.reset()
        if self.smoother is not None:
            self.smoother.reset()
        self._since_detection = None

    def _boxes_from_tracks(self, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(ids, boxes, scores)`` of the tracked persons from their last poses, or ``None``: detect this frame."""
        due = self._since_detection is None or self._since_detection + 1 >= self.options.detect_every
        if due or self.tracker.lost_in_last_update:
            return None
        ids, keypoints, scores = self.tracker.active_poses()
        if not len(ids):
            return None
        threshold = self.options.tracker.keypoint_threshold
        boxes, valid = boxes_from_poses(keypoints, threshold, self.options.box_padding, self.min_keypoints, image_size)
        return (ids, boxes, scores) if valid.all() else None

    def __call__(self, frame: Frame, given: object | None) -> PoseResult:
        """The tracked poses of ``frame`` (``given``: its boxes, xyxy, or ``None``)."""
        track_ids = None
        if given is not None:
            (result,) = self.estimator.predict([frame.image], [given], "xyxy")
            self._since_detection = 0
        else:
            from_tracks = self._boxes_from_tracks(tuple(frame.image.shape[-2:]))
            if from_tracks is None:
                (result,) = self.estimator.predict([frame.image])  # the detector's persons, or the whole frame
                self._since_detection = 0
            else:
                track_ids, boxes, scores = from_tracks
                (result,) = self.estimator.predict([frame.image], [boxes], "xyxy")
                result = replace(result, box_scores=scores)
                self._since_detection += 1
        ids = self.tracker.update(result.boxes, result.box_scores, result.keypoints, track_ids)
        kept = ids >= 0
        result = replace(result[np.flatnonzero(kept)], track_ids=ids[kept])
        if self.smoother is not None and frame.fps is not None:
            smoothed = self.smoother(result.keypoints, result.track_ids, frame.index / float(frame.fps))
            result = replace(result, keypoints=smoothed)
        return result


def _smoothed_video(
    tracked: _TrackedFrames, source: Source, given: GivenBoxes, config: Savgol, skip_bad: bool
) -> Iterator[tuple[Frame, PoseResult]]:
    """A video's tracked poses, smoothed over the whole video, yielded as its frames are read again. A frame that
    cannot be decoded ends the first pass: the frames before it are smoothed and yielded, then the error raised."""
    done: dict[int, PoseResult] = {}
    stopped: ValueError | None = None
    try:
        for frame in read_frames([source], skip_bad):
            done[frame.index] = tracked(frame, given(frame))
    except ValueError as err:
        stopped = err
    indices = list(done)
    series = [(done[i].track_ids, done[i].keypoints) for i in indices]
    for index, keypoints in zip(indices, smooth_savgol(series, config)):
        done[index] = replace(done[index], keypoints=keypoints)
    remaining = len(done)
    if remaining:
        for frame in read_frames([source], skip_bad):
            if frame.index in done:
                yield frame, done[frame.index]
                remaining -= 1
                if not remaining:
                    break
    if stopped is not None:
        raise stopped


def tracked_stream(
    estimator: EstimatorBase,
    sources: Sequence[Source],
    given: GivenBoxes,
    options: VideoOptions,
    skip_bad: bool = False,
) -> Iterator[tuple[Frame, PoseResult]]:
    """``(frame, result)`` of every frame of ``sources``, in order, each result with ``track_ids`` (see the module
    docstring).

    Raises:
        ValueError: Savitzky-Golay smoothing asked for a webcam (before any frame is read); a frame that cannot be
            decoded (unless ``skip_bad``).
    """
    webcams = [s.location for s in sources if s.kind == "webcam"]
    if isinstance(options.smooth, Savgol) and webcams:
        raise ValueError(
            f"smooth='savgol' filters a whole video, which webcam {webcams[0]} never ends; use smooth='one_euro' "
            "(online) for webcams"
        )
    tracked = _TrackedFrames(estimator, options)
    for source in sources:
        tracked.start()
        if isinstance(options.smooth, Savgol) and source.kind == "video":
            yield from _smoothed_video(tracked, source, given, options.smooth, skip_bad)
            continue
        for frame in read_frames([source], skip_bad):
            yield frame, tracked(frame, given(frame))
