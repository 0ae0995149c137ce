"""The bottom-up test geometry of DEKR and HigherHRNet: the whole image resized for the network, and the way back.

Reference (MIT): ``lib/utils/transforms.py``, the same in https://github.com/HRNet/DEKR and
https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation (``get_multi_scale_size``, ``resize_align_multi_scale``,
``get_final_preds``). Sizes are ``(height, width)`` here (the reference writes ``(width, height)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .affine import PIXEL_STD, crop_affine, get_affine_transform

__all__ = ["BottomUpResize", "bottom_up_resize"]


@dataclass(frozen=True, eq=False)
class BottomUpResize:
    """The reference's bottom-up test resize of one image at one scale (:func:`bottom_up_resize`).

    Attributes:
        size: ``(height, width)`` of the network input at this scale.
        base_size: ``(height, width)`` at scale 1, the pixels in which the decoders bring their maps together.
        center: ``(2,)`` float32 ``(x, y)`` of the region.
        scale: ``(2,)`` float64 ``(w, h)`` of the region, in units of 200 pixels.
    """

    size: tuple[int, int]
    base_size: tuple[int, int]
    center: Tensor
    scale: Tensor

    def matrix(self) -> Tensor:
        """``(2, 3)`` float64 image-to-input affine (``cv2.warpAffine``'s matrix in the reference)."""
        return get_affine_transform(self.center[None], self.scale[None], self.size)[0]

    def warp(self, image: Tensor) -> Tensor:
        """The network input: a ``(C, H, W)`` float image warped to ``(C, *size)`` (bilinear, zero border)."""
        return crop_affine(image, self.matrix()[None], self.size)[0]

    def to_image(self, keypoints: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """``(..., K, 2 + C)`` keypoints in the pixels of a ``size`` map (default ``base_size``) to image pixels
        (the reference's ``get_final_preds``), in float64 and back to their dtype; the extra channels are kept."""
        inverse = get_affine_transform(
            self.center[None], self.scale[None], self.base_size if size is None else size, inverse=True
        )[0].to(keypoints.device)
        xy = keypoints[..., :2].double() @ inverse[:, :2].T + inverse[:, 2]
        return torch.cat([xy.to(keypoints.dtype), keypoints[..., 2:]], dim=-1)


def _input_size(
    image_size: tuple[int, int], input_size: int, scale: float, min_scale: float
) -> tuple[tuple[int, int], Tensor]:
    """The reference's ``get_multi_scale_size`` less the center: ``(height, width)`` and the ``(2,)`` region."""
    h, w = image_size
    min_input = int((min_scale * input_size + 63) // 64 * 64)
    short, long = (w, h) if w < h else (h, w)
    short_resized = int(min_input * scale / min_scale)
    long_resized = int(int((min_input / short * long + 63) // 64 * 64) * scale / min_scale)
    short_region, long_region = short / PIXEL_STD, long_resized / short_resized * short / PIXEL_STD
    if w < h:
        return (long_resized, short_resized), torch.tensor([short_region, long_region], dtype=torch.float64)
    return (short_resized, long_resized), torch.tensor([long_region, short_region], dtype=torch.float64)


def bottom_up_resize(
    image_size: tuple[int, int], input_size: int, scale: float = 1.0, min_scale: float = 1.0
) -> BottomUpResize:
    """The resize of an ``image_size`` ``(height, width)`` image for an ``input_size`` network at test ``scale``.

    At ``min_scale`` (the smallest test scale) the short side becomes ``input_size`` rounded up to a multiple of 64
    and the long side keeps the aspect, rounded up to a multiple of 64; other scales multiply both by
    ``scale / min_scale``. The region is centred on the image: its short side the image's, its long side of the
    input's aspect.
    """
    h, w = image_size
    size, region = _input_size(image_size, input_size, scale, min_scale)
    center = torch.tensor([int(w / 2.0 + 0.5), int(h / 2.0 + 0.5)], dtype=torch.float32)
    return BottomUpResize(size, _input_size(image_size, input_size, 1.0, min_scale)[0], center, region)
