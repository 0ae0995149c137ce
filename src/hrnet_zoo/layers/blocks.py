"""Residual blocks of HRNet: the ResNet basic and bottleneck blocks.

HRNet uses the ResNet blocks unchanged, so these subclass torchvision's
implementations and only add what HRNet needs on top: the projection shortcut
is created automatically when the input and output channels (or the stride)
differ, exactly as the original implementation does.
"""

from __future__ import annotations

from typing import Literal

from torch import nn
from torchvision.models import resnet

__all__ = ["BasicBlock", "BlockType", "Bottleneck", "get_block", "make_blocks"]


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """1x1 conv + BN shortcut when the residual cannot be added as is, else ``None``."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(resnet.BasicBlock):
    """Two 3x3 conv + BN layers with a residual connection (expansion 1).

    Shapes: ``(B, in_channels, H, W) -> (B, channels, H / stride, W / stride)``.

    Example:
        >>> block = BasicBlock(32, 64, stride=2)
        >>> block(torch.randn(1, 32, 64, 48)).shape
        torch.Size([1, 64, 32, 24])
    """

    expansion: int = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__(in_channels, channels, stride, _projection(in_channels, channels, stride))
        self.in_channels = in_channels
        self.out_channels = channels


class Bottleneck(resnet.Bottleneck):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand, with a residual (expansion 4).

    Shapes: ``(B, in_channels, H, W) -> (B, 4 * channels, H / stride, W / stride)``.

    Example:
        >>> block = Bottleneck(64, 64)
        >>> block(torch.randn(1, 64, 64, 48)).shape
        torch.Size([1, 256, 64, 48])
    """

    expansion: int = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        out_channels = channels * self.expansion
        super().__init__(in_channels, channels, stride, _projection(in_channels, out_channels, stride))
        self.in_channels = in_channels
        self.out_channels = out_channels


BlockType = type[BasicBlock] | type[Bottleneck]
_BLOCKS: dict[str, BlockType] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def get_block(name: Literal["basic", "bottleneck"] | BlockType) -> BlockType:
    """Resolve a block name (``"basic"``/``"bottleneck"``, any case) or class to the block class."""
    if isinstance(name, type) and name in _BLOCKS.values():
        return name
    key = str(name).lower()
    if key not in _BLOCKS:
        raise ValueError(f"unknown block type {name!r}: expected one of {sorted(_BLOCKS)}")
    return _BLOCKS[key]


def make_blocks(block: BlockType, in_channels: int, channels: int, num_blocks: int) -> nn.Sequential:
    """Stack ``num_blocks`` blocks; the first adapts ``in_channels`` to ``channels * block.expansion``.

    Shapes: ``(B, in_channels, H, W) -> (B, channels * block.expansion, H, W)``.
    """
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be at least 1, got {num_blocks}")
    layers = [block(in_channels, channels)]
    layers += [block(channels * block.expansion, channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*layers)
