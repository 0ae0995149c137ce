"""Transition between stages: adapt existing branches and add lower-resolution ones."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ._checks import check_branch_inputs

__all__ = ["Transition"]


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Transition(nn.Module):
    """Maps the branches of one stage to the branches of the next.

    An existing branch whose width changes gets a 3x3 conv + BN + ReLU (otherwise it passes unchanged). Each new
    branch is made from the lowest-resolution input by a chain of stride-2 3x3 conv + BN + ReLU, one per extra
    level, the intermediate ones keeping the input width.

    Shapes: ``[(B, in_channels[j], H / 2**j, W / 2**j) for j] -> [(B, out_channels[i], H / 2**i, W / 2**i) for i]``.

    Args:
        in_channels: Channels of the current branches, highest resolution first.
        out_channels: Channels of the next stage's branches; at least as many entries as ``in_channels``.

    Example:
        >>> transition = Transition([256], [32, 64])
        >>> [y.shape for y in transition([torch.randn(1, 256, 64, 48)])]
        [torch.Size([1, 32, 64, 48]), torch.Size([1, 64, 32, 24])]
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int]) -> None:
        super().__init__()
        if len(out_channels) < len(in_channels) or not in_channels:
            raise ValueError(
                "a transition keeps or adds branches: got "
                f"{len(in_channels)} input and {len(out_channels)} output branches"
            )
        self.in_channels = [int(c) for c in in_channels]
        self.out_channels = [int(c) for c in out_channels]
        self.branches = nn.ModuleList(self._branch(i) for i in range(len(self.out_channels)))

    def _branch(self, i: int) -> nn.Module:
        num_in, c_out = len(self.in_channels), self.out_channels[i]
        if i < num_in:
            c_in = self.in_channels[i]
            return nn.Identity() if c_in == c_out else _conv_bn_relu(c_in, c_out, stride=1)
        c_in = self.in_channels[-1]
        steps = i - num_in + 1
        return nn.Sequential(*(_conv_bn_relu(c_in, c_out if s == steps - 1 else c_in, stride=2) for s in range(steps)))

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        check_branch_inputs(type(self).__name__, xs, self.in_channels)
        num_in = len(xs)
        return [branch(xs[min(i, num_in - 1)]) for i, branch in enumerate(self.branches)]
