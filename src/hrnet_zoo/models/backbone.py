"""The HRNet backbone, assembled from the building blocks in :mod:`hrnet_zoo.layers` by an :class:`HRNetConfig`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..layers import HRModule, Stem, Transition, get_block, make_blocks
from ..layers._checks import check_image_input
from .config import HRNetConfig

__all__ = ["HighResolutionNet"]


class HighResolutionNet(nn.Module):
    """HRNet backbone: stem, a single-branch stage, then stages of HRModules that add one branch each.

    Shapes: ``(B, in_chans, H, W) -> [(B, out_channels[i], H / 2**(i + 2), W / 2**(i + 2)) for i]``; ``H`` and
    ``W`` must be multiples of ``cfg.total_stride`` (32 for four branches). With ``multi_scale_output=False`` the
    last module fuses into the stride-4 branch only and the list has one tensor, as in the pose network.

    Args:
        cfg: Architecture (``ARCHITECTURES["hrnet_w32_pose"].config``, or :func:`~.config.hrnet_config`).
        in_chans: Input channels.
        multi_scale_output: Whether the last module outputs every branch.

    Example:
        >>> net = HighResolutionNet(hrnet_config(32))
        >>> [f.shape[1:] for f in net(torch.randn(1, 3, 256, 192))]
        [torch.Size([32, 64, 48]), torch.Size([64, 32, 24]), torch.Size([128, 16, 12]), torch.Size([256, 8, 6])]
    """

    def __init__(self, cfg: HRNetConfig, in_chans: int = 3, multi_scale_output: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_chans = in_chans
        self.grad_checkpointing = False
        self.stem = Stem(in_chans, cfg.stem_width)
        spec1 = cfg.stage1
        self.stage1 = make_blocks(get_block(spec1.block), cfg.stem_width, spec1.num_channels[0], spec1.num_blocks[0])
        channels = spec1.out_channels
        self.stage_names: list[tuple[str, str]] = []
        for number, spec in enumerate(cfg.stages, start=2):
            transition = Transition(channels, spec.out_channels)
            last_stage = number == len(cfg.stages) + 1
            modules = []
            for m in range(spec.num_modules):
                single_output = last_stage and not multi_scale_output and m == spec.num_modules - 1
                modules.append(
                    HRModule(transition.out_channels, spec.num_channels, spec.num_blocks, spec.block, not single_output)
                )
            self.add_module(f"transition{number - 1}", transition)
            self.add_module(f"stage{number}", nn.Sequential(*modules))
            self.stage_names.append((f"transition{number - 1}", f"stage{number}"))
            channels = modules[-1].out_channels
        self.out_channels: list[int] = list(channels)
        self.reductions: list[int] = [4 * 2**i for i in range(len(channels))]
        self.branch_channels: list[int] = list(cfg.out_channels)
        self.branch_reductions: list[int] = [4 * 2**i for i in range(len(self.branch_channels))]

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each HRModule in the backward pass instead of storing its activations."""
        self.grad_checkpointing = enable

    @property
    def last_module_name(self) -> str:
        """Qualified name of the last HRModule (``stage4.2`` for the paper's configurations)."""
        stage = self.stage_names[-1][1]
        return f"{stage}.{len(getattr(self, stage)) - 1}"

    def _run(self, function: Callable[[list[Tensor]], list[Tensor]], xs: list[Tensor]) -> list[Tensor]:
        if self.grad_checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return checkpoint(function, xs, use_reentrant=False)
        return function(xs)

    def forward_branches(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """The outputs, and the branch outputs of the last HRModule before its final fusion.

        Shapes: ``(B, in_chans, H, W) -> (outputs, [(B, C_i, H / 2**(i + 2), W / 2**(i + 2))])``.
        """
        check_image_input(type(self).__name__, x, self.in_chans, self.cfg.total_stride)
        xs = [self.stage1(self.stem(x))]
        branches = xs
        for transition_name, stage_name in self.stage_names:
            xs = getattr(self, transition_name)(xs)
            modules = list(getattr(self, stage_name))
            for module in modules[:-1]:
                xs = self._run(module, xs)
            branches = self._run(modules[-1].forward_branches, xs)
            xs = modules[-1].fuse_branches(branches)
        return xs, branches

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.forward_branches(x)[0]
