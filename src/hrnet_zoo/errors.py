"""The exceptions hrnet_zoo raises on purpose, each carrying the facts (file, tag, URL) as attributes.

Their messages speak to Python users; the ``hrnet-zoo`` command turns the same facts into advice about its flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

__all__ = ["CheckpointMismatchError", "ModelConfigError", "OutputRefusedError", "WeightsUnavailableError"]


class WeightsUnavailableError(RuntimeError):
    """No source could provide the weights; the message lists what was tried and how to supply them locally.

    Attributes:
        name: What the weights are for (``arch.tag``, ``hf-hub:...`` or a detector's name).
        hf_hub_id: The Hub repository tried, if any.
        url: The upstream file tried, if any.
        cache_path: Where a copied file would be found, if the source has such a place.
        kind: ``"pose"`` or ``"detector"`` weights.
        file: The file that could not be had, when one file was asked for (``model.safetensors``,
            ``config.json``).
    """

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        hf_hub_id: str | None = None,
        url: str | None = None,
        cache_path: str | os.PathLike | None = None,
        kind: Literal["pose", "detector"] = "pose",
        file: str | None = None,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.hf_hub_id = hf_hub_id
        self.url = url
        self.cache_path = None if cache_path is None else Path(cache_path)
        self.kind = kind
        self.file = file


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model; nothing was loaded.

    Attributes:
        source: The file or ``"state dict"`` that was refused.
        checkpoint_joints: Joints the checkpoint's head predicts, when that is the mismatch.
        model_joints: Joints the model's head predicts, when that is the mismatch.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        checkpoint_joints: int | None = None,
        model_joints: int | None = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.checkpoint_joints = checkpoint_joints
        self.model_joints = model_joints


class ModelConfigError(ValueError):
    """A model's ``config.json`` (``local-dir:`` or ``hf-hub:``) cannot build an hrnet_zoo model; nothing was built.

    Attributes:
        config: The file, or ``hf-hub:org/name/config.json``.
        field: The field at fault (``architecture``, ``keypoints``, ``model_args.pose_meta``, ``num_classes``).
    """

    def __init__(self, message: str, *, config: str, field: str) -> None:
        super().__init__(message)
        self.config = config
        self.field = field


#: Why an output path was refused.
RefusalReason = Literal["exists", "input", "symlink", "duplicate", "not_a_folder", "not_writable"]


class OutputRefusedError(ValueError):
    """An output path may not be written; nothing was written.

    Attributes:
        path: The refused path.
        reason: ``"exists"`` (and replacing it was not asked for), ``"input"`` (it is one of the inputs),
            ``"symlink"``, ``"duplicate"`` (two outputs share it), ``"not_a_folder"`` or ``"not_writable"``.
    """

    def __init__(self, path: str | os.PathLike, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.path = Path(path)
        self.reason = reason
