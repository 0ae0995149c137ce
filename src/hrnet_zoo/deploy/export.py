"""Exporting models: ``torch.export`` programs and ONNX files with a dynamic batch dimension."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .onnx_model import store_pose_meta

__all__ = ["export_onnx", "export_program"]

MAX_BATCH = 1024


def _example(model: nn.Module, input_size: tuple[int, int] | None, batch: int = 2) -> torch.Tensor:
    if input_size is None:
        input_size = model.pose_meta.input_size
    param = next(model.parameters())
    in_chans = model.in_chans
    return torch.randn(batch, in_chans, *input_size, device=param.device, dtype=param.dtype)


def export_program(model: nn.Module, input_size: tuple[int, int] | None = None) -> torch.export.ExportedProgram:
    """``torch.export`` an eval-mode model with a dynamic batch dimension (1 to 1024) at a fixed input size.

    ``input_size`` is ``(height, width)``; the model's (``pose_meta.input_size``) by default.
    """
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return torch.export.export(model.eval(), (_example(model, input_size),), dynamic_shapes=({0: batch},))


def export_onnx(
    model: nn.Module, path: str | os.PathLike, input_size: tuple[int, int] | None = None, opset: int = 18
) -> Path:
    """Write an eval-mode model as ONNX with input ``images`` ``(batch, 3, H, W)`` and output ``heatmaps``.

    The batch dimension is dynamic, and the model's ``pose_meta`` is stored in the file's metadata (see
    :class:`hrnet_zoo.OnnxPoseModel`). Uses the ``torch.export``-based exporter (needs ``onnx`` and ``onnxscript``:
    ``pip install "hrnet-zoo[onnx]"``).
    """
    try:
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError('ONNX export needs onnx and onnxscript: pip install "hrnet-zoo[onnx]"') from err
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    torch.onnx.export(
        model.eval(),
        (_example(model, input_size),),
        str(path),
        dynamo=True,
        opset_version=opset,
        input_names=["images"],
        output_names=["heatmaps"],
        dynamic_shapes=({0: batch},),
        verbose=False,
    )
    if hasattr(model, "pose_meta"):
        store_pose_meta(path, model.pose_meta)  # the file runs as an OnnxPoseModel with the model's metadata
    return path
