"""HRNet top-down pose and feature models: timm's model API, written once for the family.

Paper: "Deep High-Resolution Representation Learning for Human Pose Estimation", Sun et al., CVPR 2019
(https://arxiv.org/abs/1902.09212). Original implementation (MIT):
https://github.com/leoxiaobin/deep-high-resolution-net.pytorch. This file rebuilds the same network from the
blocks in :mod:`hrnet_zoo.layers`; :mod:`hrnet_zoo.models._layouts` maps the original checkpoints onto it.
Lite-HRNet's models (:mod:`hrnet_zoo.models.litehrnet`) subclass these, changing the backbone through
``_make_backbone``; the registered architectures are in :mod:`hrnet_zoo.models.pose_hrnet`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
from timm.models import FeatureInfo
from timm.models._features import feature_take_indices
from torch import Tensor, nn

from ..keypoints import KeypointSet
from ..layers import ResizeConcat
from ._layouts import to_package_layout
from .backbone import HighResolutionNet
from .config import HRNetConfig
from .meta import PoseMeta, head_meta

if TYPE_CHECKING:
    from .litehrnet import LiteHRNetConfig

__all__ = ["HRNetFeatures", "HRNetPose", "HRNetV2Pose"]


def init_weights(module: nn.Module) -> None:
    """The original implementation's initialisation: conv weights N(0, 0.001), zero biases, BN to identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _convert_on_load(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook: accept the model's upstream layouts too (renamed in place by the model's
    :meth:`~_PoseModelBase.checkpoint_layout`); a state dict of no known layout is left for torch to report."""
    own = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not own:
        return
    try:
        converted, layout = module.checkpoint_layout(own)
    except ValueError:
        return
    if layout == "hrnet_zoo":
        return
    for key in own:
        del state_dict[prefix + key]
    state_dict.update({prefix + k: v for k, v in converted.items()})


class _PoseModelBase(nn.Module):
    """What the pose and feature models share: the backbone, metadata owned in one place, timm's model API.

    Subclasses of another backbone (Lite-HRNet) override :meth:`_make_backbone`, :meth:`group_matcher` and the
    class attributes below; those of another head (DEKR, HigherHRNet) :meth:`checkpoint_layout`. The backbone gives
    ``in_chans``, ``out_channels``, ``branch_channels``, ``branch_reductions``, ``forward_branches`` and
    ``set_grad_checkpointing``.
    """

    backbone: HighResolutionNet
    #: The first convolution, timm's ``pretrained_cfg["first_conv"]``.
    first_conv = "backbone.stem.conv1"
    #: The family's name in descriptions.
    family = "HRNet"
    #: ``"top_down"`` (person crops in) or ``"bottom_up"`` (whole images in, every person out).
    kind = "top_down"
    #: Checkpoint key prefixes the model has no place for and drops on loading (none for HRNet).
    unused_checkpoint_prefixes: tuple[str, ...] = ()

    @staticmethod
    def checkpoint_layout(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
        """A state dict of any of the model's checkpoint layouts in the package's, and the layout's name
        (``"hrnet_zoo"`` when it was in the package's already): HRNet's original, OpenMMLab 0.x/1.x and timm
        ImageNet layouts, Lite-HRNet's (:func:`~hrnet_zoo.models.to_package_layout`).

        Raises:
            ValueError: The keys fit none of them.
        """
        return to_package_layout(state_dict)

    def after_checkpoint(self, left: list[str]) -> None:
        """Called by :func:`~hrnet_zoo.models.load_checkpoint` with the keys a checkpoint left initialised (nothing
        to do for HRNet)."""

    def __init__(self) -> None:
        super().__init__()
        self._pretrained_cfg: dict[str, Any] = {}
        self.register_load_state_dict_pre_hook(_convert_on_load)

    def _make_backbone(self, cfg: HRNetConfig | LiteHRNetConfig, in_chans: int, multi_scale_output: bool) -> nn.Module:
        """The backbone for ``cfg``; ``multi_scale_output``: whether every branch comes out fused (features)."""
        return HighResolutionNet(cfg, in_chans, multi_scale_output=multi_scale_output)

    def _intermediate_module(self, index: int) -> str:
        """The module whose output is intermediate ``index`` of :meth:`forward_intermediates`."""
        return f"backbone.{self.backbone.last_module_name}.branches.{index}"

    @property
    def pose_meta(self) -> PoseMeta:
        """Keypoints, heatmap codec (input size), normalisation and weights origin: the model's one metadata owner.

        Setting it also updates timm's :attr:`pretrained_cfg` (input size, mean/std, number and names of joints):
        the metadata is the source, timm's configuration follows it.
        """
        return self._pose_meta

    @pose_meta.setter
    def pose_meta(self, meta: PoseMeta) -> None:
        self._pose_meta = meta
        self._pretrained_cfg = self._following_meta(self._pretrained_cfg)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's pretrained configuration: the model's own copy, with the fields :attr:`pose_meta` owns taken
        from it."""
        return self._pretrained_cfg

    @pretrained_cfg.setter
    def pretrained_cfg(self, cfg: dict[str, Any]) -> None:
        self._pretrained_cfg = self._following_meta(cfg)

    default_cfg = pretrained_cfg

    def _following_meta(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``cfg`` (never the caller's dict) with the fields :attr:`pose_meta` owns."""
        meta = getattr(self, "_pose_meta", None)
        if meta is None:
            return dict(cfg)
        height, width = meta.input_size
        return {
            **cfg,
            "input_size": (self.in_chans, height, width),
            "pool_size": meta.codec.heatmap_size,
            "mean": meta.mean,
            "std": meta.std,
            "num_classes": self.num_classes,
            "label_names": meta.keypoints.names,
            "description": f"{self.family} pose model, {meta.keypoints.name} keypoints ({len(meta.keypoints)}), "
            f"input {height}x{width}",
        }

    @property
    def in_chans(self) -> int:
        """Input channels."""
        return self.backbone.in_chans

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups in network order (stem, stage 1 blocks, then each stage's modules and transitions).

        For timm's layer-wise learning-rate decay (``timm.optim.param_groups_layer_decay``); the head is last.
        """
        if coarse:
            blocks: Any = r"^backbone\.(?:stage|transition)(\d+)"
        else:
            blocks = [(r"^backbone\.stage(\d+)\.(\d+)", None), (r"^backbone\.transition(\d+)", (99999,))]
        return {"stem": r"^backbone\.stem", "blocks": blocks}

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Trade compute for memory: recompute each HRModule during the backward pass."""
        self.backbone.set_grad_checkpointing(enable)

    def optional_checkpoint_keys(self) -> set[str]:
        """Model keys a checkpoint may lack (they keep their initialisation)."""
        return set()


class _PoseHeadAPI:
    """timm's head API over a pose model's ``head``, for both kinds: :meth:`_make_head` builds an initialised head
    for a number of keypoints, :meth:`_check_num_joints` refuses a number the kind cannot take."""

    def _make_head(self, num_joints: int) -> nn.Module:
        raise NotImplementedError

    def _check_num_joints(self, num_joints: int) -> None:
        """Top-down models take any number: 0 leaves them without a head (features at stride 4)."""

    @property
    def num_classes(self) -> int:
        """timm's name for the head's outputs: the number of keypoints."""
        return self.num_joints

    @property
    def keypoints(self) -> KeypointSet:
        """What the heatmaps are (``pose_meta.keypoints``)."""
        return self.pose_meta.keypoints

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        """The head (timm convention): the heatmap convolution(s), every output of a bottom-up head."""
        return self.head

    def reset_head(self, num_joints: int, keypoints: KeypointSet | None = None) -> None:
        """Replace the head by a freshly initialised one for ``num_joints`` keypoints.

        The head is created on the device and dtype of the model, in its mode, and :attr:`pose_meta` follows: the
        new keypoints (generic names unless given) and weights that no longer claim their source's metrics.
        """
        self._check_num_joints(num_joints)
        meta = self.pose_meta.with_joints(num_joints, keypoints)
        reference = next(self.backbone.parameters())
        with torch.device(reference.device):
            head = self._make_head(num_joints)
        self.head = head.to(dtype=reference.dtype).train(self.training)
        self.pose_meta = meta

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """timm's name for :meth:`reset_head` (``global_pool`` is accepted for timm and ignored: no pooling)."""
        self.reset_head(num_classes)


class HRNetPose(_PoseHeadAPI, _PoseModelBase):
    """HRNet pose network: the backbone's stride-4 branch followed by a conv giving one heatmap per joint.

    Shapes: ``(B, in_chans, H, W) -> (B, num_joints, H / 4, W / 4)``; ``H`` and ``W`` multiples of 32. With
    ``num_joints=0`` (timm's ``num_classes=0``) the head is an identity and the model returns its features
    ``(B, num_features, H / 4, W / 4)``. Inputs are RGB in ``[0, 1]`` normalised with ``pose_meta.mean``/``std``.

    ``load_state_dict`` also accepts the original implementation's and OpenMMLab's key layouts.

    Args:
        cfg: Backbone architecture.
        num_joints: Heatmaps to predict (defaults to the keypoints'); 0 for no head.
        keypoints: What the heatmaps are; generic names when not given.
        pose_meta: The complete metadata (keypoints, codec, normalisation); its keypoints yield to
            ``keypoints``/``num_joints`` when those are given (see :func:`~hrnet_zoo.models.meta.head_meta`).
        in_chans: Input channels.
        head_kernel_size: Kernel of the heatmap conv (1 in the paper, 3 allowed as in the original).
        device: Where to create the parameters.
        dtype: Parameter dtype.

    Example:
        >>> model = hrnet_zoo.create_model("hrnet_w32_pose").eval()
        >>> model(torch.randn(1, 3, 256, 192)).shape
        torch.Size([1, 17, 64, 48])
    """

    def __init__(
        self,
        cfg: HRNetConfig | LiteHRNetConfig,
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
        num_joints = meta.num_joints
        if head_kernel_size not in (1, 3):
            raise ValueError(f"head_kernel_size must be 1 or 3, got {head_kernel_size}")
        _check_in_chans(in_chans)
        self.head_kernel_size = head_kernel_size
        with torch.device(device) if device is not None else nullcontext():
            self.backbone = self._make_backbone(cfg, in_chans, self.all_branches)
            self.neck = ResizeConcat(self.backbone.out_channels) if self.all_branches else None
            self.num_features = self.head_hidden_size = (
                self.neck.out_channels if self.neck is not None else self.backbone.out_channels[0]
            )
            self.head = self._make_head(num_joints)
        self.feature_info = [
            dict(num_chs=c, reduction=r, module=self._intermediate_module(i))
            for i, (c, r) in enumerate(zip(self.backbone.branch_channels, self.backbone.branch_reductions))
        ]
        init_weights(self)
        if dtype is not None:
            self.to(dtype=dtype)
        self.feature_tap: int | None = None
        self.pose_meta = meta

    #: Whether the backbone's last module outputs every branch, concatenated by ``neck`` (HRNetV2), or only the
    #: stride-4 one.
    all_branches = False
    #: The heatmap convolution, timm's ``pretrained_cfg["classifier"]`` (its head-mismatch rule keys off it).
    classifier = "head"

    def _make_head(self, num_joints: int) -> nn.Module:
        if num_joints == 0:
            return nn.Identity()
        k = self.head_kernel_size
        head = nn.Conv2d(self.num_features, num_joints, kernel_size=k, padding=k // 2)
        init_weights(head)
        return head

    def _final_features(self, outputs: list[Tensor]) -> Tensor:
        """The backbone's outputs as the head's input: the fused stride-4 branch, or all branches concatenated."""
        return outputs[0] if self.neck is None else self.neck(outputs)

    @property
    def num_joints(self) -> int:
        """Number of predicted heatmaps (0 without a head)."""
        final = self.head[-1] if isinstance(self.head, nn.Sequential) else self.head
        return final.out_channels if isinstance(final, nn.Conv2d) else 0

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, num_features, H / 4, W / 4)``: the fused stride-4 branch.

        After :meth:`prune_intermediate_layers` with ``prune_norm=True`` it ends at that intermediate instead.
        """
        if self.feature_tap is not None:
            return self.backbone.forward_branches(x)[1][self.feature_tap]
        return self._final_features(self.backbone(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(B, num_features, h, w) -> (B, num_joints, h, w)`` heatmaps (features when ``pre_logits``)."""
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """The final features and the intermediates listed in ``feature_info``.

        The intermediates are the branch outputs of the last HRModule before its final fusion, at strides 4, 8,
        16 and 32; the final features (as :meth:`forward_features`) are their fusion into the stride-4 branch.

        Args:
            x: ``(B, in_chans, H, W)``.
            indices: The last ``n`` intermediates for an int, those listed for a sequence, all for ``None``.
            norm: Unused (no final norm).
            stop_early: Unused (every intermediate comes from the last module).
            output_fmt: Only ``"NCHW"``.
            intermediates_only: Return only the intermediates.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take, _ = feature_take_indices(len(self.feature_info), indices)
        outputs, branches = self.backbone.forward_branches(x)
        intermediates = [branches[i] for i in take]
        return intermediates if intermediates_only else (self._final_features(outputs), intermediates)

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Keep what the intermediates at ``indices`` need: without the head (``prune_head``), and with
        ``prune_norm`` without the final fusion, so that :meth:`forward_features` ends at the last one kept.

        Every intermediate comes out of the last module, so nothing of the backbone is removed.
        """
        take, max_index = feature_take_indices(len(self.feature_info), indices)
        if prune_head:
            self.reset_head(0)
        if prune_norm:
            self.feature_tap = max_index
            self.num_features = self.head_hidden_size = self.backbone.branch_channels[max_index]
        return take


class HRNetV2Pose(HRNetPose):
    """HRNetV2 pose network, as OpenMMLab's face and hand checkpoints use it.

    The last module fuses into all four branches; they are upsampled to stride 4 and concatenated
    (:class:`~hrnet_zoo.layers.ResizeConcat`, ``sum(widths)`` channels, 270 for W18), then the head applies a 1x1
    conv + BN + ReLU and the 1x1 heatmap conv. Shapes: ``(B, in_chans, H, W) -> (B, num_joints, H / 4, W / 4)``;
    :meth:`forward_features` gives the concatenation ``(B, num_features, H / 4, W / 4)``.

    Takes the arguments of :class:`HRNetPose` (``head_kernel_size`` does not apply).

    Example:
        >>> model = hrnet_zoo.create_model("hrnetv2_w18_pose.wflw_256x256").eval()
        >>> model(torch.randn(1, 3, 256, 256)).shape
        torch.Size([1, 98, 64, 64])
    """

    all_branches = True
    classifier = "head.3"

    def _make_head(self, num_joints: int) -> nn.Module:
        if num_joints == 0:
            return nn.Identity()
        c = self.num_features
        head = nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, num_joints, 1))
        init_weights(head)
        return head


class HRNetFeatures(_PoseModelBase):
    """HRNet as a feature extractor: all four branches out of the last stage (strides 4, 8, 16, 32).

    Unlike the pose network, the last module fuses into every branch. Pose checkpoints do not hold those extra
    fusion paths (see :meth:`optional_checkpoint_keys`); they keep their initialisation when such weights load.
    Each output passes a named identity ``taps.{i}``, so timm's hook and FX feature wrappers can tap it.

    Shapes: ``(B, in_chans, H, W) -> [(B, feature_info.channels()[k], H / r_k, W / r_k) for k in out_indices]``.

    Example:
        >>> model = hrnet_zoo.create_model("hrnet_w32_pose", features_only=True, out_indices=(1, 3))
        >>> model.feature_info.channels(), model.feature_info.reduction()
        ([64, 256], [8, 32])
    """

    def __init__(
        self,
        cfg: HRNetConfig | LiteHRNetConfig,
        in_chans: int = 3,
        out_indices: tuple[int, ...] = (0, 1, 2, 3),
        pose_meta: PoseMeta | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_in_chans(in_chans)
        with torch.device(device) if device is not None else nullcontext():
            self.backbone = self._make_backbone(cfg, in_chans, True)
            self.taps = nn.ModuleList(nn.Identity() for _ in self.backbone.out_channels)
        num = len(self.backbone.out_channels)
        out_indices = tuple(out_indices)
        if not out_indices or any(not -num <= i < num for i in out_indices):
            raise ValueError(f"out_indices must select among the {num} branches (0..{num - 1}), got {out_indices}")
        self.out_indices = tuple(i % num for i in out_indices)
        self.num_features = self.head_hidden_size = self.backbone.out_channels[0]
        self.num_classes = 0
        info = [
            dict(num_chs=c, reduction=r, module=f"taps.{i}", index=i)
            for i, (c, r) in enumerate(zip(self.backbone.branch_channels, self.backbone.branch_reductions))
        ]
        self.feature_info = FeatureInfo(info, self.out_indices)
        init_weights(self)
        if dtype is not None:
            self.to(dtype=dtype)
        self.pose_meta = pose_meta or PoseMeta(KeypointSet("none", ()))

    def optional_checkpoint_keys(self) -> set[str]:
        """Keys a pose checkpoint lacks: the fusion paths into the lower branches of the very last module."""
        prefix = f"backbone.{self.backbone.last_module_name}.fuse.paths."
        return {k for k in self.state_dict() if k.startswith(prefix) and not k.startswith(prefix + "0.")}

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[list[Tensor], list[Tensor]]:
        """The four fused outputs as intermediates (selected by ``indices``, as timm's ``feature_take_indices``)."""
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take, _ = feature_take_indices(len(self.taps), indices)
        outputs = [tap(y) for tap, y in zip(self.taps, self.backbone(x))]
        intermediates = [outputs[i] for i in take]
        return intermediates if intermediates_only else (outputs, intermediates)

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Nothing to prune: every output comes out of the last module together."""
        return feature_take_indices(len(self.taps), indices)[0]

    def forward(self, x: Tensor) -> list[Tensor]:
        xs = self.backbone(x)
        return [self.taps[i](xs[i]) for i in self.out_indices]


def _check_in_chans(in_chans: int) -> None:
    if not isinstance(in_chans, int) or isinstance(in_chans, bool) or in_chans < 1:
        raise ValueError(f"in_chans must be a positive number of input channels, got {in_chans!r}")
