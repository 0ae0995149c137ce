"""Where frames come from and where drawn videos go: image files, folders, glob patterns, video files, webcams.

Videos are read and written with PyAV (the optional ``[video]`` extra): its wheels carry FFmpeg with H.264, so
frame rates are exact fractions, output videos play everywhere, and nothing else needs installing. Frames are
decoded one at a time, so memory stays flat however long the video.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from ..io.images import check_file, load_image

try:
    import av
except ImportError:  # the [video] extra is not installed; still images work without it
    av = None

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Frame",
    "GivenBoxes",
    "Inputs",
    "Source",
    "VideoReader",
    "VideoWriter",
    "find_sources",
    "read_frames",
    "sources_of",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv"}
    | {".ts", ".m2ts", ".mts"}  # MPEG transport streams (camcorders, broadcast recordings)
)
_logger = logging.getLogger("hrnet_zoo")


@dataclass(frozen=True)
class Source:
    """One input: an image file, a video file or a webcam (``location`` is its device index)."""

    location: str
    kind: Literal["image", "video", "webcam"]

    @property
    def stem(self) -> str:
        """The base of the output names: the file stem, or ``webcam<N>``."""
        return f"webcam{self.location}" if self.kind == "webcam" else Path(self.location).stem


@dataclass
class Frame:
    """One image to estimate poses on: ``image`` is ``(3, H, W)`` uint8 RGB; ``index`` counts a video's frames and
    ``fps`` is its frame rate (``None`` for an image)."""

    image: Tensor
    source: Source
    index: int = 0
    fps: Fraction | None = None


def _require_av(what: str) -> None:
    if av is None:
        raise ValueError(f"{what} needs PyAV: pip install 'hrnet-zoo[video]'")


def _source(path: Path) -> Source:
    """A video by its suffix; anything else is read as an image (Pillow's error names the file if it is not)."""
    return Source(str(path), "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image")


def find_sources(arguments: Sequence[str | int | os.PathLike]) -> list[Source]:
    """Expand image and video files, folders (their images and videos, sorted), glob patterns and webcam indices
    (an integer, or a string of digits that is not a file), in the order given. A file named twice (say by a
    folder and a pattern) is kept once, where it first appears.

    Raises:
        FileNotFoundError: A file that does not exist, an empty folder, a pattern matching nothing.
        ValueError: A path that is neither a regular file nor a folder (a FIFO, a device), named as such.
    """
    found: list[Source] = []
    media = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    for argument in arguments:
        text = str(argument)
        path = Path(text)
        if isinstance(argument, int) or (text.isdigit() and not path.exists()):
            found.append(Source(str(int(text)), "webcam"))
        elif path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in media)
            if not inside:
                raise FileNotFoundError(f"folder {text!r} holds no images or videos ({', '.join(sorted(media))})")
            found += [_source(p) for p in inside]
        elif not path.exists() and glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matches:
                raise FileNotFoundError(f"the pattern {text!r} matches no file")
            found += [_source(p) for p in matches]
        elif not path.exists():
            raise FileNotFoundError(
                f"input file {text!r} not found (give image or video files, folders, glob patterns or a webcam index)"
            )
        else:
            found.append(_source(check_file(path, "input")))
    seen: set[str] = set()
    unique = []
    for source in found:
        key = source.location if source.kind == "webcam" else str(Path(source.location).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(source)
    return unique


class VideoReader:
    """Decode a video file or a webcam frame by frame as ``(3, H, W)`` uint8 RGB tensors (a context manager).

    A damaged frame raises a ``ValueError`` naming the file and frame, or with ``skip_bad`` is skipped with a
    warning; a file that ends before the frames its header announces (a truncated download, say) is reported with
    a warning.

    Args:
        source: A video or webcam source.
        skip_bad: Skip damaged frames (with a warning) instead of raising.

    Attributes:
        fps: Frame rate as an exact fraction (e.g. ``30000/1001``).
        size: ``(height, width)``.
        frame_count: Frames in the file as its header says (``None`` for a webcam or when unknown).
    """

    def __init__(self, source: Source, skip_bad: bool = False) -> None:
        _require_av(f"reading {source.kind} {source.location!r}")
        try:
            if source.kind == "webcam":
                if sys.platform.startswith("linux"):
                    self._container = av.open(f"/dev/video{source.location}", format="v4l2")
                elif sys.platform == "darwin":
                    self._container = av.open(source.location, format="avfoundation")
                else:
                    raise ValueError(
                        f"webcam {source.location}: reading webcams is supported on Linux and macOS; "
                        "record a video file and give its path"
                    )
            else:
                self._container = av.open(source.location)
        except (av.FFmpegError, OSError) as err:
            raise ValueError(f"could not open {source.kind} {source.location!r}: {err}") from err
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"{source.location!r} holds no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.source = source
        self.skip_bad = skip_bad
        rate = self._stream.average_rate or self._stream.guessed_rate or 25
        self.fps = Fraction(rate)
        self.size = (self._stream.height, self._stream.width)
        self.frame_count = (self._stream.frames or None) if source.kind == "video" else None

    def _damaged(self, index: int, err: Exception, rest: bool) -> None:
        """Raise for a damaged frame (``rest``: the file cannot be read past it), or warn under ``skip_bad``."""
        where = f"{self.source.kind} {self.source.location!r} frame {index}"
        if not self.skip_bad:
            raise ValueError(f"could not decode {where}: {err}") from err
        skipped = "the rest of the file" if rest else "the frame"
        _logger.warning("%s is damaged (%s); skipping %s", where, err, skipped)

    def indexed(self) -> Iterator[tuple[int, Tensor]]:
        """``(index, image)`` of each frame as it is decoded; a skipped damaged frame keeps its index, so later
        frames keep theirs."""
        index = 0
        try:
            for packet in self._container.demux(self._stream):
                try:
                    decoded = packet.decode()
                except av.FFmpegError as err:  # one damaged packet: the decoder carries on with the next
                    self._damaged(index, err, rest=False)
                    index += 1
                    continue
                for frame in decoded:
                    yield index, torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
                    index += 1
        except av.FFmpegError as err:  # the container itself is damaged: nothing after this point can be read
            self._damaged(index, err, rest=True)
        if self.frame_count is not None and index < self.frame_count:
            _logger.warning(
                "%s ended after %d of the %d frames its header announces; the file may be truncated",
                self.source.location,
                index,
                self.frame_count,
            )

    def __iter__(self) -> Iterator[Tensor]:
        return (image for _, image in self.indexed())

    def close(self) -> None:
        """Close the file or device."""
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoWriter:
    """Encode ``(3, H, W)`` uint8 RGB frames to an H.264 video (MP4, MKV or MOV) at ``fps`` (a context manager).

    Frames of odd width or height are padded by one pixel, as the YUV 4:2:0 format requires even sizes.
    """

    def __init__(self, path: str | os.PathLike, fps: Fraction | float, size: tuple[int, int]) -> None:
        _require_av(f"writing video {str(path)!r}")
        self.path = Path(path)
        self._container = av.open(str(self.path), mode="w")
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001 * 1000))
        height, width = size
        self._pad = (height % 2, width % 2)
        self._stream.height, self._stream.width = height + self._pad[0], width + self._pad[1]
        self._stream.pix_fmt = "yuv420p"
        self.frames = 0

    def write(self, image: Tensor) -> None:
        """Append one ``(3, H, W)`` uint8 RGB frame."""
        padded = torch.nn.functional.pad(image, (0, self._pad[1], 0, self._pad[0]))
        frame = av.VideoFrame.from_ndarray(padded.permute(1, 2, 0).contiguous().numpy(), format="rgb24")
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self._container.mux(self._stream.encode())
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Inputs = Source | str | int | os.PathLike | Sequence[Source | str | int | os.PathLike]


def sources_of(inputs: Inputs) -> list[Source]:
    """The sources of ``inputs``: :class:`Source` objects as given, anything else through :func:`find_sources`."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    return [s for item in items for s in ([item] if isinstance(item, Source) else find_sources([item]))]


def read_frames(inputs: Inputs, skip_bad: bool = False) -> Iterator[Frame]:
    """The frames of ``inputs`` (see :func:`find_sources`) in order: one per image, every frame of a video or
    webcam as it is decoded.

    Args:
        inputs: Paths, patterns, webcam indices or :class:`Source` objects.
        skip_bad: Skip an image, video or frame that cannot be read, with a warning, instead of raising.

    Raises:
        ValueError: An input or frame that cannot be decoded (unless ``skip_bad``).
        FileNotFoundError: An input that is gone.
    """
    for source in sources_of(inputs):
        try:
            if source.kind == "image":
                image = load_image(source.location)
            else:
                reader = VideoReader(source, skip_bad)
        except (ValueError, OSError) as err:
            if not skip_bad:
                raise
            _logger.warning("skipping %s %r: %s", source.kind, source.location, err)
            continue
        if source.kind == "image":
            yield Frame(image, source)
            continue
        with reader:
            for index, image in reader.indexed():
                yield Frame(image, source, index, reader.fps)


def _frame_table(value: Mapping[object, object], key: str) -> dict[int, object]:
    """A video's boxes by frame index: keys are non-negative integers or strings of digits (JSON's keys)."""
    table = {}
    for frame, boxes in value.items():
        if isinstance(frame, bool) or not (isinstance(frame, int) or (isinstance(frame, str) and frame.isdigit())):
            raise ValueError(f"boxes of {key!r}: frame keys must be frame indices (0, 1, ...), got {frame!r}")
        if int(frame) < 0:
            raise ValueError(f"boxes of {key!r}: frame indices start at 0, got {frame}")
        table[int(frame)] = boxes
    return table


class GivenBoxes:
    """Person boxes given by input, matched to the run's sources; frames without boxes go to the detector.

    ``boxes`` maps an input, by its path (as given, or any path to the same file) or its file name, to its boxes:
    for an image a box list; for a video or webcam either one box list for every frame, or a table from frame
    index to box list (``{"clip.mp4": {"0": [[x, y, w, h]], "12": [...]}}``), the frames it does not name going to
    the detector. ``None`` in place of a box list also means the detector.

    Args:
        boxes: The mapping (``None``: no boxes).
        sources: The run's sources.
        convert: Applied once to every box list (checking and converting it); its errors name the entry.

    Raises:
        ValueError: A key that matches no input (all such keys are named), a frame table for an image, frame keys
            that are not frame indices, or an error of ``convert``.
    """

    def __init__(
        self,
        boxes: Mapping[str | int | os.PathLike, object] | None,
        sources: Sequence[Source],
        convert: Callable[[object], object] | None = None,
    ) -> None:
        if boxes is not None and not isinstance(boxes, Mapping):
            raise ValueError(f"boxes must map inputs (paths or file names) to their boxes, got {type(boxes).__name__}")
        named = {os.fspath(k) if isinstance(k, os.PathLike) else str(k): v for k, v in (boxes or {}).items()}
        by_path = {Path(k).resolve(): k for k in named}
        self._convert = convert
        self._every: dict[Source, object] = {}
        self._frames: dict[Source, dict[int, object]] = {}
        self._asked: set[tuple[Source, int]] = set()
        used: set[str] = set()
        for source in sources:
            key = _key_of(source, named, by_path)
            if key is None:
                continue
            used.add(key)
            value = named[key]
            if not isinstance(value, Mapping):
                self._every[source] = self._converted(value, repr(key))
            elif source.kind == "image":
                raise ValueError(f"boxes of image {key!r} must be a list of boxes, not a table of frames")
            else:
                table = _frame_table(value, key)
                self._frames[source] = {i: self._converted(b, f"{key!r} frame {i}") for i, b in table.items()}
        unknown = [k for k in named if k not in used]
        if unknown:
            raise ValueError(
                f"boxes are given for {', '.join(map(repr, unknown))}, which match(es) none of the inputs; name each "
                "input by its path or file name"
            )

    def _converted(self, boxes: object, where: str) -> object:
        if boxes is None or self._convert is None:
            return boxes
        try:
            return self._convert(boxes)
        except ValueError as err:
            raise ValueError(f"boxes of {where}: {err}") from err

    def __call__(self, frame: Frame) -> object | None:
        """The boxes of ``frame``, or ``None`` (its persons come from the detector)."""
        if self._every.get(frame.source) is not None:
            return self._every[frame.source]
        self._asked.add((frame.source, frame.index))
        return self._frames.get(frame.source, {}).get(frame.index)

    def unused(self) -> dict[Source, list[int]]:
        """Per video, the frame indices given boxes that no frame asked for (the video ended before them)."""
        unused = {s: sorted(i for i in table if (s, i) not in self._asked) for s, table in self._frames.items()}
        return {source: frames for source, frames in unused.items() if frames}

    def warn_unused(self) -> None:
        """Log a warning for each video whose boxes name frames it did not have: never drop boxes in silence."""
        for source, frames in self.unused().items():
            shown = ", ".join(map(str, frames[:8])) + (f" (+{len(frames) - 8} more)" if len(frames) > 8 else "")
            _logger.warning(
                "boxes of %r name frames %s, which %s did not have; they were not used",
                source.location,
                shown,
                source.location,
            )

    def covers(self, source: Source) -> bool:
        """Whether every frame of ``source`` has boxes (no detector is needed for it)."""
        return self._every.get(source) is not None


def _key_of(source: Source, boxes: Mapping[str, object], by_path: Mapping[Path, str]) -> str | None:
    """The key of ``boxes`` that names ``source``: its location as found, another path to it, or its file name."""
    if source.location in boxes:
        return source.location
    if source.kind == "webcam":
        return None
    path = Path(source.location)
    return by_path.get(path.resolve(), path.name if path.name in boxes else None)
