"""Building blocks of a fine-tuning loop: freezing stages and one training epoch (AMP, DDP-friendly), for the
top-down models and the bottom-up ones."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from timm.utils.model import freeze
from torch import Tensor, nn

from ..models.dekr import DEKR
from ..models.higherhrnet import HigherHRNet
from .bottom_up_dataset import AESample, DEKRSample
from .bottom_up_losses import DEKRLoss, HigherHRNetLoss

__all__ = ["bottom_up_loss", "freeze_stages", "train_bottom_up_epoch", "train_one_epoch"]


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


def _run_epoch(
    batches: Iterable,
    batch_loss: Callable[[Any], Tensor],
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    scaler: torch.amp.GradScaler | None,
    max_steps: int | None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
) -> float:
    """The optimisation steps of an epoch, ``batch_loss(batch)`` under autocast; returns the mean loss."""
    total, steps = 0.0, 0
    for batch in batches:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = batch_loss(batch)
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

    def batch_loss(batch: Any) -> Tensor:
        images, targets, weights, _ = batch
        images, targets, weights = images.to(device), targets.to(device), weights.to(device)
        return loss_fn(model(images).float(), targets, weights)

    return _run_epoch(batches, batch_loss, optimizer, device, amp_dtype, scaler, max_steps, scheduler)


def bottom_up_loss(model: nn.Module) -> DEKRLoss | HigherHRNetLoss:
    """The references' loss for a bottom-up model (a ``DistributedDataParallel`` wrapper is looked through).

    DEKR: :class:`DEKRLoss` (heatmap factor 1, offset factor 0.03). HigherHRNet: :class:`HigherHRNetLoss` with a
    heatmap loss of factor 1 on every output, and the push and pull losses (factor 0.001, ``exp``) on the outputs
    that carry tags.

    Raises:
        ValueError: Not a bottom-up model.
    """
    net = getattr(model, "module", model)
    if isinstance(net, DEKR):
        return DEKRLoss()
    if isinstance(net, HigherHRNet):
        outputs = len(net.reductions)
        return HigherHRNetLoss(
            net.num_joints,
            with_heatmaps=(True,) * outputs,
            heatmaps_factor=(1.0,) * outputs,
            with_ae=net.cfg.head.with_tags,
            push_factor=(0.001,) * outputs,
            pull_factor=(0.001,) * outputs,
        )
    raise ValueError(
        f"{type(net).__name__} is not a bottom-up model (DEKR, HigherHRNet): train top-down models with "
        "train_one_epoch and JointsMSELoss, or pass loss_fn="
    )


def train_bottom_up_epoch(
    model: nn.Module,
    batches: Iterable[DEKRSample | AESample],
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module | None = None,
    device: torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    max_steps: int | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> float:
    """Run one epoch of a bottom-up model (DEKR, HigherHRNet); returns the mean loss.

    ``batches`` yields what a ``DataLoader`` over :class:`CocoBottomUpDataset` gives: :class:`DEKRSample` batches
    (the loss is the sum of :class:`DEKRLoss`' two terms) or :class:`AESample` batches
    (:meth:`HigherHRNetLosses.total`). ``loss_fn`` defaults to :func:`bottom_up_loss` of the model; another one is
    called and reduced as those are. ``device`` defaults to the model's parameters'. The other arguments are
    :func:`train_one_epoch`'s.

    Raises:
        ValueError: A batch that is neither :class:`DEKRSample` nor :class:`AESample`, or one of the other method.
    """
    loss_fn = bottom_up_loss(model) if loss_fn is None else loss_fn
    device = next(model.parameters()).device if device is None else device

    def batch_loss(batch: Any) -> Tensor:
        if not isinstance(batch, (DEKRSample, AESample)):
            raise ValueError(
                f"a batch must be a DEKRSample or an AESample (a DataLoader over CocoBottomUpDataset), got "
                f"{type(batch).__name__}"
            )
        if isinstance(loss_fn, HigherHRNetLoss if isinstance(batch, DEKRSample) else DEKRLoss):
            raise ValueError(
                f"{type(batch).__name__} batches do not fit {type(loss_fn).__name__}: build the data set and the loss "
                "for the same model"
            )
        batch = type(batch)(*(f.to(device) if isinstance(f, Tensor) else [t.to(device) for t in f] for f in batch))
        outputs = [output.float() for output in model(batch.image)]
        if isinstance(batch, DEKRSample):
            return sum(loss_fn(outputs, batch[1:]))
        return loss_fn(outputs, batch.heatmaps, batch.masks, batch.joints).total()

    return _run_epoch(batches, batch_loss, optimizer, device, amp_dtype, scaler, max_steps, scheduler)
