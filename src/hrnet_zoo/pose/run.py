"""A run: a pose estimator over images, videos and webcams into a finished run folder (see
:mod:`hrnet_zoo.pose.run_writer` for the files it holds).

The one place that goes from inputs to a run folder: ``PoseEstimator.run``, ``BottomUpEstimator.run`` and
``hrnet-zoo predict`` all come here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from .._utils import terminate_as_interrupt
from ..io.outputs import claim_run_folder, plan_outputs
from .result import converted_set
from .run_writer import RunWriter
from .sources import Source, VideoReader, find_sources
from .track import TrackerConfig
from .video import Smoothing, VideoOptions

if TYPE_CHECKING:
    from .estimator_base import EstimatorBase

__all__ = ["RunInputs", "RunSummary", "run_poses"]

#: What a run reads: a path, a glob pattern or a webcam index, or a list of them (see :func:`find_sources`).
RunInputs = str | int | os.PathLike | Sequence[str | int | os.PathLike]


@dataclass(frozen=True)
class RunSummary:
    """What a run wrote.

    Attributes:
        folder: The run folder (``out_dir``, or ``out_dir-2``, ``-3``... when ``out_dir`` held an earlier run).
        frames: Frames estimated and recorded (images count one each).
        persons: Persons written to :attr:`results_file`.
        results_file: ``results.json``, COCO keypoint results.
        images_file: ``images.json``, the image table and keypoint category (a COCO file without annotations).
        drawn: The drawn images and videos written, in input order.
        dropped: Persons left out of :attr:`results_file` because their keypoints were not finite.
        interrupted: The run was stopped with Ctrl-C or SIGTERM; the files hold the frames done until then,
            complete.
    """

    folder: Path
    frames: int
    persons: int
    results_file: Path
    images_file: Path
    drawn: tuple[Path, ...]
    dropped: int = 0
    interrupted: bool = False

    def __str__(self) -> str:
        drawn = f" and {len(self.drawn)} drawn file(s)" if self.drawn else ""
        stopped = " (interrupted)" if self.interrupted else ""
        return (
            f"{self.frames} frame(s), {self.persons} person(s) -> {self.results_file}, {self.images_file.name}"
            f"{drawn}{stopped}"
        )


def _frame_total(sources: Sequence[Source]) -> int | None:
    """Frames the run will read (for the progress bar), ``None`` when a webcam or a video does not say (or cannot
    be opened: the run reports that when it gets there)."""
    total = 0
    for source in sources:
        if source.kind == "webcam":
            return None
        if source.kind == "video":
            try:
                with VideoReader(source) as reader:
                    if reader.frame_count is None:
                        return None
                    total += reader.frame_count
            except ValueError:
                return None
        else:
            total += 1
    return total


def run_poses(
    estimator: EstimatorBase,
    inputs: RunInputs,
    out_dir: str | os.PathLike = "hrnet_zoo_out",
    *,
    boxes: Mapping[str, object] | None = None,
    box_format: str = "xywh",
    batch_frames: int = 8,
    draw: bool = True,
    threshold: float = 0.3,
    exist_ok: bool = False,
    info: Mapping[str, Any] | None = None,
    progress: bool = False,
    skip_bad: bool = False,
    track: bool | TrackerConfig = False,
    detect_every: int = 1,
    smooth: Smoothing | None = None,
    keypoint_format: str | None = None,
) -> RunSummary:
    """Estimate every person's pose in ``inputs`` and write a run folder: ``results.json``, ``images.json`` and,
    with ``draw``, each input drawn (``<stem>_pose.png`` / ``<stem>_pose.mp4``).

    Every output is checked before anything is written: none replaces an input or goes through a symbolic link,
    and an existing file is replaced only with ``exist_ok``. Frames are streamed, so memory stays flat however long
    a video is. Ctrl-C (the way to end a webcam run) and SIGTERM keep the frames done so far in complete files, as
    does an input that cannot be decoded (skipped with a warning under ``skip_bad``), which then raises; any other
    failure leaves no partial file, no drawing and no folder the run created.

    Args:
        estimator: A :class:`~hrnet_zoo.PoseEstimator` (its detector finds the persons of frames without ``boxes``)
            or a :class:`~hrnet_zoo.BottomUpEstimator` (no ``boxes``).
        inputs: Image and video files, folders, glob patterns and webcam indices (see :func:`find_sources`).
        out_dir: The run folder; when it holds files, the first free ``out_dir-2``, ``-3``... is used instead,
            unless ``exist_ok``.
        boxes: Person boxes by input (its path or file name), which skip detection: a box list for an image; for a
            video, one box list for every frame, or ``{frame index: box list}`` for some frames (the others go to
            the detector). See :class:`~hrnet_zoo.pose.sources.GivenBoxes`.
        box_format: Format of ``boxes``: ``"xywh"`` (COCO) or ``"xyxy"``.
        batch_frames: Frames read and detected together.
        draw: Write the drawn images and videos.
        threshold: Minimum joint score drawn.
        exist_ok: Write into ``out_dir`` even when it holds files, replacing the run's own files there.
        info: Entries added to the ``info`` of ``images.json`` (say, the model's name).
        progress: Show a progress bar of the frames (on stderr).
        skip_bad: Skip an image, video or video frame that cannot be decoded, with a warning, instead of stopping.
        track: Give every person a track id, written as ``track_id`` in ``results.json`` and drawn above their box
            (see :meth:`PoseEstimator.stream <hrnet_zoo.PoseEstimator.stream>`, like the next two).
        detect_every: Run the detector on every N-th frame of a video, following the tracked persons in between.
        smooth: Smooth the keypoints over time: ``"one_euro"`` or ``"savgol"``.
        keypoint_format: Write (and draw) the keypoints in another format: ``"openpose18"``, ``"body25"``,
            ``"h36m"``, ``"halpe26"``... (see :func:`hrnet_zoo.keypoint_formats.convert_keypoints`); the category
            of ``images.json`` is that format's.

    Returns:
        The :class:`RunSummary`: folder, files, frame and person counts.

    Raises:
        FileNotFoundError: An input that does not exist, an empty folder, a pattern that matches nothing.
        hrnet_zoo.errors.OutputRefusedError: An output that may not be written (its ``reason`` says why); nothing
            was written.
        ValueError: Boxes that name no input or are malformed, bad tracking, smoothing or format options (nothing
            was written); an input that cannot be
            decoded, without ``skip_bad``: the frames done before it are kept in the run folder's complete files
            (the message says how many), unless there were none.

    Example:
        >>> summary = estimator.run(["match.mp4", "photos/"], "runs/match")
        >>> COCO(str(summary.images_file)).loadRes(str(summary.results_file))
    """
    sources = find_sources(inputs if isinstance(inputs, (list, tuple)) else [inputs])
    VideoOptions.of(track, detect_every, smooth)  # checked before the folder is claimed
    keypoints = estimator.keypoints if keypoint_format is None else converted_set(estimator.keypoints, keypoint_format)
    with claim_run_folder(out_dir, exist_ok) as folder:  # atomically: two runs started together never share one
        writer = RunWriter(folder, sources, keypoints, draw=draw, threshold=threshold, info=info)
        plan_outputs(writer.outputs, [s.location for s in sources if s.kind != "webcam"], exist_ok)
        total = _frame_total(sources) if progress else None
        bar = tqdm(total=total, desc="frames", unit="frame", disable=not progress or (total is not None and total < 2))
        interrupted, stopped = False, None
        try:
            with terminate_as_interrupt(), writer, bar:
                try:
                    frames = estimator.stream(
                        sources,
                        boxes,
                        box_format,
                        batch_frames,
                        skip_bad=skip_bad,
                        track=track,
                        detect_every=detect_every,
                        smooth=smooth,
                    )
                    for frame, result in frames:
                        writer.add(frame, result if keypoint_format is None else result.convert(keypoint_format))
                        bar.update()
                except ValueError as err:  # a damaged input: keep the frames done before it, if any
                    if writer.frames == 0:
                        raise
                    stopped = err
        except KeyboardInterrupt:
            interrupted = True
    if stopped is not None:
        raise ValueError(
            f"{stopped}; the run stopped there: the {writer.frames} frame(s) done are kept in {folder}"
        ) from stopped
    return RunSummary(
        folder=folder,
        frames=writer.frames,
        persons=writer.persons,
        results_file=writer.results_file,
        images_file=writer.images_file,
        drawn=tuple(writer.drawn_files),
        dropped=writer.dropped,
        interrupted=interrupted,
    )
