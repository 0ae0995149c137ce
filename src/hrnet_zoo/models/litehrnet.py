"""Lite-HRNet top-down pose models.

Paper: "Lite-HRNet: A Lightweight High-Resolution Network", Yu et al., CVPR 2021 (https://arxiv.org/abs/2104.06403).
Reference implementation (Apache-2.0): https://github.com/HRNet/Lite-HRNet (``models/backbones/litehrnet.py``, on
mmpose 0.x; the same network is mmpose 1.x's ``LiteHRNet``). This file rebuilds it from :mod:`hrnet_zoo.layers.lite`
and equals the reference for the same weights, quirks included (:class:`~hrnet_zoo.layers.lite.LiteFusion`'s doubled
branch-0 term, :class:`~hrnet_zoo.layers.lite.SpatialWeighting`'s fixed ratio 4 and biased convs, the stem's
"linear" conv with a ReLU, the iterative head's ``align_corners=True``).

Key layouts: the reference repository's checkpoints (mmpose 0.x ``TopDown`` models) and mmpose 1.x's load through
:func:`~hrnet_zoo.models._layouts.litehrnet_to_package_layout`, which documents the renames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..layers._checks import check_image_input
from ..layers.lite import IterativeHead, LiteHRModule, LiteStem, LiteTransition, ModuleType
from ._layouts import litehrnet_to_package_layout
from .config import HRNetConfig
from .top_down import HRNetFeatures, HRNetPose

__all__ = [
    "LITE_HRNET_18",
    "LITE_HRNET_30",
    "LiteHRNet",
    "LiteHRNetConfig",
    "LiteHRNetFeatures",
    "LiteHRNetPose",
    "LiteStageSpec",
]


@dataclass(frozen=True)
class LiteStageSpec:
    """One stage: ``num_modules`` :class:`~hrnet_zoo.layers.lite.LiteHRModule` over ``len(num_channels)`` branches.

    Attributes:
        num_modules: Modules in the stage.
        num_blocks: Blocks per module.
        num_channels: Channels per branch, highest resolution first (at least two branches).
        reduce_ratio: Cross-resolution weighting's reduction.
        module_type: ``"lite"`` (conditional channel weighting) or ``"naive"`` (shuffle units).
        with_fuse: Whether each module ends with the multi-scale fusion.
    """

    num_modules: int
    num_blocks: int
    num_channels: tuple[int, ...]
    reduce_ratio: int = 8
    module_type: ModuleType = "lite"
    with_fuse: bool = True

    def __post_init__(self) -> None:
        if self.num_modules < 1 or self.num_blocks < 1 or len(self.num_channels) < 2:
            raise ValueError(f"a Lite-HRNet stage needs a module, a block and two branches, got {self}")
        if self.module_type not in ("lite", "naive"):
            raise ValueError(f"module_type must be 'lite' or 'naive', got {self.module_type!r}")

    @property
    def num_branches(self) -> int:
        """Number of parallel branches."""
        return len(self.num_channels)


@dataclass(frozen=True)
class LiteHRNetConfig:
    """A complete Lite-HRNet: the stem, then stages that keep or add branches, then the iterative head.

    Attributes:
        stages: The stages (the reference's ``stages_spec``, one entry per stage).
        stem_channels: Width of the stem's first conv.
        stem_out_channels: Channels out of the stem.
        expand_ratio: Expansion of the stem's second half.
        with_head: Whether the :class:`~hrnet_zoo.layers.lite.IterativeHead` aggregates the branches.
    """

    stages: tuple[LiteStageSpec, ...]
    stem_channels: int = 32
    stem_out_channels: int = 32
    expand_ratio: float = 1.0
    with_head: bool = True

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a Lite-HRNet needs at least one stage")
        for number, (before, after) in enumerate(zip(self.stages, self.stages[1:]), start=1):
            if after.num_branches < before.num_branches:
                raise ValueError(f"stage {number} has fewer branches than stage {number - 1}")

    @property
    def num_branches(self) -> int:
        """Branches of the last stage."""
        return self.stages[-1].num_branches

    @property
    def total_stride(self) -> int:
        """Stride of the lowest-resolution branch (input sizes must be multiples of it)."""
        return 4 * 2 ** (self.num_branches - 1)

    @classmethod
    def from_reference(cls, extra: Mapping[str, Any]) -> LiteHRNetConfig:
        """Build from the reference's backbone ``extra`` dict (``stem``, ``num_stages``, ``stages_spec``, ...).

        Example:
            >>> cfg = LiteHRNetConfig.from_reference(mmcv_config.model.backbone.extra)
        """
        spec, stem = extra["stages_spec"], extra["stem"]
        for i, branches in enumerate(spec["num_branches"][: extra["num_stages"]]):
            if branches != len(spec["num_channels"][i]):
                raise ValueError(f"stage {i}: num_branches {branches} does not match {spec['num_channels'][i]}")
        stages = tuple(
            LiteStageSpec(
                num_modules=int(spec["num_modules"][i]),
                num_blocks=int(spec["num_blocks"][i]),
                num_channels=tuple(int(c) for c in spec["num_channels"][i]),
                reduce_ratio=int(spec["reduce_ratios"][i]),
                module_type=spec["module_type"][i].lower(),
                with_fuse=bool(spec["with_fuse"][i]),
            )
            for i in range(extra["num_stages"])
        )
        return cls(
            stages=stages,
            stem_channels=int(stem["stem_channels"]),
            stem_out_channels=int(stem["out_channels"]),
            expand_ratio=float(stem["expand_ratio"]),
            with_head=bool(extra.get("with_head", True)),
        )


def _lite_hrnet(num_modules: tuple[int, int, int]) -> LiteHRNetConfig:
    """The paper's layout: stem 32, branches 40/80/160/320, two blocks per module, reduction 8."""
    widths = (40, 80, 160, 320)
    return LiteHRNetConfig(
        stages=tuple(LiteStageSpec(m, 2, widths[: i + 2]) for i, m in enumerate(num_modules)),
    )


#: Lite-HRNet-18 (``litehrnet_18_coco_256x192.py``): 2, 4 and 2 modules in the three stages.
LITE_HRNET_18 = _lite_hrnet((2, 4, 2))
#: Lite-HRNet-30 (``litehrnet_30_coco_256x192.py``): 3, 8 and 3 modules.
LITE_HRNET_30 = _lite_hrnet((3, 8, 3))


class LiteHRNet(nn.Module):
    """Lite-HRNet backbone: stem, then per stage a transition and its modules, then the iterative head.

    Submodules are named as the reference's (``stem``, ``transition{k}``, ``stage{k}``, ``head_layer``, ``k``
    from 0). The reference returns only the first branch; this returns all of them.

    Shapes: ``(B, in_chans, H, W) -> [(B, out_channels[i], H / 2**(i + 2), W / 2**(i + 2)) for i]``; ``H`` and ``W``
    multiples of ``cfg.total_stride`` (32 for four branches).

    Args:
        cfg: Architecture (:data:`LITE_HRNET_18`, :data:`LITE_HRNET_30` or :meth:`LiteHRNetConfig.from_reference`).
        in_chans: Input channels.

    Example:
        >>> net = LiteHRNet(LITE_HRNET_18)
        >>> [f.shape[1:] for f in net(torch.randn(1, 3, 256, 192))][0]
        torch.Size([40, 64, 48])
    """

    def __init__(self, cfg: LiteHRNetConfig, in_chans: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_chans = in_chans
        self.grad_checkpointing = False
        self.stem = LiteStem(in_chans, cfg.stem_channels, cfg.stem_out_channels, cfg.expand_ratio)
        channels = [self.stem.out_channels]
        for k, spec in enumerate(cfg.stages):
            transition = LiteTransition(channels, spec.num_channels)
            modules = [
                LiteHRModule(spec.num_channels, spec.num_blocks, spec.reduce_ratio, spec.module_type, spec.with_fuse)
                for _ in range(spec.num_modules)
            ]
            self.add_module(f"transition{k}", transition)
            self.add_module(f"stage{k}", nn.Sequential(*modules))
            channels = modules[-1].out_channels
        self.head_layer = IterativeHead(channels) if cfg.with_head else None
        self.out_channels: list[int] = self.head_layer.out_channels if self.head_layer is not None else channels
        self.branch_channels: list[int] = list(channels)
        self.branch_reductions: list[int] = [4 * 2**i for i in range(len(channels))]

    @property
    def last_module_name(self) -> str:
        """Qualified name of the last module (``stage2.1`` for Lite-HRNet-18), whose outputs are the branches."""
        last = len(self.cfg.stages) - 1
        return f"stage{last}.{self.cfg.stages[last].num_modules - 1}"

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each module in the backward pass instead of storing its activations."""
        self.grad_checkpointing = enable

    def _run(self, function: Callable[[list[Tensor]], list[Tensor]], xs: list[Tensor]) -> list[Tensor]:
        if self.grad_checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return checkpoint(function, xs, use_reentrant=False)
        return function(xs)

    def forward_branches(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """The outputs (the iterative head's, when there is one), and the last module's branches before it.

        Shapes: ``(B, in_chans, H, W) -> (outputs, [(B, branch_channels[i], H / 2**(i + 2), W / 2**(i + 2))])``.
        """
        check_image_input(type(self).__name__, x, self.in_chans, self.cfg.total_stride)
        xs = [self.stem(x)]
        for k in range(len(self.cfg.stages)):
            xs = getattr(self, f"transition{k}")(xs)
            for module in getattr(self, f"stage{k}"):
                xs = self._run(module, xs)
        return (self.head_layer(xs) if self.head_layer is not None else xs), xs

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.forward_branches(x)[0]


class _LiteHRNetModel:
    """What Lite-HRNet's pose and feature models change of HRNet's: the backbone, its layouts, its groups."""

    backbone: LiteHRNet
    first_conv = "backbone.stem.conv1.conv"
    family = "Lite-HRNet"
    package_layout = staticmethod(litehrnet_to_package_layout)

    def _make_backbone(self, cfg: LiteHRNetConfig | HRNetConfig, in_chans: int, multi_scale_output: bool) -> LiteHRNet:
        """The backbone; with ``multi_scale_output`` (features) without the iterative head: the branches come out."""
        if not isinstance(cfg, LiteHRNetConfig):
            raise TypeError(f"{type(self).__name__} is built from a LiteHRNetConfig, got {type(cfg).__name__}")
        return LiteHRNet(replace(cfg, with_head=False) if multi_scale_output else cfg, in_chans)

    def _intermediate_module(self, index: int) -> str:
        return f"backbone.{self.backbone.last_module_name}"

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups in network order (stem, each stage's transition then modules, the iterative head).

        For timm's layer-wise learning-rate decay (``timm.optim.param_groups_layer_decay``); the head is last.
        """
        if coarse:
            blocks = [(r"^backbone\.(?:transition|stage)(\d+)", None), (r"^backbone\.head_layer", (99999,))]
        else:
            blocks = [
                (r"^backbone\.transition(\d+)", (-1,)),
                (r"^backbone\.stage(\d+)\.(\d+)", None),
                (r"^backbone\.head_layer", (99999,)),
            ]
        return {"stem": r"^backbone\.stem", "blocks": blocks}


class LiteHRNetPose(_LiteHRNetModel, HRNetPose):
    """Lite-HRNet pose network: the backbone's stride-4 output followed by a conv giving one heatmap per joint.

    The head is mmpose's ``TopdownHeatmapSimpleHead`` / ``HeatmapHead`` without deconvolutions, as in the
    reference configs (``num_deconv_layers=0``, ``final_conv_kernel=1``). ``load_state_dict`` also accepts the
    reference's and OpenMMLab's key layouts. timm's model API is :class:`~hrnet_zoo.models.HRNetPose`'s: the
    intermediates are the last module's branches (strides 4 to 32), the features the iterative head's stride-4
    output.

    Shapes: ``(B, in_chans, H, W) -> (B, num_joints, H / 4, W / 4)``; ``H`` and ``W`` multiples of
    ``cfg.total_stride`` (32). Inputs are RGB in ``[0, 1]`` normalised with ``pose_meta.mean``/``std``.

    Takes the arguments of :class:`~hrnet_zoo.models.HRNetPose`, with a :class:`LiteHRNetConfig`.

    Example:
        >>> model = hrnet_zoo.create_model("litehrnet_18_pose").eval()  # or LiteHRNetPose(LITE_HRNET_18, num_joints=17)
        >>> model(torch.randn(1, 3, 256, 192)).shape
        torch.Size([1, 17, 64, 48])
    """


class LiteHRNetFeatures(_LiteHRNetModel, HRNetFeatures):
    """Lite-HRNet as a feature extractor: the last module's four branches (strides 4, 8, 16, 32; the iterative
    head, which only the pose network uses, is left out and its checkpoint keys are dropped on loading).

    Shapes: ``(B, in_chans, H, W) -> [(B, feature_info.channels()[k], H / r_k, W / r_k) for k in out_indices]``.

    Example:
        >>> model = hrnet_zoo.create_model("litehrnet_18_pose", features_only=True, out_indices=(1, 3))
        >>> model.feature_info.channels(), model.feature_info.reduction()
        ([80, 320], [8, 32])
    """

    unused_checkpoint_prefixes = ("backbone.head_layer.",)

    def optional_checkpoint_keys(self) -> set[str]:
        """None: a pose checkpoint holds every key of the branches."""
        return set()
