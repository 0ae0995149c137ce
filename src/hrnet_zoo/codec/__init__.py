"""Top-down geometry and heatmap codecs: person crops, heatmap encoding and decoding, the way back to the image.

Pure tensor code, below the models: a model carries its :class:`HeatmapCodec`, and its metadata builds the one
:class:`TopDownTransform` (boxes to normalised crops and back) that the predictor, the training data set, int8
calibration and evaluation use.
"""

from .affine import (
    PIXEL_STD,
    apply_affine,
    box_to_center_scale,
    center_scale_to_box,
    crop_affine,
    get_affine_transform,
    get_udp_transform,
    region_area,
)
from .decoding import (
    decode_argmax,
    decode_dark,
    decode_dark_udp,
    default_blur_kernel,
    flip_back,
    gaussian_blur,
    get_max_preds,
    shift_flipped,
)
from .encoding import encode_heatmaps
from .heatmap_codec import HEATMAP_STRIDE, HeatmapCodec
from .transform import MAX_BOX_SIDE, MIN_BOX_SIDE, TopDownTransform

__all__ = [
    "HEATMAP_STRIDE",
    "MAX_BOX_SIDE",
    "MIN_BOX_SIDE",
    "PIXEL_STD",
    "HeatmapCodec",
    "TopDownTransform",
    "apply_affine",
    "box_to_center_scale",
    "center_scale_to_box",
    "crop_affine",
    "decode_argmax",
    "decode_dark",
    "decode_dark_udp",
    "default_blur_kernel",
    "encode_heatmaps",
    "flip_back",
    "gaussian_blur",
    "get_affine_transform",
    "get_max_preds",
    "get_udp_transform",
    "region_area",
    "shift_flipped",
]
