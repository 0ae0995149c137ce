"""OpenVINO IR export (fp32, or int8 with NNCF) and running the IR like the PyTorch model.

Conversion route: the BatchNorm-folded network is ``torch.export``-ed (:func:`hrnet_zoo.deploy.export_program`,
dynamic batch) and that program handed to ``openvino.convert_model`` directly. It needs neither ``onnx`` nor
``onnxscript`` (no ONNX file in between, one conversion fewer), and unlike ``convert_model(module,
example_input=...)`` it does not go through ``torch.jit.trace``, which torch deprecates. The converted graph is then
fixed to the export's ``(H, W)`` with a dynamic batch.

Accuracy: the IR keeps float32 weights (``compress_to_fp16=False``), and :class:`OpenVINOPoseModel` compiles it with
``INFERENCE_PRECISION_HINT=f32``: OpenVINO's CPU plugin otherwise runs in bfloat16 on CPUs with bf16 units, which
moves heatmaps by ~0.4 % of their range; in f32 they match PyTorch to ~1e-6.

Int8: post-training quantization with NNCF, calibrated on normalised person crops exactly as
:func:`hrnet_zoo.deploy.quantize` (the ONNX Runtime path) gets them (:func:`~hrnet_zoo.deploy.calibration_crops`),
with the ``MIXED`` preset: symmetric per-channel int8 weights and asymmetric activations. HRNet's activations are
not symmetric about zero (the normalised image, the branch sums before their ReLU, the heatmap logits), so
``PERFORMANCE``'s symmetric activations would waste half of their range on values that never occur; ``MIXED`` is
what the ONNX Runtime path does too (uint8 activations, int8 weights).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._utils import writing
from ..models.meta import PoseMeta
from .export import check_input_size, export_program
from .optimize import optimize_for_inference
from .quantize import calibration_crops
from .runtime_model import RuntimePoseModel

__all__ = ["POSE_META_PATH", "PRECISION_PATH", "OpenVINOPoseModel", "export_openvino", "openvino_modules"]

#: Where in the IR's ``rt_info`` the model's pose metadata (JSON) and the weights' precision are kept.
POSE_META_PATH = ("hrnet_zoo", "pose_meta")
PRECISION_PATH = ("hrnet_zoo", "precision")


def openvino_modules(quantizing: bool = False) -> tuple[ModuleType, ModuleType | None]:
    """``openvino`` and, when ``quantizing``, ``nncf`` (else ``None``: it takes seconds to import), the optional
    dependencies of this module, with a clear error when missing."""
    try:
        import openvino

        if not quantizing:
            return openvino, None
        import nncf
    except ImportError as err:
        raise ImportError('OpenVINO export needs openvino and nncf: pip install "hrnet-zoo[openvino]"') from err
    return openvino, nncf


def export_openvino(
    model: nn.Module,
    path: str | os.PathLike,
    input_size: tuple[int, int] | None = None,
    calibration: Sequence[object] | Tensor | None = None,
    *,
    boxes: Sequence[object] | None = None,
) -> Path:
    """Write a top-down pose model as OpenVINO IR: ``path`` (``.xml``) and its weights beside it (``.bin``).

    The IR takes ``images`` ``(batch, 3, H, W)`` (dynamic batch, ``(H, W)`` fixed) and gives ``heatmaps``
    ``(batch, K, H / 4, W / 4)``; its ``rt_info`` carries the model's ``pose_meta`` and precision (``"fp32"`` or
    ``"int8"``), which :class:`OpenVINOPoseModel` reads back. Both files are written at once: an interrupted export
    leaves neither half-written.

    Args:
        model: An hrnet_zoo top-down pose model (its weights are not changed; BatchNorms are folded in a copy).
        path: The ``.xml`` file to write.
        input_size: ``(height, width)``, positive multiples of 32; the model's by default.
        calibration: For int8: normalised crops ``(N, 3, H, W)`` or images (paths, PIL, arrays, tensors; each a
            person, or the persons in ``boxes``), as for :func:`hrnet_zoo.deploy.quantize`. ``None``: fp32.
        boxes: Person boxes per calibration image (``xywh``).

    Raises:
        ValueError: ``path`` does not end in ``.xml``, no calibration crops, or crops of another size.
    """
    path = Path(path)
    if path.suffix.lower() != ".xml":
        raise ValueError(f"OpenVINO IR path must end in .xml (its weights go to a .bin beside it), got {str(path)!r}")
    ov, nncf = openvino_modules(quantizing=calibration is not None)
    meta: PoseMeta = model.pose_meta
    if input_size is not None:
        meta = meta.at_input_size(tuple(input_size))
    size = check_input_size(meta.input_size)
    crops = None if calibration is None else calibration_crops(model, calibration, boxes)
    if crops is not None and len(crops) == 0:
        raise ValueError("calibration needs at least one person crop")
    if crops is not None and tuple(crops.shape[-2:]) != size:
        raise ValueError(f"calibration crops are {tuple(crops.shape[-2:])}, the export's input size is {size}")
    ov_model = _convert(ov, optimize_for_inference(model, channels_last=False), size)
    if crops is not None:
        dataset = nncf.Dataset(list(crops.float().cpu().split(1)), lambda crop: crop.numpy())
        ov_model = nncf.quantize(ov_model, dataset, preset=nncf.QuantizationPreset.MIXED, subset_size=len(crops))
    ov_model.set_rt_info(json.dumps(meta.to_dict()), list(POSE_META_PATH))
    ov_model.set_rt_info("fp32" if crops is None else "int8", list(PRECISION_PATH))
    _save(ov, ov_model, path)
    return path


def _convert(ov: ModuleType, model: nn.Module, size: tuple[int, int]) -> Any:
    """``openvino.Model`` of an eval-mode network: input ``images`` ``(?, C, H, W)``, output ``heatmaps``."""
    ov_model = ov.convert_model(export_program(model, size))
    ov_model.reshape({ov_model.inputs[0]: ov.PartialShape([-1, model.in_chans, *size])})
    ov_model.inputs[0].get_tensor().set_names({"images"})
    ov_model.outputs[0].get_tensor().set_names({"heatmaps"})
    return ov_model


def _save(ov: ModuleType, ov_model: Any, path: Path) -> None:
    """Save ``path`` and its ``.bin``: to a temporary folder beside them, then each renamed into place (the
    ``.bin`` first, so the ``.xml`` appears last)."""
    with writing(path) as xml, writing(path.with_suffix(".bin")) as weights:
        with tempfile.TemporaryDirectory(prefix=f".{path.stem}-", dir=path.parent) as tmp:
            ov.save_model(ov_model, str(Path(tmp) / "model.xml"), compress_to_fp16=False)
            (Path(tmp) / "model.bin").replace(weights)
            (Path(tmp) / "model.xml").replace(xml)


class OpenVINOPoseModel(RuntimePoseModel):
    """An OpenVINO IR pose network run on the CPU: ``(B, 3, H, W) -> (B, K, H / 4, W / 4)`` float32 heatmaps.

    Stands in for the PyTorch model for inference (``PoseEstimator``, ``evaluate``); its ``pose_meta`` and
    ``precision`` come from the IR's ``rt_info`` unless given. It has no parameters: pass ``device="cpu"`` to
    :class:`~hrnet_zoo.PoseEstimator`, and ``optimize=False``.

    Args:
        path: An ``.xml`` written by :func:`export_openvino` (or any pose IR, with ``pose_meta``).
        pose_meta: The model's metadata, when the IR carries none.
        device: The OpenVINO device to compile for.
        threads: Inference threads (OpenVINO's default when ``None``).
        inference_precision: OpenVINO's ``INFERENCE_PRECISION_HINT``: ``"f32"`` (parity with PyTorch) or
            ``"bf16"`` (faster on CPUs with bf16 units, ~0.4 % of the heatmap range off).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not an IR, or it carries no pose metadata and none was given.

    Example:
        >>> hrnet_zoo.deploy.export_openvino(model, "w32.xml")
        >>> PoseEstimator(OpenVINOPoseModel("w32.xml"), device="cpu", optimize=False).predict(image, boxes=boxes)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        pose_meta: PoseMeta | None = None,
        device: str = "CPU",
        threads: int | None = None,
        *,
        inference_precision: str = "f32",
    ) -> None:
        super().__init__()
        ov, _ = openvino_modules()
        self._file(path, "OpenVINO IR")
        core = ov.Core()
        try:
            ov_model = core.read_model(str(self.path))
        except Exception as err:  # OpenVINO raises RuntimeError (and others) for malformed files
            raise ValueError(f"could not load OpenVINO IR {str(self.path)!r}: {err}") from err
        self.pose_meta = self._metadata(pose_meta, _rt_info(ov_model, POSE_META_PATH))
        self.precision = _rt_info(ov_model, PRECISION_PATH) or "fp32"
        self.in_chans = int(ov_model.inputs[0].get_partial_shape()[1].get_length())
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": inference_precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(ov_model, device, config)

    def forward(self, x: Tensor) -> Tensor:
        heatmaps = self.compiled(self._array(x))[0]
        return torch.from_numpy(np.array(heatmaps, dtype=np.float32)).to(x.device)


def _rt_info(ov_model: Any, key: Sequence[str]) -> str | None:
    """The string at ``key`` of an ``openvino.Model``'s ``rt_info``; ``None`` when absent."""
    return ov_model.get_rt_info(list(key)).astype(str) if ov_model.has_rt_info(list(key)) else None
