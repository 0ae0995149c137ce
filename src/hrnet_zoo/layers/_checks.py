"""Input checks shared by the layers: clear errors instead of shape errors deep inside torch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.fx._symbolic_trace import is_fx_symbolic_tracing

__all__ = ["check_branch_inputs", "check_feature_map", "check_image_input"]


def _tracing() -> bool:
    """Inputs are proxies or symbolic while JIT- or FX-tracing: the checks step aside then."""
    return torch.jit.is_tracing() or is_fx_symbolic_tracing()


def check_feature_map(name: str, x: Tensor, channels: int) -> None:
    """Check one ``(B, channels, H, W)`` floating point feature map (the input of a single-tensor block)."""
    if _tracing():
        return
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} expects a 4D (B, {channels}, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{name} expects a floating point tensor, got {x.dtype}")
    if x.shape[1] != channels:
        raise ValueError(
            f"{name} expects a (B, {channels}, H, W) tensor, got {tuple(x.shape)}: it expects {channels} channels, "
            f"got {x.shape[1]}"
        )


def check_branch_inputs(name: str, xs: Sequence[Tensor], channels: Sequence[int]) -> None:
    """Check a list of branch tensors: count, channels, and sizes halving from branch to branch.

    Args:
        name: The checking module's name, used in the message.
        xs: Branch tensors, highest resolution first, each ``(B, C_i, H / 2**i, W / 2**i)``.
        channels: Expected ``C_i`` for every branch.
    """
    if _tracing():
        return
    if not isinstance(xs, (list, tuple)):
        raise ValueError(f"{name} expects a list of branch tensors, got {type(xs).__name__}")
    if len(xs) != len(channels):
        raise ValueError(f"{name} expects {len(channels)} branch tensors, got {len(xs)}")
    height, width = xs[0].shape[-2:]
    for i, (x, c) in enumerate(zip(xs, channels)):
        if x.dim() != 4:
            raise ValueError(f"{name}: branch {i} must be a 4D (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != c:
            raise ValueError(f"{name}: branch {i} must have {c} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
        expected = (height // 2**i, width // 2**i)
        if height % 2**i or width % 2**i or tuple(x.shape[-2:]) != expected:
            factor = 2 ** (len(xs) - 1)
            raise ValueError(
                f"{name}: branch {i} has spatial size {tuple(x.shape[-2:])}, expected {expected}. Branch sizes must "
                f"halve from branch to branch, so the first branch's height and width must be multiples of "
                f"{factor}; got {(height, width)}"
            )


def check_image_input(name: str, x: Tensor, in_chans: int, multiple: int) -> None:
    """Check a network input: a float ``(B, in_chans, H, W)`` tensor with ``H`` and ``W`` multiples of ``multiple``."""
    if _tracing():
        return
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} expects a torch.Tensor of shape (B, {in_chans}, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        hint = " (add a batch dimension with x.unsqueeze(0))" if x.dim() == 3 else ""
        raise ValueError(f"{name} expects a 4D (B, {in_chans}, H, W) tensor, got shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise ValueError(
            f"{name} expects a floating point tensor, got {x.dtype}: convert images with x.float() / 255 and "
            "normalise them with the model's mean and std"
        )
    if x.shape[1] != in_chans:
        raise ValueError(
            f"{name} expects {in_chans} input channels, got {x.shape[1]} (shape {tuple(x.shape)}); "
            f"convert the images to {in_chans} channels or create the model with in_chans={x.shape[1]}"
        )
    height, width = x.shape[-2:]
    if height % multiple or width % multiple:
        fit_h, fit_w = -(-height // multiple) * multiple, -(-width // multiple) * multiple
        raise ValueError(
            f"{name} needs a height and width that are multiples of {multiple} (its total stride), got "
            f"{height}x{width}; resize or pad the input, e.g. to {fit_h}x{fit_w}"
        )
