"""Exporting models: ``torch.export`` programs and ONNX files with a dynamic batch dimension, and running the
saved programs like the PyTorch model (:class:`ExportedPoseModel`)."""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn

from .._utils import writing
from ..models.meta import PoseMeta
from .onnx_model import POSE_META_KEY, store_pose_meta

__all__ = [
    "ONNX_PROTO_LIMIT",
    "ExportedPoseModel",
    "check_input_size",
    "export_onnx",
    "export_program",
    "needs_external_data",
    "save_program",
]

MAX_BATCH = 1024
#: The largest ONNX file protobuf can hold (2 GiB); bigger models keep their weights in ``NAME.onnx.data``.
ONNX_PROTO_LIMIT = 2**31
#: Input sizes must be multiples of this: each of the four branches halves the one before, from stride 4.
_SIZE_MULTIPLE = 32


def check_input_size(input_size: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` checked: both positive multiples of 32, as the four-branch network needs.

    Raises:
        ValueError: Naming the size and the nearest valid one.
    """
    height, width = input_size
    if min(height, width) > 0 and height % _SIZE_MULTIPLE == 0 and width % _SIZE_MULTIPLE == 0:
        return height, width
    nearest = tuple(max(_SIZE_MULTIPLE, round(v / _SIZE_MULTIPLE) * _SIZE_MULTIPLE) for v in (height, width))
    raise ValueError(
        f"input size {height}x{width}: height and width must be positive multiples of {_SIZE_MULTIPLE} "
        f"(e.g. {nearest[0]}x{nearest[1]})"
    )


def _example(model: nn.Module, input_size: tuple[int, int] | None, batch: int = 2) -> Tensor:
    size = check_input_size(model.pose_meta.input_size if input_size is None else input_size)
    param = next(model.parameters())
    return torch.randn(batch, model.in_chans, *size, device=param.device, dtype=param.dtype)


def _exported_meta(model: nn.Module, input_size: tuple[int, int] | None) -> PoseMeta:
    """The model's metadata at the input size it is exported at."""
    return model.pose_meta if input_size is None else model.pose_meta.at_input_size(tuple(input_size))


def export_program(model: nn.Module, input_size: tuple[int, int] | None = None) -> torch.export.ExportedProgram:
    """``torch.export`` an eval-mode model with a dynamic batch dimension (1 to 1024) at a fixed input size.

    ``input_size`` is ``(height, width)``, positive multiples of 32; the model's (``pose_meta.input_size``) by
    default.
    """
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return torch.export.export(model.eval(), (_example(model, input_size),), dynamic_shapes=({0: batch},))


def save_program(model: nn.Module, path: str | os.PathLike, input_size: tuple[int, int] | None = None) -> Path:
    """Write :func:`export_program`'s program to a ``.pt2`` file, with the model's ``pose_meta`` among its extra
    files, so that :class:`ExportedPoseModel` runs it."""
    path = Path(path)
    extra = {POSE_META_KEY: json.dumps(_exported_meta(model, input_size).to_dict())}
    with writing(path) as partial:  # an interrupted export leaves no half-written file
        torch.export.save(export_program(model, input_size), str(partial), extra_files=extra)
    return path


def needs_external_data(model: nn.Module) -> bool:
    """Whether the model's weights are too big for one ONNX file (2 GiB) and go to ``NAME.onnx.data``."""
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers())) >= ONNX_PROTO_LIMIT


def export_onnx(
    model: nn.Module, path: str | os.PathLike, input_size: tuple[int, int] | None = None, opset: int = 19
) -> Path:
    """Write an eval-mode model as ONNX with input ``images`` ``(batch, 3, H, W)`` and output ``heatmaps``.

    Opset 19 by default: the first with ``DeformConv``, which DEKR's adaptive convolutions export to (HRNet and
    Lite-HRNet use no operator newer than opset 18).

    The batch dimension is dynamic, and the model's ``pose_meta`` is stored in the file's metadata (see
    :class:`hrnet_zoo.deploy.OnnxPoseModel`). The file is self-contained unless the weights exceed 2 GiB
    (:func:`needs_external_data`); then they go to ``NAME.onnx.data`` beside it. Uses the ``torch.export``-based
    exporter (needs ``onnx`` and ``onnxscript``: ``pip install "hrnet-zoo[onnx]"``).
    """
    try:
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError('ONNX export needs onnx and onnxscript: pip install "hrnet-zoo[onnx]"') from err
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    external = needs_external_data(model)  # its data file is named after the file: written in place
    with nullcontext(path) if external else writing(path) as target:  # else all at once: never half-written
        _write_onnx(model, target, input_size, opset, external)
    return path


def _write_onnx(model: nn.Module, path: Path, input_size: tuple[int, int] | None, opset: int, external: bool) -> None:
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
        external_data=external,
        verbose=False,
    )
    if hasattr(model, "pose_meta"):
        store_pose_meta(path, _exported_meta(model, input_size))  # it runs as an OnnxPoseModel


class ExportedPoseModel(nn.Module):
    """A ``.pt2`` program written by :func:`save_program` (``hrnet-zoo export --format pt2``), run like the
    PyTorch model: ``(B, 3, H, W) -> (B, K, H / 4, W / 4)`` heatmaps at the exported input size.

    Its ``pose_meta`` comes from the program's extra files unless given, so
    :class:`~hrnet_zoo.PoseEstimator` and ``evaluate`` use it unchanged.

    Args:
        path: A ``.pt2`` file.
        pose_meta: The model's metadata, when the file carries none.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is not a ``torch.export`` program, or carries no pose metadata and none was given.
    """

    def __init__(self, path: str | os.PathLike, pose_meta: PoseMeta | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            what = "a folder, not a file" if self.path.is_dir() else "not found"
            raise FileNotFoundError(f"exported program {str(self.path)!r}: {what}")
        extra = {POSE_META_KEY: ""}
        try:
            program = torch.export.load(str(self.path), extra_files=extra)
        except Exception as err:  # torch raises many types for files of other kinds
            raise ValueError(f"could not load exported program {str(self.path)!r}: {type(err).__name__}") from err
        if pose_meta is None and not extra[POSE_META_KEY]:
            raise ValueError(f"{self.path} carries no pose metadata; pass pose_meta=model.pose_meta")
        self.pose_meta = pose_meta or PoseMeta.from_dict(json.loads(extra[POSE_META_KEY]))
        self.in_chans = _input_channels(program)
        self.program = program.module()

    def forward(self, x: Tensor) -> Tensor:
        return self.program(x)

    def train(self, mode: bool = True) -> ExportedPoseModel:
        """An exported program has no training mode: only the flag changes (``eval()`` keeps working)."""
        self.training = mode
        return self

    def extra_repr(self) -> str:
        return self.path.name


def _input_channels(program: torch.export.ExportedProgram) -> int:
    """The channels of the program's image input, from its example's shape."""
    name = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.name == name)
    return int(node.meta["val"].shape[1])
