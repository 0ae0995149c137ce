"""Deployment: BatchNorm folding and channels-last, ``torch.export`` and ONNX export, ONNX Runtime and int8.

Example:
    >>> from hrnet_zoo import deploy
    >>> fast = deploy.optimize_for_inference(model)
    >>> deploy.export_onnx(model, "w32.onnx")
    >>> int8 = deploy.quantize(model, calibration_images, "w32_int8.onnx")
"""

from .export import (
    ExportedPoseModel,
    check_input_size,
    export_onnx,
    export_program,
    needs_external_data,
    save_program,
)
from .onnx_model import OnnxPoseModel
from .optimize import HRNET_CONTAINERS, fold_batch_norms, optimize_for_inference
from .quantize import calibration_crops, quantize

__all__ = [
    "HRNET_CONTAINERS",
    "ExportedPoseModel",
    "OnnxPoseModel",
    "calibration_crops",
    "check_input_size",
    "export_onnx",
    "export_program",
    "fold_batch_norms",
    "needs_external_data",
    "optimize_for_inference",
    "quantize",
    "save_program",
]
