"""HRModule: parallel branches of residual blocks followed by a multi-scale fusion."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ._checks import check_branch_inputs
from .blocks import BasicBlock, BlockType, get_block, make_blocks
from .fusion import MultiScaleFusion

__all__ = ["HRModule"]


class HRModule(nn.Module):
    """One HRNet module: each branch runs its own residual blocks, then the branches exchange information.

    Shapes: ``[(B, in_channels[j], H / 2**j, W / 2**j) for j] -> [(B, out_channels[i], H / 2**i, W / 2**i) for i]``
    with ``out_channels[i] = channels[i] * block.expansion``; one output (the highest resolution) when
    ``multi_scale_output=False``. The input list is never modified.

    Args:
        in_channels: Channels of each input branch, highest resolution first.
        channels: Block width of each branch (output channels are ``channels * block.expansion``).
        num_blocks: Residual blocks per branch.
        block: :class:`BasicBlock`, :class:`Bottleneck` or their names.
        multi_scale_output: Fuse into every branch (``True``) or into the highest-resolution one only.

    Example:
        >>> module = HRModule([32, 64], [32, 64], num_blocks=[4, 4])
        >>> ys = module([torch.randn(1, 32, 64, 48), torch.randn(1, 64, 32, 24)])
        >>> [y.shape[1] for y in ys]
        [32, 64]
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: Sequence[int],
        num_blocks: Sequence[int],
        block: BlockType | str = BasicBlock,
        multi_scale_output: bool = True,
    ) -> None:
        super().__init__()
        if not len(in_channels) == len(channels) == len(num_blocks) or not in_channels:
            raise ValueError(
                "in_channels, channels and num_blocks need one entry per branch, got "
                f"{len(in_channels)}, {len(channels)} and {len(num_blocks)} entries"
            )
        block = get_block(block)
        self.in_channels = [int(c) for c in in_channels]
        self.branches = nn.ModuleList(
            make_blocks(block, c_in, c, n) for c_in, c, n in zip(in_channels, channels, num_blocks)
        )
        branch_channels = [c * block.expansion for c in channels]
        num_out = len(branch_channels) if multi_scale_output else 1
        # A single branch has nothing to exchange: the original skips the fusion (and its ReLU) then.
        self.fuse = MultiScaleFusion(branch_channels, num_out) if len(branch_channels) > 1 else None
        self.out_channels = branch_channels[:num_out]

    def forward_branches(self, xs: Sequence[Tensor]) -> list[Tensor]:
        """Each branch's residual blocks, before the exchange: ``[(B, out_channels[i], H_i, W_i)]``."""
        check_branch_inputs(type(self).__name__, xs, self.in_channels)
        return [branch(x) for branch, x in zip(self.branches, xs)]

    def fuse_branches(self, ys: Sequence[Tensor]) -> list[Tensor]:
        """The multi-scale exchange of the branch outputs (nothing to exchange with a single branch)."""
        return list(ys) if self.fuse is None else self.fuse(ys)

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        return self.fuse_branches(self.forward_branches(xs))
