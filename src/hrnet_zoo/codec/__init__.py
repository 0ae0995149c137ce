"""Top-down geometry and heatmap codecs: person crops, heatmap encoding and decoding, the way back to the image.

Pure tensor code, below the models: a model carries its :class:`HeatmapCodec`, which the dataset, the predictor
and the evaluation take from it.
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

__all__ = [
    "HEATMAP_STRIDE",
    "PIXEL_STD",
    "HeatmapCodec",
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
