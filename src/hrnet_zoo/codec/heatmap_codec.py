"""The heatmap codec: one object holding a model's heatmap geometry, with encode, decode and the crop mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from torch import Tensor

from .affine import apply_affine, get_affine_transform, get_udp_transform
from .decoding import decode_argmax, decode_dark, decode_dark_udp, default_blur_kernel
from .encoding import Encoding, encode_heatmaps

__all__ = ["HEATMAP_STRIDE", "Decoding", "HeatmapCodec"]

#: Heatmaps are predicted at 1/4 of the input size (the stride of HRNet's highest-resolution branch).
HEATMAP_STRIDE = 4
#: Largest network input side: a 2048x2048 person crop already takes gigabytes of activations.
MAX_INPUT_SIDE = 2048

Decoding = Literal["argmax", "dark", "udp"]
BlurPadding = Literal["zeros", "reflect"]


@dataclass(frozen=True)
class HeatmapCodec:
    """How keypoints become heatmaps and back, for one network input size.

    Three families, each equal to its reference implementation:

    - ``encoding="msra", decoding="argmax"``: the original HRNet (rounded Gaussian; argmax + quarter offset).
    - ``encoding="unbiased", decoding="dark"``: DARK (exact Gaussian; blur + Taylor step).
    - ``encoding="udp", decoding="udp"``: UDP (unbiased crop and stride ``(input - 1) / (heatmap - 1)``,
      DARK-UDP refinement, no flip shift).

    ``decoding="dark"`` may also be combined with ``"msra"`` weights (it usually helps them a little).

    Attributes:
        input_size: Network input ``(height, width)``.
        heatmap_size: Heatmap ``(height, width)``; ``input_size / 4`` when not given.
        sigma: Gaussian standard deviation of the targets, in heatmap pixels.
        encoding: ``"msra"``, ``"unbiased"`` or ``"udp"``.
        decoding: ``"argmax"``, ``"dark"`` or ``"udp"`` (only with ``encoding="udp"``).
        blur_kernel_size: Blur of DARK/UDP decoding; follows the heatmap size when not given (11 at 64x48, 17 at
            96x72).
        blur_padding: The border of UDP decoding's blur, as the mmpose version that measured the weights' metrics
            blurs (see :func:`~hrnet_zoo.codec.decode_dark_udp`): ``"zeros"`` (1.x, default) or ``"reflect"``
            (0.x's ``post_dark_udp``). DARK decoding always zero-pads, as its reference does.

    Example:
        >>> codec = HeatmapCodec((256, 192))
        >>> targets, weights = codec.encode(joints, visible)  # (N, K, 2) input pixels -> (N, K, 64, 48)
        >>> coords, scores = codec.decode(heatmaps)  # (N, K, 64, 48) -> (N, K, 2) heatmap pixels
        >>> keypoints = codec.to_image(coords, center, scale)  # -> image pixels
    """

    input_size: tuple[int, int] = (256, 192)
    heatmap_size: tuple[int, int] = field(default=None)  # type: ignore[assignment]
    sigma: float = 2.0
    encoding: Encoding = "msra"
    decoding: Decoding = "argmax"
    blur_kernel_size: int = field(default=None)  # type: ignore[assignment]
    blur_padding: BlurPadding = "zeros"

    def __post_init__(self) -> None:
        try:
            input_size = tuple(int(v) for v in self.input_size)
        except (TypeError, ValueError) as err:
            raise ValueError(f"input_size must be (height, width) in pixels, got {self.input_size!r}") from err
        if len(input_size) != 2 or not HEATMAP_STRIDE <= min(input_size) <= max(input_size) <= MAX_INPUT_SIDE:
            raise ValueError(
                f"input_size must be (height, width) with sides from {HEATMAP_STRIDE} to {MAX_INPUT_SIDE} pixels, "
                f"got {self.input_size}"
            )
        object.__setattr__(self, "input_size", input_size)
        heatmap_size = self.heatmap_size or (input_size[0] // HEATMAP_STRIDE, input_size[1] // HEATMAP_STRIDE)
        object.__setattr__(self, "heatmap_size", tuple(int(v) for v in heatmap_size))
        if self.encoding not in ("msra", "unbiased", "udp"):
            raise ValueError(f"encoding must be 'msra', 'unbiased' or 'udp', got {self.encoding!r}")
        if self.decoding not in ("argmax", "dark", "udp"):
            raise ValueError(f"decoding must be 'argmax', 'dark' or 'udp', got {self.decoding!r}")
        if (self.decoding == "udp") != (self.encoding == "udp"):
            raise ValueError(
                f"UDP decoding goes with UDP encoding (its crop and stride differ), got encoding={self.encoding!r} "
                f"and decoding={self.decoding!r}"
            )
        if self.blur_padding not in ("zeros", "reflect"):
            raise ValueError(f"blur_padding must be 'zeros' or 'reflect', got {self.blur_padding!r}")
        if self.blur_padding == "reflect" and self.decoding != "udp":
            raise ValueError(f"blur_padding='reflect' is 0.x's UDP decoding; {self.decoding!r} decoding zero-pads")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")
        kernel = self.blur_kernel_size or default_blur_kernel(self.heatmap_size)
        if kernel % 2 != 1:
            raise ValueError(f"blur_kernel_size must be odd, got {kernel}")
        object.__setattr__(self, "blur_kernel_size", int(kernel))

    @classmethod
    def udp(cls, input_size: tuple[int, int], **kwargs: Any) -> HeatmapCodec:
        """The UDP codec (encoding, crop and decoding) at ``input_size``."""
        return cls(input_size, encoding="udp", decoding="udp", **kwargs)

    @classmethod
    def dark(cls, input_size: tuple[int, int], **kwargs: Any) -> HeatmapCodec:
        """The DARK codec (unbiased encoding, DARK decoding) at ``input_size``."""
        return cls(input_size, encoding="unbiased", decoding="dark", **kwargs)

    @property
    def shift_flipped(self) -> bool:
        """Whether flip-test heatmaps are shifted one pixel (the original's ``SHIFT_HEATMAP``; not with UDP)."""
        return self.encoding != "udp"

    def encode(self, joints: Tensor, visible: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, K, 2)`` joints in input pixels and ``(N, K)`` visibility -> targets ``(N, K, h, w)``, weights."""
        return encode_heatmaps(joints, visible, self.input_size, self.heatmap_size, self.sigma, self.encoding)

    def decode(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, K, h, w)`` heatmaps -> peak ``coords`` ``(N, K, 2)`` in heatmap pixels and ``scores`` ``(N, K)``."""
        if tuple(heatmaps.shape[-2:]) != self.heatmap_size:
            raise ValueError(
                f"heatmaps of size {tuple(heatmaps.shape[-2:])} do not match the codec's {self.heatmap_size} "
                f"(input {self.input_size}); use the codec of the model that produced them"
            )
        if self.decoding == "argmax":
            return decode_argmax(heatmaps)
        if self.decoding == "dark":
            return decode_dark(heatmaps, self.blur_kernel_size)
        return decode_dark_udp(heatmaps, self.blur_kernel_size, self.blur_padding)

    def crop_transform(self, center: Tensor, scale: Tensor, rotation: Tensor | float = 0.0) -> Tensor:
        """``(N, 2, 3)`` image-to-input matrices for person regions (``center`` px, ``scale`` in 200 px units)."""
        if self.encoding == "udp":
            return get_udp_transform(center, scale, self.input_size, rotation)
        return get_affine_transform(center, scale, self.input_size, rotation)

    def to_image(self, coords: Tensor, center: Tensor, scale: Tensor) -> Tensor:
        """Map ``(N, K, 2)`` heatmap coordinates back to image pixels for the crops ``center``/``scale`` gave."""
        if self.encoding == "udp":
            inverse = get_udp_transform(center, scale, self.heatmap_size, inverse=True)
        else:
            inverse = get_affine_transform(center, scale, self.heatmap_size, inverse=True)
        return apply_affine(coords.double(), inverse.to(coords.device)).to(coords.dtype)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["input_size"], data["heatmap_size"] = list(self.input_size), list(self.heatmap_size)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeatmapCodec:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown heatmap codec fields {sorted(unknown)}")
        values = dict(data)
        for key in ("input_size", "heatmap_size"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)
