"""HRNet stem: two stride-2 3x3 convolutions, bringing the input to 1/4 resolution."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Stem"]


class Stem(nn.Module):
    """Two stride-2 3x3 conv + BN + ReLU layers.

    Shapes: ``(B, in_chans, H, W) -> (B, width, ceil(H / 4), ceil(W / 4))``.

    Example:
        >>> Stem(3, 64)(torch.randn(1, 3, 256, 192)).shape
        torch.Size([1, 64, 64, 48])
    """

    def __init__(self, in_chans: int = 3, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, width, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = width

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))
