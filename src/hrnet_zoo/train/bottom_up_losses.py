"""Losses of the bottom-up models: DEKR's masked heatmap and weighted offset losses, associative embedding's
push/pull tag loss, and HigherHRNet's per-output combination.

References (MIT): https://github.com/HRNet/DEKR ``lib/core/loss.py`` (``HeatmapLoss``, ``OffsetsLoss``,
``MultiLossFactory``; factors from ``experiments/coco/w32/w32_4x_reg03_bs10_512_adam_lr1e-3_coco_x140.yaml``) and
https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation ``lib/core/loss.py`` (``HeatmapLoss``, ``AELoss``,
``MultiLossFactory``; factors from ``experiments/coco/higher_hrnet/w32_512_adam_lr1e-3.yaml``), and the sum its
``lib/core/trainer.py`` back-propagates. Targets come from :mod:`hrnet_zoo.train.bottom_up_targets`, stacked
over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["AssociativeEmbeddingLoss", "DEKRLoss", "HigherHRNetLoss", "HigherHRNetLosses"]

AELossType = Literal["exp", "max"]


def _check_same_shape(name: str, pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")


def _smooth_l1(diff: Tensor, beta: float) -> Tensor:
    """Smooth L1 of ``|diff|``: quadratic under ``beta``, linear above (continuous at ``beta``)."""
    l1 = diff.abs()
    return torch.where(l1 < beta, 0.5 * l1**2 / beta, l1 - 0.5 * beta)


class DEKRLoss(nn.Module):
    """DEKR's loss: ``heatmap_factor * mean(mask * (pred - target)**2)`` and ``offset_factor *`` the
    weighted smooth-L1 (beta 1/9) offset loss summed and divided by the number of positive weights (at least 1).

    Defaults are the COCO experiments' ``HEATMAPS_LOSS_FACTOR`` 1.0 and ``OFFSETS_LOSS_FACTOR`` 0.03; a factor of 0
    turns a loss off (the reference's ``WITH_*_LOSS`` False). The background weight is in the heatmap mask
    (:func:`~hrnet_zoo.train.bottom_up_targets.dekr_targets`' ``bg_weight``), as there.

    Shapes: ``outputs`` is the model's ``(heatmaps (B, K + 1, H, W), offsets (B, 2K, H, W))``; ``targets`` is
    ``(heatmaps (B, K + 1, H, W), heatmap_mask (B, K + 1, H, W), offsets (B, 2K, H, W), offset_weights
    (B, 2K, H, W))``, e.g. :class:`~hrnet_zoo.train.bottom_up_targets.DEKRTargets` fields stacked. Returns two
    scalars ``(heatmap_loss, offset_loss)``; their sum is what the reference back-propagates.
    """

    def __init__(self, heatmap_factor: float = 1.0, offset_factor: float = 0.03, beta: float = 1.0 / 9) -> None:
        super().__init__()
        self.heatmap_factor = heatmap_factor
        self.offset_factor = offset_factor
        self.beta = beta

    def forward(self, outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        if len(outputs) != 2 or len(targets) != 4:
            raise ValueError(
                "DEKRLoss takes outputs (heatmaps, offsets) and targets (heatmaps, heatmap_mask, offsets, "
                f"offset_weights); got {len(outputs)} outputs and {len(targets)} targets"
            )
        heatmaps, offsets = outputs
        target_heatmaps, heatmap_mask, target_offsets, offset_weights = targets
        _check_same_shape("heatmaps", heatmaps, target_heatmaps)
        _check_same_shape("heatmap_mask", heatmaps, heatmap_mask)
        _check_same_shape("offsets", offsets, target_offsets)
        _check_same_shape("offset_weights", offsets, offset_weights)
        heatmap_loss = ((heatmaps - target_heatmaps) ** 2 * heatmap_mask).mean()
        positives = (offset_weights > 0).sum().clamp(min=1)
        offset_loss = (_smooth_l1(offsets - target_offsets, self.beta) * offset_weights).sum() / positives
        return heatmap_loss * self.heatmap_factor, offset_loss * self.offset_factor


class AssociativeEmbeddingLoss(nn.Module):
    """Associative embedding's tag loss per image: pull and push (the reference's ``AELoss``).

    Per image, each person with a labelled joint has a reference tag, the mean of its joints' tags; pull is the
    mean over those persons of the mean squared distance of their tags to it. Push, with ``N >= 2`` persons, is
    ``0.5 / (N (N - 1))`` times the sum over ordered pairs of distinct persons of ``exp(-(t_i - t_j)**2)``
    (``"exp"``) or ``max(0, 1 - |t_i - t_j|)`` (``"max"``); 0 with fewer.

    Shapes: ``tags`` ``(B, T, H, W)`` (one tag per pixel and map); ``joints`` ``(B, M, K, 2)`` integer, from
    :func:`~hrnet_zoo.train.bottom_up_targets.ae_targets` (``(index into the flattened (T, H, W) tags, flag)``,
    used where the flag is positive). Returns ``(push (B,), pull (B,))``.
    """

    def __init__(self, loss_type: AELossType = "exp") -> None:
        super().__init__()
        if loss_type not in ("exp", "max"):
            raise ValueError(f"loss_type must be 'exp' or 'max', got {loss_type!r}")
        self.loss_type = loss_type

    def forward(self, tags: Tensor, joints: Tensor) -> tuple[Tensor, Tensor]:
        if tags.ndim != 4:
            raise ValueError(f"tags must be (B, T, H, W), got shape {tuple(tags.shape)}")
        if joints.ndim != 4 or joints.shape[0] != tags.shape[0] or joints.shape[3] != 2:
            raise ValueError(f"joints must be ({tags.shape[0]}, M, K, 2), got shape {tuple(joints.shape)}")
        flat = tags.reshape(tags.shape[0], -1)
        joints = joints.to(device=tags.device, dtype=torch.long)
        used = joints[..., 1] > 0
        index = torch.where(used, joints[..., 0], 0)
        if ((index < 0) | (index >= flat.shape[1])).any():
            raise ValueError(f"tag indices must lie in [0, {flat.shape[1]}), the flattened tag maps")
        values = flat.gather(1, index.flatten(1)).reshape(index.shape)  # (B, M, K)
        weights = used.to(tags.dtype)
        counts = weights.sum(dim=2)
        people = counts > 0
        means = (values * weights).sum(dim=2) / counts.clamp(min=1)
        spread = (((values - means[..., None]) ** 2) * weights).sum(dim=2) / counts.clamp(min=1)
        num_tags = people.sum(dim=1).to(tags.dtype)
        pull = spread.sum(dim=1) / num_tags.clamp(min=1)
        diff = means[:, :, None] - means[:, None, :]
        pair = people[:, :, None] & people[:, None, :]
        similarity = torch.exp(-(diff**2)) if self.loss_type == "exp" else (1 - diff.abs()).clamp(min=0)
        off_diagonal = (similarity * pair).sum(dim=(1, 2)) - num_tags
        push = torch.where(num_tags > 1, off_diagonal / (num_tags * (num_tags - 1)).clamp(min=1) * 0.5, 0.0)
        return push, pull


class HigherHRNetLosses(NamedTuple):
    """Per-output losses of :class:`HigherHRNetLoss`, each ``(B,)`` or ``None`` where that loss is off."""

    heatmaps: list[Tensor | None]
    push: list[Tensor | None]
    pull: list[Tensor | None]

    def total(self) -> Tensor:
        """The sum of every loss's batch mean, the scalar the reference's trainer back-propagates (which skips an
        output's push and pull when its heatmap loss is off; here every loss that is on counts)."""
        terms = [loss.mean() for loss in (*self.heatmaps, *self.push, *self.pull) if loss is not None]
        if not terms:
            raise ValueError("every loss is off")
        return torch.stack(terms).sum()


class HigherHRNetLoss(nn.Module):
    """HigherHRNet's loss over its outputs (the reference's ``MultiLossFactory``), one setting per output.

    Output ``i`` gives ``heatmaps_factor[i] * mean over joints and pixels of mask * (pred - target)**2`` per image
    (its first ``num_joints`` channels) where ``with_heatmaps[i]``, and the :class:`AssociativeEmbeddingLoss` of
    its remaining channels times ``push_factor[i]`` / ``pull_factor[i]`` where ``with_ae[i]``. Defaults: COCO
    (two outputs; AE on the first, ``exp``; factors 1.0 and 0.001). Tags are always the channels after the
    heatmaps (the reference takes them from channel 0 when an output's heatmap loss is off).

    Shapes, lists with one entry per output ``i``: ``outputs[i]`` ``(B, K + T_i, H_i, W_i)``; ``heatmaps[i]``
    ``(B, K, H_i, W_i)``; ``masks[i]`` ``(B, H_i, W_i)``; ``joints[i]`` ``(B, M, K, 2)`` (``None`` allowed where
    ``with_ae[i]`` is False). Returns :class:`HigherHRNetLosses`.
    """

    def __init__(
        self,
        num_joints: int,
        with_heatmaps: Sequence[bool] = (True, True),
        heatmaps_factor: Sequence[float] = (1.0, 1.0),
        with_ae: Sequence[bool] = (True, False),
        push_factor: Sequence[float] = (0.001, 0.001),
        pull_factor: Sequence[float] = (0.001, 0.001),
        ae_loss_type: AELossType = "exp",
    ) -> None:
        super().__init__()
        settings = (with_heatmaps, heatmaps_factor, with_ae, push_factor, pull_factor)
        if len({len(s) for s in settings}) != 1:
            raise ValueError(f"the per-output settings differ in length: {[len(s) for s in settings]}")
        self.num_joints = num_joints
        self.with_heatmaps = tuple(with_heatmaps)
        self.heatmaps_factor = tuple(heatmaps_factor)
        self.with_ae = tuple(with_ae)
        self.push_factor = tuple(push_factor)
        self.pull_factor = tuple(pull_factor)
        self.ae_loss = AssociativeEmbeddingLoss(ae_loss_type)

    def forward(
        self,
        outputs: Sequence[Tensor],
        heatmaps: Sequence[Tensor],
        masks: Sequence[Tensor],
        joints: Sequence[Tensor | None],
    ) -> HigherHRNetLosses:
        stages = len(self.with_heatmaps)
        if not len(outputs) == len(heatmaps) == len(masks) == len(joints) == stages:
            raise ValueError(
                f"expected {stages} outputs, heatmaps, masks and joints; got "
                f"{len(outputs)}, {len(heatmaps)}, {len(masks)}, {len(joints)}"
            )
        k = self.num_joints
        losses = HigherHRNetLosses([], [], [])
        for i, (output, target, mask, tag_joints) in enumerate(zip(outputs, heatmaps, masks, joints)):
            if output.ndim != 4 or output.shape[1] < k:
                raise ValueError(f"output {i} must be (B, {k} + tags, H, W), got shape {tuple(output.shape)}")
            heatmap_loss = None
            if self.with_heatmaps[i]:
                _check_same_shape(f"heatmaps[{i}]", output[:, :k], target)
                if mask.shape != (output.shape[0], *output.shape[2:]):
                    raise ValueError(f"masks[{i}] must be (B, H, W) of output {i}, got shape {tuple(mask.shape)}")
                per_image = ((output[:, :k] - target) ** 2 * mask[:, None]).mean(dim=(1, 2, 3))
                heatmap_loss = per_image * self.heatmaps_factor[i]
            push = pull = None
            if self.with_ae[i]:
                if tag_joints is None or output.shape[1] == k:
                    raise ValueError(f"output {i} has the AE loss on: it needs tag channels and joints")
                push, pull = self.ae_loss(output[:, k:], tag_joints)
                push, pull = push * self.push_factor[i], pull * self.pull_factor[i]
            losses.heatmaps.append(heatmap_loss)
            losses.push.append(push)
            losses.pull.append(pull)
        return losses
