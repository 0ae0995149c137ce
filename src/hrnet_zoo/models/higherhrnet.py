"""HigherHRNet bottom-up pose models: HRNet plus a deconvolution head giving heatmaps and associative-embedding tags.

Paper: "HigherHRNet: Scale-Aware Representation Learning for Bottom-Up Human Pose Estimation", Cheng et al., CVPR
2020 (https://arxiv.org/abs/1908.10357). Reference implementation (MIT):
https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation, ``lib/models/pose_higher_hrnet.py``. This file rebuilds
the same network from :class:`~hrnet_zoo.models.HighResolutionNet` and :mod:`hrnet_zoo.layers`, and renames the
reference's and OpenMMLab 0.x's (``AEHigherResolutionHead``) checkpoint keys onto it.

Choices of the reference that this network reproduces:

- Which outputs carry tags is set by the *loss* option ``LOSS.WITH_AE_LOSS`` (one flag per output): output ``i``
  has ``num_joints + tag_channels`` channels when its flag is set, else ``num_joints``. COCO: ``[True, False]``,
  tags at 1/4 only.
- ``DECONV.CAT_OUTPUT[i]`` concatenates the features with the previous *whole* output (heatmaps and tags) before
  deconvolution ``i``: 32 + 34 = 66 input channels for W32 on COCO.
- ``FINAL_CONV_KERNEL`` is 1 or 3 (the reference pads by 1 for 3 and by 0 otherwise, so other sizes would shrink
  the maps; they are refused here). ``DECONV.KERNEL_SIZE`` is 4, 3 or 2.
- ``DECONV.NUM_BASIC_BLOCKS`` basic blocks follow every deconvolution; the reference wraps each in a one-element
  ``nn.Sequential`` (``deconv_layers.0.1.0.conv1.weight``), which the package drops
  (``head.deconv_layers.0.1.conv1.weight``).
- ``TAG_PER_JOINT`` False gives a single tag map instead of one per joint.
- The reference hard-codes the stem (3 input channels, 64 wide) and stage 1 (four bottlenecks), ignoring
  ``STEM_INPLANES`` and ``STAGE1``; its default config misspells ``DECONV.NUM_DCONVS``, so every experiment sets
  ``NUM_DECONVS`` itself. :meth:`HigherHRNetConfig.from_original` reads what the reference reads.
- The network needs input sizes that are multiples of 32 (the backbone's stride; the deconvolutions only double
  sizes). The reference's test-time resize (``get_multi_scale_size``) rounds images to multiples of 64, a choice
  of its pipeline, not a need of the network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import torch
from torch import Tensor, nn

from ..keypoints import KeypointSet
from ..layers._checks import check_image_input
from ..layers.deconv import DeconvBlock
from ._layouts import original_to_package, strip_wrappers
from .backbone import HighResolutionNet
from .bottom_up import BottomUpModel, bottom_up_meta
from .config import HRNetConfig, hrnet_config
from .meta import PoseMeta
from .top_down import _check_in_chans, init_weights

__all__ = [
    "HIGHERHRNET_CONFIGS",
    "HigherHRNet",
    "HigherHRNetConfig",
    "HigherHRNetHead",
    "HigherHeadSpec",
    "higherhrnet_config",
    "to_higherhrnet_layout",
]

V = TypeVar("V")
HigherLayout = Literal["hrnet_zoo", "original", "openmmlab"]


@dataclass(frozen=True)
class HigherHeadSpec:
    """The HigherHRNet head as data (the reference's ``MODEL.EXTRA.DECONV``, ``FINAL_CONV_KERNEL`` and more).

    Attributes:
        num_joints: Heatmaps per output (``MODEL.NUM_JOINTS``).
        tag_per_joint: One tag map per joint, else a single one (``MODEL.TAG_PER_JOINT``).
        final_conv_kernel: Kernel of each output conv, 1 or 3 (``MODEL.EXTRA.FINAL_CONV_KERNEL``).
        deconv_channels: Channels of each deconvolution stage (``DECONV.NUM_CHANNELS``; its length is
            ``NUM_DECONVS``).
        deconv_kernels: Kernel of each transposed conv, 4, 3 or 2 (``DECONV.KERNEL_SIZE``).
        num_basic_blocks: Basic blocks after each transposed conv (``DECONV.NUM_BASIC_BLOCKS``).
        cat_output: Whether deconvolution ``i`` also takes output ``i`` (``DECONV.CAT_OUTPUT``).
        with_tags: Whether output ``i`` carries tag maps, one flag per output (``LOSS.WITH_AE_LOSS``).
    """

    num_joints: int = 17
    tag_per_joint: bool = True
    final_conv_kernel: int = 1
    deconv_channels: tuple[int, ...] = (32,)
    deconv_kernels: tuple[int, ...] = (4,)
    num_basic_blocks: int = 4
    cat_output: tuple[bool, ...] = (True,)
    with_tags: tuple[bool, ...] = (True, False)

    def __post_init__(self) -> None:
        if self.num_joints < 1:
            raise ValueError(f"num_joints must be at least 1, got {self.num_joints}")
        if self.final_conv_kernel not in (1, 3):
            raise ValueError(f"final_conv_kernel must be 1 or 3, got {self.final_conv_kernel}")
        n = self.num_deconvs
        if len(self.deconv_kernels) != n or len(self.cat_output) != n:
            raise ValueError(
                f"deconv_channels {self.deconv_channels}, deconv_kernels {self.deconv_kernels} and cat_output "
                f"{self.cat_output} need one entry per deconvolution"
            )
        if len(self.with_tags) != n + 1:
            raise ValueError(f"with_tags needs one flag per output ({n + 1}), got {self.with_tags}")

    @property
    def num_deconvs(self) -> int:
        """Deconvolution stages (each adds an output at twice the resolution)."""
        return len(self.deconv_channels)

    @property
    def tag_channels(self) -> int:
        """Tag maps of an output with tags: ``num_joints`` per joint, else 1."""
        return self.num_joints if self.tag_per_joint else 1

    @property
    def output_channels(self) -> list[int]:
        """Channels of each output: heatmaps, then the tags where ``with_tags``."""
        return [self.num_joints + (self.tag_channels if tags else 0) for tags in self.with_tags]

    @classmethod
    def from_original(cls, model: Mapping[str, Any], loss: Mapping[str, Any]) -> HigherHeadSpec:
        """Read the reference's ``MODEL`` (``NUM_JOINTS``, ``TAG_PER_JOINT``, ``EXTRA``) and ``LOSS`` sections."""
        extra, deconv = model["EXTRA"], model["EXTRA"]["DECONV"]
        n = int(deconv["NUM_DECONVS"])
        return cls(
            num_joints=int(model.get("NUM_JOINTS", 17)),
            tag_per_joint=bool(model.get("TAG_PER_JOINT", True)),
            final_conv_kernel=int(extra.get("FINAL_CONV_KERNEL", 1)),
            deconv_channels=tuple(int(c) for c in deconv["NUM_CHANNELS"][:n]),
            deconv_kernels=tuple(int(k) for k in deconv["KERNEL_SIZE"][:n]),
            num_basic_blocks=int(deconv["NUM_BASIC_BLOCKS"]),
            cat_output=tuple(bool(c) for c in deconv["CAT_OUTPUT"][:n]),
            with_tags=tuple(bool(t) for t in loss["WITH_AE_LOSS"][: n + 1]),
        )


@dataclass(frozen=True)
class HigherHRNetConfig:
    """A complete HigherHRNet: the HRNet backbone and the head."""

    backbone: HRNetConfig
    head: HigherHeadSpec = field(default_factory=HigherHeadSpec)

    @classmethod
    def from_original(cls, cfg: Mapping[str, Any]) -> HigherHRNetConfig:
        """Build from the reference's experiment config (its ``MODEL`` and ``LOSS`` sections).

        Like the reference, ``STAGE1`` and ``STEM_INPLANES`` are ignored (stem and stage 1 are fixed).

        Example:
            >>> cfg = HigherHRNetConfig.from_original(yaml.safe_load(open("w32_512_adam_lr1e-3.yaml")))
        """
        extra = {k: v for k, v in cfg["MODEL"]["EXTRA"].items() if k != "STAGE1"}
        return cls(HRNetConfig.from_original(extra), HigherHeadSpec.from_original(cfg["MODEL"], cfg["LOSS"]))


def higherhrnet_config(width: int, num_joints: int = 17) -> HigherHRNetConfig:
    """The paper's HigherHRNet at base ``width``: the HRNet family backbone, one deconvolution to ``width``."""
    return HigherHRNetConfig(hrnet_config(width), HigherHeadSpec(num_joints=num_joints, deconv_channels=(width,)))


#: The paper's COCO models (trained at 512x512 for W32, 640x640 for both).
HIGHERHRNET_CONFIGS: dict[str, HigherHRNetConfig] = {
    "higherhrnet_w32": higherhrnet_config(32),
    "higherhrnet_w48": higherhrnet_config(48),
}


def _output_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class HigherHRNetHead(nn.Module):
    """Outputs at 1/4 and, through each deconvolution, at twice the previous resolution.

    ``final_layers[0]`` maps the stride-4 features to output 0; deconvolution ``i`` (a :class:`DeconvBlock`) takes
    the features, concatenated with output ``i`` when ``spec.cat_output[i]``, and ``final_layers[i + 1]`` maps its
    result to output ``i + 1``.

    Shapes: ``(B, in_channels, h, w) -> [(B, spec.output_channels[i], h * 2**i, w * 2**i) for i]``; each output is
    the heatmaps (first ``num_joints`` channels) followed by the tags where ``spec.with_tags[i]``.
    """

    def __init__(self, in_channels: int, spec: HigherHeadSpec) -> None:
        super().__init__()
        self.spec = spec
        outputs = spec.output_channels
        self.final_layers = nn.ModuleList([_output_conv(in_channels, outputs[0], spec.final_conv_kernel)])
        self.deconv_layers = nn.ModuleList()
        channels = in_channels
        for i, (width, kernel) in enumerate(zip(spec.deconv_channels, spec.deconv_kernels)):
            extra = outputs[i] if spec.cat_output[i] else 0
            self.deconv_layers.append(DeconvBlock(channels + extra, width, kernel, spec.num_basic_blocks))
            self.final_layers.append(_output_conv(width, outputs[i + 1], spec.final_conv_kernel))
            channels = width

    def forward(self, x: Tensor) -> list[Tensor]:
        y = self.final_layers[0](x)
        outputs = [y]
        for i, deconv in enumerate(self.deconv_layers):
            x = deconv(torch.cat((x, y), 1) if self.spec.cat_output[i] else x)
            y = self.final_layers[i + 1](x)
            outputs.append(y)
        return outputs


class HigherHRNet(BottomUpModel):
    """HigherHRNet: the HRNet backbone's fused stride-4 branch, then :class:`HigherHRNetHead`.

    Shapes: ``(B, in_chans, H, W) -> [(B, C_i, H / 4 * 2**i, W / 4 * 2**i) for i]`` with ``H`` and ``W`` multiples
    of 32 and ``C_i = cfg.head.output_channels[i]``. For the paper's COCO models: ``(B, 34, H / 4, W / 4)`` (17
    heatmaps, 17 tags) and ``(B, 17, H / 2, W / 2)`` (heatmaps). Inputs are RGB in ``[0, 1]`` normalised with the
    ImageNet mean and std.

    ``load_state_dict`` also accepts the reference's and OpenMMLab 0.x's key layouts (see
    :func:`to_higherhrnet_layout`).

    Args:
        cfg: Architecture (``HIGHERHRNET_CONFIGS["higherhrnet_w32"]`` or :class:`HigherHRNetConfig`).
        num_joints: Keypoints to predict (default: ``pose_meta``'s, else ``cfg.head.num_joints``).
        keypoints: What the heatmaps are (COCO's for 17 joints, generic names otherwise, unless given).
        pose_meta: The complete metadata, with a ``BottomUpCodec("associative_embedding", ...)``.
        in_chans: Input channels.
        device: Where to create the parameters.
        dtype: Parameter dtype.

    Example:
        >>> model = hrnet_zoo.create_model("higherhrnet_w32").eval()
        >>> [y.shape for y in model(torch.randn(1, 3, 512, 512))]
        [torch.Size([1, 34, 128, 128]), torch.Size([1, 17, 256, 256])]
    """

    family = "HigherHRNet"
    classifier = "head.final_layers.0"

    @staticmethod
    def checkpoint_layout(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
        """A state dict of the reference's, OpenMMLab 0.x's or the package's layout in the package's
        (:func:`to_higherhrnet_layout`)."""
        return to_higherhrnet_layout(state_dict)

    def __init__(
        self,
        cfg: HigherHRNetConfig,
        num_joints: int | None = None,
        keypoints: KeypointSet | None = None,
        pose_meta: PoseMeta | None = None,
        in_chans: int = 3,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_in_chans(in_chans)
        meta = bottom_up_meta(
            "associative_embedding", cfg.head.num_joints, (512, 512), pose_meta, keypoints, num_joints
        )
        self.cfg = replace(cfg, head=replace(cfg.head, num_joints=meta.num_joints))
        with torch.device(device) if device is not None else nullcontext():
            self.backbone = HighResolutionNet(cfg.backbone, in_chans, multi_scale_output=False)
            self.num_features = self.head_hidden_size = self.backbone.out_channels[0]
            self.head = self._make_head(meta.num_joints)
        init_weights(self.backbone)
        if dtype is not None:
            self.to(dtype=dtype)
        self.pose_meta = meta

    def _make_head(self, num_joints: int) -> HigherHRNetHead:
        head = HigherHRNetHead(self.num_features, replace(self.cfg.head, num_joints=num_joints))
        init_weights(head)
        for m in head.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)  # as the reference initialises its deconvolutions
        return head

    def reset_head(self, num_joints: int, keypoints: KeypointSet | None = None) -> None:
        """A fresh head for ``num_joints`` keypoints (see :meth:`BottomUpModel.reset_head`)."""
        super().reset_head(num_joints, keypoints)
        self.cfg = replace(self.cfg, head=replace(self.cfg.head, num_joints=num_joints))

    @property
    def reductions(self) -> list[float]:
        """Stride of each output relative to the input: 4, 2, ..."""
        return [4 / 2**i for i in range(self.cfg.head.num_deconvs + 1)]

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, num_features, H / 4, W / 4)``: the fused stride-4 branch."""
        check_image_input(type(self).__name__, x, self.in_chans, self.backbone.cfg.total_stride)
        return self.backbone(x)[0]

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.head(self.forward_features(x))


#: Reference head keys -> package keys (the backbone renames as :func:`~._layouts.original_to_package`); the
#: reference's one-element ``nn.Sequential`` around each basic block is dropped.
_REFERENCE_HEAD_RULES = (
    (re.compile(r"^final_layers\."), "head.final_layers."),
    (re.compile(r"^deconv_layers\.(\d+)\.([1-9]\d*)\.0\."), r"head.deconv_layers.\1.\2."),
    (re.compile(r"^deconv_layers\."), "head.deconv_layers."),
)
#: OpenMMLab 0.x (``AssociativeEmbedding`` with ``AEHigherResolutionHead``) prefixes over the reference's keys.
_OPENMMLAB_PREFIXES = ("backbone.", "keypoint_head.")


def _reference_to_package(key: str) -> str:
    for pattern, replacement in _REFERENCE_HEAD_RULES:
        new, count = pattern.subn(replacement, key)
        if count:
            return new
    return original_to_package(key)


def _detect_higher_layout(keys: set[str]) -> HigherLayout:
    if any(k.startswith("backbone.stem.") for k in keys):
        return "hrnet_zoo"
    if "backbone.conv1.weight" in keys and any(k.startswith("keypoint_head.final_layers.") for k in keys):
        return "openmmlab"
    if "conv1.weight" in keys and any(k.startswith("final_layers.") for k in keys):
        return "original"
    sample = ", ".join(sorted(keys)[:5]) or "no keys"
    raise ValueError(
        "the checkpoint is not a HigherHRNet checkpoint in a known layout (hrnet_zoo, the reference "
        f"HigherHRNet-Human-Pose-Estimation, OpenMMLab 0.x): its first keys are {sample}"
    )


def to_higherhrnet_layout(state_dict: Mapping[str, V]) -> tuple[dict[str, V], HigherLayout]:
    """Rename a HigherHRNet state dict of the reference's or OpenMMLab 0.x's layout to the package's, keeping order.

    ============================================  ===============================================
    reference                                     hrnet_zoo
    ============================================  ===============================================
    backbone keys (``conv1``, ``layer1``, ...)    as :mod:`hrnet_zoo.models._layouts` (``backbone.``)
    ``final_layers.{i}.*``                        ``head.final_layers.{i}.*``
    ``deconv_layers.{i}.0.{0,1}.*``               ``head.deconv_layers.{i}.0.{0,1}.*``
    ``deconv_layers.{i}.{k}.0.*`` (``k >= 1``)    ``head.deconv_layers.{i}.{k}.*``
    ============================================  ===============================================

    OpenMMLab 0.x holds the reference's backbone keys under ``backbone.`` and its head keys under
    ``keypoint_head.``. Keys a layout does not know are kept as they are, so that a strict load reports them.

    Raises:
        ValueError: When the keys fit none of these layouts.
    """
    state_dict = strip_wrappers(state_dict)
    layout = _detect_higher_layout(set(state_dict))
    if layout == "hrnet_zoo":
        return state_dict, layout
    out = {}
    for key, value in state_dict.items():
        if layout == "openmmlab":
            prefix = next((p for p in _OPENMMLAB_PREFIXES if key.startswith(p)), None)
            if prefix is None:
                out[key] = value
                continue
            key = key[len(prefix) :]
        out[_reference_to_package(key)] = value
    return out, layout
