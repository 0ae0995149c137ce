"""The poses found in one image: keypoints in image pixels, boxes, scores, and ways to draw and export them."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from torch import Tensor

from .._utils import coco_keypoint_result
from ..io.images import Channels, ImageLike, load_image
from .draw import draw_poses

__all__ = ["PoseResult"]


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
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    box_scores: np.ndarray
    areas: np.ndarray
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        """Number of persons."""
        return len(self.keypoints)

    def __getitem__(self, index: int | slice) -> PoseResult:
        """The result restricted to person ``index`` (or a slice of persons)."""
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"person {index} out of range for {len(self)} persons")
            index = slice(index % len(self), index % len(self) + 1)
        persons = {name: getattr(self, name)[index] for name in ("keypoints", "boxes", "scores", "box_scores", "areas")}
        return replace(self, **persons)

    def __repr__(self) -> str:
        height, width = self.image_size
        return f"PoseResult({len(self)} persons x {len(self.keypoint_names)} keypoints, image {width}x{height})"

    def plot(self, image: ImageLike, score_threshold: float = 0.3, channels: Channels = "rgb") -> Tensor:
        """The poses drawn on ``image`` (the image they were estimated on): a ``(3, H, W)`` uint8 tensor."""
        rgb = load_image(image, channels)
        if tuple(rgb.shape[-2:]) != tuple(self.image_size):
            raise ValueError(f"the image is {tuple(rgb.shape[-2:])}, the poses were found on {self.image_size}")
        return draw_poses(
            rgb, self.keypoints, self.skeleton, self.boxes, score_threshold, keypoint_names=self.keypoint_names
        )

    def to_coco(self, image_id: int, category_id: int = 1) -> list[dict]:
        """The poses in COCO keypoint results format, as pycocotools ``loadRes`` reads them (``bbox`` as ``xywh``,
        ``score`` the mean joint score, and the detector's ``box_score``)."""
        results = []
        for kpts, box, score, box_score in zip(self.keypoints, self.boxes, self.scores, self.box_scores):
            x0, y0, x1, y1 = (float(v) for v in box)
            bbox = [round(v, 2) for v in (x0, y0, x1 - x0, y1 - y0)]
            record = coco_keypoint_result(
                image_id, kpts, round(float(score), 5), category_id, box_score=round(float(box_score), 5), bbox=bbox
            )
            results.append(record)
        return results
