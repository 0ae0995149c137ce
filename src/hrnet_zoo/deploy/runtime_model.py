"""The base of pose networks that an inference runtime runs (ONNX Runtime, OpenVINO) in place of the PyTorch model."""

from __future__ import annotations

from torch import nn

from ..models.meta import PoseMeta

__all__ = ["RuntimePoseModel"]


class RuntimePoseModel(nn.Module):
    """A pose network run by an inference runtime on the CPU: ``(B, 3, H, W) -> (B, K, H / 4, W / 4)`` float32
    heatmaps, with the model's ``pose_meta``.

    It runs as it was exported. :class:`~hrnet_zoo.PoseEstimator` runs it on the CPU, and neither folds it nor
    changes its precision (``precision`` says which it has: ``"fp32"`` or ``"int8"``).
    """

    pose_meta: PoseMeta
    precision: str
