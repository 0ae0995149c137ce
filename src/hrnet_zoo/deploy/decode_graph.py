"""Keypoints decoded inside the graph: a top-down model whose forward also returns its codec's decoded peaks.

:class:`HeatmapDecoder` (or :func:`with_decoding`) wraps a model ``(B, 3, H, W) -> (B, K, h, w)`` so that it returns
``(heatmaps, keypoints)``; ``keypoints`` ``(B, K, 3)`` holds ``x, y`` in *heatmap* pixels and the score, equal to
``codec.decode(heatmaps)`` (``codec.to_image`` maps the coordinates to the image). It runs the codec's own decoders,
which are tensor operations only (no Python loop over data, no ``.item()``), so ``torch.export`` and the ONNX
exporter trace it with a dynamic batch dimension, and deployments need not re-implement the decoding.

What matches the codec:

- ``decoding="argmax"``: exactly (the first maximum, the quarter step where the peak is inside, ``(0, 0)`` where the
  maximum is not positive).
- ``decoding="dark"`` and ``"udp"`` (either ``blur_padding``): the codec's blur, log and Newton step; equal in
  PyTorch, within ``1e-3`` heatmap pixels in ONNX Runtime (its convolution sums in another order). UDP runs
  ``decode_dark_udp(..., exportable=True)``: its 2x2 solve written out (Cramer's rule in float64) instead of
  ``torch.linalg.solve``, which has no ONNX form; it differs only where the Hessian is singular (the codec raises
  there, this gives non-finite coordinates). Like ``decode_dark``, DARK gives NaN coordinates for an all-zero
  heatmap (0 / 0 rescale).

Flip test is not part of the graph: it needs a second forward pass of the mirrored images.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..codec import HeatmapCodec, decode_dark_udp

__all__ = ["DECODED_OUTPUT_NAMES", "HeatmapDecoder", "with_decoding"]

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
        if self.codec.decoding == "udp":  # the codec's, with the 2x2 solve written out (linalg.solve has no ONNX form)
            return decode_dark_udp(heatmaps, self.codec.blur_kernel_size, self.codec.blur_padding, exportable=True)
        return self.codec.decode(heatmaps)

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
