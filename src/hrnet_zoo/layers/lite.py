"""Lite-HRNet's blocks: shuffle units, conditional channel weighting, its stem, transitions, fusion and head.

Paper: "Lite-HRNet: A Lightweight High-Resolution Network", Yu et al., CVPR 2021 (https://arxiv.org/abs/2104.06403).
Reference implementation (Apache-2.0): https://github.com/HRNet/Lite-HRNet, ``models/backbones/litehrnet.py``.
Submodules keep the reference's names (``conv``/``bn`` inside a conv unit, ``layers``, ``cross_resolution_weighting``,
``depthwise_convs``, ``spatial_weighting``, ``projects``...), so checkpoints map onto these blocks by a few renames:
the reference's ``transition{k}.{i}`` is :class:`LiteTransition`'s ``branches.{i}`` and its ``fuse_layers`` is
:class:`LiteFusion`'s ``paths``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import _tracing, check_branch_inputs, check_feature_map
from .fusion import MultiScaleFusion, downsample_path, separable_conv_bn
from .transition import Transition

__all__ = [
    "ConditionalChannelWeighting",
    "ConvBNAct",
    "CrossResolutionWeighting",
    "IterativeHead",
    "LiteFusion",
    "LiteHRModule",
    "LiteStem",
    "LiteTransition",
    "ModuleType",
    "ShuffleUnit",
    "SpatialWeighting",
    "channel_shuffle",
]

ModuleType = Literal["lite", "naive"]


def _check_even(name: str, channels: Sequence[int]) -> None:
    if any(c < 2 or c % 2 for c in channels):
        raise ValueError(f"{name} splits every branch into two halves: channels must be even, got {list(channels)}")


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet's channel shuffle: channel ``g * (C / groups) + k`` moves to ``k * groups + g``.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``; ``C`` must be a multiple of ``groups``. A new tensor, the input is
    untouched.

    Example:
        >>> channel_shuffle(torch.arange(4.0).view(1, 4, 1, 1), 2).flatten().tolist()
        [0.0, 2.0, 1.0, 3.0]
    """
    if not _tracing() and (x.dim() != 4 or x.shape[1] % groups):
        raise ValueError(f"channel_shuffle expects (B, C, H, W) with C a multiple of {groups}, got {tuple(x.shape)}")
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2).contiguous()
    return x.view(batch, channels, height, width)


class ConvBNAct(nn.Module):
    """Conv, then BN (``bn``), then an activation (``activate``): mmcv's ``ConvModule`` with its key names.

    The conv has a bias exactly when there is no BN, as ``ConvModule(bias="auto")``.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)`` (padding ``kernel_size // 2``).

    Example:
        >>> ConvBNAct(16, 16, 3, stride=2, groups=16)(torch.randn(1, 16, 32, 24)).shape
        torch.Size([1, 16, 16, 12])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        norm: bool = True,
        act: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=not norm
        )
        self.bn = nn.BatchNorm2d(out_channels) if norm else None
        self.activate = act
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return x if self.activate is None else self.activate(x)


def _depthwise(channels: int, stride: int = 1) -> ConvBNAct:
    """Depthwise 3x3 conv + BN, no activation."""
    return ConvBNAct(channels, channels, 3, stride=stride, groups=channels)


def _pointwise(in_channels: int, out_channels: int) -> ConvBNAct:
    """1x1 conv + BN + ReLU."""
    return ConvBNAct(in_channels, out_channels, act=nn.ReLU())


class SpatialWeighting(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(conv2(relu(conv1(mean_hw(x)))))`` (the paper's ``H`` weighting).

    Quirk of the reference kept: the two 1x1 convs have biases and no BN. The hidden width is
    ``int(channels / ratio)``.

    Shapes: ``(B, channels, H, W) -> (B, channels, H, W)``.

    Example:
        >>> SpatialWeighting(16, ratio=4)(torch.randn(2, 16, 8, 6)).shape
        torch.Size([2, 16, 8, 6])
    """

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = int(channels / ratio)
        if hidden < 1:
            raise ValueError(f"SpatialWeighting: channels / ratio must be at least 1, got {channels} / {ratio}")
        self.channels = channels
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = ConvBNAct(channels, hidden, norm=False, act=nn.ReLU())
        self.conv2 = ConvBNAct(hidden, channels, norm=False, act=nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        check_feature_map(type(self).__name__, x, self.channels)
        return x * self.conv2(self.conv1(self.global_avgpool(x)))


class CrossResolutionWeighting(nn.Module):
    """Channel weights computed from all branches together (the paper's ``H_s`` cross-resolution weighting).

    Every branch is average-pooled to the lowest resolution, the concatenation goes through 1x1 conv + BN + ReLU
    (to ``int(sum(channels) / ratio)``) and 1x1 conv + BN + sigmoid, and each branch is multiplied by its slice of
    the weights, upsampled (nearest) back to its size.

    Shapes: ``[(B, channels[i], H / 2**i, W / 2**i)] -> same``.

    Example:
        >>> crw = CrossResolutionWeighting([8, 16], ratio=4)
        >>> [y.shape[1:] for y in crw([torch.randn(1, 8, 16, 12), torch.randn(1, 16, 8, 6)])]
        [torch.Size([8, 16, 12]), torch.Size([16, 8, 6])]
    """

    def __init__(self, channels: Sequence[int], ratio: int = 16) -> None:
        super().__init__()
        self.channels = [int(c) for c in channels]
        total = sum(self.channels)
        hidden = int(total / ratio)
        if hidden < 1:
            raise ValueError(
                f"CrossResolutionWeighting: sum(channels) / ratio must be at least 1, got {total} / {ratio}"
            )
        self.conv1 = ConvBNAct(total, hidden, act=nn.ReLU())
        self.conv2 = ConvBNAct(hidden, total, act=nn.Sigmoid())

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        check_branch_inputs(type(self).__name__, xs, self.channels)
        smallest = xs[-1].shape[-2:]
        pooled = [F.adaptive_avg_pool2d(x, smallest) for x in xs[:-1]] + [xs[-1]]
        weights = torch.split(self.conv2(self.conv1(torch.cat(pooled, dim=1))), self.channels, dim=1)
        return [x * F.interpolate(w, size=x.shape[-2:], mode="nearest") for x, w in zip(xs, weights)]


class ConditionalChannelWeighting(nn.Module):
    """Lite-HRNet's block (CCW): half of each branch passes, the other half is weighted and mixed, then shuffled.

    Per branch ``i``: split into halves ``(a_i, b_i)``; the ``b`` halves go through :class:`CrossResolutionWeighting`
    (``reduce_ratio``), a depthwise 3x3 conv + BN and a :class:`SpatialWeighting` (ratio 4, fixed in the reference
    whatever ``reduce_ratio`` is); the output is ``channel_shuffle(cat(a_i, b_i), 2)``.

    The reference's ``stride`` argument is left out: with stride 2 its halves no longer match and it fails.

    Shapes: ``[(B, in_channels[i], H / 2**i, W / 2**i)] -> same``; channels must be even.

    Example:
        >>> ccw = ConditionalChannelWeighting([16, 32], reduce_ratio=8)
        >>> [y.shape[1:] for y in ccw([torch.randn(1, 16, 16, 12), torch.randn(1, 32, 8, 6)])]
        [torch.Size([16, 16, 12]), torch.Size([32, 8, 6])]
    """

    def __init__(self, in_channels: Sequence[int], reduce_ratio: int) -> None:
        super().__init__()
        _check_even(type(self).__name__, in_channels)
        self.in_channels = [int(c) for c in in_channels]
        halves = [c // 2 for c in self.in_channels]
        self.cross_resolution_weighting = CrossResolutionWeighting(halves, ratio=reduce_ratio)
        self.depthwise_convs = nn.ModuleList(_depthwise(c) for c in halves)
        self.spatial_weighting = nn.ModuleList(SpatialWeighting(c, ratio=4) for c in halves)

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        check_branch_inputs(type(self).__name__, xs, self.in_channels)
        halves = [x.chunk(2, dim=1) for x in xs]
        weighted = self.cross_resolution_weighting([h[1] for h in halves])
        weighted = [sw(dw(b)) for b, dw, sw in zip(weighted, self.depthwise_convs, self.spatial_weighting)]
        return [channel_shuffle(torch.cat([h[0], b], dim=1), 2) for h, b in zip(halves, weighted)]


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit, Naive Lite-HRNet's block.

    Stride 1: half of the channels pass, the other half goes through 1x1 conv + BN + ReLU, depthwise 3x3 + BN,
    1x1 + BN + ReLU (``branch2``). Stride 2: ``branch1`` (depthwise 3x3 + BN, 1x1 + BN + ReLU) and ``branch2`` both
    see the whole input. Then ``channel_shuffle(cat, 2)``.

    Shapes: ``(B, in_channels, H, W) -> (B, 2 * (out_channels // 2), H / stride, W / stride)``.

    Example:
        >>> ShuffleUnit(32, 32)(torch.randn(1, 32, 16, 12)).shape
        torch.Size([1, 32, 16, 12])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        half = out_channels // 2
        if stride not in (1, 2):
            raise ValueError(f"ShuffleUnit: stride must be 1 or 2, got {stride}")
        if stride == 1 and in_channels != 2 * half:
            raise ValueError(
                f"ShuffleUnit: with stride 1, in_channels ({in_channels}) must equal 2 * (out_channels // 2) "
                f"({2 * half})"
            )
        self.stride, self.in_channels, self.out_channels = stride, in_channels, 2 * half
        if stride > 1:
            self.branch1 = nn.Sequential(_depthwise(in_channels, stride), _pointwise(in_channels, half))
        self.branch2 = nn.Sequential(
            _pointwise(in_channels if stride > 1 else half, half), _depthwise(half, stride), _pointwise(half, half)
        )

    def forward(self, x: Tensor) -> Tensor:
        check_feature_map(type(self).__name__, x, self.in_channels)
        if self.stride > 1:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        else:
            passed, transformed = x.chunk(2, dim=1)
            out = torch.cat((passed, self.branch2(transformed)), dim=1)
        return channel_shuffle(out, 2)


class LiteStem(nn.Module):
    """Lite-HRNet's stem: a stride-2 3x3 conv + BN + ReLU, then a stride-2 shuffle-style unit.

    After ``conv1`` the channels are split in halves: the first goes through ``branch1`` (depthwise 3x3 stride 2 +
    BN, 1x1 + BN + ReLU), the second through ``expand_conv`` (1x1, ``expand_ratio``), ``depthwise_conv`` (stride 2)
    and ``linear_conv`` (1x1 + BN + ReLU: a ReLU although the name says linear, as in the reference); the
    concatenation is channel-shuffled.

    Shapes: ``(B, in_chans, H, W) -> (B, out_channels, H / 4, W / 4)``.

    Example:
        >>> LiteStem(3, 32, 32)(torch.randn(1, 3, 256, 192)).shape
        torch.Size([1, 32, 64, 48])
    """

    def __init__(self, in_chans: int, stem_channels: int, out_channels: int, expand_ratio: float = 1.0) -> None:
        super().__init__()
        _check_even(type(self).__name__, [stem_channels])
        if out_channels < stem_channels:
            raise ValueError(
                f"LiteStem: out_channels ({out_channels}) must equal stem_channels ({stem_channels}) or exceed it"
            )
        half = stem_channels // 2
        mid = round(stem_channels * expand_ratio)
        same = stem_channels == out_channels
        self.in_chans, self.out_channels = in_chans, out_channels
        self.conv1 = ConvBNAct(in_chans, stem_channels, 3, stride=2, act=nn.ReLU())
        self.branch1 = nn.Sequential(
            _depthwise(half, stride=2), _pointwise(half, out_channels - (half if same else stem_channels))
        )
        self.expand_conv = _pointwise(half, mid)
        self.depthwise_conv = _depthwise(mid, stride=2)
        self.linear_conv = _pointwise(mid, half if same else stem_channels)

    def forward(self, x: Tensor) -> Tensor:
        check_feature_map(type(self).__name__, x, self.in_chans)
        x = self.conv1(x)
        first, second = x.chunk(2, dim=1)
        second = self.linear_conv(self.depthwise_conv(self.expand_conv(second)))
        return channel_shuffle(torch.cat((self.branch1(first), second), dim=1), 2)


class LiteTransition(Transition):
    """:class:`~hrnet_zoo.layers.Transition` with Lite-HRNet's depthwise-separable convolutions.

    A branch whose width changes gets :func:`~hrnet_zoo.layers.fusion.separable_conv_bn` (stride 1, ReLU); each new
    branch a chain of stride-2 ones from the lowest-resolution input, every step with a ReLU (the last one too,
    unlike the fusion's downsampling).

    Shapes: ``[(B, in_channels[j], H / 2**j, W / 2**j)] -> [(B, out_channels[i], H / 2**i, W / 2**i)]``.

    Example:
        >>> transition = LiteTransition([32], [40, 80])
        >>> [y.shape[1:] for y in transition([torch.randn(1, 32, 64, 48)])]
        [torch.Size([40, 64, 48]), torch.Size([80, 32, 24])]
    """

    def _branch(self, i: int) -> nn.Module:
        num_in, c_out = len(self.in_channels), self.out_channels[i]
        if i < num_in:
            c_in = self.in_channels[i]
            return nn.Identity() if c_in == c_out else separable_conv_bn(c_in, c_out, relu=True)
        path = downsample_path(self.in_channels[-1], c_out, i - num_in + 1, separable=True)
        path[-1].append(nn.ReLU())
        return path


class LiteFusion(MultiScaleFusion):
    """Lite-HRNet's fuse layers: :class:`~hrnet_zoo.layers.MultiScaleFusion`'s paths with separable downsampling,
    summed the way the reference sums them.

    Quirk of the reference kept (its ``LiteHRModule.forward`` starts output ``i`` from branch 0's path and then adds
    it again in the loop, accumulating output 0 in place into branch 0's tensor): with ``m = 2 * x_0 +
    sum_{j > 0} up_j(x_j)``, output 0 is ``relu(m)`` and output ``i > 0`` is ``relu(2 * down_i(m) + sum_{j > 0}
    path_ij(x_j))``, ``path_ii`` the identity. mmpose 1.x keeps the same code ("``y = 0`` will lead to decreased
    accuracy"). The inputs are not modified here.

    Shapes: as :class:`~hrnet_zoo.layers.MultiScaleFusion`.

    Example:
        >>> fuse = LiteFusion([8, 16])
        >>> [y.shape[1:] for y in fuse([torch.randn(1, 8, 16, 12), torch.randn(1, 16, 8, 6)])]
        [torch.Size([8, 16, 12]), torch.Size([16, 8, 6])]
    """

    def __init__(self, channels: Sequence[int], num_out: int | None = None) -> None:
        super().__init__(channels, num_out, separable=True)

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        check_branch_inputs(type(self).__name__, xs, self.channels)
        first = xs[0] + xs[0]
        for j in range(1, len(xs)):
            first = first + self.paths[0][j](xs[j])
        outs = [torch.relu(first)]
        for i in range(1, self.num_out):
            down = self.paths[i][0](first)
            y = down + down
            for j in range(1, len(xs)):
                y = y + self.paths[i][j](xs[j])
            outs.append(torch.relu(y))
        return outs


class LiteHRModule(nn.Module):
    """One Lite-HRNet module: ``num_blocks`` blocks over the parallel branches, then the multi-scale fusion.

    ``module_type="lite"``: the blocks are :class:`ConditionalChannelWeighting` (``layers.{b}``) spanning all
    branches; ``"naive"``: each branch runs its own :class:`ShuffleUnit` stack (``layers.{i}.{b}``). The fusion is
    :class:`LiteFusion` (``fuse``) when ``with_fuse``; without it the branches pass as they are (only the first
    when ``multi_scale_output=False``). The input list is never modified (the reference's naive module writes into
    it).

    Shapes: ``[(B, in_channels[i], H / 2**i, W / 2**i)] -> same`` (the first only, when not multi-scale).

    Args:
        in_channels: Channels of each branch (two or more), highest resolution first.
        num_blocks: Blocks per module.
        reduce_ratio: :class:`CrossResolutionWeighting`'s reduction (lite modules).
        module_type: ``"lite"`` or ``"naive"``.
        with_fuse: Whether the branches exchange information at the end.
        multi_scale_output: Whether every branch is output, or the highest-resolution one only.

    Example:
        >>> module = LiteHRModule([40, 80], num_blocks=2, reduce_ratio=8)
        >>> [y.shape[1:] for y in module([torch.randn(1, 40, 64, 48), torch.randn(1, 80, 32, 24)])]
        [torch.Size([40, 64, 48]), torch.Size([80, 32, 24])]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_blocks: int,
        reduce_ratio: int = 8,
        module_type: ModuleType = "lite",
        with_fuse: bool = True,
        multi_scale_output: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = [int(c) for c in in_channels]
        if len(self.in_channels) < 2:
            raise ValueError(
                f"LiteHRModule needs at least two branches (the reference fails on one), got {self.in_channels}"
            )
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be at least 1, got {num_blocks}")
        if module_type == "lite":
            self.layers: nn.Module = nn.Sequential(
                *(ConditionalChannelWeighting(self.in_channels, reduce_ratio) for _ in range(num_blocks))
            )
        elif module_type == "naive":
            self.layers = nn.ModuleList(
                nn.Sequential(*(ShuffleUnit(c, c) for _ in range(num_blocks))) for c in self.in_channels
            )
        else:
            raise ValueError(f"module_type must be 'lite' or 'naive', got {module_type!r}")
        self.module_type = module_type
        num_out = len(self.in_channels) if multi_scale_output else 1
        self.fuse = LiteFusion(self.in_channels, num_out) if with_fuse else None
        self.num_out = num_out
        self.out_channels = self.in_channels[:num_out]

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        check_branch_inputs(type(self).__name__, xs, self.in_channels)
        if self.module_type == "lite":
            ys = self.layers(list(xs))
        else:
            ys = [branch(x) for branch, x in zip(self.layers, xs)]
        return self.fuse(ys) if self.fuse is not None else list(ys[: self.num_out])


class IterativeHead(nn.Module):
    """Lite-HRNet's aggregation (``head_layer`` in the reference backbone), from the lowest resolution up.

    Branches reversed (lowest resolution first): each adds the previous result upsampled bilinearly
    (``align_corners=True``), then a depthwise 3x3 + BN and a 1x1 + BN + ReLU (``projects.{i}.depthwise_conv`` /
    ``.pointwise_conv``, mmcv's ``DepthwiseSeparableConvModule``) map it to the next branch's width; the last keeps
    its width.

    Shapes: ``[(B, in_channels[i], H / 2**i, W / 2**i)] -> [(B, out_channels[i], H / 2**i, W / 2**i)]`` with
    ``out_channels = [in_channels[0], *in_channels[:-1]]``.

    Example:
        >>> head = IterativeHead([40, 80, 160, 320])
        >>> xs = [torch.randn(1, c, 64 // 2**i, 48 // 2**i) for i, c in enumerate([40, 80, 160, 320])]
        >>> [y.shape[1] for y in head(xs)]
        [40, 40, 80, 160]
    """

    def __init__(self, in_channels: Sequence[int]) -> None:
        super().__init__()
        self.in_channels = [int(c) for c in in_channels]
        reversed_channels = self.in_channels[::-1]
        targets = [*reversed_channels[1:], reversed_channels[-1]]
        self.projects = nn.ModuleList(
            nn.Sequential(OrderedDict(depthwise_conv=_depthwise(c), pointwise_conv=_pointwise(c, t)))
            for c, t in zip(reversed_channels, targets)
        )
        self.out_channels = [self.in_channels[0], *self.in_channels[:-1]]

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        check_branch_inputs(type(self).__name__, xs, self.in_channels)
        ys: list[Tensor] = []
        for project, x in zip(self.projects, reversed(xs)):
            if ys:
                x = x + F.interpolate(ys[-1], size=x.shape[-2:], mode="bilinear", align_corners=True)
            ys.append(project(x))
        return ys[::-1]
