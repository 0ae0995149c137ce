"""Turning the image types users have into ``(3, H, W)`` uint8 RGB tensors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ["ImageLike", "load_image"]

ImageLike = str | os.PathLike | Image.Image | np.ndarray | Tensor


def _from_pil(image: Image.Image) -> Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)


def _to_rgb(chw: Tensor, what: str) -> Tensor:
    channels = chw.shape[0]
    if channels == 1:
        return chw.expand(3, -1, -1)
    if channels == 4:  # RGBA: the alpha channel is dropped
        return chw[:3]
    if channels != 3:
        raise ValueError(f"{what} has {channels} channels; expected 1 (grey), 3 (RGB) or 4 (RGBA)")
    return chw


def load_image(image: ImageLike) -> Tensor:
    """Load an image as a ``(3, H, W)`` uint8 RGB tensor.

    Accepts a file path (any format Pillow reads: JPEG, PNG, ...), a PIL image, a NumPy ``(H, W)`` or
    ``(H, W, C)`` uint8 array, or a tensor ``(C, H, W)`` (uint8, or float in ``[0, 1]``). Grey images are
    repeated to three channels and the alpha channel of RGBA images is dropped.

    Raises:
        FileNotFoundError: A path that does not exist.
        ValueError: Any other input that is not an image.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image file {str(path)!r} does not exist")
        try:
            with Image.open(path) as opened:
                return _from_pil(opened)
        except Image.DecompressionBombError as err:
            raise ValueError(
                f"image {str(path)!r} is too large to load safely ({err}); resize it, or raise "
                "PIL.Image.MAX_IMAGE_PIXELS if you trust the file"
            ) from err
        except (OSError, SyntaxError, ValueError) as err:
            raise ValueError(f"could not decode image {str(path)!r}: {err}") from err
    if isinstance(image, Image.Image):
        return _from_pil(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"NumPy images must be uint8 (H, W[, C]) arrays, got dtype {image.dtype}")
        array = image[:, :, None] if image.ndim == 2 else image
        if array.ndim != 3:
            raise ValueError(f"NumPy images must be (H, W) or (H, W, C), got shape {image.shape}")
        return _to_rgb(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1), "the NumPy image")
    if isinstance(image, Tensor):
        chw = image.unsqueeze(0) if image.dim() == 2 else image
        if chw.dim() != 3:
            raise ValueError(f"tensor images must be (C, H, W), got shape {tuple(image.shape)}")
        if chw.is_floating_point():
            chw = (chw.clamp(0, 1) * 255).round().to(torch.uint8)
        elif chw.dtype != torch.uint8:
            raise ValueError(f"tensor images must be uint8 or float in [0, 1], got {chw.dtype}")
        return _to_rgb(chw, "the tensor image")
    raise ValueError(
        f"unsupported image type {type(image).__name__}: give a file path, a PIL image, a NumPy uint8 array or a "
        "torch tensor"
    )
