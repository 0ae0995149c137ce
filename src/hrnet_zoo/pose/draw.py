"""Drawing keypoints and skeletons on images, left, right and centre in their own colours."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import draw_bounding_boxes

from ..io.images import load_image

__all__ = ["PALETTE", "draw_poses"]

#: Colours of left, right and centre keypoints and limbs (a limb joining two sides is drawn as centre).
PALETTE = {"left": "deepskyblue", "right": "orangered", "centre": "lime"}


def _side(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith(("left", "l_")):
        return "left"
    if lowered.startswith(("right", "r_")):
        return "right"
    return "centre"


def _write_labels(image: Tensor, boxes: np.ndarray, labels: Sequence[str], size: int) -> Tensor:
    """``labels`` written in ``size`` px text on an orange band above each ``(4,)`` xyxy box (inside the image)."""
    canvas = Image.fromarray(image.permute(1, 2, 0).numpy())
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=size)
    for (x0, y0, _, _), text in zip(boxes.tolist(), labels):
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x, y = max(0.0, x0), max(0.0, y0 - (bottom - top) - 4)
        draw.rectangle((x, y, x + right - left + 4, y + bottom - top + 4), fill="orange")
        draw.text((x + 2 - left, y + 2 - top), text, fill="black", font=font)
    return torch.from_numpy(np.array(canvas)).permute(2, 0, 1)


def draw_poses(
    image: Tensor | np.ndarray | Image.Image,
    keypoints: Tensor | np.ndarray,
    skeleton: Sequence[tuple[int, int]] = (),
    boxes: Tensor | np.ndarray | None = None,
    score_threshold: float = 0.3,
    color: str | None = None,
    radius: int | None = None,
    width: int | None = None,
    keypoint_names: Sequence[str] = (),
    labels: Sequence[str] = (),
) -> Tensor:
    """Draw poses on an image.

    Args:
        image: RGB image: a ``(3, H, W)`` uint8 tensor, an ``(H, W, 3)`` uint8 array or a PIL image.
        keypoints: ``(P, K, 3)`` with (x, y, score) per joint; joints scoring below ``score_threshold`` are hidden.
        skeleton: Joint index pairs to connect.
        boxes: Optional ``(P, 4)`` ``xyxy`` person boxes to outline.
        score_threshold: Minimum score of a drawn joint.
        color: One colour for everything; by default left, right and centre parts get :data:`PALETTE`'s
            colours (sides are read from ``keypoint_names``: ``left_*`` / ``right_*``).
        radius: Joint radius in pixels; by default it grows with the image (2 px at 400 px).
        width: Limb width in pixels; by default it grows with the image.
        keypoint_names: Names of the ``K`` joints, for the left/right/centre palette.
        labels: Text written above each box (say, ``"#3"`` for track 3); needs ``boxes``, one label per box.

    Returns:
        A new ``(3, H, W)`` uint8 image.
    """
    out = load_image(image).cpu()
    keypoints = torch.as_tensor(np.asarray(keypoints, dtype=np.float32))
    side = max(1, min(out.shape[-2:]) // 200)
    radius = radius if radius is not None else max(2, side)
    width = width if width is not None else max(1, side)
    if labels and (boxes is None or len(labels) != len(boxes)):
        raise ValueError(f"got {len(labels)} labels for {0 if boxes is None else len(boxes)} boxes: give one per box")
    if boxes is not None and len(boxes):
        out = draw_bounding_boxes(out, torch.as_tensor(boxes, dtype=torch.float32), colors="orange", width=width)
    if labels:
        out = _write_labels(out, np.asarray(boxes, dtype=np.float32), labels, size=max(12, 6 * side))
    if not len(keypoints):
        return out
    visible = (keypoints[..., 2] >= score_threshold).tolist()
    sides = [_side(n) for n in keypoint_names] if len(keypoint_names) == keypoints.shape[1] else []
    joint_colour = [color or PALETTE[sides[k] if sides else "centre"] for k in range(keypoints.shape[1])]
    canvas = Image.fromarray(out.permute(1, 2, 0).numpy())
    draw = ImageDraw.Draw(canvas)
    for person, shown in zip(keypoints[..., :2].tolist(), visible):
        for a, b in skeleton:  # torchvision's draw_keypoints draws every limb white: limbs are drawn here
            if shown[a] and shown[b]:
                limb = joint_colour[a] if joint_colour[a] == joint_colour[b] else color or PALETTE["centre"]
                draw.line((tuple(person[a]), tuple(person[b])), fill=limb, width=width)
        for k, (x, y) in enumerate(person):
            if shown[k]:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=joint_colour[k])
    return torch.from_numpy(np.array(canvas)).permute(2, 0, 1)
