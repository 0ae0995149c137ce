"""Drawing keypoints and skeletons on images (torchvision's ``draw_keypoints``) and saving them."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import draw_bounding_boxes, draw_keypoints

__all__ = ["draw_poses", "save_image"]


def draw_poses(
    image: Tensor,
    keypoints: Tensor | np.ndarray,
    skeleton: Sequence[tuple[int, int]] = (),
    boxes: Tensor | np.ndarray | None = None,
    score_threshold: float = 0.3,
    color: str = "lime",
    radius: int = 3,
    width: int = 2,
) -> Tensor:
    """Draw poses on a ``(3, H, W)`` uint8 image.

    Args:
        image: RGB uint8 image ``(3, H, W)``.
        keypoints: ``(P, K, 3)`` with (x, y, score) per joint; joints scoring below ``score_threshold`` are hidden.
        skeleton: Joint index pairs to connect.
        boxes: Optional ``(P, 4)`` ``xyxy`` person boxes to outline.
        score_threshold: Minimum score of a drawn joint.
        color: Colour of joints and limbs.
        radius: Joint radius in pixels.
        width: Limb width in pixels.

    Returns:
        A new ``(3, H, W)`` uint8 image.
    """
    keypoints = torch.as_tensor(keypoints, dtype=torch.float32).cpu()
    out = image.cpu()
    if boxes is not None and len(boxes):
        out = draw_bounding_boxes(out, torch.as_tensor(boxes, dtype=torch.float32), colors="orange", width=width)
    if len(keypoints):
        visible = keypoints[..., 2] >= score_threshold
        out = draw_keypoints(
            out, keypoints[..., :2], connectivity=list(skeleton) or None, colors=color, radius=radius, width=width,
            visibility=visible,
        )  # fmt: skip
    return out


def save_image(image: Tensor, path: str | os.PathLike) -> None:
    """Save a ``(3, H, W)`` uint8 image as PNG."""
    Image.fromarray(image.cpu().permute(1, 2, 0).numpy()).save(path, format="PNG")
