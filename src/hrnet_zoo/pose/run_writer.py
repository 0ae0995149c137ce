"""One run's outputs, written as frames arrive: COCO keypoint results, the image table, drawn images and videos.

A run folder holds:

- ``results.json``: every person of every frame in COCO keypoint results format, a plain list that pycocotools'
  ``COCO.loadRes`` reads directly (integer ``image_id`` s; ``score`` the mean joint score, ``box_score`` the
  detector's);
- ``images.json``: a COCO annotation file without annotations: the image table (``id``, ``file_name``, ``frame``,
  ``width``, ``height``) and the category with its keypoint names and skeleton. ``COCO("images.json")
  .loadRes("results.json")`` gives a COCO object of the predictions;
- per input, ``<stem>_pose.png`` (an image) or ``<stem>_pose.mp4`` (a video or webcam, same size and frame rate),
  unless drawing is off. Inputs sharing a stem get ``<stem>_2``, ``<stem>_3``...

Nothing is held in memory per frame: both JSON files and the videos are streamed to hidden partial files and
put in place when the run ends (also when it is interrupted with Ctrl-C); a failed run leaves no partial file
and no drawing behind, and no folder it created empty.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._utils import partial_path, writing
from ..io.images import save_image
from ..io.outputs import JsonArrayStream, finite_records
from ..keypoints import KeypointSet
from .result import PoseResult
from .sources import Frame, Source, VideoWriter

__all__ = ["IMAGES_FILE", "RESULTS_FILE", "RunWriter", "drawn_paths", "run_outputs"]

RESULTS_FILE = "results.json"
IMAGES_FILE = "images.json"
_logger = logging.getLogger("hrnet_zoo")


def drawn_paths(folder: Path, sources: Sequence[Source]) -> list[Path]:
    """Where each source's drawing goes: ``<stem>_pose.png`` or ``<stem>_pose.mp4``, same stems numbered apart."""
    seen: dict[str, int] = {}
    paths = []
    for source in sources:
        seen[source.stem] = seen.get(source.stem, 0) + 1
        stem = source.stem if seen[source.stem] == 1 else f"{source.stem}_{seen[source.stem]}"
        paths.append(folder / f"{stem}_pose{'.png' if source.kind == 'image' else '.mp4'}")
    return paths


def run_outputs(folder: Path, sources: Sequence[Source], draw: bool = True) -> list[Path]:
    """Every file a run over ``sources`` writes into ``folder``: the two JSON files, then the drawings."""
    return [folder / RESULTS_FILE, folder / IMAGES_FILE, *(drawn_paths(folder, sources) if draw else [])]


class RunWriter:
    """Write a run's results and drawings into ``folder`` as frames arrive (a context manager).

    :func:`hrnet_zoo.pose.run.run_poses` (``PoseEstimator.run``) is the whole run around it: it picks a fresh
    folder and checks every output before anything is written; use the writer directly in a loop of your own.

    Args:
        folder: The run folder (see :func:`hrnet_zoo.io.claim_run_folder` for claiming a fresh one).
        sources: The run's inputs, in order (their drawings are named after them).
        keypoints: The model's keypoint set, recorded as the COCO category.
        draw: Write drawn images and videos.
        threshold: Minimum joint score drawn.
        info: Extra entries of the image table's ``info`` (e.g. the model's name).

    Attributes:
        outputs: Every file the run writes (:func:`run_outputs`).
        results_file: ``results.json`` in the folder.
        images_file: ``images.json`` in the folder.
        drawn: Each source's drawing (images and videos), when drawing.
        dropped: Persons left out of the results because their keypoints were not finite.

    Example:
        >>> sources = find_sources(["clip.mp4"])
        >>> with RunWriter(Path("out"), sources, estimator.keypoints) as writer:
        ...     for frame, result in estimator.stream(sources):
        ...         writer.add(frame, result)
    """

    def __init__(
        self,
        folder: Path,
        sources: Sequence[Source],
        keypoints: KeypointSet,
        draw: bool = True,
        threshold: float = 0.3,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.drawn = dict(zip(sources, drawn_paths(self.folder, sources))) if draw else {}
        self.outputs = run_outputs(self.folder, sources, draw)
        self.results_file, self.images_file = self.outputs[:2]
        self.threshold = threshold
        self.dropped = 0
        self._started: set[Source] = set()
        self._category = keypoints.to_coco_category()
        self._info = {"description": "hrnet-zoo predictions", **(info or {})}
        self._results: JsonArrayStream | None = None
        self._images: JsonArrayStream | None = None
        self._video: VideoWriter | None = None
        self._video_source: Source | None = None
        self._created = False

    @property
    def frames(self) -> int:
        """Frames written so far."""
        return self._images.count if self._images else 0

    @property
    def persons(self) -> int:
        """Persons written to the results so far."""
        return self._results.count if self._results else 0

    @property
    def drawn_files(self) -> list[Path]:
        """The drawings started so far, in input order (a video's holds its frames up to the last added)."""
        return [path for source, path in self.drawn.items() if source in self._started]

    def __enter__(self) -> RunWriter:
        self._created = not self.folder.exists()
        table = {"info": self._info, "categories": [self._category], "annotations": []}
        self._results = JsonArrayStream(self.results_file)
        self._images = JsonArrayStream(self.images_file, head=json.dumps(table)[:-1] + ', "images": [', tail="]}")
        return self

    def add(self, frame: Frame, result: PoseResult) -> int:
        """Record one frame's poses (and draw them); returns the frame's ``image_id``."""
        if self._images is None or self._results is None:
            raise RuntimeError("use RunWriter in a with statement")
        image_id = self._images.count + 1
        height, width = result.image_size
        self._images.add(
            {"id": image_id, "file_name": frame.source.location, "frame": frame.index, "width": width, "height": height}
        )
        records, dropped = finite_records(result.to_coco(image_id))
        for record in records:
            self._results.add(record)
        if dropped:
            _logger.warning(
                "%s frame %d: %d person(s) with non-finite keypoints left out of %s",
                frame.source.location,
                frame.index,
                dropped,
                RESULTS_FILE,
            )
        self.dropped += dropped
        if frame.source in self.drawn:
            self._draw(frame, result)
        return image_id

    def _draw(self, frame: Frame, result: PoseResult) -> None:
        drawn = result.plot(frame.image, self.threshold)
        path = self.drawn[frame.source]
        self._started.add(frame.source)
        if frame.source.kind == "image":
            with writing(path) as partial:
                save_image(drawn, partial)
            return
        if self._video_source != frame.source:
            self._finish_video()
            self._video = VideoWriter(partial_path(path), frame.fps or 25, tuple(frame.image.shape[-2:]))
            self._video_source = frame.source
        self._video.write(drawn)

    def _finish_video(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video.path.replace(self.drawn[self._video_source])
            self._video = self._video_source = None

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        streams = [s for s in (self._results, self._images) if s is not None]
        if kind is None or issubclass(kind, KeyboardInterrupt):  # Ctrl-C ends a webcam run: keep what was done
            self._finish_video()
            for stream in streams:
                stream.close()
            return
        if self._video is not None:
            self._video.close()
            self._video.path.unlink(missing_ok=True)
        for stream in streams:
            stream.discard()
        for path in self.drawn_files:  # no drawing without the results it shows
            path.unlink(missing_ok=True)
        if self._created and not any(self.folder.iterdir()):
            self.folder.rmdir()
