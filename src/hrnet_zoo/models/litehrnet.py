"""Lite-HRNet top-down pose models.

Paper: "Lite-HRNet: A Lightweight High-Resolution Network", Yu et al., CVPR 2021 (https://arxiv.org/abs/2104.06403).
Reference implementation (Apache-2.0): https://github.com/HRNet/Lite-HRNet (``models/backbones/litehrnet.py``, on
mmpose 0.x; the same network is mmpose 1.x's ``LiteHRNet``). This file rebuilds it from :mod:`hrnet_zoo.layers.lite`
and equals the reference for the same weights, quirks included (:class:`~hrnet_zoo.layers.lite.LiteFusion`'s doubled
branch-0 term, :class:`~hrnet_zoo.layers.lite.SpatialWeighting`'s fixed ratio 4 and biased convs, the stem's
"linear" conv with a ReLU, the iterative head's ``align_corners=True``).

Key layouts (:func:`litehrnet_to_package_layout`): the reference repository's checkpoints are mmpose 0.x
``TopDown`` models, the backbone under ``backbone.`` and the heatmap conv as ``keypoint_head.final_layer``; mmpose
1.x names the head ``head.final_layer``. The package renames three things:

===================================================  ===================================================
reference / OpenMMLab                                hrnet_zoo
===================================================  ===================================================
``backbone.transition{k}.{i}.*``                     ``backbone.transition{k}.branches.{i}.*``
``backbone.stage{k}.{m}.fuse_layers.{i}.{j}.*``      ``backbone.stage{k}.{m}.fuse.paths.{i}.{j}.*``
``keypoint_head.final_layer.*`` (0.x),               ``head.*``
``head.final_layer.*`` (1.x)
===================================================  ===================================================

Every other key (``backbone.stem.*``, ``backbone.stage{k}.{m}.layers.*``, ``backbone.head_layer.*``) is the same.
A bare backbone state dict (the reference ``LiteHRNet``'s own keys, ``stem.*``...) is read as under ``backbone.``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ..keypoints import KeypointSet
from ..layers._checks import check_image_input
from ..layers.lite import IterativeHead, LiteHRModule, LiteStem, LiteTransition, ModuleType
from ._layouts import strip_wrappers
from .meta import PoseMeta, head_meta
from .pose_hrnet import init_weights

__all__ = [
    "LITE_HRNET_18",
    "LITE_HRNET_30",
    "LiteHRNet",
    "LiteHRNetConfig",
    "LiteHRNetPose",
    "LiteStageSpec",
    "litehrnet_to_package_layout",
]

V = TypeVar("V")


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

    def forward(self, x: Tensor) -> list[Tensor]:
        check_image_input(type(self).__name__, x, self.in_chans, self.cfg.total_stride)
        xs = [self.stem(x)]
        for k in range(len(self.cfg.stages)):
            xs = getattr(self, f"stage{k}")(getattr(self, f"transition{k}")(xs))
        return self.head_layer(xs) if self.head_layer is not None else xs


_REFERENCE_RULES = (
    (re.compile(r"^backbone\.transition(\d+)\.(\d+)\."), r"backbone.transition\1.branches.\2."),
    (re.compile(r"^(backbone\.stage\d+\.\d+)\.fuse_layers\."), r"\1.fuse.paths."),
    (re.compile(r"^(?:keypoint_head|head)\.final_layer\."), "head."),
)
_BARE_BACKBONE = re.compile(r"^(?:stem|transition\d+|stage\d+|head_layer)\.")


def litehrnet_to_package_layout(state_dict: Mapping[str, V]) -> dict[str, V]:
    """Rename a Lite-HRNet checkpoint of the reference's, mmpose 0.x's or 1.x's layout to the package's.

    Keys already in the package's layout pass unchanged (the renames are idempotent), as do unknown keys, so that
    a strict load reports them; ``module.`` and ``_orig_mod.`` wrappers are stripped. Key order is kept.

    Example:
        >>> state = torch.load("litehrnet_18_coco_256x192.pth")["state_dict"]
        >>> model.load_state_dict(litehrnet_to_package_layout(state))
    """
    state_dict = strip_wrappers(state_dict)
    bare = bool(state_dict) and all(_BARE_BACKBONE.match(k) for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        key = "backbone." + key if bare else key
        for pattern, replacement in _REFERENCE_RULES:
            key, count = pattern.subn(replacement, key)
            if count:
                break
        out[key] = value
    return out


def _convert_on_load(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook: accept the reference's and OpenMMLab's layouts too (renamed in place)."""
    own = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    for key in own:
        del state_dict[prefix + key]
    state_dict.update({prefix + k: v for k, v in litehrnet_to_package_layout(own).items()})


class LiteHRNetPose(nn.Module):
    """Lite-HRNet pose network: the backbone's stride-4 output followed by a conv giving one heatmap per joint.

    The head is mmpose's ``TopdownHeatmapSimpleHead`` / ``HeatmapHead`` without deconvolutions, as in the
    reference configs (``num_deconv_layers=0``, ``final_conv_kernel=1``). ``load_state_dict`` also accepts the
    reference's and OpenMMLab's key layouts (:func:`litehrnet_to_package_layout`).

    Shapes: ``(B, in_chans, H, W) -> (B, num_joints, H / 4, W / 4)``; ``H`` and ``W`` multiples of
    ``cfg.total_stride`` (32). Inputs are RGB in ``[0, 1]`` normalised with ``pose_meta.mean``/``std``.

    Args:
        cfg: Backbone architecture.
        num_joints: Heatmaps to predict (defaults to the keypoints').
        keypoints: What the heatmaps are; generic names when not given.
        pose_meta: The complete metadata; its keypoints yield to ``keypoints``/``num_joints`` when given.
        in_chans: Input channels.
        head_kernel_size: Kernel of the heatmap conv (1 in the configs; 3 allowed, as mmpose's ``final_conv_kernel``).
        device: Where to create the parameters.
        dtype: Parameter dtype.

    Example:
        >>> model = LiteHRNetPose(LITE_HRNET_18, num_joints=17).eval()
        >>> model(torch.randn(1, 3, 256, 192)).shape
        torch.Size([1, 17, 64, 48])
    """

    #: The heatmap convolution (timm's ``pretrained_cfg["classifier"]``).
    classifier = "head"

    def __init__(
        self,
        cfg: LiteHRNetConfig,
        num_joints: int | None = None,
        keypoints: KeypointSet | None = None,
        pose_meta: PoseMeta | None = None,
        in_chans: int = 3,
        head_kernel_size: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        meta = head_meta(pose_meta, num_joints=num_joints, keypoints=keypoints)
        if meta.num_joints < 1:
            raise ValueError(f"LiteHRNetPose needs at least one joint, got {meta.num_joints}")
        if head_kernel_size not in (1, 3):
            raise ValueError(f"head_kernel_size must be 1 or 3, got {head_kernel_size}")
        with torch.device(device) if device is not None else nullcontext():
            self.backbone = LiteHRNet(cfg, in_chans)
            self.num_features = self.backbone.out_channels[0]
            self.head = nn.Conv2d(self.num_features, meta.num_joints, head_kernel_size, padding=head_kernel_size // 2)
        init_weights(self)
        if dtype is not None:
            self.to(dtype=dtype)
        self.pose_meta = meta
        self.register_load_state_dict_pre_hook(_convert_on_load)

    @property
    def num_joints(self) -> int:
        """Number of predicted heatmaps."""
        return self.head.out_channels

    @property
    def in_chans(self) -> int:
        """Input channels."""
        return self.backbone.in_chans

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x)[0])
