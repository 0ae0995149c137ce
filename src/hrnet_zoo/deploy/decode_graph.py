"""Keypoints decoded inside the graph: a top-down model whose forward also returns its codec's decoded peaks.

:class:`HeatmapDecoder` (or :func:`with_decoding`) wraps a model ``(B, 3, H, W) -> (B, K, h, w)`` so that it returns
``(heatmaps, keypoints)``; ``keypoints`` ``(B, K, 3)`` holds ``x, y`` in *heatmap* pixels and the score, equal to
``codec.decode(heatmaps)`` (``codec.to_image`` maps the coordinates to the image). Only tensor operations: no Python
loop over data, no ``.item()``, so ``torch.export`` and the ONNX exporter trace it with a dynamic batch dimension, and
deployments need not re-implement the decoding.

What matches the codec:

- ``decoding="argmax"``: exactly (the first maximum, the quarter step where the peak is inside, ``(0, 0)`` where the
  maximum is not positive).
- ``decoding="dark"`` and ``"udp"`` (either ``blur_padding``): the same blur (a separable convolution with the codec's
  kernel), log and Newton step; equal in PyTorch, within ``1e-3`` heatmap pixels in ONNX Runtime (its convolution
  sums in another order). UDP's 2x2 solve is written out (Cramer's rule in float64) instead of ``torch.linalg.solve``,
  which has no ONNX form; it differs only where the Hessian is singular (the codec raises there, this gives
  non-finite coordinates). Like ``decode_dark``, DARK gives NaN coordinates for an all-zero heatmap (0 / 0 rescale).

Flip test is not part of the graph: it needs a second forward pass of the mirrored images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..codec import HeatmapCodec

__all__ = [
    "DECODED_OUTPUT_NAMES",
    "HeatmapDecoder",
    "argmax_keypoints",
    "dark_keypoints",
    "dark_udp_keypoints",
    "with_decoding",
]

#: ONNX output names of a wrapped model: ``heatmaps`` ``(B, K, h, w)`` and ``keypoints`` ``(B, K, 3)``.
DECODED_OUTPUT_NAMES = ("heatmaps", "keypoints")


class HeatmapDecoder(nn.Module):
    """A top-down pose model that returns its heatmaps and their decoded keypoints.

    ``forward``: images ``(B, 3, H, W)`` -> ``heatmaps`` ``(B, K, h, w)`` and ``keypoints`` ``(B, K, 3)``: ``x, y``
    in heatmap pixels (as :meth:`HeatmapCodec.decode`; ``codec.to_image`` maps them to the image) and the score (the
    heatmap's maximum).

    Args:
        model: A top-down model with a :class:`~hrnet_zoo.codec.HeatmapCodec` in ``pose_meta.codec``.
        codec: The codec to decode with, e.g. ``model.pose_meta.at_input_size(size).codec`` when the model runs at
            another input size; ``model.pose_meta.codec`` by default.

    Raises:
        ValueError: The model has no heatmap codec (a bottom-up model: decode its outputs outside the graph with
            :func:`~hrnet_zoo.codec.decode_dekr` or :func:`~hrnet_zoo.codec.decode_associative_embedding`), or
            UDP's reflected blur is wider than its heatmaps (which the codec cannot decode either).
    """

    def __init__(self, model: nn.Module, codec: HeatmapCodec | None = None) -> None:
        super().__init__()
        if codec is None:
            meta = getattr(model, "pose_meta", None)
            codec = getattr(meta, "codec", None)
        if not isinstance(codec, HeatmapCodec):
            raise ValueError(
                f"in-graph decoding needs a top-down model with a HeatmapCodec (pose_meta.codec), got "
                f"{type(codec).__name__}; decode a bottom-up model's outputs outside the graph (decode_dekr or "
                "decode_associative_embedding)"
            )
        pad, side = codec.blur_kernel_size // 2, min(codec.heatmap_size)
        if codec.decoding == "udp" and codec.blur_padding == "reflect" and pad >= side:
            raise ValueError(
                f"blur_padding='reflect' with blur_kernel_size={codec.blur_kernel_size} needs heatmaps wider than "
                f"{pad} pixels, got {codec.heatmap_size}: use a smaller blur_kernel_size or blur_padding='zeros'"
            )
        self.model = model
        self.codec = codec
        self.training = model.training  # the mode of the model it wraps
        self.register_buffer("blur_kernel", _blur_kernel(codec.blur_kernel_size), persistent=False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 3, H, W)`` -> ``heatmaps`` ``(B, K, h, w)``, ``keypoints`` ``(B, K, 3)`` (x, y heatmap px, score)."""
        heatmaps = self.model(images)
        if tuple(heatmaps.shape[-2:]) != self.codec.heatmap_size:
            raise ValueError(
                f"heatmaps of size {tuple(heatmaps.shape[-2:])} do not match the codec's {self.codec.heatmap_size} "
                f"(input {self.codec.input_size}); pass codec=model.pose_meta.at_input_size(size).codec"
            )
        coords, scores = self.decode(heatmaps)
        return heatmaps, torch.cat([coords, scores.unsqueeze(-1)], dim=-1)

    def decode(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, K, h, w)`` -> ``coords`` ``(B, K, 2)`` in heatmap pixels and ``scores`` ``(B, K)``, as the codec."""
        kernel = self.blur_kernel.to(heatmaps.dtype)
        if self.codec.decoding == "argmax":
            return argmax_keypoints(heatmaps)
        if self.codec.decoding == "dark":
            return dark_keypoints(heatmaps, kernel)
        return dark_udp_keypoints(heatmaps, kernel, self.codec.blur_padding)

    def train(self, mode: bool = True) -> HeatmapDecoder:
        """Only the wrapped model has a training mode; decoding is the same in both."""
        self.training = mode
        self.model.train(mode)
        return self

    def extra_repr(self) -> str:
        return f"decoding={self.codec.decoding!r}, heatmap_size={self.codec.heatmap_size}"


def with_decoding(model: nn.Module, codec: HeatmapCodec | None = None) -> HeatmapDecoder:
    """``model`` returning ``(heatmaps, keypoints)``: see :class:`HeatmapDecoder`."""
    return HeatmapDecoder(model, codec)


def _blur_kernel(kernel_size: int) -> Tensor:
    """OpenCV's 1-D Gaussian (float64) for ``kernel_size``, as :func:`~hrnet_zoo.codec.gaussian_blur` blurs."""
    sigma = 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8
    x = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(heatmaps: Tensor, kernel: Tensor, padding: str) -> Tensor:
    """Separable blur of every map with the 1-D ``kernel``, zero- or reflect-padded: ``(B, K, h, w)`` -> same."""
    k, h, w = heatmaps.shape[1:]
    pad = kernel.shape[0] // 2
    mode = "constant" if padding == "zeros" else "reflect"
    maps = heatmaps.reshape(-1, 1, h, w)
    maps = F.conv2d(F.pad(maps, (pad, pad, 0, 0), mode=mode), kernel.view(1, 1, 1, -1))
    maps = F.conv2d(F.pad(maps, (0, 0, pad, pad), mode=mode), kernel.view(1, 1, -1, 1))
    return maps.reshape(-1, k, h, w)


def _peaks(heatmaps: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """First maximum of each map: integer ``x, y`` ``(B, K)`` (``0`` where the maximum is not positive), the same as
    float ``coords`` ``(B, K, 2)``, and ``scores`` ``(B, K)``."""
    width = heatmaps.shape[-1]
    flat = heatmaps.flatten(2)
    scores, index = flat.amax(2), flat.argmax(2)
    positive = scores > 0
    x = torch.where(positive, index % width, torch.zeros_like(index))
    y = torch.where(positive, torch.div(index, width, rounding_mode="floor"), torch.zeros_like(index))
    return x, y, torch.stack([x, y], dim=-1).to(heatmaps.dtype), scores


def _at(maps: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``maps[b, k, y[b, k], x[b, k]]`` for integer ``(B, K)`` indices, clamped to the map."""
    h, w = maps.shape[-2:]
    flat = y.clamp(0, h - 1) * w + x.clamp(0, w - 1)
    return maps.flatten(2).gather(2, flat.unsqueeze(-1)).squeeze(-1)


def _map_peak(maps: Tensor) -> Tensor:
    """Each map's maximum, ``(B, K, 1, 1)``."""
    return maps.flatten(2).amax(2)[..., None, None]


def argmax_keypoints(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Argmax plus a quarter pixel towards the higher neighbour where the peak is inside, as ``decode_argmax``.

    Shapes: ``(B, K, h, w)`` -> ``coords`` ``(B, K, 2)`` in heatmap pixels, ``scores`` ``(B, K)``.
    """
    h, w = heatmaps.shape[-2:]
    x, y, coords, scores = _peaks(heatmaps)
    inside = (x > 1) & (x < w - 1) & (y > 1) & (y < h - 1)
    dx = _at(heatmaps, x + 1, y) - _at(heatmaps, x - 1, y)
    dy = _at(heatmaps, x, y + 1) - _at(heatmaps, x, y - 1)
    step = torch.stack([torch.sign(dx), torch.sign(dy)], dim=-1) * 0.25
    return coords + step * inside.unsqueeze(-1).to(step.dtype), scores


def dark_keypoints(heatmaps: Tensor, kernel: Tensor) -> tuple[Tensor, Tensor]:
    """DARK, as ``decode_dark``: zero-padded blur rescaled to the map's maximum, log, one Newton step from the argmax
    (peaks within two pixels of the border keep it). ``kernel`` is the 1-D blur ``(S,)``.

    Shapes: ``(B, K, h, w)`` -> ``coords`` ``(B, K, 2)`` in heatmap pixels, ``scores`` ``(B, K)``.
    """
    h, w = heatmaps.shape[-2:]
    x, y, coords, scores = _peaks(heatmaps)
    smooth = _blur(heatmaps, kernel, "zeros")
    smooth = smooth * (_map_peak(heatmaps) / _map_peak(smooth))
    logs = smooth.clamp(min=1e-10).log()

    def at(dx: int, dy: int) -> Tensor:
        return _at(logs, x + dx, y + dy)

    gx = 0.5 * (at(1, 0) - at(-1, 0))
    gy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    dyy = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    valid = (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2) & (det != 0)
    safe = torch.where(valid, det, torch.ones_like(det))
    offset_x = -(dyy * gx - dxy * gy) / safe
    offset_y = -(dxx * gy - dxy * gx) / safe
    offset = torch.stack([offset_x, offset_y], dim=-1) * valid.unsqueeze(-1).to(det.dtype)
    return coords + offset, scores


def dark_udp_keypoints(heatmaps: Tensor, kernel: Tensor, padding: str = "zeros") -> tuple[Tensor, Tensor]:
    """DARK-UDP, as ``decode_dark_udp``: blur (``padding`` ``"zeros"``, rescaled to the maximum, or ``"reflect"``),
    clip to ``[0.001, 50]``, log, edge-padded derivatives and one Newton step with ``H + eps * I``, solved in
    float64. ``kernel`` is the 1-D blur ``(S,)``.

    Shapes: ``(B, K, h, w)`` -> ``coords`` ``(B, K, 2)`` in heatmap pixels, ``scores`` ``(B, K)``.
    """
    k, h, w = heatmaps.shape[1:]
    x, y, coords, scores = _peaks(heatmaps)
    blurred = _blur(heatmaps, kernel, padding)
    if padding == "zeros":
        peak, blurred_peak = _map_peak(heatmaps), _map_peak(blurred)
        blurred = blurred * torch.where(blurred_peak != 0, peak / blurred_peak, torch.ones_like(peak))
    logs = blurred.clamp(min=0.001).clamp(max=50.0).log()  # one clamp(0.001, 50) fails the ONNX type promotion
    logs = F.pad(logs.reshape(-1, 1, h, w), (1, 1, 1, 1), mode="replicate").reshape(-1, k, h + 2, w + 2)

    def at(dx: int, dy: int) -> Tensor:
        return _at(logs, x + 1 + dx, y + 1 + dy)

    i, ix1, iy1, ix1y1 = at(0, 0), at(1, 0), at(0, 1), at(1, 1)
    ix1_, iy1_, ix1_y1_ = at(-1, 0), at(0, -1), at(-1, -1)
    gx = 0.5 * (ix1 - ix1_)
    gy = 0.5 * (iy1 - iy1_)
    dxx = ix1 - 2 * i + ix1_
    dyy = iy1 - 2 * i + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i + i - ix1_ - iy1_ + ix1_y1_)
    eps = torch.finfo(torch.float32).eps
    a, b, d = (dxx + eps).double(), dxy.double(), (dyy + eps).double()
    gx, gy = gx.double(), gy.double()
    det = a * d - b * b
    step = torch.stack([(d * gx - b * gy) / det, (a * gy - b * gx) / det], dim=-1)
    return coords - step.to(coords.dtype), scores
