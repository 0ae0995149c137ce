"""Use HRNet's building blocks inside your own network: a two-resolution segmentation head on a tiny stem, built
once from HRNet's blocks and once from Lite-HRNet's (conditional channel weighting), with under a tenth of the
parameters.

python examples/custom_network.py
"""

from __future__ import annotations

import torch
from torch import nn

from hrnet_zoo.layers import HRModule, LiteHRModule, LiteStem, LiteTransition, MultiScaleFusion, Stem, Transition


class TwoScaleSegmenter(nn.Module):
    """Stem -> split into 1/4 and 1/8 resolution branches -> two HRModules -> fuse to 1/4 -> per-pixel classes."""

    def __init__(self, num_classes: int = 5, width: int = 16) -> None:
        super().__init__()
        self.stem = Stem(3, 32)  # (B, 3, H, W) -> (B, 32, H/4, W/4)
        self.split = Transition([32], [width, 2 * width])  # adds a 1/8 branch
        self.body = nn.Sequential(
            HRModule([width, 2 * width], [width, 2 * width], num_blocks=[2, 2]),
            HRModule([width, 2 * width], [width, 2 * width], num_blocks=[2, 2]),
        )
        self.fuse = MultiScaleFusion([width, 2 * width], num_out=1)  # everything into the 1/4 branch
        self.classifier = nn.Conv2d(width, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = self.split([self.stem(x)])
        for module in self.body:
            branches = module(branches)
        return self.classifier(self.fuse(branches)[0])


class LiteTwoScaleSegmenter(nn.Module):
    """The same network from Lite-HRNet's blocks: shuffle-style stem, depthwise-separable transition, and modules of
    conditional channel weighting (``ConditionalChannelWeighting``) whose last one fuses into the 1/4 branch only."""

    def __init__(self, num_classes: int = 5, width: int = 16) -> None:
        super().__init__()
        self.stem = LiteStem(3, 32, 32)  # (B, 3, H, W) -> (B, 32, H/4, W/4)
        self.split = LiteTransition([32], [width, 2 * width])  # adds a 1/8 branch
        self.body = nn.Sequential(
            LiteHRModule([width, 2 * width], num_blocks=2),
            LiteHRModule([width, 2 * width], num_blocks=2, multi_scale_output=False),  # -> [1/4 branch]
        )
        self.classifier = nn.Conv2d(width, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = self.split([self.stem(x)])
        for module in self.body:
            branches = module(branches)
        return self.classifier(branches[0])


def main() -> None:
    torch.manual_seed(0)
    images = torch.randn(2, 3, 128, 96)
    target = torch.randint(0, 5, (2, 32, 24))
    for net in (TwoScaleSegmenter(), LiteTwoScaleSegmenter()):
        name = type(net).__name__
        print(f"{name}: {sum(p.numel() for p in net.parameters())} parameters")
        optimiser = torch.optim.SGD(net.parameters(), lr=0.1)
        for step in range(3):
            loss = nn.functional.cross_entropy(net(images), target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            print(f"{name} step {step}: loss {loss.item():.4f}")
        print(f"{name} logits:", tuple(net(images).shape))


if __name__ == "__main__":
    main()
