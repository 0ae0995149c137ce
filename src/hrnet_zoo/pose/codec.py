"""Heatmap codecs: flip test, peak decoding (argmax with quarter offset, DARK) and the way back to the image.

Everything is batched and runs on the heatmaps' device: no per-person or per-joint Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .transforms import apply_affine, get_affine_transform

__all__ = [
    "Decoder",
    "decode_argmax",
    "decode_dark",
    "decode_heatmaps",
    "flip_back",
    "get_max_preds",
    "heatmap_to_image",
    "shift_flipped",
]

Decoder = Literal["argmax", "dark"]


def flip_back(heatmaps: Tensor, flip_index: Sequence[int]) -> Tensor:
    """Heatmaps of a horizontally flipped input, mirrored back and with left/right joints swapped.

    Shapes: ``(N, K, H, W) -> (N, K, H, W)``; ``flip_index[k]`` is the mirror joint of ``k``.
    """
    return heatmaps.flip(-1)[:, list(flip_index)]


def shift_flipped(heatmaps: Tensor) -> Tensor:
    """The original's ``SHIFT_HEATMAP``: move flipped-back heatmaps one pixel right to undo the flip's offset."""
    return torch.cat([heatmaps[..., :1], heatmaps[..., :-1]], dim=-1)


def get_max_preds(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Integer peak of each heatmap, as the original's ``get_max_preds``.

    Returns:
        ``coords`` ``(N, K, 2)`` (x, y) in heatmap pixels, ``(0, 0)`` where the maximum is not positive, and
        ``scores`` ``(N, K)``: the maxima.
    """
    n, k, _, width = heatmaps.shape
    if n * k == 0:
        return heatmaps.new_zeros(n, k, 2), heatmaps.new_zeros(n, k)
    # A global max pool returns the first maximum's flat index like argmax, and is faster on the CPU.
    scores, index = F.adaptive_max_pool2d(heatmaps, 1, return_indices=True)
    scores, index = scores.view(n, k), index.view(n, k)
    coords = torch.stack([index % width, torch.div(index, width, rounding_mode="floor")], dim=2).to(heatmaps.dtype)
    return coords * (scores > 0).unsqueeze(-1), scores


def _values_at(heatmaps: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``heatmaps[n, k, y[n, k], x[n, k]]`` for integer ``(N, K)`` indices (clamped to the map)."""
    h, w = heatmaps.shape[-2:]
    flat = (y.clamp(0, h - 1) * w + x.clamp(0, w - 1)).long()
    return heatmaps.flatten(2).gather(2, flat.unsqueeze(-1)).squeeze(-1)


def decode_argmax(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Argmax plus a quarter-pixel step towards the higher neighbour (the original ``get_final_preds``).

    Shapes: ``(N, K, H, W) -> coords (N, K, 2)`` in heatmap pixels, ``scores (N, K)``.
    """
    coords, scores = get_max_preds(heatmaps)
    h, w = heatmaps.shape[-2:]
    px, py = torch.floor(coords + 0.5).long().unbind(-1)
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    dx = _values_at(heatmaps, px + 1, py) - _values_at(heatmaps, px - 1, py)
    dy = _values_at(heatmaps, px, py + 1) - _values_at(heatmaps, px, py - 1)
    step = torch.stack([torch.sign(dx), torch.sign(dy)], dim=-1) * 0.25
    return coords + step * inside.unsqueeze(-1), scores


def _gaussian_kernel(kernel_size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    sigma = 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8  # OpenCV's default for a given kernel size
    x = torch.arange(kernel_size, dtype=torch.float64, device=device) - (kernel_size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def decode_dark(heatmaps: Tensor, kernel_size: int = 11) -> tuple[Tensor, Tensor]:
    """DARK: distribution-aware decoding (Zhang et al., CVPR 2020).

    Each heatmap is smoothed with a Gaussian (rescaled to keep its maximum), log-transformed, and the argmax is
    refined by one Newton step of the second-order Taylor expansion: ``offset = -H^-1 g``.

    Shapes: ``(N, K, H, W) -> coords (N, K, 2)`` in heatmap pixels, ``scores (N, K)`` (the raw maxima).
    """
    coords, scores = get_max_preds(heatmaps)
    n, k, h, w = heatmaps.shape
    if n * k == 0:
        return coords, scores
    g = _gaussian_kernel(kernel_size, heatmaps.dtype, heatmaps.device)
    pad = kernel_size // 2
    maps = heatmaps.reshape(n * k, 1, h, w)
    smooth = F.conv2d(F.pad(maps, (pad, pad, 0, 0), mode="reflect"), g.view(1, 1, 1, -1))
    smooth = F.conv2d(F.pad(smooth, (0, 0, pad, pad), mode="reflect"), g.view(1, 1, -1, 1)).reshape(n, k, h, w)
    peak = heatmaps.flatten(2).amax(2)[..., None, None]
    smooth = smooth * (peak / smooth.flatten(2).amax(2)[..., None, None])
    logs = smooth.clamp(min=1e-10).log()
    px, py = coords.long().unbind(-1)

    def at(dx: int, dy: int) -> Tensor:
        return _values_at(logs, px + dx, py + dy)

    dx = 0.5 * (at(1, 0) - at(-1, 0))
    dy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    dyy = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    valid = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2) & (det != 0)
    safe = torch.where(valid, det, torch.ones_like(det))
    offset_x = -(dyy * dx - dxy * dy) / safe
    offset_y = -(dxx * dy - dxy * dx) / safe
    offset = torch.stack([offset_x, offset_y], dim=-1) * valid.unsqueeze(-1)
    return coords + offset, scores


def decode_heatmaps(heatmaps: Tensor, decoder: Decoder = "argmax") -> tuple[Tensor, Tensor]:
    """Decode with ``"argmax"`` (:func:`decode_argmax`) or ``"dark"`` (:func:`decode_dark`)."""
    if decoder == "argmax":
        return decode_argmax(heatmaps)
    if decoder == "dark":
        return decode_dark(heatmaps)
    raise ValueError(f"decoder must be 'argmax' or 'dark', got {decoder!r}")


def heatmap_to_image(coords: Tensor, center: Tensor, scale: Tensor, heatmap_size: tuple[int, int]) -> Tensor:
    """Map ``(N, K, 2)`` heatmap coordinates back to image pixels for crops given by ``center``/``scale``.

    ``heatmap_size`` is ``(height, width)``. Computed in float64, returned in ``coords``' dtype.
    """
    inverse = get_affine_transform(center, scale, heatmap_size, inverse=True).to(coords.device)
    return apply_affine(coords.double(), inverse).to(coords.dtype)
