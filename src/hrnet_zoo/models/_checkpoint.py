"""Reading checkpoint files and loading them into models: the one path every weight source goes through.

Keys are converted to the package layout once (:mod:`hrnet_zoo.models._layouts`), then every key, shape and value is
checked against the model before anything is copied, so a model is never half-loaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from timm.models import adapt_input_conv
from torch import Tensor, nn

from .._utils import read_state_dict
from ..errors import CheckpointMismatchError
from ._layouts import is_litehrnet, to_package_layout

__all__ = ["check_fits", "load_checkpoint", "read_checkpoint", "unusable_tensors"]

_logger = logging.getLogger(__name__)
_NESTED_KEYS = ("state_dict", "model", "model_state_dict")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read the tensors of a safetensors or PyTorch checkpoint file (format told by its content, not its name).

    PyTorch files are read with ``weights_only=True``: no pickled code is executed. A training checkpoint that
    nests its weights under ``state_dict`` or ``model`` (OpenMMLab, many training scripts) is unwrapped.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is truncated, corrupted, holds objects other than tensors, or no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist")
    try:
        data = read_state_dict(path)
    except ValueError as err:
        if "weights_only" not in str(err.__cause__):
            raise
        raise ValueError(  # torch's own message advises weights_only=False, which would run the file's code
            f"could not read checkpoint {str(path)!r}: it is not a weights file, or it holds Python objects other "
            "than tensors, which are never loaded (they could run code); nothing was run"
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


def unusable_tensors(state_dict: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> list[str]:
    """The tensors of ``state_dict`` that cannot be copied faithfully into ``own`` (a module's state dict): meta or
    sparse storage, another kind of dtype, NaN or infinite values; each named with its problem."""
    bad = []
    for key, value in state_dict.items():
        target = own.get(key)
        if target is None:
            continue
        if value.is_meta or value.layout != torch.strided:
            bad.append(f"{key} ({'meta' if value.is_meta else value.layout} tensor holds no plain values)")
        elif target.is_floating_point() and (not value.is_floating_point() or value.is_complex()):
            bad.append(f"{key} (dtype {value.dtype}, model {target.dtype})")
        elif value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad.append(f"{key} (holds NaN or infinite values)")
    return bad


def _head_name(model: nn.Module) -> str:
    return str(getattr(model, "pretrained_cfg", {}).get("classifier") or "head")


def load_checkpoint(
    model: nn.Module,
    checkpoint: str | os.PathLike | Mapping[str, Tensor],
    *,
    strict: bool = True,
    reset_head: bool = False,
    adapt_input: bool = False,
) -> list[str]:
    """Load a checkpoint file or state dict of any known layout into a pose or feature model, checked first.

    Args:
        model: A pose or feature model, HRNet's or Lite-HRNet's (``HRNetPose``, ``LiteHRNetFeatures``...).
        checkpoint: Path of a safetensors/PyTorch file, or a state dict (package, original, OpenMMLab 0.x/1.x or
            timm ImageNet layout, or Lite-HRNet's reference and OpenMMLab 1.x layouts; the ImageNet classification head
            is dropped).
        strict: Require every model key to be present (``num_batches_tracked`` counters may always be absent).
        reset_head: When the checkpoint's heatmap head has another number of joints, keep the model's freshly
            initialised head (with a warning) instead of failing. Set it only when a different number of joints
            was asked for.
        adapt_input: Adapt the first convolution to the model's input channels (``timm.models.adapt_input_conv``)
            when the checkpoint has another number.

    Returns:
        The model keys that were left as initialised.

    Raises:
        CheckpointMismatchError: Listing missing, unexpected, mis-shaped and unusable tensors; the model is
            untouched.
    """
    from_file = isinstance(checkpoint, (str, os.PathLike))
    source = f"checkpoint {os.fspath(checkpoint)!r}" if from_file else "state dict"
    raw = read_checkpoint(checkpoint) if from_file else dict(checkpoint)
    own = model.state_dict()
    _check_family(model, own, raw, source)
    state_dict, layout = getattr(model, "checkpoint_layout", to_package_layout)(raw)
    head = _head_name(model) + "."
    whole_head = str(getattr(model, "head_module", head[:-1])) + "."  # a head of several outputs goes whole
    head_keys = {k for k in own if k.startswith((head, whole_head))}
    optional = set(getattr(model, "optional_checkpoint_keys", set)())
    optional |= {k for k in own if k.endswith("num_batches_tracked")}
    # Frozen BatchNorms (timm.utils.freeze) have no step counter: the checkpoint's are not needed then.
    state_dict = {k: v for k, v in state_dict.items() if k in own or not k.endswith("num_batches_tracked")}
    if layout == "timm_imagenet":  # a classifier: its extra fusion paths have no place in the pose network
        state_dict = {k: v for k, v in state_dict.items() if k in own or ".fuse.paths." not in k}
        optional |= head_keys
    if not head_keys:  # a features-only model has no head: drop the checkpoint's
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(head)}
    unused = tuple(getattr(model, "unused_checkpoint_prefixes", ()))  # e.g. Lite-HRNet's head in its features
    state_dict = {k: v for k, v in state_dict.items() if not k.startswith(unused) or k in own}
    _check_widths(model, own, state_dict, source)
    weight, own_weight = state_dict.get(head + "weight"), own.get(head + "weight")
    # Another number of joints: the head differs in its outputs only (a transposed head is a shape mismatch).
    same_inputs = weight is not None and own_weight is not None and weight.shape[1:] == own_weight.shape[1:]
    if same_inputs and weight.shape[0] != own_weight.shape[0]:
        ckpt_joints, model_joints = weight.shape[0], own_weight.shape[0]
        if not reset_head:
            raise CheckpointMismatchError(
                f"the {source} predicts {ckpt_joints} joints but the model has {model_joints}; nothing was loaded. "
                f"Create the model with num_joints={ckpt_joints}, or pass num_joints={model_joints} explicitly to "
                "keep the backbone and re-initialise the head",
                source=source,
                checkpoint_joints=ckpt_joints,
                model_joints=model_joints,
            )
        _logger.warning(
            "%s predicts %d joints, the model %d: its head is not loaded and stays freshly initialised",
            source,
            ckpt_joints,
            model_joints,
        )
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith((head, whole_head))}
        optional |= head_keys
    first_conv = str(getattr(model, "pretrained_cfg", {}).get("first_conv") or "backbone.stem.conv1") + ".weight"
    if adapt_input and first_conv in state_dict and first_conv in own:
        ckpt_in, model_in = state_dict[first_conv].shape[1], own[first_conv].shape[1]
        if ckpt_in != model_in:
            state_dict[first_conv] = adapt_input_conv(model_in, state_dict[first_conv])
            _logger.info("adapted %s from %d to %d input channels", first_conv, ckpt_in, model_in)
    check_fits(type(model).__name__, own, state_dict, source, optional, strict)
    model.load_state_dict(state_dict, strict=False)
    left = [k for k in own if k not in state_dict]
    if hasattr(model, "after_checkpoint"):
        model.after_checkpoint(left)
    fresh_head = layout == "timm_imagenet" or reset_head  # a new head was asked for: no news that it stays new
    reported = [k for k in left if not k.endswith("num_batches_tracked") and not (fresh_head and k in head_keys)]
    if reported:
        _logger.warning(
            "%d model keys are not in the %s and stay initialised: %s", len(reported), source, _describe(reported)
        )
    return left


def _branch_widths(state_dict: Mapping[str, Tensor]) -> list[int]:
    """Branch widths of an HRNet state dict in the package layout, read from the transitions' convolutions."""
    widths = []
    for key, value in state_dict.items():
        if key.startswith("backbone.transition") and key.endswith(".0.weight") and value.dim() == 4:
            widths.append((int(key.split(".")[1][len("transition") :]), int(key.split(".")[3]), value.shape[0]))
    return [w for _, _, w in sorted(set(widths))]


#: Key fragments that only a family's checkpoints hold, in any of their layouts (the package's, the reference's,
#: OpenMMLab's), and models of that family to create instead.
_FAMILY_MARKS = {
    "DEKR": (("offset_regression.", "offset_final_layer.", "displacement_conv_layers."), "dekr_hrnet_w32"),
    "HigherHRNet": (("deconv_layers.",), "higherhrnet_w32"),
}
_FAMILY_EXAMPLES = {"Lite-HRNet": "litehrnet_18_pose or litehrnet_30_pose", "HRNet": "hrnet_w32_pose"}


def _family(keys: Mapping[str, Tensor]) -> str:
    for family, (marks, _) in _FAMILY_MARKS.items():
        if any(mark in key for key in keys for mark in marks):
            return family
    return "Lite-HRNet" if is_litehrnet(keys) else "HRNet"


def _check_family(model: nn.Module, own: Mapping[str, Tensor], state_dict: Mapping[str, Tensor], source: str) -> None:
    """Name the mismatch when a checkpoint is of another family (a Lite-HRNet or DEKR checkpoint into an HRNet)."""
    theirs, ours = _family(state_dict), _family(own)
    backbone_only = theirs == "HRNet" and ours in _FAMILY_MARKS  # an HRNet backbone (ImageNet) under a new head
    if theirs != ours and not backbone_only:
        arch = getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
        example = _FAMILY_MARKS[theirs][1] if theirs in _FAMILY_MARKS else _FAMILY_EXAMPLES[theirs]
        raise CheckpointMismatchError(
            f"the {source} is for {theirs}, the model {arch} is {ours}; nothing was loaded. Create a {theirs} "
            f"model, e.g. {example}",
            source=source,
        )


def _check_widths(model: nn.Module, own: Mapping[str, Tensor], state_dict: Mapping[str, Tensor], source: str) -> None:
    """Name the architecture mismatch when an HRNet checkpoint's branch widths differ from the model's (W18 into
    W32). Lite-HRNet's transitions are read by :func:`check_fits` (both sizes have the same widths)."""
    if is_litehrnet(own):
        return
    theirs, ours = _branch_widths(state_dict), _branch_widths(own)
    if theirs and ours and theirs[:4] != ours[:4]:
        arch = getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
        raise CheckpointMismatchError(
            f"the {source} is for another HRNet width: its branches have {'/'.join(map(str, theirs[:4]))} "
            f"channels (HRNet-W{theirs[0]}), the model {arch} has {'/'.join(map(str, ours[:4]))} "
            f"(HRNet-W{ours[0]}); nothing was loaded. Create the model of the checkpoint's width, e.g. "
            f"hrnet_w{theirs[0]}_pose",
            source=source,
        )


def check_fits(
    what: str,
    own: Mapping[str, Tensor],
    state_dict: Mapping[str, Tensor],
    source: str,
    optional: set[str] | frozenset[str] = frozenset(),
    strict: bool = True,
) -> None:
    """Check that ``state_dict`` fits ``own`` (the state dict of the module ``what`` names) before anything is
    copied: every key of ``own`` not in ``optional`` present (with ``strict``), no unexpected key, the same
    shapes, and values :func:`unusable_tensors` accepts.

    Raises:
        CheckpointMismatchError: Listing every problem (``source`` names the checkpoint).
    """
    missing = [k for k in own if k not in state_dict and k not in optional] if strict else []
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k} (checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[k].shape)})"
        for k in own
        if k in state_dict and state_dict[k].shape != own[k].shape
    ]
    unusable = unusable_tensors(state_dict, own)
    if not (missing or unexpected or mismatched or unusable):
        return
    problems = []
    if missing:
        problems.append(f"missing in the {source} ({len(missing)}): {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected in the {source} ({len(unexpected)}): {_describe(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch ({len(mismatched)}): {_describe(mismatched, 4)}")
    if unusable:
        problems.append(f"unusable tensors ({len(unusable)}): {_describe(unusable, 4)}")
    raise CheckpointMismatchError(
        f"the {source} does not fit {what}; nothing was loaded.\n  " + "\n  ".join(problems),
        source=source,
    )
