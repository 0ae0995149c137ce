"""The public model factory: timm's registry and ``create_model`` restricted to hrnet_zoo's models, with clear
errors and checkpoints of any known layout."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import timm
from timm.models import split_model_name_tag
from torch import nn

from ._download import download_hub_file
from ._utils import read_json
from .errors import ModelConfigError
from .models import pose_hrnet
from .models._weights import load_weights_file
from .models.meta import PoseMeta
from .models.pose_hrnet import ARCHITECTURES
from .models.pretrained import PRETRAINED_CFGS, PosePretrainedCfg

__all__ = ["create_model", "get_pretrained_cfg", "is_model", "list_models", "list_pretrained"]

_MODULE = pose_hrnet.__name__.rsplit(".", 1)[-1]
#: The kinds of model: top-down (person crops in, one pose per crop) and bottom-up (whole images, every person).
MODEL_KINDS = ("top_down", "bottom_up")
_SOURCES = ("hf-hub:", "local-dir:")


def list_models(pattern: str = "", pretrained: bool = False, kind: str | None = None) -> list[str]:
    """Names of hrnet_zoo's architectures matching a wildcard ``pattern``.

    With ``pretrained=True``, the ``arch.tag`` names of every configuration with weights instead. ``kind``
    keeps the ``"top_down"`` models (person crops in) or the ``"bottom_up"`` ones (whole images in).

    Example:
        >>> hrnet_zoo.list_models("hrnet_w32*", pretrained=True)
        ['hrnet_w32_pose.coco_256x192', 'hrnet_w32_pose.coco_384x288', 'hrnet_w32_pose.mpii_256x256']
        >>> hrnet_zoo.list_models(kind="bottom_up")
        ['dekr_hrnet_w32', 'dekr_hrnet_w48', 'higherhrnet_w32', 'higherhrnet_w48']

    Raises:
        ValueError: An unknown ``kind``.
    """
    names = timm.list_models(pattern or "", module=_MODULE, pretrained=pretrained)
    if kind is None:
        return names
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {list(MODEL_KINDS)}, got {kind!r}")
    return [name for name in names if ARCHITECTURES[split_model_name_tag(name)[0]].kind == kind]


def list_pretrained(pattern: str = "") -> list[str]:
    """``arch.tag`` names of every configuration with weights (same as ``list_models(pattern, pretrained=True)``)."""
    return list_models(pattern, pretrained=True)


def is_model(name: str) -> bool:
    """Whether ``name`` (``arch`` or ``arch.tag``) is one of hrnet_zoo's models."""
    if not isinstance(name, str):
        return False
    arch, tag = split_model_name_tag(name)
    return arch in list_models() and (not tag or f"{arch}.{tag}" in PRETRAINED_CFGS)


def _unknown_name_error(name: str) -> ValueError:
    arch, tag = split_model_name_tag(name)
    if arch in list_models():
        tags = [n for n in PRETRAINED_CFGS if n.startswith(arch + ".")]
        return ValueError(f"{arch} has no weight tag {tag!r}; available: {', '.join(tags) or 'none'}")
    candidates = list_models() + list(PRETRAINED_CFGS)
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return ValueError(f"unknown model {name!r}{hint} See hrnet_zoo.list_models() for all names")


def _config_file(model_name: str, cache: str | os.PathLike | None) -> tuple[Path, str]:
    """The ``config.json`` of a ``local-dir:`` or ``hf-hub:`` model (downloaded or cached), and how errors name it."""
    if model_name.startswith("local-dir:"):
        path = Path(model_name[len("local-dir:") :]) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: 'local-dir:' expects a folder written by hrnet_zoo.save_pretrained "
                "(config.json + model.safetensors)"
            )
        return path, str(path)
    repo = model_name[len("hf-hub:") :]
    return download_hub_file(repo, "config.json", cache=cache), f"hf-hub:{repo}/config.json"


def _check_config(config: object, where: str) -> None:
    """Check that a ``config.json`` (``where`` names it) builds an hrnet_zoo model as it describes, before timm
    builds anything.

    Raises:
        ModelConfigError: Another architecture, ``keypoints`` outside ``model_args.pose_meta``, malformed pose
            metadata (NaN normalisation, ...), or a head size (``num_classes``) other than its keypoints'.
    """
    if not isinstance(config, dict):
        raise ModelConfigError(f"{where} must hold a JSON object", config=where, field="architecture")
    arch = config.get("architecture")
    if arch not in list_models():
        raise ModelConfigError(
            f"{where} names the architecture {arch!r}, which is not an hrnet_zoo model (one of "
            f"{', '.join(list_models())}); other architectures load with timm.create_model",
            config=where,
            field="architecture",
        )
    model_args = config.get("model_args") or {}
    if "keypoints" in config or "keypoints" in model_args:
        raise ModelConfigError(
            f"{where} has a 'keypoints' field outside model_args.pose_meta; hrnet_zoo reads the keypoints (names, "
            "skeleton, flip pairs, sigmas) from model_args.pose_meta.keypoints, as hrnet_zoo.save_pretrained writes "
            "them",
            config=where,
            field="keypoints",
        )
    if "pose_meta" not in model_args:
        return  # a config written by other tools (timm's save_for_hf): timm's pretrained_cfg describes the model
    try:
        meta = PoseMeta.from_dict(model_args["pose_meta"])
    except (ValueError, TypeError, AttributeError) as err:
        field = "model_args.pose_meta"
        raise ModelConfigError(f"{where}: {field}: {err}", config=where, field=field) from err
    num_classes = config.get("num_classes", meta.num_joints)
    if num_classes != meta.num_joints:
        raise ModelConfigError(
            f"{where} declares {meta.num_joints} keypoints in model_args.pose_meta but num_classes={num_classes} "
            "(the heatmaps its head predicts); they must agree",
            config=where,
            field="num_classes",
        )


def _check_name(model_name: object, cache: str | os.PathLike | None = None) -> None:
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(
            f"model_name must be a model name such as 'hrnet_w32_pose', got {model_name!r}; see hrnet_zoo.list_models()"
        )
    if model_name.startswith(_SOURCES):
        path, where = _config_file(model_name, cache)
        _check_config(read_json(path, "model config"), where)
    elif not is_model(model_name):
        raise _unknown_name_error(model_name)


def get_pretrained_cfg(name: str) -> PosePretrainedCfg:
    """The pretrained configuration of ``arch.tag``, or of the architecture's default tag for a bare ``arch``."""
    _check_name(name)
    if name not in PRETRAINED_CFGS:
        name = f"{name}.{timm.models.get_pretrained_cfg(name).tag}".rstrip(".")
    return PRETRAINED_CFGS[name]


def create_model(
    model_name: str,
    pretrained: bool | str = False,
    *,
    checkpoint_path: str | os.PathLike | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Create an hrnet_zoo model, as ``timm.create_model`` does, with checkpoints of any known layout.

    Args:
        model_name: ``arch`` or ``arch.tag`` (see :func:`list_models`), ``hf-hub:org/repo`` or ``local-dir:PATH``
            (a folder written by :func:`hrnet_zoo.save_pretrained`).
        pretrained: ``True`` loads the weights (see :func:`hrnet_zoo.models.load_pretrained`); ``"imagenet"``
            initialises the backbone from timm's ImageNet HRNet.
        checkpoint_path: A safetensors or PyTorch file in the package, original, OpenMMLab or timm ImageNet
            layout, loaded (checked first) after creation.
        **kwargs: timm's (``num_classes``, ``in_chans``, ``features_only``, ``out_indices``, ``feature_cls``,
            ``pretrained_cfg_overlay=dict(file=PATH)``, ``cache_dir``, ``device``, ``dtype``) and hrnet_zoo's
            (``num_joints``, ``keypoints``, ``input_size``, ``pose_meta``).

    Raises:
        ValueError: Unknown name (with close matches), or a checkpoint that does not fit (nothing loaded).
        ModelConfigError: A ``local-dir:`` or ``hf-hub:`` ``config.json`` that does not describe an hrnet_zoo
            model (nothing built).
        WeightsUnavailableError: The ``config.json`` or weights of an ``hf-hub:`` model could not be had (the
            message names the repository, and offline mode when it applies).

    Example:
        >>> model = hrnet_zoo.create_model("hrnet_w32_pose.coco_256x192", pretrained=True).eval()
        >>> heatmaps = model(torch.randn(1, 3, 256, 192))  # (1, 17, 64, 48)
    """
    _check_name(model_name, kwargs.get("cache_dir"))
    model = timm.create_model(model_name, pretrained=pretrained, **kwargs)
    if checkpoint_path is not None:
        # A new head is kept only when asked for by joints (num_classes follows timm: the file must fit).
        load_weights_file(model, checkpoint_path, reset_head="num_joints" in kwargs or "keypoints" in kwargs)
    return model
