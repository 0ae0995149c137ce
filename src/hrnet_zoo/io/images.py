"""Turning the image types users have into ``(3, H, W)`` uint8 RGB tensors, with the pixels they mean.

Files are decoded by Pillow with their EXIF orientation applied; 16-bit and floating-point images are scaled to
the 8-bit range; NumPy arrays are RGB unless ``channels="bgr"`` says they come from OpenCV.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

__all__ = ["Channels", "ImageLike", "check_file", "load_image", "save_image"]

ImageLike = str | os.PathLike | Image.Image | np.ndarray | Tensor
Channels = Literal["rgb", "bgr"]


_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def check_file(path: str | os.PathLike, what: str) -> Path:
    """``path``, checked to be a regular file before anything opens it (opening a FIFO would wait forever);
    ``what`` names it in errors (``"image file"``).

    Raises:
        FileNotFoundError: No such file, or a folder (named as such).
        ValueError: A FIFO, socket or device, named as such.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist") from None
    if stat.S_ISDIR(mode):
        raise FileNotFoundError(f"{what} {str(path)!r} is a folder, not a file")
    for test, kind in _SPECIAL_FILES:
        if test(mode):
            raise ValueError(f"{what} {str(path)!r} is {kind}, not a regular file")
    return path


def _to_uint8(array: np.ndarray, what: str) -> np.ndarray:
    """Scale an integer or floating-point image to uint8: 16-bit by 1/257, floats in ``[0, 1]`` by 255."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if array.size and not np.isfinite(array).all():
            raise ValueError(f"{what} holds NaN or infinite values")
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if low < 0 or high > 1:
            raise ValueError(
                f"{what} is floating point with values in [{low:g}, {high:g}]; give floats in [0, 1] "
                "(divide 0-255 images by 255) or uint8/uint16 images"
            )
        return np.round(array * 255).astype(np.uint8)
    raise ValueError(f"{what} has dtype {array.dtype}; give uint8, uint16 or floats in [0, 1]")


def _from_pil(image: Image.Image, what: str) -> Tensor:
    image = ImageOps.exif_transpose(image)  # the orientation the camera recorded
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (PNG/TIFF) grey
        array = np.asarray(image).astype(np.int64)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError(f"{what} is a 32-bit integer image with values outside 0-65535")
        return _from_array(array.astype(np.uint16), what, "rgb")
    if image.mode == "F":
        return _from_array(np.asarray(image), what, "rgb")
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


def _from_array(array: np.ndarray, what: str, channels: Channels) -> Tensor:
    hwc = array[:, :, None] if array.ndim == 2 else array
    if hwc.ndim != 3:
        raise ValueError(f"{what} must be (H, W) or (H, W, C), got shape {array.shape}")
    rgb = _to_rgb(torch.from_numpy(np.ascontiguousarray(_to_uint8(hwc, what))).permute(2, 0, 1), what)
    return rgb.flip(0) if channels == "bgr" and rgb.shape[0] == 3 and hwc.shape[2] >= 3 else rgb


def load_image(image: ImageLike, channels: Channels = "rgb") -> Tensor:
    """Load an image as a ``(3, H, W)`` uint8 RGB tensor.

    Accepts a file path (any format Pillow reads; EXIF orientation applied), a PIL image, a NumPy ``(H, W)`` or
    ``(H, W, C)`` array, or a tensor ``(C, H, W)``. uint16 images are scaled to 8 bits, floats must lie in
    ``[0, 1]``. Grey images are repeated to three channels and the alpha channel of RGBA images is dropped.

    Args:
        image: The image.
        channels: Channel order of NumPy arrays: ``"rgb"`` (default; Pillow, imageio, scikit-image) or ``"bgr"``
            (OpenCV's ``cv2.imread``).

    Raises:
        FileNotFoundError: A path that does not exist, or a folder.
        ValueError: Any other input that is not an image (a FIFO, an empty image), or pixels out of their type's
            range.
    """
    rgb = _load(image, channels)
    if rgb.shape[1] == 0 or rgb.shape[2] == 0:
        what = f"image {os.fspath(image)!r}" if isinstance(image, (str, os.PathLike)) else "the image"
        raise ValueError(f"{what} is empty ({rgb.shape[2]}x{rgb.shape[1]} pixels)")
    return rgb


def _load(image: ImageLike, channels: Channels) -> Tensor:
    if channels not in ("rgb", "bgr"):
        raise ValueError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
    if isinstance(image, (str, os.PathLike)):
        path = check_file(image, "image file")
        try:
            with Image.open(path) as opened:
                return _from_pil(opened, f"image {str(path)!r}")
        except Image.DecompressionBombError as err:
            raise ValueError(
                f"image {str(path)!r} is too large to load safely ({err}); resize it, or raise "
                "PIL.Image.MAX_IMAGE_PIXELS if you trust the file"
            ) from err
        except (OSError, SyntaxError) as err:
            raise ValueError(f"could not decode image {str(path)!r}: {err}") from err
    if isinstance(image, Image.Image):
        return _from_pil(image, "the PIL image")
    if isinstance(image, np.ndarray):
        return _from_array(image, "the NumPy image", channels)
    if isinstance(image, Tensor):
        chw = image.unsqueeze(0) if image.dim() == 2 else image
        if chw.dim() != 3:
            raise ValueError(f"tensor images must be (C, H, W), got shape {tuple(image.shape)}")
        if chw.dtype not in (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise ValueError(f"tensor images must be uint8 or float in [0, 1], got {chw.dtype}")
        if chw.is_floating_point():
            array = _to_uint8(chw.detach().float().cpu().numpy(), "the tensor image")
            chw = torch.from_numpy(array)
        return _to_rgb(chw, "the tensor image")
    raise ValueError(
        f"unsupported image type {type(image).__name__}: give a file path, a PIL image, a NumPy array or a torch tensor"
    )


def save_image(image: Tensor, path: str | os.PathLike) -> None:
    """Save a ``(3, H, W)`` uint8 image as PNG."""
    Image.fromarray(image.cpu().permute(1, 2, 0).numpy()).save(path, format="PNG")
