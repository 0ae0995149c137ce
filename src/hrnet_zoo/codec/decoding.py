"""Heatmap decoding: flip test, peaks (argmax with quarter offset, DARK, DARK-UDP), batched on the heatmaps' device.

No per-person or per-joint Python loop. References: the original ``get_final_preds`` (argmax), DarkPose's
``gaussian_blur`` + ``taylor`` (DARK, as in mmpose 0.x ``post_transforms``), and mmpose's ``post_dark_udp`` (UDP).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "decode_argmax",
    "decode_dark",
    "decode_dark_udp",
    "default_blur_kernel",
    "flip_back",
    "gaussian_blur",
    "get_max_preds",
    "shift_flipped",
]


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


def default_blur_kernel(heatmap_size: tuple[int, int]) -> int:
    """The blur kernel of the reference configurations for a ``(height, width)`` heatmap.

    11 up to 64 pixels (64x48, 64x64), 17 up to 96 (96x72), and in proportion (odd) beyond.
    """
    side = max(heatmap_size)
    if side <= 64:
        return 11
    if side <= 96:
        return 17
    return 2 * round(side * 17 / 96 / 2) + 1


def gaussian_blur(heatmaps: Tensor, kernel_size: int, padding: str = "zeros") -> Tensor:
    """OpenCV's ``GaussianBlur(ksize, sigma=0)`` of every heatmap: ``(N, K, H, W) -> (N, K, H, W)``.

    ``padding="zeros"`` is DARK's reference (the map is zero-padded before blurring); ``"reflect"`` is OpenCV's
    default border (``BORDER_REFLECT_101``), as ``post_dark_udp`` blurs.
    """
    if kernel_size % 2 != 1 or kernel_size < 1:
        raise ValueError(f"the blur kernel size must be a positive odd number, got {kernel_size}")
    if padding not in ("zeros", "reflect"):
        raise ValueError(f"padding must be 'zeros' or 'reflect', got {padding!r}")
    n, k, h, w = heatmaps.shape
    sigma = 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for a given kernel size
    x = torch.arange(kernel_size, dtype=torch.float64, device=heatmaps.device) - (kernel_size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = (g / g.sum()).to(heatmaps.dtype)
    pad = kernel_size // 2
    mode = "constant" if padding == "zeros" else "reflect"
    maps = heatmaps.reshape(n * k, 1, h, w)
    maps = F.conv2d(F.pad(maps, (pad, pad, 0, 0), mode=mode), g.view(1, 1, 1, -1))
    maps = F.conv2d(F.pad(maps, (0, 0, pad, pad), mode=mode), g.view(1, 1, -1, 1))
    return maps.reshape(n, k, h, w)


def decode_dark(heatmaps: Tensor, kernel_size: int = 11) -> tuple[Tensor, Tensor]:
    """DARK: distribution-aware decoding (Zhang et al., CVPR 2020), as its reference implementation.

    Each heatmap is zero-padded and blurred (:func:`gaussian_blur`), rescaled to its original maximum,
    log-transformed, and the raw argmax refined by one Newton step ``offset = -H^-1 g`` of the second-order Taylor
    expansion (peaks within two pixels of the border keep the argmax).

    Shapes: ``(N, K, H, W) -> coords (N, K, 2)`` in heatmap pixels, ``scores (N, K)`` (the raw maxima).
    """
    coords, scores = get_max_preds(heatmaps)
    n, k, h, w = heatmaps.shape
    if n * k == 0:
        return coords, scores
    smooth = gaussian_blur(heatmaps, kernel_size, "zeros")
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


def decode_dark_udp(
    heatmaps: Tensor, kernel_size: int = 11, padding: str = "zeros", exportable: bool = False
) -> tuple[Tensor, Tensor]:
    """DARK refinement of UDP (Huang et al., CVPR 2020), as mmpose measured it.

    The heatmaps are blurred, clipped to ``[0.001, 50]`` and log-transformed; the argmax takes one Newton step with
    derivatives from the edge-padded map and ``H + eps * I``. The blur is mmpose's choice of the version that
    measured a checkpoint's metrics: ``padding="zeros"`` is 1.x's ``refine_keypoints_dark_udp`` (each map
    zero-padded, blurred and rescaled to its maximum, as DARK blurs); ``"reflect"`` is 0.x's ``post_dark_udp``
    (OpenCV's reflected border, no rescaling). They differ for peaks within a blur radius of the border.
    ``exportable`` solves the 2x2 Newton system by Cramer's rule in float64 instead of ``torch.linalg.solve``, which
    has no ONNX form: the same steps, but non-finite coordinates where the Hessian is singular instead of an error.

    Shapes: ``(N, K, H, W) -> coords (N, K, 2)`` in heatmap pixels, ``scores (N, K)`` (the raw maxima).
    """
    coords, scores = get_max_preds(heatmaps)
    n, k, h, w = heatmaps.shape
    if n * k == 0:
        return coords, scores
    blurred = gaussian_blur(heatmaps, kernel_size, padding)
    if padding == "zeros":
        peak, blurred_peak = heatmaps.flatten(2).amax(2), blurred.flatten(2).amax(2)
        rescale = torch.where(blurred_peak != 0, peak / blurred_peak, torch.ones_like(peak))
        blurred = blurred * rescale[..., None, None]
    logs = blurred.clamp(min=0.001).clamp(max=50.0).log()  # one clamp(0.001, 50) fails the ONNX type promotion
    logs = F.pad(logs.reshape(n * k, 1, h, w), (1, 1, 1, 1), mode="replicate").reshape(n, k, h + 2, w + 2)
    px, py = coords.long().unbind(-1)

    def at(dx: int, dy: int) -> Tensor:
        return _values_at(logs, px + 1 + dx, py + 1 + dy)

    i, ix1, iy1, ix1y1 = at(0, 0), at(1, 0), at(0, 1), at(1, 1)
    ix1_, iy1_, ix1_y1_ = at(-1, 0), at(0, -1), at(-1, -1)
    dx = 0.5 * (ix1 - ix1_)
    dy = 0.5 * (iy1 - iy1_)
    dxx = ix1 - 2 * i + ix1_
    dyy = iy1 - 2 * i + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i + i - ix1_ - iy1_ + ix1_y1_)
    eps = torch.finfo(torch.float32).eps
    if exportable:
        a, b, d = (dxx + eps).double(), dxy.double(), (dyy + eps).double()
        gx, gy, det = dx.double(), dy.double(), a * d - b * b
        step = torch.stack([(d * gx - b * gy) / det, (a * gy - b * gx) / det], dim=-1)
    else:
        hessian = torch.stack([torch.stack([dxx + eps, dxy], -1), torch.stack([dxy, dyy + eps], -1)], -2)
        step = torch.linalg.solve(hessian.double(), torch.stack([dx, dy], -1).double().unsqueeze(-1)).squeeze(-1)
    return coords - step.to(coords.dtype), scores
