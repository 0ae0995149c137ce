"""The multi-scale fusion unit: every output branch sums all inputs brought to its resolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._checks import check_branch_inputs

__all__ = ["MultiScaleFusion", "downsample_path", "separable_conv_bn", "upsample_path"]


def upsample_path(in_channels: int, out_channels: int, factor: int) -> nn.Sequential:
    """1x1 conv + BN to ``out_channels``, then nearest upsampling by ``factor``.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H * factor, W * factor)``.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.Upsample(scale_factor=float(factor), mode="nearest"),
    )


def separable_conv_bn(in_channels: int, out_channels: int, stride: int = 1, relu: bool = False) -> nn.Sequential:
    """Depthwise 3x3 conv + BN, then pointwise 1x1 conv + BN to ``out_channels``, optionally a ReLU (Lite-HRNet).

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)``.
    """
    layers = [
        nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=stride, padding=1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def downsample_path(in_channels: int, out_channels: int, steps: int, separable: bool = False) -> nn.Sequential:
    """``steps`` stride-2 3x3 conv + BN, ReLU between them, the last one mapping to ``out_channels``.

    With ``separable=True`` each step is a :func:`separable_conv_bn` (Lite-HRNet's fusion) instead.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H / 2**steps, W / 2**steps)``.
    """
    layers = []
    for step in range(steps):
        last = step == steps - 1
        channels = out_channels if last else in_channels
        if separable:
            layers.append(separable_conv_bn(in_channels, channels, stride=2, relu=not last))
            continue
        layer = [
            nn.Conv2d(in_channels, channels, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        ]
        if not last:
            layer.append(nn.ReLU(inplace=True))
        layers.append(nn.Sequential(*layer))
    return nn.Sequential(*layers)


class MultiScaleFusion(nn.Module):
    """HRNet's exchange unit across parallel branches.

    Branch ``j`` has ``channels[j]`` channels at ``1 / 2**j`` of the first branch's resolution. Output ``i``
    (for ``i < num_out``) is ``relu(sum_j path[i][j](x[j]))`` with ``channels[i]`` channels, where the path is the
    identity for ``j == i``, :func:`upsample_path` for ``j > i`` and :func:`downsample_path` for ``j < i``.

    Shapes: ``[(B, channels[j], H / 2**j, W / 2**j) for j] -> [(B, channels[i], H / 2**i, W / 2**i) for i < num_out]``;
    ``H`` and ``W`` must be multiples of ``2 ** (len(channels) - 1)``.

    Args:
        channels: Channels of each input branch, highest resolution first.
        num_out: Number of fused outputs (the highest-resolution ones); all branches by default.
        separable: Downsample with depthwise-separable steps (:func:`separable_conv_bn`), as Lite-HRNet does.

    Example:
        >>> fuse = MultiScaleFusion([32, 64, 128])
        >>> xs = [torch.randn(2, c, 64 // 2**i, 48 // 2**i) for i, c in enumerate([32, 64, 128])]
        >>> [y.shape[1:] for y in fuse(xs)]
        [torch.Size([32, 64, 48]), torch.Size([64, 32, 24]), torch.Size([128, 16, 12])]
    """

    def __init__(self, channels: Sequence[int], num_out: int | None = None, separable: bool = False) -> None:
        super().__init__()
        self.channels = [int(c) for c in channels]
        num_out = len(self.channels) if num_out is None else num_out
        if not self.channels or not 1 <= num_out <= len(self.channels):
            raise ValueError(
                f"num_out must be between 1 and {len(self.channels)} (the number of branches), got {num_out}"
            )
        self.num_out = num_out
        self.separable = separable
        self.paths = nn.ModuleList(
            nn.ModuleList(self._path(j, i) for j in range(len(self.channels))) for i in range(num_out)
        )

    def _path(self, src: int, dst: int) -> nn.Module:
        if src == dst:
            return nn.Identity()
        if src > dst:
            return upsample_path(self.channels[src], self.channels[dst], 2 ** (src - dst))
        return downsample_path(self.channels[src], self.channels[dst], dst - src, self.separable)

    @property
    def out_channels(self) -> list[int]:
        """Channels of each output branch."""
        return self.channels[: self.num_out]

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        check_branch_inputs(type(self).__name__, xs, self.channels)
        outs = []
        for paths in self.paths:
            y = paths[0](xs[0])
            for j in range(1, len(xs)):
                y = y + paths[j](xs[j])
            outs.append(torch.relu(y))
        return outs
