"""Reading checkpoint files and loading them into models: validated first, so a model is never half-loaded."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from ..models.convert import to_package_layout

__all__ = ["CheckpointMismatchError", "load_checkpoint", "load_state_dict_checked", "read_checkpoint"]

_logger = logging.getLogger(__name__)
_NESTED_KEYS = ("state_dict", "model", "model_state_dict")


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model; nothing was loaded."""


def read_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read the tensors of a ``.safetensors`` or PyTorch (``.pth``/``.pt``/``.bin``) checkpoint.

    PyTorch files are read with ``weights_only=True``: no pickled code is executed. A training checkpoint that
    nests its weights under ``state_dict`` or ``model`` (OpenMMLab, many training scripts) is unwrapped.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is truncated, corrupted or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            data: object = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # safetensors and torch raise many different types for damaged files
        raise ValueError(
            f"could not read checkpoint {str(path)!r} ({type(err).__name__}: {err}); the file may be truncated or "
            "corrupted, or not a .safetensors / PyTorch weights file"
        ) from err
    for key in _NESTED_KEYS:
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
            break
    if not isinstance(data, Mapping) or not data or not all(isinstance(v, Tensor) for v in data.values()):
        raise ValueError(f"checkpoint {str(path)!r} does not hold a state dict of tensors")
    return dict(data)


def _describe(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def load_state_dict_checked(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    strict: bool = True,
    ignore_missing: Callable[[str], bool] | None = None,
    source: str = "checkpoint",
) -> list[str]:
    """Convert ``state_dict`` to the package layout, check it against ``model``, and only then load it.

    Args:
        model: Model to load into.
        state_dict: Weights in any known layout (see :mod:`hrnet_zoo.models.convert`).
        strict: Require every model key to be present; unexpected keys and shape mismatches always fail.
        ignore_missing: Predicate for model keys that may be absent (kept as initialised).
        source: Name of the weights' origin for messages.

    Returns:
        The model keys that were left as initialised.

    Raises:
        CheckpointMismatchError: Listing missing, unexpected and mis-shaped keys; the model is untouched.
    """
    converted = to_package_layout(state_dict)
    own = model.state_dict()
    missing = [k for k in own if k not in converted]
    unexpected = [k for k in converted if k not in own]
    mismatched = [
        f"{k} (checkpoint {tuple(converted[k].shape)}, model {tuple(own[k].shape)})"
        for k in own
        if k in converted and converted[k].shape != own[k].shape
    ]
    tolerated = [k for k in missing if ignore_missing is not None and ignore_missing(k)]
    blocking_missing = [k for k in missing if k not in tolerated] if strict else []
    if unexpected or mismatched or blocking_missing:
        problems = []
        if blocking_missing:
            problems.append(f"missing in the {source} ({len(blocking_missing)}): {_describe(blocking_missing)}")
        if unexpected:
            problems.append(f"unexpected in the {source} ({len(unexpected)}): {_describe(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatch ({len(mismatched)}): {_describe(mismatched, 4)}")
        raise CheckpointMismatchError(
            f"the {source} does not fit {type(model).__name__}; nothing was loaded.\n  " + "\n  ".join(problems)
        )
    model.load_state_dict(converted, strict=False)
    return missing


def load_checkpoint(
    model: nn.Module,
    checkpoint: str | os.PathLike | Mapping[str, Tensor],
    *,
    strict: bool = True,
    reset_head: bool = False,
) -> list[str]:
    """Load a checkpoint file or state dict (package, original or OpenMMLab layout) into a pose model.

    Args:
        model: An ``HRNetPose`` or ``HRNetFeatures`` model.
        checkpoint: Path of a ``.safetensors``/``.pth`` file, or a state dict.
        strict: Require every model key to be present.
        reset_head: When the checkpoint's heatmap head has another number of joints, keep the model's freshly
            initialised head (with a warning) instead of failing. Set it only when a different number of joints
            was asked for.

    Returns:
        The model keys that were left as initialised.
    """
    source = f"checkpoint {os.fspath(checkpoint)!r}" if isinstance(checkpoint, (str, os.PathLike)) else "state dict"
    state_dict = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else dict(checkpoint)
    state_dict = to_package_layout(state_dict)
    head = getattr(model, "head", None)
    optional = getattr(model, "optional_checkpoint_keys", lambda: set())()
    if head is None:  # a features-only model has no head: drop the checkpoint's
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("head.")}
    elif "head.weight" in state_dict and state_dict["head.weight"].shape != head.weight.shape:
        ckpt_joints, model_joints = state_dict["head.weight"].shape[0], head.weight.shape[0]
        if not reset_head:
            raise CheckpointMismatchError(
                f"the {source} predicts {ckpt_joints} joints but the model has {model_joints}; nothing was loaded. "
                f"Create the model with num_joints={ckpt_joints}, or pass num_joints={model_joints} explicitly to "
                "keep the backbone and re-initialise the head"
            )
        _logger.warning(
            "%s predicts %d joints, the model %d: its head is not loaded and stays freshly initialised",
            source,
            ckpt_joints,
            model_joints,
        )
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("head.")}
        optional = optional | {k for k in model.state_dict() if k.startswith("head.")}
    left = load_state_dict_checked(
        model, state_dict, strict=strict, ignore_missing=optional.__contains__, source=source
    )
    if left:
        _logger.warning("%d model keys are not in the %s and stay initialised: %s", len(left), source, _describe(left))
    return left
