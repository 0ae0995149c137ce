"""The top-down transform: person boxes to normalised network crops, and heatmap peaks back to image pixels.

One object, built from a model's metadata (``model.pose_meta.transform``), that the predictor, the training data
set, int8 calibration and evaluation all use, so a crop is made the same way everywhere:

1. boxes are checked and converted to ``xyxy`` (:meth:`TopDownTransform.boxes`, ``torchvision.ops.box_convert``);
2. each box becomes the original's ``(center, scale)``: the input's aspect ratio, padded 1.25x;
3. the codec's crop matrix warps the region to the input size, then the crop is normalised with the model's mean
   and std (:meth:`TopDownTransform.crop`);
4. decoded heatmap coordinates go back through the inverse matrix (:meth:`TopDownTransform.to_image`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import box_convert

from .affine import apply_affine, box_to_center_scale, crop_affine
from .heatmap_codec import HeatmapCodec

__all__ = ["MAX_BOX_SIDE", "MIN_BOX_SIDE", "TopDownTransform"]

#: Largest box side accepted, in pixels: far beyond any photograph, small enough to keep the crop arithmetic exact.
MAX_BOX_SIDE = 1e6
#: Smallest box side accepted, in pixels: a crop of less than a pixel shows no person (and its matrix degenerates).
MIN_BOX_SIDE = 1.0
#: The original's enlargement of each person box.
BOX_PADDING = 1.25


@dataclass(frozen=True)
class TopDownTransform:
    """Person crops in, image coordinates out, for one model's codec and normalisation.

    Attributes:
        codec: The model's heatmap codec (input size, crop geometry, decoding).
        mean: Per-channel RGB mean (inputs in ``[0, 1]``).
        std: Per-channel RGB std.

    Example:
        >>> transform = model.pose_meta.transform
        >>> boxes = transform.boxes([[100, 20, 230, 470]], "xywh", image_size=(512, 512))  # (1, 4) xyxy
        >>> center, scale = transform.center_scale(boxes)
        >>> inputs = transform.crop(image, center, scale)  # (1, 3, 256, 192), normalised
        >>> coords, scores = transform.codec.decode(model(inputs))
        >>> keypoints = transform.to_image(coords, center, scale)  # (1, 17, 2) image pixels
    """

    codec: HeatmapCodec
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        finite = all(np.isfinite(v) for v in (*self.mean, *self.std))
        if len(self.mean) != len(self.std) or not finite or not all(s > 0 for s in self.std):
            raise ValueError(f"mean {self.mean} and std {self.std} need one finite entry per channel, std positive")

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(height, width)``."""
        return self.codec.input_size

    def boxes(
        self,
        boxes: object,
        box_format: str = "xywh",
        image_size: tuple[int, int] | None = None,
        *,
        image_index: int | None = None,
    ) -> Tensor:
        """Check person boxes and return them as ``(P, 4)`` ``xyxy`` float32 pixels.

        Args:
            boxes: ``(P, 4)`` or ``(4,)`` numbers (array, tensor or nested lists); ``P`` may be 0. ``None``: the
                whole image is one person (needs ``image_size``).
            box_format: ``"xywh"`` (COCO) or ``"xyxy"``.
            image_size: ``(height, width)``: boxes entirely outside the image are refused.
            image_index: Names the image in error messages (``"box 1 of image 3 is empty"``).

        Raises:
            ValueError: Not numbers of shape ``(P, 4)``, non-finite or huge values, an empty box or one with a
                side below :data:`MIN_BOX_SIDE`, a box outside the image, or an unknown ``box_format`` (the message
                names the box).
        """
        if box_format not in ("xywh", "xyxy"):
            raise ValueError(f"box_format must be 'xywh' or 'xyxy', got {box_format!r}")
        of = "" if image_index is None else f" of image {image_index}"
        if boxes is None:
            if image_size is None:
                raise ValueError("boxes=None means the whole image, which needs the image_size")
            height, width = image_size
            return torch.tensor([[0.0, 0.0, float(width), float(height)]])
        if isinstance(boxes, (dict, set, frozenset, str, bytes)):
            raise ValueError(f"boxes{of} must be a (P, 4) array or a list of boxes, got a {type(boxes).__name__}")
        try:
            array = torch.as_tensor(np.asarray(boxes, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ValueError(f"boxes{of} must be numbers in a (P, 4) array, got {boxes!r:.100}") from err
        if array.numel() == 0:
            return torch.zeros(0, 4)
        if array.dim() == 1:
            array = array[None]
        if array.dim() != 2 or array.shape[1] != 4:
            raise ValueError(f"boxes{of} must have shape (P, 4), got {tuple(array.shape)}")
        bad = ~torch.isfinite(array).all(1) | (array.abs() > MAX_BOX_SIDE).any(1)
        if bool(bad.any()):
            raise ValueError(
                f"box {int(bad.nonzero()[0])}{of} must hold finite pixel values below {MAX_BOX_SIDE:.0e}, "
                f"got {array[bad][0].tolist()}"
            )
        xyxy = box_convert(array, box_format, "xyxy")
        for p, (x0, y0, x1, y1) in enumerate(xyxy.tolist()):
            if not (x1 > x0 and y1 > y0):
                raise ValueError(f"box {p}{of} is empty: {[x0, y0, x1, y1]} (xyxy); width and height must be > 0")
            if min(x1 - x0, y1 - y0) < MIN_BOX_SIDE:
                raise ValueError(
                    f"box {p}{of} is too small: {x1 - x0:g}x{y1 - y0:g} pixels ({[x0, y0, x1, y1]} xyxy); width and "
                    f"height must be at least {MIN_BOX_SIDE:g} pixel"
                )
            if image_size is not None:
                height, width = image_size
                if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                    raise ValueError(
                        f"box {p}{of} ({[x0, y0, x1, y1]} xyxy) lies entirely outside the {width}x{height} image"
                    )
        return xyxy.float()

    def center_scale(
        self, boxes: Tensor, box_format: str = "xyxy", padding: float = BOX_PADDING
    ) -> tuple[Tensor, Tensor]:
        """Checked ``(P, 4)`` boxes (:meth:`boxes` gives ``xyxy``) -> ``center`` ``(P, 2)`` pixels and ``scale``
        ``(P, 2)`` in 200 px units: the input's aspect ratio, enlarged by ``padding``.

        ``xywh`` boxes go through the same float32 ``xyxy`` as :meth:`boxes` makes, so a box gives the same crop
        in either format.
        """
        xyxy = box_convert(torch.as_tensor(boxes, dtype=torch.float64), box_format, "xyxy").float()
        return box_to_center_scale(xyxy, self.input_size, box_format="xyxy", padding=padding)

    def crop_matrix(self, center: Tensor, scale: Tensor, rotation: Tensor | float = 0.0) -> Tensor:
        """``(N, 2, 3)`` float64 image-to-input matrices of the regions ``center`` ``(N, 2)``/``scale`` ``(N, 2)``,
        rotated by ``rotation`` degrees counter-clockwise (the codec's crop geometry)."""
        return self.codec.crop_transform(center, scale, rotation)

    def normalize(self, crops: Tensor) -> Tensor:
        """``(N, C, h, w)`` or ``(C, h, w)`` crops in ``[0, 1]`` -> normalised with the model's mean and std."""
        shape = (1, -1, 1, 1) if crops.dim() == 4 else (-1, 1, 1)
        mean = torch.tensor(self.mean, device=crops.device, dtype=crops.dtype).view(shape)
        std = torch.tensor(self.std, device=crops.device, dtype=crops.dtype).view(shape)
        return (crops - mean) / std

    def crop(
        self,
        image: Tensor,
        center: Tensor,
        scale: Tensor,
        rotation: Tensor | float = 0.0,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """The normalised network inputs of the regions ``center``/``scale`` of one image.

        Args:
            image: ``(3, H, W)`` uint8 RGB image.
            center: ``(N, 2)`` region centres in pixels.
            scale: ``(N, 2)`` region sizes in 200 px units.
            rotation: Degrees counter-clockwise (training augmentation).
            device: Where to warp (default: the image's device).

        Returns:
            ``(N, 3, h, w)`` float32 crops at the input size.
        """
        if image.dim() != 3:
            raise ValueError(f"the image must be (C, H, W), got shape {tuple(image.shape)}")
        device = device or image.device
        if len(center) == 0:
            return torch.zeros(0, image.shape[0], *self.input_size, device=device)
        pixels = image.to(device, torch.float32) / 255.0
        return self.normalize(crop_affine(pixels, self.crop_matrix(center, scale, rotation), self.input_size))

    def to_input(self, points: Tensor, center: Tensor, scale: Tensor, rotation: Tensor | float = 0.0) -> Tensor:
        """``(N, K, 2)`` image pixels -> input pixels of the crops ``center``/``scale``/``rotation`` make."""
        matrices = self.crop_matrix(center, scale, rotation)
        return apply_affine(points.double(), matrices.to(points.device)).to(points.dtype)

    def to_image(self, coords: Tensor, center: Tensor, scale: Tensor) -> Tensor:
        """``(N, K, 2)`` heatmap coordinates -> image pixels, for the crops ``center``/``scale`` made."""
        return self.codec.to_image(coords, center, scale)

    def crops_of(self, image: Tensor, boxes: object = None, box_format: str = "xywh") -> tuple[Tensor, Tensor, Tensor]:
        """Person boxes of one ``(3, H, W)`` uint8 image (``None``: the whole image) -> ``inputs``
        ``(P, 3, h, w)``, ``center`` ``(P, 2)`` and ``scale`` ``(P, 2)``."""
        xyxy = self.boxes(boxes, box_format, tuple(image.shape[-2:]))
        center, scale = self.center_scale(xyxy)
        return self.crop(image, center, scale), center, scale
