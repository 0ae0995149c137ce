"""HRNetV2's representation: every branch resized to the highest resolution and concatenated."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResizeConcat"]


class ResizeConcat(nn.Module):
    """Upsample every branch bilinearly (``align_corners=False``) to the first branch's size and concatenate.

    Shapes: ``[(B, C_i, H / 2^i, W / 2^i)] -> (B, sum(C_i), H, W)``. HRNetV2 (Wang et al., TPAMI 2020) feeds this
    to its face and hand heads; OpenMMLab's ``FeatureMapProcessor(concat=True)`` computes the same.

    Args:
        in_channels: Channels of each branch (for :attr:`out_channels`).
    """

    def __init__(self, in_channels: Sequence[int]) -> None:
        super().__init__()
        self.out_channels = int(sum(in_channels))

    def forward(self, branches: Sequence[Tensor]) -> Tensor:
        size = branches[0].shape[-2:]
        resized = [branches[0]] + [
            F.interpolate(b, size=size, mode="bilinear", align_corners=False) for b in branches[1:]
        ]
        return torch.cat(resized, dim=1)
