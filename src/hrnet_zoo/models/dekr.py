"""DEKR: bottom-up pose estimation by disentangled keypoint regression.

Paper: "Bottom-Up Human Pose Estimation Via Disentangled Keypoint Regression", Geng et al., CVPR 2021
(https://arxiv.org/abs/2104.02300). Original implementation (MIT): https://github.com/HRNet/DEKR
(``lib/models/hrnet_dekr.py``, ``lib/models/conv_block.py``). This file rebuilds the same network from the HRNet
backbone and the blocks in :mod:`hrnet_zoo.layers`, and converts the original's and OpenMMLab's (mmpose 1.x
``DEKRHead``) checkpoints to its layout.

Reproduced from the original:

- all four backbone branches leave the last module fused (``multi_scale_output`` everywhere), are upsampled
  bilinearly with ``align_corners=False`` (its ``F.upsample`` default) to stride 4 and concatenated
  (:class:`~hrnet_zoo.layers.ResizeConcat`; 480 channels for W32);
- the heatmap head: 1x1 conv (no bias) + BN + ReLU to ``heatmap_channels``, basic blocks, then a conv with bias
  to ``num_joints + 1`` heatmaps, the centre heatmap last;
- the offset head: 1x1 conv + BN + ReLU to ``num_joints * 15`` channels, split into one group per keypoint, each
  through its own two adaptive blocks and a conv with bias to 2 channels
  (:class:`~hrnet_zoo.layers.KeypointRegression`). Offsets are ``(x, y)`` per joint, pointing from the keypoint
  to the centre: the keypoint at pixel ``p`` is ``p - offset(p)``;
- the backbone is the top-down HRNet's (:class:`~hrnet_zoo.models.HighResolutionNet`). The original feeds its
  last branch to every transition branch and builds the basic block's second conv from the block's input width;
  both are the same network as long as existing branches keep their width, as in every published configuration;
- the adaptive block's offsets ``T g - g + t`` (:func:`~hrnet_zoo.layers.adaptive.adaptive_offsets`), and its
  initialisation to a zero transform, which collapses the nine taps onto the centre pixel.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import torch
from torch import Tensor, nn

from ..codec import DEKR_COCO_LINKS, DEKR_CROWDPOSE_LINKS
from ..keypoints import KeypointSet
from ..layers import BasicBlock, ResizeConcat
from ..layers._checks import check_image_input
from ..layers.adaptive import AdaptiveConvBlock, KeypointRegression
from ._layouts import original_to_package, strip_wrappers
from .backbone import HighResolutionNet
from .bottom_up import BottomUpModel, bottom_up_meta
from .config import HRNetConfig, StageSpec, hrnet_config
from .meta import PoseMeta
from .top_down import _check_in_chans, init_weights

__all__ = [
    "DEKR",
    "DEKR_CONFIGS",
    "DEKRConfig",
    "DEKRHead",
    "DEKRLayout",
    "RescoreNet",
    "dekr_original_to_package",
    "openmmlab_to_dekr_original",
    "rescore_input_size",
    "rescore_links",
    "to_dekr_layout",
]

HeadBlock = Literal["basic", "adaptive"]
DEKRLayout = Literal["hrnet_zoo", "original", "openmmlab1"]
V = TypeVar("V")
_logger = logging.getLogger(__name__)

_HEAD_BLOCKS: dict[str, Callable[[int], nn.Module]] = {
    "basic": lambda channels: BasicBlock(channels, channels),
    "adaptive": AdaptiveConvBlock,
}


@dataclass(frozen=True)
class DEKRConfig:
    """A DEKR network: the HRNet backbone and the two heads (the original's ``MODEL.SPEC``).

    Attributes:
        backbone: The HRNet (``MODEL.SPEC.STAGES``).
        num_joints: Keypoints (``DATASET.NUM_JOINTS``); the heatmap head adds the centre.
        heatmap_channels: Width of the heatmap head (``HEAD_HEATMAP.NUM_CHANNELS``).
        heatmap_blocks: Blocks of the heatmap head (``HEAD_HEATMAP.NUM_BLOCKS``).
        heatmap_block: Their type (``HEAD_HEATMAP.BLOCK``).
        offset_channels: Width of each keypoint's offset branch (``HEAD_OFFSET.NUM_CHANNELS_PERKPT``).
        offset_blocks: Blocks of each offset branch (``HEAD_OFFSET.NUM_BLOCKS``).
        offset_block: Their type (``HEAD_OFFSET.BLOCK``).
        final_kernel: Kernel of both heads' last conv, 1 or 3 (``FINAL_CONV_KERNEL``).
        input_size: The training input size ``(height, width)`` (``DATASET.INPUT_SIZE``).
    """

    backbone: HRNetConfig
    num_joints: int = 17
    heatmap_channels: int = 32
    heatmap_blocks: int = 1
    heatmap_block: HeadBlock = "basic"
    offset_channels: int = 15
    offset_blocks: int = 2
    offset_block: HeadBlock = "adaptive"
    final_kernel: int = 1
    input_size: tuple[int, int] = (512, 512)

    def __post_init__(self) -> None:
        for name in (self.heatmap_block, self.offset_block):
            if name not in _HEAD_BLOCKS:
                raise ValueError(f"unknown DEKR head block {name!r}: expected one of {sorted(_HEAD_BLOCKS)}")
        if self.final_kernel not in (1, 3):
            raise ValueError(f"final_kernel must be 1 or 3, got {self.final_kernel}")
        if min(self.num_joints, self.heatmap_channels, self.offset_channels) < 1:
            raise ValueError(f"num_joints and the head widths must be positive, got {self}")

    @classmethod
    def from_original(cls, spec: Mapping[str, Any], num_joints: int, input_size: int = 512) -> DEKRConfig:
        """Read the original's ``MODEL.SPEC`` (``STAGES`` as per-stage lists, ``HEAD_HEATMAP``, ``HEAD_OFFSET``).

        Example:
            >>> cfg = yaml.safe_load(open("w32_4x_reg03_bs10_512_adam_lr1e-3_coco_x140.yaml"))
            >>> DEKRConfig.from_original(cfg["MODEL"]["SPEC"], cfg["DATASET"]["NUM_JOINTS"], 512)
        """
        stages = spec["STAGES"]
        fields = ("NUM_MODULES", "NUM_BRANCHES", "BLOCK", "NUM_BLOCKS", "NUM_CHANNELS", "FUSE_METHOD")
        backbone = HRNetConfig(
            stages=tuple(
                StageSpec.from_original({f: stages[f][i] for f in fields if f in stages})
                for i in range(int(stages["NUM_STAGES"]))
            )
        )
        heatmap, offset = spec["HEAD_HEATMAP"], spec["HEAD_OFFSET"]
        for head in (heatmap, offset):
            if head.get("DILATION_RATE", 1) != 1:
                raise ValueError(f"only DILATION_RATE 1 is supported (the published models), got {head}")
        return cls(
            backbone=backbone,
            num_joints=int(num_joints),
            heatmap_channels=int(heatmap["NUM_CHANNELS"]),
            heatmap_blocks=int(heatmap["NUM_BLOCKS"]),
            heatmap_block=heatmap["BLOCK"].lower(),
            offset_channels=int(offset["NUM_CHANNELS_PERKPT"]),
            offset_blocks=int(offset["NUM_BLOCKS"]),
            offset_block=offset["BLOCK"].lower(),
            final_kernel=int(spec.get("FINAL_CONV_KERNEL", 1)),
            input_size=(int(input_size), int(input_size)),
        )


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DEKRHead(nn.Module):
    """DEKR's two heads on the concatenated backbone features.

    Heatmaps: ``heatmap_transition`` (1x1 conv + BN + ReLU), ``heatmap_blocks``, ``heatmap_final`` (conv with bias)
    to ``num_joints + 1`` channels, the centre last. Offsets: ``offset_transition`` to ``num_joints *
    offset_channels`` channels, then ``offset_regression``, one branch per keypoint to its ``(x, y)`` offset.

    Shapes: ``(B, in_channels, h, w) -> ((B, num_joints + 1, h, w), (B, 2 * num_joints, h, w))``.

    Args:
        in_channels: Channels of the features.
        cfg: The head widths, blocks and kernel (its ``backbone`` is not used).

    Example:
        >>> head = DEKRHead(480, DEKR_CONFIGS["dekr_hrnet_w32"])
        >>> [t.shape[1] for t in head(torch.randn(1, 480, 32, 32))]
        [18, 34]
    """

    def __init__(self, in_channels: int, cfg: DEKRConfig) -> None:
        super().__init__()
        k, c = cfg.final_kernel, cfg.heatmap_channels
        self.num_joints = cfg.num_joints
        self.heatmap_transition = _conv_bn_relu(in_channels, c)
        self.heatmap_blocks = nn.Sequential(*(_HEAD_BLOCKS[cfg.heatmap_block](c) for _ in range(cfg.heatmap_blocks)))
        self.heatmap_final = nn.Conv2d(c, cfg.num_joints + 1, k, padding=k // 2)
        self.offset_transition = _conv_bn_relu(in_channels, cfg.num_joints * cfg.offset_channels)
        self.offset_regression = KeypointRegression(
            cfg.num_joints, cfg.offset_channels, cfg.offset_blocks, _HEAD_BLOCKS[cfg.offset_block], 2, k
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        heatmaps = self.heatmap_final(self.heatmap_blocks(self.heatmap_transition(x)))
        return heatmaps, self.offset_regression(self.offset_transition(x))


class RescoreNet(nn.Module):
    """DEKR's pose rescoring MLP (the original's ``PredictOKSNet``, OpenMMLab's ``rescore_net``).

    Three linear layers (``l1``, ``l2``, ``l3``) with ReLU between them predict a pose's OKS from its features
    (normalised limb vectors, limb lengths and keypoint scores: 74 values for COCO).

    Shapes: ``(N, in_channels) -> (N,)``.

    Example:
        >>> RescoreNet(74)(torch.randn(5, 74)).shape
        torch.Size([5])
    """

    def __init__(self, in_channels: int, hidden: int = 256) -> None:
        super().__init__()
        self.l1 = nn.Linear(in_channels, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.l3 = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x))))).squeeze(1)


class DEKR(BottomUpModel):
    """DEKR: HRNet, all branches concatenated at stride 4, then the heatmap and offset heads (:class:`DEKRHead`).

    Shapes: ``(B, in_chans, H, W) -> ((B, num_joints + 1, H / 4, W / 4), (B, 2 * num_joints, H / 4, W / 4))``;
    ``H`` and ``W`` multiples of 32. ``load_state_dict`` also accepts the original's and OpenMMLab's layouts
    (:func:`to_dekr_layout`).

    Args:
        cfg: The architecture (``DEKR_CONFIGS[name]``, or :meth:`DEKRConfig.from_original`).
        num_joints: Keypoints to predict (default: ``pose_meta``'s, else ``cfg.num_joints``).
        keypoints: What the heatmaps are (COCO's for 17 joints, generic names otherwise, unless given).
        pose_meta: The complete metadata, with a ``BottomUpCodec("dekr", ...)``.
        in_chans: Input channels.
        rescore_channels: Input features of a :class:`RescoreNet` kept as ``rescore_net`` (74 for COCO, as in
            OpenMMLab's checkpoints). By default one is made when ``pose_meta.codec.rescore`` is set. ``forward``
            does not use it; the decoder does.
        device: Where to create the parameters.
        dtype: Parameter dtype.

    Example:
        >>> model = hrnet_zoo.create_model("dekr_hrnet_w32").eval()
        >>> heatmaps, offsets = model(torch.randn(1, 3, 512, 512))
        >>> heatmaps.shape, offsets.shape
        (torch.Size([1, 18, 128, 128]), torch.Size([1, 34, 128, 128]))
    """

    family = "DEKR"
    classifier = "head.heatmap_final"

    @staticmethod
    def checkpoint_layout(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
        """A state dict of the original's, OpenMMLab's or the package's layout in the package's
        (:func:`to_dekr_layout`)."""
        return to_dekr_layout(state_dict)

    def __init__(
        self,
        cfg: DEKRConfig,
        num_joints: int | None = None,
        keypoints: KeypointSet | None = None,
        pose_meta: PoseMeta | None = None,
        in_chans: int = 3,
        rescore_channels: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_in_chans(in_chans)
        meta = bottom_up_meta("dekr", cfg.num_joints, cfg.input_size, pose_meta, keypoints, num_joints)
        self.cfg = replace(cfg, num_joints=meta.num_joints)
        if rescore_channels is None and meta.codec.rescore:
            rescore_channels = rescore_input_size(meta.num_joints)
        with torch.device(device) if device is not None else nullcontext():
            self.backbone = HighResolutionNet(cfg.backbone, in_chans, multi_scale_output=True)
            self.neck = ResizeConcat(self.backbone.out_channels)
            self.num_features = self.head_hidden_size = self.neck.out_channels
            self.head = self._make_head(meta.num_joints)
            self.rescore_net = RescoreNet(rescore_channels) if rescore_channels is not None else None
        init_weights(self.backbone)
        if dtype is not None:
            self.to(dtype=dtype)
        self.pose_meta = replace(meta, codec=replace(meta.codec, rescore=self.rescore_net is not None))

    def _make_head(self, num_joints: int) -> DEKRHead:
        head = DEKRHead(self.num_features, replace(self.cfg, num_joints=num_joints))
        init_weights(head)
        for module in head.modules():
            if isinstance(module, AdaptiveConvBlock):  # the reference's zero transform: taps on the centre pixel
                for conv in (module.transform_matrix_conv, module.translation_conv):
                    nn.init.zeros_(conv.weight)
                    nn.init.zeros_(conv.bias)
        return head

    def reset_head(self, num_joints: int, keypoints: KeypointSet | None = None) -> None:
        """A fresh head for ``num_joints`` keypoints (see :meth:`BottomUpModel.reset_head`); the rescoring net,
        trained for the old keypoints, is dropped."""
        super().reset_head(num_joints, keypoints)
        self.cfg = replace(self.cfg, num_joints=num_joints)
        self.drop_rescore_net()

    def drop_rescore_net(self) -> None:
        """Remove the rescoring net (the decoder then keeps the heatmap scores), e.g. after loading a checkpoint
        without one (the original DEKR ships it as a separate file)."""
        self.rescore_net = None
        self.pose_meta = replace(self.pose_meta, codec=replace(self.pose_meta.codec, rescore=False))

    def optional_checkpoint_keys(self) -> set[str]:
        """The rescoring net's keys: the original's checkpoints hold the network alone."""
        return {k for k in self.state_dict() if k.startswith("rescore_net.")}

    def after_checkpoint(self, left: list[str]) -> None:
        """Called after a checkpoint loaded with ``left`` keys still initialised: a rescoring net the checkpoint did
        not hold is dropped (with an initialised one the scores would be noise)."""
        if self.rescore_net is not None and any(k.startswith("rescore_net.") for k in left):
            _logger.info("the checkpoint holds no DEKR rescoring net: the poses keep their heatmap scores")
            self.drop_rescore_net()

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, sum(widths), H / 4, W / 4)``: every branch concatenated at stride 4."""
        check_image_input(type(self).__name__, x, self.in_chans, self.backbone.cfg.total_stride)
        return self.neck(self.backbone(x))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(self.forward_features(x))


def rescore_input_size(num_joints: int) -> int:
    """Features of the rescoring net for COCO's 17 or CrowdPose's 14 keypoints (:func:`rescore_links`)."""
    return 3 * len(rescore_links(num_joints)) + num_joints


def rescore_links(num_joints: int) -> tuple[tuple[int, int], ...]:
    """The links the original's rescoring nets were trained with: COCO's for 17 keypoints, CrowdPose's for 14.

    Raises:
        ValueError: Another number of keypoints (no rescoring net exists for it).
    """
    links = {17: DEKR_COCO_LINKS, 14: DEKR_CROWDPOSE_LINKS}.get(num_joints)
    if links is None:
        raise ValueError(f"DEKR's rescoring net exists for COCO (17) and CrowdPose (14) keypoints, not {num_joints}")
    return links


# The original's head names; its backbone names are the top-down HRNet's (``original_to_package``).
_ORIGINAL_HEAD_RULES = (
    (re.compile(r"^transition_heatmap\."), "head.heatmap_transition."),
    (re.compile(r"^head_heatmap\.0\."), "head.heatmap_blocks."),
    (re.compile(r"^head_heatmap\.1\."), "head.heatmap_final."),
    (re.compile(r"^transition_offset\."), "head.offset_transition."),
    (re.compile(r"^offset_feature_layers\.(\d+)\."), r"head.offset_regression.branches.\1.blocks."),
    (re.compile(r"^offset_final_layer\.(\d+)\."), r"head.offset_regression.branches.\1.final."),
    (re.compile(r"^(l[123])\."), r"rescore_net.\1."),
)
_MM_HEATMAP = "head.heatmap_conv_layers."
_MM_OFFSET = "head.displacement_conv_layers."
_MM_RESCORE = "head.rescore_net."


def dekr_original_to_package(key: str) -> str:
    """Rename one key of the original DEKR layout to the package's (``l1``..``l3`` are the rescore net's)."""
    for pattern, replacement in _ORIGINAL_HEAD_RULES:
        new, count = pattern.subn(replacement, key)
        if count:
            return new
    return original_to_package(key)


def _indexed(state_dict: Mapping[str, V], prefix: str) -> dict[int, dict[str, V]]:
    """``{i: {rest: value}}`` for the keys ``prefix + f"{i}." + rest``."""
    out: dict[int, dict[str, V]] = {}
    for key, value in state_dict.items():
        if key.startswith(prefix):
            index, rest = key[len(prefix) :].split(".", 1)
            out.setdefault(int(index), {})[rest] = value
    return out


def _split_adaptive(layer: Mapping[str, Tensor], num_joints: int) -> list[dict[str, Tensor]]:
    """One grouped OpenMMLab ``AdaptiveActivationBlock`` as ``num_joints`` original ``AdaptBlock`` state dicts.

    OpenMMLab predicts ``A = [T - I | t]`` (six channels per group, a 2x3 matrix row-major) and multiplies it with
    the grid plus a row of ones; the original predicts ``T`` (four channels) and ``t`` (two) and subtracts the grid:
    the same offsets once the diagonal biases get their 1 back.
    """
    weight, bias = layer["transform_matrix_conv.weight"], layer["transform_matrix_conv.bias"]
    eye = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=bias.dtype, device=bias.device)
    channels = layer["adapt_conv.weight"].shape[0] // num_joints
    blocks = []
    for j in range(num_joints):
        rows = slice(6 * j, 6 * j + 6)
        w, b = weight[rows], bias[rows]
        block = {
            "regular_matrix": layer["regular_matrix"][:2],
            "transform_matrix_conv.weight": w[[0, 1, 3, 4]],
            "transform_matrix_conv.bias": b[[0, 1, 3, 4]] + eye,
            "translation_conv.weight": w[[2, 5]],
            "translation_conv.bias": b[[2, 5]],
        }
        group = slice(channels * j, channels * (j + 1))
        block["adapt_conv.weight"] = layer["adapt_conv.weight"][group]
        for name, value in layer.items():
            if name.startswith("norm."):
                block["bn." + name[5:]] = value if value.dim() == 0 else value[group]
        blocks.append(block)
    return blocks


def openmmlab_to_dekr_original(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Convert an mmpose 1.x DEKR checkpoint (``backbone.*``, ``head.*``) to the original DEKR layout.

    The grouped convs of the offset head become one branch per keypoint (:func:`_split_adaptive` for the adaptive
    blocks), and the last conv's weights are negated: mmpose 1.x's displacements point from the centre to the
    keypoint, the original's the other way. The centre heatmap is the last channel in both. ``head.rescore_net.*``
    becomes ``l1``..``l3``, the original's separate ``PredictOKSNet``.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith("backbone."):
            out[key[len("backbone.") :]] = value
        elif key.startswith(_MM_RESCORE):
            out[key[len(_MM_RESCORE) :]] = value
    heatmap = _indexed(state_dict, _MM_HEATMAP)
    last = max(heatmap)
    for index, layer in heatmap.items():
        for name, value in layer.items():
            if index == 0:
                out["transition_heatmap." + name.replace("conv.", "0.").replace("bn.", "1.")] = value
            else:
                out[f"head_heatmap.1.{name}" if index == last else f"head_heatmap.0.{index - 1}.{name}"] = value
    offset = _indexed(state_dict, _MM_OFFSET)
    last = max(offset)
    num_joints = offset[last]["weight"].shape[0] // 2
    for name, value in offset[0].items():
        out["transition_offset." + name.replace("conv.", "0.").replace("bn.", "1.")] = value
    for index in range(1, last):
        for j, block in enumerate(_split_adaptive(offset[index], num_joints)):
            out.update({f"offset_feature_layers.{j}.{index - 1}.{n}": v for n, v in block.items()})
    for j in range(num_joints):
        for name in ("weight", "bias"):
            out[f"offset_final_layer.{j}.{name}"] = -offset[last][name][2 * j : 2 * j + 2]
    return out


def to_dekr_layout(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], DEKRLayout]:
    """Convert a DEKR state dict of the original's, OpenMMLab's (mmpose 1.x) or the package's layout to the
    package's; keys a layout does not know are kept, for a strict load to report.

    Returns:
        The converted state dict and the layout it was in.
    """
    state_dict = strip_wrappers(state_dict)
    if any(k.startswith("head.offset_regression.") for k in state_dict):
        return dict(state_dict), "hrnet_zoo"
    layout: DEKRLayout = "original"
    if any(k.startswith(_MM_OFFSET) for k in state_dict):
        layout = "openmmlab1"
        state_dict = openmmlab_to_dekr_original(state_dict)
    return {dekr_original_to_package(k): v for k, v in state_dict.items()}, layout


#: The paper's COCO models: W32 at 512x512 and W48 at 640x640.
DEKR_CONFIGS: dict[str, DEKRConfig] = {
    "dekr_hrnet_w32": DEKRConfig(hrnet_config(32), heatmap_channels=32, input_size=(512, 512)),
    "dekr_hrnet_w48": DEKRConfig(hrnet_config(48), heatmap_channels=48, input_size=(640, 640)),
}
