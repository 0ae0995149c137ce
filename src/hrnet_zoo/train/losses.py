"""Heatmap losses: mean squared error with per-joint target weights, and its online hard keypoint mining form."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["JointsMSELoss", "JointsOHKMMSELoss"]


def _per_joint_mse(output: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    """``(N, K)`` half mean squared error of each joint's heatmap, optionally weighted per joint."""
    diff = output - target
    if weight is not None:
        diff = diff * weight.reshape(*weight.shape[:2], 1, 1)
    return 0.5 * diff.pow(2).flatten(2).mean(dim=2)


class JointsMSELoss(nn.Module):
    """The original's heatmap loss: ``0.5 * mean((w * (output - target))**2)`` over batch, joints and pixels.

    Shapes: ``output``, ``target`` ``(N, K, H, W)``, ``weight`` ``(N, K)`` (or ``(N, K, 1)``) -> scalar.
    """

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, output: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        return _per_joint_mse(output, target, weight if self.use_target_weight else None).mean()


class JointsOHKMMSELoss(nn.Module):
    """Online hard keypoint mining: per sample, the mean of the ``topk`` largest per-joint losses.

    Shapes: as :class:`JointsMSELoss`.
    """

    def __init__(self, use_target_weight: bool = True, topk: int = 8) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.topk = topk

    def forward(self, output: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        losses = _per_joint_mse(output, target, weight if self.use_target_weight else None)
        if self.topk > losses.shape[1]:
            raise ValueError(f"topk={self.topk} is larger than the number of joints ({losses.shape[1]})")
        return losses.topk(self.topk, dim=1).values.mean(dim=1).mean()
