"""Deployment: BatchNorm folding and channels-last, ``torch.export`` and ONNX export, ONNX Runtime and int8, OpenVINO
(IR export, int8 through NNCF), and keypoint decoding inside the exported graph.

Example:
    >>> from hrnet_zoo import deploy
    >>> fast = deploy.optimize_for_inference(model)
    >>> deploy.export_onnx(model, "w32.onnx")
    >>> int8 = deploy.quantize(model, calibration_images, "w32_int8.onnx")
"""

from .decode_graph import DECODED_OUTPUT_NAMES, HeatmapDecoder, with_decoding
from .export import (
    ExportedPoseModel,
    check_input_size,
    export_onnx,
    export_program,
    needs_external_data,
    save_program,
)
from .onnx_model import OnnxPoseModel
from .openvino_model import OpenVINOPoseModel, export_openvino
from .optimize import HRNET_CONTAINERS, fold_batch_norms, optimize_for_inference
from .quantize import calibration_crops, quantize
from .runtime_model import RuntimePoseModel

__all__ = [
    "DECODED_OUTPUT_NAMES",
    "HRNET_CONTAINERS",
    "ExportedPoseModel",
    "HeatmapDecoder",
    "OnnxPoseModel",
    "OpenVINOPoseModel",
    "RuntimePoseModel",
    "calibration_crops",
    "check_input_size",
    "export_onnx",
    "export_openvino",
    "export_program",
    "fold_batch_norms",
    "needs_external_data",
    "optimize_for_inference",
    "quantize",
    "save_program",
    "with_decoding",
]
