"""Heatmap targets: Gaussian heatmaps and per-joint target weights, batched on the tensors' device.

Three encodings, each equal to its reference: the original's ``generate_target`` (``"msra"``), DARK's unbiased
encoding (``"unbiased"``, mmpose 0.x ``unbiased_encoding=True``) and UDP (``"udp"``, mmpose 0.x
``_udp_generate_target``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = ["Encoding", "encode_heatmaps"]

Encoding = Literal["msra", "unbiased", "udp"]


def encode_heatmaps(
    joints: Tensor,
    visible: Tensor,
    input_size: tuple[int, int],
    heatmap_size: tuple[int, int],
    sigma: float = 2.0,
    encoding: Encoding = "msra",
) -> tuple[Tensor, Tensor]:
    """Gaussian heatmap targets for joints given in network-input pixels.

    - ``"msra"`` (the original): stride ``input / heatmap``, centre rounded to the nearest heatmap pixel
      (``int(x / stride + 0.5)``), Gaussian cut to a ``6 * sigma + 1`` window.
    - ``"unbiased"`` (DARK): stride ``input / heatmap``, Gaussian over the whole map at the exact sub-pixel centre.
    - ``"udp"``: stride ``(input - 1) / (heatmap - 1)``, window placed as ``"msra"``, Gaussian at the exact centre.

    A joint whose window lies entirely outside the heatmap gets weight 0, as does one with ``visible <= 0.5``.

    Args:
        joints: ``(N, K, 2)`` x, y in input pixels.
        visible: ``(N, K)`` visibility.
        input_size: Network input ``(height, width)``.
        heatmap_size: ``(height, width)`` of the heatmaps.
        sigma: Gaussian standard deviation in heatmap pixels.
        encoding: ``"msra"``, ``"unbiased"`` or ``"udp"``.

    Returns:
        ``targets`` ``(N, K, h, w)`` and ``weights`` ``(N, K)``, on ``joints``' device, float32.
    """
    if encoding not in ("msra", "unbiased", "udp"):
        raise ValueError(f"encoding must be 'msra', 'unbiased' or 'udp', got {encoding!r}")
    joints = joints.float()
    (in_h, in_w), (hm_h, hm_w) = input_size, heatmap_size
    if encoding == "udp":
        stride = joints.new_tensor([(in_w - 1.0) / (hm_w - 1.0), (in_h - 1.0) / (hm_h - 1.0)])
    else:
        stride = joints.new_tensor([in_w / hm_w, in_h / hm_h])
    exact = joints / stride
    radius = int(sigma * 3)
    if encoding == "unbiased":
        upper_left, bottom_right = exact - 3 * sigma, exact + 3 * sigma + 1
        mu = exact
    else:
        center = torch.trunc(exact + 0.5)
        upper_left, bottom_right = torch.trunc(center - radius), torch.trunc(center + radius + 1)
        mu = exact if encoding == "udp" else center
    outside = (upper_left[..., 0] >= hm_w) | (upper_left[..., 1] >= hm_h) | (bottom_right[..., 0] < 0)
    outside |= bottom_right[..., 1] < 0
    weights = (visible.float() > 0.5).float() * (~outside).float()
    xs = torch.arange(hm_w, device=joints.device, dtype=torch.float32)
    ys = torch.arange(hm_h, device=joints.device, dtype=torch.float32)
    gx = torch.exp(-((xs - mu[..., 0:1]) ** 2) / (2 * sigma**2))  # (N, K, w)
    gy = torch.exp(-((ys - mu[..., 1:2]) ** 2) / (2 * sigma**2))  # (N, K, h)
    if encoding != "unbiased":
        gx = gx * ((xs >= upper_left[..., 0:1]) & (xs < bottom_right[..., 0:1]))
        gy = gy * ((ys >= upper_left[..., 1:2]) & (ys < bottom_right[..., 1:2]))
    targets = gy.unsqueeze(-1) * gx.unsqueeze(-2) * weights[..., None, None]
    return targets, weights
