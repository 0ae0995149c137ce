"""What a pose model's inputs and outputs mean, and where its weights come from: one object on the model.

:class:`PoseMeta` is the single owner of a model's keypoint set, heatmap codec (input size and heatmap geometry)
and input normalisation. It travels with the model: ``reset_head`` updates it, ``save_pretrained`` writes it into
``config.json`` (``model_args``), and ``create_model`` (hrnet_zoo's or timm's, ``hf-hub:`` or ``local-dir:``)
rebuilds it from there. timm's ``model.pretrained_cfg`` is kept in step with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from ..codec import BottomUpCodec, HeatmapCodec, TopDownTransform
from ..keypoints import KeypointSet, generic_keypoints

__all__ = ["PoseMeta", "WeightsOrigin", "head_meta", "weights_fingerprint"]


def weights_fingerprint(model: nn.Module) -> str | None:
    """SHA-256 over the model's state dict (names, dtypes, shapes and bytes); ``None`` for meta tensors."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if tensor.is_meta:
            return None
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(memoryview(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsOrigin:
    """Where a model's weights come from, and what may be claimed about them.

    Attributes:
        name: The source: an ``arch.tag``, ``hf-hub:org/repo``, or ``file NAME``; empty when the weights were
            changed after loading (see ``base``).
        fingerprint: :func:`weights_fingerprint` of the weights as they came from ``name``; a model whose weights
            no longer have this fingerprint (fine-tuned, new head) may not claim ``metrics``.
        metrics: Reported scores of exactly these weights.
        metrics_source: Where ``metrics`` were reported.
        license: License of the weights (inherited by weights derived from them).
        url: Where the weights were released.
        base: The weights these were derived from (e.g. fine-tuned from), when known.
    """

    name: str = ""
    fingerprint: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_source: str = ""
    license: str | None = None
    url: str | None = None
    base: str | None = None

    def describes(self, model: nn.Module) -> bool:
        """Whether ``model`` still holds exactly the weights this origin describes."""
        return self.fingerprint is not None and self.fingerprint == weights_fingerprint(model)

    def derived(self, fingerprint: str | None) -> WeightsOrigin:
        """The origin of weights changed from these: no metrics, same license, this source as ``base``."""
        return WeightsOrigin(fingerprint=fingerprint, license=self.license, base=self.name or self.base)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "metrics": dict(self.metrics),
            "metrics_source": self.metrics_source,
            "license": self.license,
            "url": self.url,
            "base": self.base,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeightsOrigin:
        """Inverse of :meth:`to_dict`."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown weights origin fields {sorted(unknown)}")
        return cls(**{**data, "metrics": dict(data.get("metrics") or {})})


@dataclass(frozen=True)
class PoseMeta:
    """Everything needed to use a pose model's input and output, owned by the model (``model.pose_meta``).

    Attributes:
        keypoints: What the heatmaps are (names, skeleton, flip pairs, OKS sigmas).
        codec: Input size and heatmap geometry, with encoding and decoding: a :class:`~hrnet_zoo.codec.HeatmapCodec`
            for top-down models, a :class:`~hrnet_zoo.codec.BottomUpCodec` for bottom-up ones.
        mean: Per-channel RGB mean of the input normalisation (inputs in ``[0, 1]``).
        std: Per-channel RGB std.
        origin: Where the weights come from (``None`` for freshly initialised weights).
    """

    keypoints: KeypointSet
    codec: HeatmapCodec | BottomUpCodec = field(default_factory=HeatmapCodec)
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD
    origin: WeightsOrigin | None = None

    def __post_init__(self) -> None:
        # TopDownTransform checks the normalisation (finite, one entry per channel, std positive) for both kinds
        transform = TopDownTransform(HeatmapCodec(), self.mean, self.std)
        object.__setattr__(self, "mean", transform.mean)
        object.__setattr__(self, "std", transform.std)

    @property
    def bottom_up(self) -> bool:
        """Whether the model finds every person of the image itself (a :class:`~hrnet_zoo.codec.BottomUpCodec`)."""
        return isinstance(self.codec, BottomUpCodec)

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(height, width)``."""
        return self.codec.input_size

    @property
    def num_joints(self) -> int:
        """Number of heatmaps."""
        return len(self.keypoints)

    @property
    def transform(self) -> TopDownTransform:
        """The top-down transform of this model: boxes to normalised crops at its input size, and back.

        Raises:
            ValueError: The model is bottom-up (it takes whole images, resized by its codec).
        """
        if isinstance(self.codec, BottomUpCodec):
            raise ValueError(
                f"a bottom-up model ({self.codec.method}) has no top-down transform: it takes whole images, resized by "
                "its codec (pose_meta.codec.resizes) and decoded by hrnet_zoo.codec.decode_dekr or "
                "decode_associative_embedding"
            )
        return TopDownTransform(self.codec, self.mean, self.std)

    def at_input_size(self, input_size: tuple[int, int]) -> PoseMeta:
        """The same metadata for another network input ``(height, width)``: heatmaps at a quarter of it, the
        codec's family (encoding, decoding, sigma) kept; for a bottom-up model, the size the short side is resized
        to."""
        if isinstance(self.codec, BottomUpCodec):
            return replace(self, codec=replace(self.codec, input_size=tuple(input_size)))
        codec = replace(self.codec, input_size=tuple(input_size), heatmap_size=None, blur_kernel_size=None)
        return replace(self, codec=codec)

    def with_joints(self, num_joints: int, keypoints: KeypointSet | None = None) -> PoseMeta:
        """The metadata of the same model with a new head for ``num_joints`` (generic names unless given); a
        bottom-up codec no longer rescores (DEKR's rescoring net was trained for the old keypoints)."""
        if keypoints is not None and len(keypoints) != num_joints:
            raise ValueError(f"num_joints={num_joints} does not match the {len(keypoints)} keypoints given")
        if keypoints is None:
            keypoints = self.keypoints if num_joints == len(self.keypoints) else generic_keypoints(num_joints)
        origin = self.origin.derived(None) if self.origin is not None else None
        codec = self.codec
        if isinstance(codec, BottomUpCodec) and keypoints != self.keypoints:  # a rescoring net knows its keypoints
            codec = replace(codec, rescore=False)
        return replace(self, keypoints=keypoints, origin=origin, codec=codec)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``config.json`` stores under ``model_args.pose_meta``)."""
        return {
            "keypoints": self.keypoints.to_dict(),
            "codec": self.codec.to_dict(),
            "mean": list(self.mean),
            "std": list(self.std),
            "origin": None if self.origin is None else self.origin.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoseMeta:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: A field is missing or malformed (the message names it).
        """
        try:
            origin = data.get("origin")
            codec = data.get("codec") or {}
            return cls(
                keypoints=KeypointSet.from_dict(data["keypoints"]),
                codec=BottomUpCodec.from_dict(codec) if "method" in codec else HeatmapCodec.from_dict(codec),
                mean=tuple(data.get("mean", IMAGENET_DEFAULT_MEAN)),
                std=tuple(data.get("std", IMAGENET_DEFAULT_STD)),
                origin=None if origin is None else WeightsOrigin.from_dict(origin),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"malformed pose metadata ({type(err).__name__}: {err}): {dict(data)!r:.300}") from err


def head_meta(
    base: PoseMeta | None,
    *,
    num_joints: int | None = None,
    num_classes: int | None = None,
    keypoints: KeypointSet | Mapping[str, Any] | None = None,
) -> PoseMeta:
    """The metadata of a model whose head is asked for by ``num_joints`` (or timm's ``num_classes``) and/or
    ``keypoints``, starting from ``base``: the one place these arguments are reconciled.

    Unchanged when nothing is asked for, or the same number of joints without new keypoints; otherwise the new
    keypoints (generic names for a bare number), with weights that no longer claim their source's metrics.

    Raises:
        ValueError: Nothing to build a head from, arguments that disagree, or a joint count that is not a number
            ``>= 0``.
    """
    if num_joints is not None and num_classes is not None and num_joints != num_classes:
        raise ValueError(f"num_joints={num_joints} and num_classes={num_classes} disagree: give one")
    asked = num_joints if num_joints is not None else num_classes
    if asked is not None and (not isinstance(asked, int) or isinstance(asked, bool) or asked < 0):
        raise ValueError(f"num_joints must be a number >= 0 (0: no head), got {asked!r}")
    if isinstance(keypoints, Mapping):
        keypoints = KeypointSet.from_dict(keypoints)
    if keypoints is not None:
        if asked is not None and asked != len(keypoints):
            raise ValueError(f"num_joints={asked} does not match the {len(keypoints)} keypoints given")
        asked = len(keypoints)
    if base is None:
        if asked is None:
            raise ValueError("give num_joints, keypoints or pose_meta")
        return PoseMeta(keypoints if keypoints is not None else generic_keypoints(asked))
    if asked is None or (asked == base.num_joints and keypoints is None):
        return base
    return base.with_joints(asked, keypoints)
