"""Where frames come from and where drawn videos go: image files, folders, glob patterns, video files, webcams.

Videos are read and written with PyAV (the optional ``[video]`` extra): its wheels carry FFmpeg with H.264, so
frame rates are exact fractions, output videos play everywhere, and nothing else needs installing. Frames are
decoded one at a time, so memory stays flat however long the video.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from ..io.images import load_image

try:
    import av
except ImportError:  # the [video] extra is not installed; still images work without it
    av = None

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Frame",
    "Inputs",
    "Source",
    "VideoReader",
    "VideoWriter",
    "find_sources",
    "read_frames",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


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
        elif not path.is_file():
            raise FileNotFoundError(f"input file {text!r} not found (give image or video files, folders, glob "
                                    "patterns or a webcam index)")  # fmt: skip
        else:
            found.append(_source(path))
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

    Attributes:
        fps: Frame rate as an exact fraction (e.g. ``30000/1001``).
        size: ``(height, width)``.
        frame_count: Frames in the file as its header says (``None`` for a webcam or when unknown).
    """

    def __init__(self, source: Source) -> None:
        _require_av(f"reading {source.kind} {source.location!r}")
        try:
            if source.kind == "webcam":
                if sys.platform.startswith("linux"):
                    self._container = av.open(f"/dev/video{source.location}", format="v4l2")
                elif sys.platform == "darwin":
                    self._container = av.open(source.location, format="avfoundation")
                else:
                    raise ValueError(f"webcam {source.location}: reading webcams is supported on Linux and macOS; "
                                     "record a video file and give its path")  # fmt: skip
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
        rate = self._stream.average_rate or self._stream.guessed_rate or 25
        self.fps = Fraction(rate)
        self.size = (self._stream.height, self._stream.width)
        self.frame_count = (self._stream.frames or None) if source.kind == "video" else None

    def __iter__(self) -> Iterator[Tensor]:
        try:
            for frame in self._container.decode(self._stream):
                yield torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
        except av.FFmpegError as err:
            raise ValueError(f"could not decode {self.source.location!r}: {err}") from err

    def close(self) -> None:
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


def read_frames(inputs: Inputs) -> Iterator[Frame]:
    """The frames of ``inputs`` (see :func:`find_sources`) in order: one per image, every frame of a video or
    webcam as it is decoded."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    sources = [s for item in items for s in ([item] if isinstance(item, Source) else find_sources([item]))]
    for source in sources:
        if source.kind == "image":
            yield Frame(load_image(source.location), source)
            continue
        with VideoReader(source) as reader:
            for index, image in enumerate(reader):
                yield Frame(image, source, index, reader.fps)
