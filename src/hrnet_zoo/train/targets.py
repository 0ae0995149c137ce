"""Target encoding: Gaussian heatmaps and per-joint target weights, batched on the tensors' device."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["encode_heatmaps"]


def encode_heatmaps(
    joints: Tensor,
    visible: Tensor,
    input_size: tuple[int, int],
    heatmap_size: tuple[int, int] | None = None,
    sigma: float = 2.0,
    unbiased: bool = False,
) -> tuple[Tensor, Tensor]:
    """Gaussian heatmap targets for joints in network-input pixels, as the original ``generate_target``.

    The default follows the original exactly: the centre is rounded to the nearest heatmap pixel
    (``int(x / stride + 0.5)``), the Gaussian is cut to a ``6 * sigma + 1`` window, and a joint whose window lies
    entirely outside the heatmap gets weight 0. ``unbiased=True`` is UDP-style encoding (Huang et al., CVPR 2020):
    the stride is ``(input - 1) / (heatmap - 1)`` and the Gaussian is centred at the exact sub-pixel location.

    Args:
        joints: ``(N, K, 2)`` x, y in input pixels.
        visible: ``(N, K)``; joints with ``visible > 0.5`` get a target (weight 1).
        input_size: Network input ``(height, width)``.
        heatmap_size: ``(height, width)`` of the heatmaps; a quarter of the input by default.
        sigma: Gaussian standard deviation in heatmap pixels.
        unbiased: UDP-style encoding instead of the original's rounding.

    Returns:
        ``targets`` ``(N, K, h, w)`` and ``weights`` ``(N, K)``, on ``joints``' device, float32.
    """
    joints = joints.float()
    if heatmap_size is None:
        heatmap_size = (input_size[0] // 4, input_size[1] // 4)
    (in_h, in_w), (hm_h, hm_w) = input_size, heatmap_size
    if unbiased:
        stride = joints.new_tensor([(in_w - 1.0) / (hm_w - 1.0), (in_h - 1.0) / (hm_h - 1.0)])
        exact = joints / stride
        center = torch.trunc(exact + 0.5)
        mu = exact
    else:
        stride = joints.new_tensor([in_w / hm_w, in_h / hm_h])
        center = torch.trunc(joints / stride + 0.5)
        mu = center
    radius = int(sigma * 3)
    upper_left = torch.trunc(center - radius)
    bottom_right = torch.trunc(center + radius + 1)
    outside = (upper_left[..., 0] >= hm_w) | (upper_left[..., 1] >= hm_h) | (bottom_right[..., 0] < 0)
    outside |= bottom_right[..., 1] < 0
    weights = (visible.float() > 0.5).float() * (~outside).float()
    xs = torch.arange(hm_w, device=joints.device, dtype=torch.float32)
    ys = torch.arange(hm_h, device=joints.device, dtype=torch.float32)
    dx = xs - mu[..., 0:1]  # (N, K, w)
    dy = ys - mu[..., 1:2]  # (N, K, h)
    in_x = (xs >= upper_left[..., 0:1]) & (xs < bottom_right[..., 0:1])
    in_y = (ys >= upper_left[..., 1:2]) & (ys < bottom_right[..., 1:2])
    gx = torch.exp(-(dx**2) / (2 * sigma**2)) * in_x
    gy = torch.exp(-(dy**2) / (2 * sigma**2)) * in_y
    targets = gy.unsqueeze(-1) * gx.unsqueeze(-2) * weights[..., None, None]
    return targets, weights
