"""Running exported pose networks with ONNX Runtime, fp32 or int8, like the PyTorch model.

:class:`OnnxPoseModel` carries the model's :class:`~hrnet_zoo.models.PoseMeta` (stored in the ONNX file's
metadata by :func:`hrnet_zoo.deploy.quantize` and ``hrnet-zoo export``), so :class:`~hrnet_zoo.PoseEstimator` and
``evaluate`` use it unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from ..models.meta import PoseMeta
from .runtime_model import RuntimePoseModel

__all__ = ["POSE_META_KEY", "PRECISION_KEY", "OnnxPoseModel", "cpu_has_vnni", "store_pose_meta"]

#: Keys of the ONNX metadata entries holding the model's pose metadata (JSON) and precision.
POSE_META_KEY = "hrnet_zoo.pose_meta"
PRECISION_KEY = "hrnet_zoo.precision"


def onnx_modules() -> tuple[ModuleType, ModuleType]:
    """``onnx`` and ``onnxruntime``, the optional dependencies of this floor, with a clear error when missing."""
    try:
        import onnx
        import onnxruntime
        import onnxruntime.quantization
    except ImportError as err:
        raise ImportError('int8 inference needs ONNX Runtime: pip install "hrnet-zoo[onnx]"') from err
    return onnx, onnxruntime


def cpu_has_vnni() -> bool:
    """Whether this CPU has AVX-512 VNNI or AVX-VNNI (fast int8 dot products); read from ``/proc/cpuinfo``."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


class OnnxPoseModel(RuntimePoseModel):
    """A pose network run by ONNX Runtime on the CPU: ``(B, 3, H, W) -> (B, K, H / 4, W / 4)`` float32 heatmaps.

    Stands in for the PyTorch model wherever one is used for inference (``PoseEstimator``, ``evaluate``); its
    ``pose_meta`` comes from the file's metadata unless given.

    Args:
        path: An ONNX file written by :func:`quantize` or :func:`hrnet_zoo.deploy.export_onnx`.
        pose_meta: The model's metadata, when the file carries none.
        threads: Intra-op threads of ONNX Runtime (its default when ``None``).

    Example:
        >>> int8 = hrnet_zoo.deploy.quantize(model, calibration_images, "w32_int8.onnx")
        >>> hrnet_zoo.PoseEstimator(hrnet_zoo.deploy.OnnxPoseModel("w32_int8.onnx")).predict("people.jpg", boxes=boxes)
    """

    def __init__(self, path: str | os.PathLike, pose_meta: PoseMeta | None = None, threads: int | None = None) -> None:
        super().__init__()
        _, ort = onnx_modules()
        self._file(path, "ONNX model")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # ONNX Runtime's own error types for malformed files
            raise ValueError(f"could not load ONNX model {str(self.path)!r}: {err}") from err
        self.pose_meta = self._metadata(pose_meta, self.session.get_modelmeta().custom_metadata_map.get(POSE_META_KEY))
        self.input_name = self.session.get_inputs()[0].name
        self.in_chans = int(self.session.get_inputs()[0].shape[1])
        self.precision = self.session.get_modelmeta().custom_metadata_map.get(PRECISION_KEY, "fp32")

    def forward(self, x: Tensor) -> Tensor:
        heatmaps = self.session.run(None, {self.input_name: self._array(x)})[0]
        return torch.from_numpy(heatmaps).to(x.device)


def store_pose_meta(path: str | os.PathLike, meta: PoseMeta, precision: str = "fp32") -> None:
    """Write ``meta`` and the weights' ``precision`` into the metadata of the ONNX file at ``path`` (weights kept in
    an external data file stay there)."""
    onnx, _ = onnx_modules()
    model = onnx.load(str(path), load_external_data=False)
    for key, value in ((POSE_META_KEY, json.dumps(meta.to_dict())), (PRECISION_KEY, precision)):
        entry = next((p for p in model.metadata_props if p.key == key), None) or model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
