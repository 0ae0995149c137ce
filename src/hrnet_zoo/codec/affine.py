"""Person boxes, affine crops and the inverse mapping, batched in torch, as in the original test pipeline.

The original describes a person by a ``center`` (x, y) in pixels and a ``scale`` (w, h) in units of
``PIXEL_STD = 200`` pixels; :func:`get_affine_transform` maps that region onto the network input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "PIXEL_STD",
    "apply_affine",
    "box_to_center_scale",
    "center_scale_to_box",
    "crop_affine",
    "get_affine_transform",
    "get_udp_transform",
    "region_area",
]

PIXEL_STD = 200.0


def box_to_center_scale(
    boxes: Tensor, input_size: tuple[int, int], box_format: str = "xywh", padding: float = 1.25
) -> tuple[Tensor, Tensor]:
    """Person boxes to the original's ``(center, scale)``: aspect ratio of the input, ``padding``, pixel std 200.

    Args:
        boxes: ``(N, 4)`` boxes in pixels, ``xywh`` (COCO) or ``xyxy``.
        input_size: Network input ``(height, width)``; the box is widened or heightened to its aspect ratio.
        box_format: ``"xywh"`` or ``"xyxy"``.
        padding: Enlargement factor (1.25 in the original).

    Returns:
        ``center`` ``(N, 2)`` in pixels and ``scale`` ``(N, 2)`` in units of 200 px.
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if box_format == "xyxy":
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1)
    elif box_format != "xywh":
        raise ValueError(f"box_format must be 'xywh' or 'xyxy', got {box_format!r}")
    x, y, w, h = boxes.unbind(1)
    center = torch.stack([x + w * 0.5, y + h * 0.5], dim=1)
    aspect = input_size[1] / input_size[0]
    w_fit = torch.where(w < aspect * h, h * aspect, w)
    h_fit = torch.where(w > aspect * h, w / aspect, h)
    scale = torch.stack([w_fit, h_fit], dim=1) / PIXEL_STD * padding
    return center, scale


def region_area(scale: Tensor) -> Tensor:
    """Area in pixels of the regions ``(N, 2)`` scales describe (the person area of the original's OKS-NMS)."""
    return scale[..., 0] * scale[..., 1] * PIXEL_STD**2


def center_scale_to_box(center: Tensor, scale: Tensor, padding: float = 1.25) -> Tensor:
    """``(N, 2)`` centers and scales back to ``(N, 4)`` ``xywh`` boxes (of the aspect-corrected region)."""
    size = scale * PIXEL_STD / padding
    return torch.cat([center - size / 2, size], dim=1)


def get_affine_transform(
    center: Tensor, scale: Tensor, output_size: tuple[int, int], rotation: Tensor | float = 0.0, inverse: bool = False
) -> Tensor:
    """The original's ``get_affine_transform``, batched.

    The region of width ``scale[:, 0] * 200`` around ``center``, rotated by ``rotation`` degrees
    (counter-clockwise), is mapped onto an ``output_size`` image with the same zoom along both axes. As in the
    original, three point pairs are formed in float32 and the matrix solved from them in float64, so results
    agree with it to float32 rounding of the points.

    Args:
        center: ``(N, 2)`` centers in pixels.
        scale: ``(N, 2)`` scales in units of 200 px (only the width sets the zoom, as in the original).
        output_size: ``(height, width)`` of the output.
        rotation: Degrees, scalar or ``(N,)``.
        inverse: Return the output-to-image mapping instead.

    Returns:
        ``(N, 2, 3)`` float64 matrices ``M`` with ``[u, v] = M @ [x, y, 1]``.
    """
    center = torch.as_tensor(center, dtype=torch.float32).reshape(-1, 2).cpu()
    scale = torch.as_tensor(scale, dtype=torch.float32).reshape(-1, 2).cpu()
    n = center.shape[0]
    theta = torch.as_tensor(rotation, dtype=torch.float64).expand(n) * (math.pi / 180.0)
    out_h, out_w = output_size
    half_src = scale[:, 0].double() * PIXEL_STD * -0.5
    src_dir = torch.stack([-half_src * torch.sin(theta), half_src * torch.cos(theta)], dim=1).float()
    src = _three_points(center, center + src_dir)
    dst_center = torch.tensor([out_w * 0.5, out_h * 0.5]).expand(n, 2)
    dst = _three_points(dst_center, dst_center + torch.tensor([0.0, out_w * -0.5]))
    if inverse:
        src, dst = dst, src
    # Solve [x, y, 1] @ M.T = [u, v] for the three pairs.
    ones = torch.ones(n, 3, 1, dtype=torch.float64)
    return torch.linalg.solve(torch.cat([src.double(), ones], dim=2), dst.double()).transpose(1, 2)


def get_udp_transform(
    center: Tensor, scale: Tensor, output_size: tuple[int, int], rotation: Tensor | float = 0.0, inverse: bool = False
) -> Tensor:
    """UDP's unbiased crop (mmpose's ``get_warp_matrix``), batched.

    The region of ``scale * 200`` pixels around ``center`` is mapped so that its extent spans
    ``output_size - 1`` pixels (pixel centres to pixel centres), rotated by ``rotation`` degrees.

    Returns:
        ``(N, 2, 3)`` float64 matrices, image-to-output (output-to-image with ``inverse=True``).
    """
    center = torch.as_tensor(center, dtype=torch.float64).reshape(-1, 2).cpu()
    size = torch.as_tensor(scale, dtype=torch.float64).reshape(-1, 2).cpu() * PIXEL_STD
    n = center.shape[0]
    theta = torch.as_tensor(rotation, dtype=torch.float64).expand(n) * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    out = torch.tensor([output_size[1] - 1.0, output_size[0] - 1.0], dtype=torch.float64)
    sx, sy = out[0] / size[:, 0], out[1] / size[:, 1]
    cx, cy = center.unbind(1)
    matrix = torch.stack(
        [
            torch.stack([cos * sx, -sin * sx, sx * (-cx * cos + cy * sin + 0.5 * size[:, 0])], dim=1),
            torch.stack([sin * sy, cos * sy, sy * (-cx * sin - cy * cos + 0.5 * size[:, 1])], dim=1),
        ],
        dim=1,
    )
    if not inverse:
        return matrix
    full = torch.cat([matrix, matrix.new_tensor([0.0, 0.0, 1.0]).expand(n, 1, 3)], dim=1)
    return torch.linalg.inv(full)[:, :2]


def _three_points(a: Tensor, b: Tensor) -> Tensor:
    """``(N, 3, 2)``: ``a``, ``b`` and ``b`` plus ``a - b`` turned by 90 degrees (the original's third point)."""
    d = a - b
    return torch.stack([a, b, b + torch.stack([-d[:, 1], d[:, 0]], dim=1)], dim=1)


def apply_affine(points: Tensor, matrices: Tensor) -> Tensor:
    """Map ``(N, K, 2)`` points by ``(N, 2, 3)`` affine matrices (computed in the points' dtype)."""
    matrices = matrices.to(points)
    return points @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]


def crop_affine(image: Tensor, matrices: Tensor, output_size: tuple[int, int]) -> Tensor:
    """Warp one image into ``N`` crops, as OpenCV's ``warpAffine`` (bilinear, zero border) but batched in torch.

    Args:
        image: ``(C, H, W)`` float image.
        matrices: ``(N, 2, 3)`` image-to-crop matrices (from :func:`get_affine_transform`).
        output_size: ``(height, width)`` of the crops.

    Returns:
        ``(N, C, height, width)`` crops on the image's device and dtype.
    """
    if image.dim() != 3:
        raise ValueError(f"crop_affine expects a (C, H, W) image, got shape {tuple(image.shape)}")
    n = matrices.shape[0]
    out_h, out_w = output_size
    _, in_h, in_w = image.shape
    # Output pixel centers -> image pixel coordinates (inverse of the 3x3 form) -> grid_sample's [-1, 1].
    full = torch.cat([matrices.double(), matrices.new_tensor([0.0, 0.0, 1.0]).double().expand(n, 1, 3)], dim=1)
    inverse = torch.linalg.inv(full)[:, :2].to(image.device)
    ys, xs = torch.meshgrid(
        torch.arange(out_h, dtype=torch.float64, device=image.device),
        torch.arange(out_w, dtype=torch.float64, device=image.device),
        indexing="ij",
    )
    grid = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(1, -1, 3) @ inverse.transpose(1, 2)
    norm = grid.new_tensor([2.0 / in_w, 2.0 / in_h])
    grid = ((grid + 0.5) * norm - 1.0).reshape(n, out_h, out_w, 2).to(image.dtype)
    return F.grid_sample(image.expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
