"""Building blocks of a fine-tuning loop: freezing stages and one training epoch (AMP, DDP-friendly)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from timm.utils.model import freeze
from torch import nn

__all__ = ["freeze_stages", "train_one_epoch"]


def freeze_stages(model: nn.Module, num_stages: int) -> list[str]:
    """Freeze the stem and the first ``num_stages`` stages (with the transitions into them) of a pose model.

    Uses timm's ``freeze``: the parameters stop receiving gradients and their BatchNorms become
    ``FrozenBatchNorm2d``, so the running statistics stay fixed through ``model.train()`` as well (as in timm and
    mmpose). ``num_stages`` from 0 (nothing) to 4.

    Returns:
        Names of the frozen submodules.
    """
    backbone = model.backbone
    num_total = len(backbone.stage_names) + 1
    if not 0 <= num_stages <= num_total:
        raise ValueError(f"num_stages must be between 0 and {num_total}, got {num_stages}")
    if num_stages == 0:
        return []
    names = ["stem", "stage1"]
    for transition, stage in backbone.stage_names[: num_stages - 1]:
        names += [transition, stage]
    freeze(model, [f"backbone.{name}" for name in names])
    return names


def train_one_epoch(
    model: nn.Module,
    batches: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    max_steps: int | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> float:
    """Run one epoch of heatmap regression; returns the mean loss.

    ``batches`` yields ``(images, targets, target_weights, meta)`` as :class:`CocoKeypointDataset` gives them.
    ``amp_dtype`` enables autocast (on CUDA), ``scaler`` gradient scaling for float16; ``scheduler`` (if given) is
    stepped after every optimiser step (per-iteration schedules such as one-cycle).
    """
    total, steps = 0.0, 0
    for images, targets, weights, _ in batches:
        images, targets, weights = images.to(device), targets.to(device), weights.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model(images).float(), targets, weights)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += float(loss.detach())
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    return total / max(steps, 1)
