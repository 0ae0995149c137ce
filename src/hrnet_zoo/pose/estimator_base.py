"""What the top-down and the bottom-up estimator share: the network they run (a BatchNorm-folded copy kept in step
with the model's weights, or the model itself in eval mode), the frame-by-frame stream and the run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..deploy.optimize import optimize_for_inference
from ..deploy.runtime_model import RuntimePoseModel
from ..keypoints import KeypointSet
from .result import PoseResult
from .run import run_poses
from .sources import Frame, GivenBoxes, Inputs, Source, read_frames, sources_of
from .track import TrackerConfig
from .video import Smoothing, VideoOptions, tracked_stream

__all__ = ["EstimatorBase"]


def _weights_version(tensors: Iterable[Tensor]) -> tuple[tuple[int, int], ...]:
    """A cheap token of the current values of ``tensors`` (a model's parameters and buffers): each one's storage and
    in-place version counter, which every optimizer step, ``load_state_dict`` and BatchNorm statistics update
    advances."""
    return tuple((t.data_ptr(), 0 if t.is_inference() else t._version) for t in tensors)


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    """``frames`` in lists of ``size``; when reading fails, the frames read before are still given, then the error
    is raised."""
    batch: list[Frame] = []
    try:
        for frame in frames:
            batch.append(frame)
            if len(batch) == size:
                yield batch
                batch = []
    except ValueError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _webcams_apart(sources: Sequence[Source]) -> list[list[Source]]:
    """``sources`` in order, in groups: each webcam alone, the files between them together."""
    groups: list[list[Source]] = []
    for source in sources:
        if source.kind == "webcam" or not groups or groups[-1][0].kind == "webcam":
            groups.append([source])
        else:
            groups[-1].append(source)
    return groups


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block, each module's own mode restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


class EstimatorBase:
    """The network an estimator runs and the way frames reach :meth:`predict`; subclasses decode.

    The model is left in its mode (a model still training keeps training) and always run with its current weights:
    a change is seen through the tensors' in-place version counters and storage (optimizer steps,
    ``load_state_dict``, BatchNorm statistics); writes through ``.data`` bypass the counters, so after such an
    update (some EMA code) call :meth:`refresh`.

    Subclasses set :attr:`keypoints` and implement :meth:`predict` and :meth:`_stream_boxes`.
    """

    keypoints: KeypointSet

    def __init__(
        self, model: nn.Module, device: str | torch.device, optimize: bool, dtype: torch.dtype | None = None
    ) -> None:
        self.device = torch.device(device)
        self._dtype = dtype  # of the folded copy (bfloat16 on CPUs with bf16 units); the model's own by default
        self._network = model.to(self.device)  # the caller's model, its mode left as it is
        self._optimize = optimize and not isinstance(model, RuntimePoseModel)  # a runtime runs what it was given
        self._weights = [*model.parameters(), *model.buffers()]  # listed once: walking the modules costs more
        self._fused: nn.Module | None = None
        self._fused_version: tuple[tuple[int, int], ...] | None = None
        if self._optimize:
            self._fused_model()  # built now, so a model that cannot be folded is refused here

    @property
    def model(self) -> nn.Module:
        """The network the estimator runs, with the model's current weights: with ``optimize``, a BatchNorm-folded
        copy, rebuilt when the weights have changed since (an optimizer step, ``load_state_dict``); otherwise the
        model itself, switched to eval mode only while it runs. (A module swapped into the model after the
        estimator was made is not followed: make a new estimator.)"""
        return self._fused_model() if self._optimize else self._network

    def refresh(self) -> None:
        """Rebuild the folded copy at the next call, for weights changed where no version counter sees it
        (``.data`` writes)."""
        self._fused_version = None

    def _fused_model(self) -> nn.Module:
        version = _weights_version(self._weights)
        if version != self._fused_version:
            with torch.inference_mode(False), torch.no_grad():
                self._fused = optimize_for_inference(self._network).to(dtype=self._dtype)
            self._fused_version = version
        return self._fused

    @contextmanager
    def _running(self) -> Iterator[nn.Module]:
        """The network to run, in eval mode for the block (the caller's model gets its modes back)."""
        model = self.model
        if model is self._network:
            with _eval_mode(model):
                yield model
        else:
            yield model

    def predict(
        self, images: object, boxes: Sequence[object] | None = None, box_format: str = "xywh", channels: str = "rgb"
    ) -> list[PoseResult]:
        raise NotImplementedError

    def _stream_boxes(self, boxes: object, box_format: str, detect_every: int) -> Callable[[object], Tensor] | None:
        """What turns the user's boxes of a frame into ``(P, 4)`` xyxy boxes (for :class:`GivenBoxes`); raises for
        ``boxes`` or ``detect_every`` the estimator cannot take."""
        raise NotImplementedError

    def stream(
        self,
        inputs: Inputs,
        boxes: Mapping[str, object] | None = None,
        box_format: str = "xywh",
        batch_frames: int = 8,
        *,
        skip_bad: bool = False,
        track: bool | TrackerConfig = False,
        detect_every: int = 1,
        smooth: Smoothing | None = None,
    ) -> Iterator[tuple[Frame, PoseResult]]:
        """Estimate poses frame by frame: images, folders, glob patterns, video files and webcam indices.

        Untracked, frames are decoded and estimated ``batch_frames`` at a time (a webcam's one at a time, as they
        arrive: latency matters more than batching there) and yielded as they are done, so memory stays flat
        however long a video is. Tracked, frames are estimated one after the other and each person keeps an id
        through the video (see :mod:`hrnet_zoo.pose.video`).

        Args:
            inputs: A path, a glob pattern, a webcam index (``0``), a :class:`~hrnet_zoo.pose.sources.Source`, or a
                list of them (see :func:`~hrnet_zoo.pose.sources.find_sources`).
            boxes: Person boxes by input (its path or file name): a box list for an image; for a video, one box
                list for every frame or ``{frame index: box list}`` (see :class:`~hrnet_zoo.pose.sources.GivenBoxes`).
            box_format: ``"xywh"`` (COCO, default) or ``"xyxy"``.
            batch_frames: Frames per batch (untracked).
            skip_bad: Skip images, videos and video frames that cannot be decoded, with a warning, instead of
                raising.
            track: Give every person a track id (``PoseResult.track_ids``), ByteTrack-style; a
                :class:`~hrnet_zoo.pose.track.TrackerConfig` sets the tracker's parameters. ByteTrack's second
                association matches low-score poses to existing tracks: set ``TrackerConfig.high_score`` to the
                score a new person needs.
            detect_every: Find the persons on every N-th frame of a video and take the tracked persons' boxes from
                their last poses in between (a lost track, or a person with too few confident joints, asks for a
                detection at once). Turns tracking on.
            smooth: ``"one_euro"`` (online, per track and joint), ``"savgol"`` (offline, per track over a whole
                video, with gaps interpolated; not for webcams), or their parameters
                (:class:`~hrnet_zoo.pose.smooth.OneEuro`, :class:`~hrnet_zoo.pose.smooth.Savgol`). Turns tracking
                on; the tracker itself sees the raw poses.

        Yields:
            ``(frame, result)``: the :class:`~hrnet_zoo.pose.sources.Frame` (its ``(3, H, W)`` image, source and
            frame index) and its :class:`PoseResult`.

        Raises:
            ValueError: ``boxes`` naming no input, or malformed; bad tracking or smoothing options, or
                ``smooth="savgol"`` for a webcam (all before any frame is read); a frame that cannot be decoded
                (unless ``skip_bad``).
        """
        if batch_frames < 1:
            raise ValueError(f"batch_frames must be positive, got {batch_frames}")
        convert = self._stream_boxes(boxes, box_format, detect_every)
        options = VideoOptions.of(track, detect_every, smooth)
        sources = sources_of(inputs)
        given = GivenBoxes(boxes, sources, convert=convert)
        if options is not None:
            yield from tracked_stream(self, sources, given, options, skip_bad)
        else:
            for group in _webcams_apart(sources):
                size = 1 if group[0].kind == "webcam" else batch_frames
                for batch in _batches(read_frames(group, skip_bad), size):
                    batch_boxes = [given(frame) for frame in batch]
                    given_any = any(b is not None for b in batch_boxes)
                    images = [frame.image for frame in batch]
                    yield from zip(batch, self.predict(images, batch_boxes if given_any else None, "xyxy"))
        given.warn_unused()

    #: Estimate every pose of images, folders, videos or webcams and write a finished run folder, never replacing
    #: an input or an earlier run: ``estimator.run(inputs, out_dir, ...)`` is
    #: :func:`~hrnet_zoo.pose.run.run_poses` (its arguments, errors and :class:`~hrnet_zoo.pose.RunSummary`).
    run = run_poses
