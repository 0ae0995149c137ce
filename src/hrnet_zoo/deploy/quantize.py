"""Int8 inference on CPUs: post-training static quantization of the pose networks with ONNX Runtime.

The network (BatchNorm folded) is exported to ONNX, calibrated on person crops made by the model's
:class:`~hrnet_zoo.codec.TopDownTransform` (as the predictor makes them), and quantized to int8 in the QDQ format
(per-channel int8 weights, uint8 activations, min-max calibration). ONNX Runtime runs it with its int8 convolution
kernels (VNNI/AMX where the CPU has them); crops, flip test, decoding and the mapping back stay float32. See
docs/performance.md for the measurements, and why ONNX Runtime rather than PyTorch's PT2E flow.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from ..io.images import load_image
from .export import export_onnx
from .onnx_model import OnnxPoseModel, cpu_has_vnni, onnx_modules, store_pose_meta
from .optimize import optimize_for_inference

__all__ = ["calibration_crops", "quantize"]


class _CalibrationReader:
    """ONNX Runtime's calibration data reader over batches of normalised crops."""

    def __init__(self, crops: Tensor, input_name: str, batch_size: int) -> None:
        self.batches = iter(crops.split(batch_size))
        self.input_name = input_name

    def get_next(self) -> dict | None:
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: batch.float().cpu().numpy()}


def calibration_crops(model: nn.Module, images: Sequence[object] | Tensor, boxes: Sequence[object] | None) -> Tensor:
    """Normalised person crops ``(N, 3, h, w)`` of ``images``, made by the model's
    :class:`~hrnet_zoo.codec.TopDownTransform` as the predictor makes them.

    Args:
        model: The pose model (its ``pose_meta`` gives the transform).
        images: Images (paths, PIL, arrays, tensors), or a ``(N, 3, h, w)`` tensor taken as crops already.
        boxes: Per image, ``(P, 4)`` ``xywh`` person boxes; ``None``: each image is one person.
    """
    if isinstance(images, Tensor):
        return images
    images = list(images)
    if boxes is not None and len(boxes) != len(images):
        raise ValueError(f"got boxes for {len(boxes)} calibration images but {len(images)} images")
    transform = model.pose_meta.transform
    crops = [
        transform.crops_of(load_image(image), None if boxes is None else boxes[index])[0]
        for index, image in enumerate(images)
    ]
    return torch.cat(crops) if crops else torch.zeros(0, 3, *transform.input_size)


def quantize(
    model: nn.Module,
    calibration: Sequence[object] | Tensor,
    path: str | os.PathLike | None = None,
    *,
    boxes: Sequence[object] | None = None,
    batch_size: int = 8,
    reduce_range: bool | None = None,
) -> OnnxPoseModel:
    """Post-training static int8 quantization of a pose model with ONNX Runtime.

    Args:
        model: An hrnet_zoo pose model (its weights are not changed).
        calibration: Images (paths, PIL, arrays, tensors; each a person, or the persons in ``boxes``) or
            normalised crops ``(N, 3, h, w)``; a few dozen representative persons suffice.
        path: Where to write the int8 ONNX file (a temporary file when ``None``).
        boxes: Person boxes per calibration image (``xywh``), as for :meth:`hrnet_zoo.PoseEstimator.predict`.
        batch_size: Crops per calibration batch.
        reduce_range: Quantize weights to 7 bits, which avoids the saturation of ONNX Runtime's uint8 x int8
            kernels on CPUs without VNNI; by default, when this CPU has no VNNI.

    Returns:
        The int8 model, with the model's ``pose_meta`` (also stored in the file).
    """
    onnx_modules()
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    crops = calibration_crops(model, calibration, boxes)
    if len(crops) == 0:
        raise ValueError("calibration needs at least one person crop")
    output = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="hrnet_zoo-int8-")) / "model_int8.onnx"
    with tempfile.TemporaryDirectory(prefix="hrnet_zoo-") as tmp:
        fp32 = Path(tmp) / "model_fp32.onnx"
        export_onnx(optimize_for_inference(model, channels_last=False), fp32, tuple(crops.shape[-2:]))
        prepared = Path(tmp) / "model_prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)  # graph optimisation, shapes
        quantize_static(
            str(prepared),
            str(output),
            _CalibrationReader(crops, "images", batch_size),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            reduce_range=not cpu_has_vnni() if reduce_range is None else reduce_range,
        )
    store_pose_meta(output, model.pose_meta, precision="int8")
    return OnnxPoseModel(output)
