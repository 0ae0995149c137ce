"""The poses found in one image: keypoints in image pixels, boxes, scores, and ways to draw and export them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import box_convert

from .._utils import coco_keypoint_result
from ..io.images import Channels, ImageLike, load_image
from ..keypoint_formats import KEYPOINT_FORMATS, convert_keypoints, keypoint_format
from ..keypoints import KeypointSet
from .draw import draw_poses

__all__ = ["PoseResult", "converted_set"]


def _format_of(names: Sequence[str]) -> str:
    """The keypoint format whose joints are ``names``, or a ``ValueError`` naming the formats there are."""
    for name in KEYPOINT_FORMATS:
        if keypoint_format(name).names == tuple(names):
            return name
    raise ValueError(
        f"only poses of the keypoint formats {', '.join(KEYPOINT_FORMATS)} convert, and these {len(names)} joints "
        f"({', '.join(names[:3])}...) are none of them"
    )


def converted_set(keypoints: KeypointSet, target: str) -> KeypointSet:
    """The keypoint set of ``target``, checking that poses of ``keypoints`` convert to it (raises ``ValueError``
    otherwise, naming the formats)."""
    _format_of(keypoints.names)
    return keypoint_format(target)


@dataclass
class PoseResult:
    """Poses found in one image.

    Attributes:
        keypoints: ``(P, K, 3)`` float32: x, y in image pixels and the heatmap peak score of each joint.
        boxes: ``(P, 4)`` float32 person boxes in ``xyxy`` pixels (given, detected, or the whole image).
        scores: ``(P,)`` mean joint score per person.
        box_scores: ``(P,)`` the detector's score of each box (1 for given boxes and the whole image).
        areas: ``(P,)`` area in pixels of each person's crop region (box fitted to the input's aspect ratio,
            padded 1.25x), the person area the original's OKS-NMS uses.
        keypoint_names: Names of the ``K`` joints.
        skeleton: Joint pairs for drawing.
        image_size: ``(height, width)`` of the image.
        track_ids: ``(P,)`` int64 track id of each person, when the poses come from a tracked stream
            (``PoseEstimator.stream(..., track=True)``): the same person keeps the same id from frame to frame, and
            an id is never given to another person within a run. ``None`` without tracking.
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    box_scores: np.ndarray
    areas: np.ndarray
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    image_size: tuple[int, int]
    track_ids: np.ndarray | None = None

    def __len__(self) -> int:
        """Number of persons."""
        return len(self.keypoints)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> PoseResult:
        """The result restricted to person ``index``, a slice of persons, or the persons an index array or boolean
        mask selects."""
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(f"person {index} out of range for {len(self)} persons")
            index = slice(int(index) % len(self), int(index) % len(self) + 1)
        elif not isinstance(index, slice):
            index = np.asarray(index)
        fields = ("keypoints", "boxes", "scores", "box_scores", "areas", *(("track_ids",) if self.tracked else ()))
        return replace(self, **{name: getattr(self, name)[index] for name in fields})

    @property
    def tracked(self) -> bool:
        """Whether the persons carry track ids."""
        return self.track_ids is not None

    def __repr__(self) -> str:
        height, width = self.image_size
        return f"PoseResult({len(self)} persons x {len(self.keypoint_names)} keypoints, image {width}x{height})"

    def plot(self, image: ImageLike, score_threshold: float = 0.3, channels: Channels = "rgb") -> Tensor:
        """The poses drawn on ``image`` (the image they were estimated on), with each person's track id above their
        box when tracked: a ``(3, H, W)`` uint8 tensor."""
        rgb = load_image(image, channels)
        if tuple(rgb.shape[-2:]) != tuple(self.image_size):
            raise ValueError(f"the image is {tuple(rgb.shape[-2:])}, the poses were found on {self.image_size}")
        labels = [f"#{i}" for i in self.track_ids.tolist()] if self.tracked else ()
        return draw_poses(
            rgb,
            self.keypoints,
            self.skeleton,
            self.boxes,
            score_threshold,
            keypoint_names=self.keypoint_names,
            labels=labels,
        )

    def convert(self, target: str) -> PoseResult:
        """The poses in keypoint format ``target`` (``"openpose18"``, ``"body25"``, ``"h36m"``, ``"halpe26"``...;
        see :func:`hrnet_zoo.keypoint_formats.convert_keypoints`): keypoints ``(P, K', 3)`` with that format's
        names and skeleton; boxes, scores and track ids as they are."""
        converted = convert_keypoints(self.keypoints, _format_of(self.keypoint_names), target)
        target_set = keypoint_format(target)
        return replace(self, keypoints=converted, keypoint_names=target_set.names, skeleton=target_set.skeleton)

    def to_coco(self, image_id: int, category_id: int = 1) -> list[dict]:
        """The poses in COCO keypoint results format, as pycocotools ``loadRes`` reads them (``bbox`` as ``xywh``,
        ``score`` the mean joint score, the detector's ``box_score``, and ``track_id`` when tracked)."""
        results = []
        track_ids = self.track_ids.tolist() if self.tracked else [None] * len(self)
        xywh = box_convert(torch.as_tensor(self.boxes, dtype=torch.float64).reshape(-1, 4), "xyxy", "xywh").tolist()
        for kpts, box, score, box_score, track_id in zip(self.keypoints, xywh, self.scores, self.box_scores, track_ids):
            extra = {"box_score": round(float(box_score), 5), "bbox": [round(v, 2) for v in box]}
            if track_id is not None:
                extra["track_id"] = track_id
            results.append(coco_keypoint_result(image_id, kpts, round(float(score), 5), category_id, **extra))
        return results
