"""Top-down pose estimation: images in, poses out (the predictor), image loading and drawing.

The geometry and heatmap codecs it uses live in :mod:`hrnet_zoo.codec` and the keypoint sets in
:mod:`hrnet_zoo.keypoints`; both are re-exported here for convenience.
"""

from ..codec import (
    PIXEL_STD,
    HeatmapCodec,
    apply_affine,
    box_to_center_scale,
    center_scale_to_box,
    crop_affine,
    decode_argmax,
    decode_dark,
    decode_dark_udp,
    flip_back,
    get_affine_transform,
    get_max_preds,
    region_area,
    shift_flipped,
)
from ..keypoints import COCO_KEYPOINTS, MPII_KEYPOINTS, KeypointSet, get_keypoint_set
from .draw import draw_poses, save_image
from .images import load_image
from .predictor import PoseEstimator, PoseResult

__all__ = [
    "COCO_KEYPOINTS",
    "MPII_KEYPOINTS",
    "PIXEL_STD",
    "HeatmapCodec",
    "KeypointSet",
    "PoseEstimator",
    "PoseResult",
    "apply_affine",
    "box_to_center_scale",
    "center_scale_to_box",
    "crop_affine",
    "decode_argmax",
    "decode_dark",
    "decode_dark_udp",
    "draw_poses",
    "flip_back",
    "get_affine_transform",
    "get_keypoint_set",
    "get_max_preds",
    "load_image",
    "region_area",
    "save_image",
    "shift_flipped",
]
