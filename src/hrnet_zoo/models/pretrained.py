"""Pretrained configurations of the pose models: what each checkpoint is, where it comes from, what it scores.

timm's ``PretrainedCfg`` rejects unknown fields, so the registry of pose checkpoints (keypoints, codec, metrics,
sources) lives in :class:`PosePretrainedCfg`: :meth:`PosePretrainedCfg.to_timm` gives the subset timm's registry
understands, :attr:`PosePretrainedCfg.pose_meta` the metadata a model built for the tag carries, and
:meth:`PosePretrainedCfg.weights_origin` what the tag's weights may claim once loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from ..codec import HeatmapCodec
from ..keypoints import COCO_KEYPOINTS, MPII_KEYPOINTS, KeypointSet, get_keypoint_set
from .meta import PoseMeta, WeightsOrigin

__all__ = [
    "HUB_ORGANISATION",
    "PRETRAINED_CFGS",
    "TASKS",
    "PosePretrainedCfg",
    "default_pretrained_cfg",
    "registered_cfg",
]

HUB_ORGANISATION = "hrnet-zoo"
ORIGINAL_REPO = "https://github.com/leoxiaobin/deep-high-resolution-net.pytorch"
PAPER = "arxiv:1902.09212"
_MMPOSE_URL = "https://download.openmmlab.com/mmpose/top_down/hrnet/"
_MMPOSE_TABLE = "https://github.com/open-mmlab/mmpose/blob/v0.29.0/configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/"
_HEADLINE_METRICS = ("coco_val_ap", "mpii_val_pckh", "AP", "Whole AP", "COCO AP", "Mean", "Total", "NME test",
                     "NME full", "NME", "AUC", "PCK")  # fmt: skip
#: Tasks of the zoo, in the order ``hrnet-zoo list`` shows them.
TASKS = ("body", "wholebody", "face", "hand", "animal", "fashion")


@dataclass(frozen=True)
class PosePretrainedCfg:
    """One pretrained checkpoint of a pose architecture.

    Attributes:
        architecture: Registered model name (``hrnet_w32_pose``).
        tag: Weight tag (``coco_256x192``); empty for an architecture without weights.
        task: One of :data:`TASKS` (``body``, ``wholebody``, ``face``, ``hand``, ``animal``, ``fashion``).
        keypoints: What the heatmaps are (names, skeleton, flip pairs).
        input_size: Network input ``(height, width)`` the weights were trained at.
        codec: The heatmap codec the weights were trained with (DARK, UDP...); the plain one at ``input_size``
            when not given.
        mean: Per-channel RGB mean of the input normalisation (inputs in ``[0, 1]``).
        std: Per-channel RGB std of the input normalisation.
        metrics: Reported scores of the checkpoint that is served (``coco_val_ap``, ``mpii_val_pckh``, ...).
        metrics_source: Where ``metrics`` were reported.
        paper_metrics: The original release's scores in the paper's table, kept apart from ``metrics``.
        params_m: Parameters in millions of the built model.
        gmacs: Multiply-accumulates in billions at ``input_size`` (convolutions, as counted by
            ``torch.utils.flop_counter`` / 2). The paper's own "GFLOPs" column, which counts fewer operations, is
            kept in ``paper_metrics["gflops"]``.
        hf_hub_id: Hugging Face Hub repository in the package's layout (``config.json`` + ``model.safetensors``).
        hf_hub_revision: Revision (commit, tag or branch) the Hub download is pinned to.
        hf_hub_sha256: SHA-256 of the Hub repository's ``model.safetensors``, checked after download (recorded
            when the repository is published).
        url: Direct download of the upstream checkpoint that serves the same network (fallback source).
        sha256_prefix: Leading hex digits of the upstream file's SHA-256, checked after download.
        license: License of the weights.
        origin_url: Where the weights were trained and released.
        paper: Paper identifier.
    """

    architecture: str
    tag: str = ""
    task: str = "body"
    keypoints: KeypointSet = COCO_KEYPOINTS
    input_size: tuple[int, int] = (256, 192)
    codec: HeatmapCodec | None = None
    mean: tuple[float, float, float] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, float, float] = IMAGENET_DEFAULT_STD
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_source: str = ""
    paper_metrics: Mapping[str, float] = field(default_factory=dict)
    params_m: float | None = None
    gmacs: float | None = None
    hf_hub_id: str | None = None
    hf_hub_revision: str | None = None
    hf_hub_sha256: str | None = None
    url: str | None = None
    sha256_prefix: str | None = None
    license: str = "mit"
    origin_url: str = ORIGINAL_REPO
    paper: str = PAPER

    @property
    def name(self) -> str:
        """``architecture.tag`` (the architecture alone when untagged)."""
        return f"{self.architecture}.{self.tag}" if self.tag else self.architecture

    @property
    def num_joints(self) -> int:
        """Number of heatmaps the head predicts."""
        return len(self.keypoints)

    @property
    def pose_meta(self) -> PoseMeta:
        """The metadata of a model built for this configuration (no weights loaded yet)."""
        return PoseMeta(self.keypoints, self.codec or HeatmapCodec(self.input_size), self.mean, self.std)

    def weights_origin(self, fingerprint: str | None) -> WeightsOrigin:
        """The origin of this tag's weights, once loaded with ``fingerprint``."""
        return WeightsOrigin(
            name=self.name,
            fingerprint=fingerprint,
            metrics=dict(self.metrics),
            metrics_source=self.metrics_source,
            license=self.license,
            url=self.url or self.origin_url,
        )

    @property
    def headline_metric(self) -> tuple[str, float] | None:
        """The one score a table shows for these weights (COCO AP, PCKh, whole-body AP, NME, AUC...)."""
        for key in _HEADLINE_METRICS:
            if key in self.metrics:
                return key, self.metrics[key]
        return next(iter(self.metrics.items()), None)

    @property
    def has_weights(self) -> bool:
        """Whether any source serves weights for this configuration."""
        return bool(self.hf_hub_id or self.url)

    def to_timm(self) -> dict[str, Any]:
        """The fields timm's ``PretrainedCfg`` accepts, for timm's registry."""
        height, width = self.input_size
        return {
            "hf_hub_id": self.hf_hub_id,
            "url": self.url or "",
            "num_classes": self.num_joints,
            "label_names": self.keypoints.names,
            "input_size": (3, *self.input_size),
            "fixed_input_size": False,
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "mean": self.mean,
            "std": self.std,
            "pool_size": self.pose_meta.codec.heatmap_size,
            "first_conv": "backbone.stem.conv1",
            "classifier": "head.3" if self.architecture.startswith("hrnetv2") else "head",  # the heatmap conv
            "license": self.license,
            "origin_url": self.origin_url,
            "paper_ids": self.paper,
            "description": f"HRNet pose model, {self.keypoints.name} keypoints, input {height}x{width}",
        }


def _sha256_prefix(file_name: str) -> str:
    """OpenMMLab names files ``<name>-<first 8 hex digits of the SHA-256>_<date>.pth``."""
    match = re.search(r"-([0-9a-f]{8})_\d{8}\.pth$", file_name)
    if match is None:
        raise ValueError(f"{file_name!r} does not carry a SHA-256 prefix")
    return match.group(1)


def _coco(
    arch: str, size: tuple[int, int], mmpose_file: str, mmpose: tuple[float, float], paper: tuple[float, ...], **kw: Any
) -> PosePretrainedCfg:
    tag = f"coco_{size[0]}x{size[1]}"
    return PosePretrainedCfg(
        architecture=arch,
        tag=tag,
        keypoints=COCO_KEYPOINTS,
        input_size=size,
        metrics={"coco_val_ap": mmpose[0], "coco_val_ar": mmpose[1]},
        metrics_source=_MMPOSE_TABLE + "coco/hrnet_coco.md",
        paper_metrics=dict(zip(("coco_val_ap", "coco_val_ar", "params_m", "gflops"), paper)),
        hf_hub_id=f"{HUB_ORGANISATION}/{arch}.{tag}",
        url=_MMPOSE_URL + mmpose_file,
        sha256_prefix=_sha256_prefix(mmpose_file),
        license="apache-2.0",
        origin_url="https://github.com/open-mmlab/mmpose",
        **kw,
    )


def _mpii(arch: str, mmpose_file: str, pckh: float, paper: dict[str, float], **kw: Any) -> PosePretrainedCfg:
    tag = "mpii_256x256"
    return PosePretrainedCfg(
        architecture=arch,
        tag=tag,
        keypoints=MPII_KEYPOINTS,
        input_size=(256, 256),
        metrics={"mpii_val_pckh": pckh},
        metrics_source=_MMPOSE_TABLE + "mpii/hrnet_mpii.md",
        paper_metrics=paper,
        hf_hub_id=f"{HUB_ORGANISATION}/{arch}.{tag}",
        url=_MMPOSE_URL + mmpose_file,
        sha256_prefix=_sha256_prefix(mmpose_file),
        license="apache-2.0",
        origin_url="https://github.com/open-mmlab/mmpose",
        **kw,
    )


# Metrics: COCO val2017 with the 56.4 AP person detector and flip test; MPII val PCKh@0.5 with flip test.
# `metrics` are OpenMMLab's for the checkpoint served; `paper_metrics` the original release (README / paper Table 1).
# The first configuration of each architecture is its default.
_W32, _W48 = "hrnet_w32_pose", "hrnet_w48_pose"
PRETRAINED_CFGS: dict[str, PosePretrainedCfg] = {
    cfg.name: cfg
    for cfg in (
        _coco(_W32, (256, 192), "hrnet_w32_coco_256x192-c78dce93_20200708.pth", (0.746, 0.799),
              (0.744, 0.798, 28.5, 7.1), params_m=28.536, gmacs=7.65),
        _coco(_W32, (384, 288), "hrnet_w32_coco_384x288-d9f0d786_20200708.pth", (0.760, 0.810),
              (0.758, 0.809, 28.5, 16.0), params_m=28.536, gmacs=17.20),
        _mpii(_W32, "hrnet_w32_mpii_256x256-6c4f923f_20200812.pth", 0.900, {"mpii_val_pckh": 0.903},
              params_m=28.536, gmacs=10.19),
        _coco(_W48, (256, 192), "hrnet_w48_coco_256x192-b9e0b3ab_20200708.pth", (0.756, 0.806),
              (0.751, 0.804, 63.6, 14.6), params_m=63.596, gmacs=15.69),
        _coco(_W48, (384, 288), "hrnet_w48_coco_384x288-314c8528_20200708.pth", (0.767, 0.816),
              (0.763, 0.812, 63.6, 32.9), params_m=63.596, gmacs=35.31),
        _mpii(_W48, "hrnet_w48_mpii_256x256-92cab7bd_20200812.pth", 0.901, {}, params_m=63.596, gmacs=20.92),
        PosePretrainedCfg("hrnet_w18_pose", params_m=9.318, gmacs=3.19),
        PosePretrainedCfg("hrnet_w18_small_pose", params_m=3.617, gmacs=1.54),
    )
}  # fmt: skip


def _from_openmmlab(record: Mapping[str, Any]) -> PosePretrainedCfg:
    """A configuration from ``data/openmmlab_zoo.json`` (written by ``tools/import_openmmlab_zoo.py``)."""
    codec = record["codec"]
    return PosePretrainedCfg(
        architecture=record["architecture"],
        tag=record["tag"],
        task=record["task"],
        keypoints=get_keypoint_set(record["keypoints"]),
        input_size=tuple(codec["input_size"]),
        codec=HeatmapCodec(
            tuple(codec["input_size"]),
            tuple(codec["heatmap_size"]),
            codec["sigma"],
            codec["encoding"],
            codec["decoding"],
            codec.get("blur_kernel_size"),
        ),
        mean=tuple(record["mean"]),
        std=tuple(record["std"]),
        metrics=record["metrics"],
        metrics_source=record["metrics_source"],
        url=record["url"],
        sha256_prefix=record["sha256_prefix"],
        license=record["license"],
        origin_url="https://github.com/open-mmlab/mmpose",
        params_m=record.get("params_m"),
        gmacs=record.get("gmacs"),
    )


def _openmmlab_zoo() -> list[PosePretrainedCfg]:
    data = json.loads(files("hrnet_zoo").joinpath("data", "openmmlab_zoo.json").read_text())
    return [_from_openmmlab(record) for record in data["checkpoints"]]


# The rest of OpenMMLab's HRNet zoo. Where mmpose 1.x retrained a checkpoint the package already serves under the
# same tag (the plain COCO and MPII ones, with the same scores), the 0.x file above stays the one served.
PRETRAINED_CFGS.update({cfg.name: cfg for cfg in _openmmlab_zoo() if cfg.name not in PRETRAINED_CFGS})


def default_pretrained_cfg(architecture: str) -> PosePretrainedCfg:
    """The first (default) configuration registered for ``architecture``."""
    for cfg in PRETRAINED_CFGS.values():
        if cfg.architecture == architecture:
            return cfg
    raise ValueError(f"no configuration is registered for {architecture!r}")


def registered_cfg(timm_cfg: Mapping[str, Any]) -> PosePretrainedCfg | None:
    """The registered configuration a timm ``pretrained_cfg`` names (``None`` for ``hf-hub:``/``local-dir:``
    models, whose metadata comes from their ``config.json``)."""
    if timm_cfg.get("source") in ("hf-hub", "local-dir"):
        return None
    return PRETRAINED_CFGS.get(f"{timm_cfg['architecture']}.{timm_cfg.get('tag') or ''}".rstrip("."))
