"""HRNet architectures as data: stage specifications, the HRNet family's layout, and what a registered architecture
is made of (:class:`Architecture`; the table of them is ``hrnet_zoo.models.ARCHITECTURES``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from torch import nn

from ..layers import get_block

if TYPE_CHECKING:
    from .dekr import DEKRConfig
    from .higherhrnet import HigherHRNetConfig
    from .litehrnet import LiteHRNetConfig

__all__ = ["Architecture", "HRNetConfig", "StageSpec", "hrnet_config"]

BlockName = Literal["basic", "bottleneck"]


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``num_modules`` HRModules over ``len(num_channels)`` parallel branches.

    Attributes:
        num_modules: How many HRModules the stage repeats.
        block: Residual block of the branches, ``"basic"`` or ``"bottleneck"``.
        num_blocks: Residual blocks per branch in each module.
        num_channels: Block width per branch (the branch carries ``width * expansion`` channels).
    """

    num_modules: int
    block: BlockName
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]

    def __post_init__(self) -> None:
        get_block(self.block)
        if len(self.num_blocks) != len(self.num_channels):
            raise ValueError(
                f"num_blocks {self.num_blocks} and num_channels {self.num_channels} need one entry per branch"
            )
        if self.num_modules < 1 or not self.num_channels:
            raise ValueError(f"a stage needs at least one module and one branch, got {self}")

    @property
    def num_branches(self) -> int:
        """Number of parallel branches."""
        return len(self.num_channels)

    @property
    def out_channels(self) -> list[int]:
        """Channels each branch carries out of the stage."""
        expansion = get_block(self.block).expansion
        return [c * expansion for c in self.num_channels]

    @classmethod
    def from_original(cls, spec: Mapping[str, Any]) -> StageSpec:
        """Read the original implementation's stage spec (``NUM_MODULES``, ``BLOCK``, ``NUM_BLOCKS``, ...)."""
        if spec.get("FUSE_METHOD", "SUM") != "SUM":
            raise ValueError(f"only FUSE_METHOD 'SUM' exists in HRNet, got {spec['FUSE_METHOD']!r}")
        if "NUM_BRANCHES" in spec and spec["NUM_BRANCHES"] != len(spec["NUM_CHANNELS"]):
            raise ValueError(f"NUM_BRANCHES {spec['NUM_BRANCHES']} does not match NUM_CHANNELS {spec['NUM_CHANNELS']}")
        return cls(
            num_modules=int(spec.get("NUM_MODULES", 1)),
            block=spec["BLOCK"].lower(),
            num_blocks=tuple(int(n) for n in spec["NUM_BLOCKS"]),
            num_channels=tuple(int(c) for c in spec["NUM_CHANNELS"]),
        )


@dataclass(frozen=True)
class HRNetConfig:
    """A complete HRNet: stem width, the single-branch first stage, then the multi-branch stages.

    Each multi-branch stage must have exactly one branch more than the stage before it.
    """

    stages: tuple[StageSpec, ...]
    stage1: StageSpec = StageSpec(1, "bottleneck", (4,), (64,))
    stem_width: int = 64

    def __post_init__(self) -> None:
        if self.stage1.num_branches != 1 or self.stage1.num_modules != 1:
            raise ValueError(f"stage 1 is a single branch of blocks, got {self.stage1}")
        previous = 1
        for number, stage in enumerate(self.stages, start=2):
            if stage.num_branches != previous + 1:
                raise ValueError(f"stage {number} must have {previous + 1} branches, got {stage.num_branches}")
            previous = stage.num_branches

    @property
    def num_branches(self) -> int:
        """Branches of the last stage."""
        return self.stages[-1].num_branches if self.stages else 1

    @property
    def out_channels(self) -> list[int]:
        """Channels of each branch out of the last stage."""
        return self.stages[-1].out_channels if self.stages else self.stage1.out_channels

    @property
    def total_stride(self) -> int:
        """Stride of the lowest-resolution branch (input sizes must be multiples of it)."""
        return 4 * 2 ** (self.num_branches - 1)

    @classmethod
    def from_original(cls, extra: Mapping[str, Any]) -> HRNetConfig:
        """Build from the original implementation's ``MODEL.EXTRA`` (``STAGE2``..``STAGE4``; ``STAGE1`` optional).

        Example:
            >>> cfg = HRNetConfig.from_original(yaml.safe_load(open("w32_256x192.yaml"))["MODEL"]["EXTRA"])
        """
        stage_keys = sorted((k for k in extra if k.startswith("STAGE") and k != "STAGE1"), key=lambda k: int(k[5:]))
        kwargs: dict[str, Any] = {"stages": tuple(StageSpec.from_original(extra[k]) for k in stage_keys)}
        if "STAGE1" in extra:
            kwargs["stage1"] = StageSpec.from_original(extra["STAGE1"])
        return cls(**kwargs)


def hrnet_config(
    width: int, *, stage1_blocks: int = 4, modules: tuple[int, int, int] = (1, 4, 3), blocks: int = 4
) -> HRNetConfig:
    """The HRNet family layout at base ``width``: branch widths ``width * (1, 2, 4, 8)``, basic blocks."""
    widths = (width, 2 * width, 4 * width, 8 * width)
    return HRNetConfig(
        stage1=StageSpec(1, "bottleneck", (stage1_blocks,), (64,)),
        stages=tuple(
            StageSpec(num_modules, "basic", (blocks,) * branches, widths[:branches])
            for num_modules, branches in zip(modules, (2, 3, 4))
        ),
    )


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its network, model classes and the ImageNet classifier sharing its backbone.

    Attributes:
        config: The network: an :class:`HRNetConfig` or a :class:`~hrnet_zoo.models.LiteHRNetConfig` (top-down),
            a :class:`~hrnet_zoo.models.DEKRConfig` or :class:`~hrnet_zoo.models.HigherHRNetConfig` (bottom-up).
        model_cls: :class:`~hrnet_zoo.models.HRNetPose` (head on the stride-4 branch),
            :class:`~hrnet_zoo.models.HRNetV2Pose` (all branches), :class:`~hrnet_zoo.models.LiteHRNetPose`,
            :class:`~hrnet_zoo.models.DEKR` or :class:`~hrnet_zoo.models.HigherHRNet`.
        features_cls: The feature extractor ``features_only=True`` builds (:class:`~hrnet_zoo.models.HRNetFeatures`,
            :class:`~hrnet_zoo.models.LiteHRNetFeatures`); ``None`` for the bottom-up models.
        imagenet_hub_id: timm's ImageNet-1k classifier with the same backbone, for ``pretrained="imagenet"``.
    """

    config: HRNetConfig | LiteHRNetConfig | DEKRConfig | HigherHRNetConfig
    model_cls: type[nn.Module]
    features_cls: type[nn.Module] | None = None
    imagenet_hub_id: str | None = None

    @property
    def kind(self) -> str:
        """``"top_down"`` (crops of detected persons) or ``"bottom_up"`` (whole images, every person at once)."""
        return self.model_cls.kind

    @property
    def classifier(self) -> str:
        """The heatmap convolution's module name."""
        return self.model_cls.classifier

    @property
    def first_conv(self) -> str:
        """The first convolution's module name."""
        return self.model_cls.first_conv
