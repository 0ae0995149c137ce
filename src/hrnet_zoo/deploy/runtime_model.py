"""The base of pose networks that an inference runtime runs (ONNX Runtime, OpenVINO) in place of the PyTorch model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from ..models.meta import PoseMeta

__all__ = ["RuntimePoseModel"]


class RuntimePoseModel(nn.Module):
    """A pose network run by an inference runtime on the CPU: ``(B, 3, H, W) -> (B, K, H / 4, W / 4)`` float32
    heatmaps, with the model's ``pose_meta``.

    It runs as it was exported. :class:`~hrnet_zoo.PoseEstimator` runs it on the CPU, and neither folds it nor
    changes its precision (``precision`` says which it has: ``"fp32"`` or ``"int8"``). Subclasses load their file
    with :meth:`_file` and :meth:`_metadata`, and feed the runtime :meth:`_array` of the input.
    """

    pose_meta: PoseMeta
    precision: str
    path: Path

    def _file(self, path: str | os.PathLike, what: str) -> Path:
        """``path`` as :attr:`path`, or ``FileNotFoundError`` naming ``what`` it should be (``"ONNX model"``)."""
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{what} {str(self.path)!r} does not exist")
        return self.path

    def _metadata(self, given: PoseMeta | None, stored: str | None) -> PoseMeta:
        """The given metadata, else the file's JSON; ``ValueError`` when there is neither."""
        if given is None and stored is None:
            raise ValueError(f"{self.path} carries no pose metadata; pass pose_meta=model.pose_meta")
        return given or PoseMeta.from_dict(json.loads(stored))

    @staticmethod
    def _array(x: Tensor) -> np.ndarray:
        """The ``(B, 3, H, W)`` input as the contiguous float32 NumPy array the runtimes take."""
        return x.detach().float().cpu().contiguous().numpy()

    def extra_repr(self) -> str:
        return f"{self.path.name}, {self.precision}"
