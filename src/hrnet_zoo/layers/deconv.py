"""Learned 2x upsampling: a stride-2 transposed convolution followed by residual refinement blocks."""

from __future__ import annotations

from torch import nn

from .blocks import BasicBlock

__all__ = ["DeconvBlock"]

#: ``kernel_size -> (padding, output_padding)`` giving exactly twice the input size with stride 2.
_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


class DeconvBlock(nn.Sequential):
    """Stride-2 transposed conv + BN + ReLU (index ``0``), then ``num_blocks`` :class:`BasicBlock` (``1..``).

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, 2 * H, 2 * W)``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels (of the transposed conv and of every block).
        kernel_size: 4, 3 or 2 (padding and output padding chosen so that the size doubles).
        num_blocks: Basic blocks after the upsampling (0 for none).

    Example:
        >>> DeconvBlock(49, 32)(torch.randn(1, 49, 16, 16)).shape
        torch.Size([1, 32, 32, 32])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4, num_blocks: int = 4) -> None:
        if kernel_size not in _DECONV_PADDING:
            raise ValueError(f"kernel_size must be one of {sorted(_DECONV_PADDING)}, got {kernel_size!r}")
        if num_blocks < 0:
            raise ValueError(f"num_blocks must be at least 0, got {num_blocks}")
        padding, output_padding = _DECONV_PADDING[kernel_size]
        upsample = nn.Sequential(
            nn.ConvTranspose2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=2,
                padding=padding,
                output_padding=output_padding,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        super().__init__(upsample, *(BasicBlock(out_channels, out_channels) for _ in range(num_blocks)))
        self.in_channels = in_channels
        self.out_channels = out_channels
