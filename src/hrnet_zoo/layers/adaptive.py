"""DEKR's adaptive convolution and its disentangled, per-keypoint regression (Geng et al., CVPR 2021).

The adaptive convolution is a 3x3 deformable convolution whose nine sampling points are the regular 3x3 grid moved
by an affine transform predicted at every pixel: a 2x2 matrix and a translation, each from its own 3x3 conv.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchvision.ops import DeformConv2d

from ._checks import check_feature_map

__all__ = ["AdaptiveConvBlock", "KeypointRegression", "adaptive_offsets"]

# The regular 3x3 grid, (dy, dx) of every kernel tap in row-major order (the order deform_conv2d reads offsets in).
_GRID = ((-1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0), (-1.0, 0.0, 1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 1.0))


def adaptive_offsets(transform: Tensor, translation: Tensor, grid: Tensor) -> Tensor:
    """Sampling offsets of the adaptive convolution, in ``torchvision.ops.deform_conv2d``'s layout.

    Tap ``k`` of the regular grid ``g_k = (dy, dx)`` moves to ``T g_k + t``, so its offset is ``T g_k - g_k + t``.
    ``T = [[T00, T01], [T10, T11]]`` is read row-major from the four transform channels; the first translation
    channel moves along y, the second along x. (OpenMMLab predicts ``T - I`` instead, with ``t`` as a third column.)

    Args:
        transform: ``(B, 4, H, W)``: ``T00, T01, T10, T11``.
        translation: ``(B, 2, H, W)``: ``ty, tx``.
        grid: ``(2, 9)``: the regular grid, ``dy`` then ``dx`` of the nine taps.

    Returns:
        ``(B, 18, H, W)``: ``(dy, dx)`` of tap 0, then of tap 1, ... of tap 8.
    """
    batch, _, height, width = transform.shape
    matrix = transform.reshape(batch, 2, 2, height, width)
    moved = torch.einsum("brchw,ck->bkrhw", matrix, grid)
    offsets = moved - grid.t()[None, :, :, None, None] + translation[:, None]
    return offsets.reshape(batch, 18, height, width)


class AdaptiveConvBlock(nn.Module):
    """DEKR's adaptive activation block: ``relu(bn(adaptive_conv(x)) + x)``.

    The adaptive conv is a 3x3 deformable conv (no bias) whose taps follow :func:`adaptive_offsets` of a per-pixel
    affine transform: ``transform_matrix_conv`` (3x3, 4 channels) and ``translation_conv`` (3x3, 2 channels), both
    with bias. As DEKR's ``AdaptBlock``, which this reproduces key for key, the regular grid is kept as the buffer
    ``regular_matrix`` and a zero transform collapses all nine taps onto the centre pixel (``T = I`` is the plain
    3x3 conv). The input is never modified.

    Shapes: ``(B, channels, H, W) -> (B, channels, H, W)``.

    Args:
        channels: Input and output channels (the residual needs them equal).

    Example:
        >>> block = AdaptiveConvBlock(15)
        >>> block(torch.randn(2, 15, 32, 32)).shape
        torch.Size([2, 15, 32, 32])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        self.channels = self.in_channels = self.out_channels = channels
        self.register_buffer("regular_matrix", torch.tensor(_GRID))
        self.transform_matrix_conv = nn.Conv2d(channels, 4, kernel_size=3, padding=1)
        self.translation_conv = nn.Conv2d(channels, 2, kernel_size=3, padding=1)
        self.adapt_conv = DeformConv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def offsets(self, x: Tensor) -> Tensor:
        """The deformable conv's offsets for ``x``: ``(B, channels, H, W) -> (B, 18, H, W)``."""
        return adaptive_offsets(self.transform_matrix_conv(x), self.translation_conv(x), self.regular_matrix)

    def forward(self, x: Tensor) -> Tensor:
        check_feature_map(type(self).__name__, x, self.channels)
        return torch.relu(self.bn(self.adapt_conv(x, self.offsets(x))) + x)


class KeypointRegression(nn.Module):
    """Disentangled regression: one independent branch per keypoint, each reading its own channel group.

    Group ``j`` (channels ``j * channels .. (j + 1) * channels``) runs through ``num_blocks`` blocks and a
    ``final_kernel`` conv (with bias) to ``out_per_keypoint`` channels; the results are concatenated in keypoint
    order. DEKR regresses each keypoint's 2D offset this way (``offset_feature_layers`` and ``offset_final_layer``
    there, ``branches.{j}.blocks`` and ``branches.{j}.final`` here); OpenMMLab computes the same with grouped convs.

    Shapes: ``(B, num_keypoints * channels, H, W) -> (B, num_keypoints * out_per_keypoint, H, W)``.

    Args:
        num_keypoints: Number of branches.
        channels: Channels of each branch.
        num_blocks: Blocks per branch.
        block: Makes one block from its channels (:class:`AdaptiveConvBlock` by default).
        out_per_keypoint: Outputs of each branch (2: an x and a y offset).
        final_kernel: Kernel of the final conv, 1 or 3.

    Example:
        >>> regression = KeypointRegression(17, 15, num_blocks=2)
        >>> regression(torch.randn(1, 17 * 15, 32, 32)).shape
        torch.Size([1, 34, 32, 32])
    """

    def __init__(
        self,
        num_keypoints: int,
        channels: int,
        num_blocks: int = 2,
        block: Callable[[int], nn.Module] = AdaptiveConvBlock,
        out_per_keypoint: int = 2,
        final_kernel: int = 1,
    ) -> None:
        super().__init__()
        if num_keypoints < 1 or channels < 1 or num_blocks < 0 or out_per_keypoint < 1:
            raise ValueError(
                "num_keypoints, channels and out_per_keypoint must be positive and num_blocks not negative, got "
                f"{num_keypoints}, {channels}, {out_per_keypoint} and {num_blocks}"
            )
        if final_kernel not in (1, 3):
            raise ValueError(f"final_kernel must be 1 or 3, got {final_kernel}")
        self.num_keypoints = num_keypoints
        self.channels = channels
        self.in_channels = num_keypoints * channels
        self.out_channels = num_keypoints * out_per_keypoint
        self.branches = nn.ModuleList(
            nn.Sequential(
                OrderedDict(
                    blocks=nn.Sequential(*(block(channels) for _ in range(num_blocks))),
                    final=nn.Conv2d(channels, out_per_keypoint, final_kernel, padding=final_kernel // 2),
                )
            )
            for _ in range(num_keypoints)
        )

    def forward(self, x: Tensor) -> Tensor:
        check_feature_map(type(self).__name__, x, self.in_channels)
        groups = torch.split(x, self.channels, dim=1)
        return torch.cat([branch(group) for branch, group in zip(self.branches, groups)], dim=1)
