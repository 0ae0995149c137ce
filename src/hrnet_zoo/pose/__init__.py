"""Top-down pose estimation pieces: keypoint metadata, transforms, codecs, drawing and the predictor."""

from .codec import (
    decode_argmax,
    decode_dark,
    decode_heatmaps,
    flip_back,
    get_max_preds,
    heatmap_to_image,
    shift_flipped,
)
from .draw import draw_poses, save_image
from .images import load_image
from .keypoints import COCO_KEYPOINTS, MPII_KEYPOINTS, KeypointSet, get_keypoint_set
from .predictor import PoseEstimator, PoseResult
from .transforms import (
    PIXEL_STD,
    apply_affine,
    box_to_center_scale,
    center_scale_to_box,
    crop_affine,
    get_affine_transform,
    region_area,
)

__all__ = [
    "COCO_KEYPOINTS",
    "MPII_KEYPOINTS",
    "PIXEL_STD",
    "KeypointSet",
    "PoseEstimator",
    "PoseResult",
    "apply_affine",
    "box_to_center_scale",
    "center_scale_to_box",
    "crop_affine",
    "decode_argmax",
    "decode_dark",
    "decode_heatmaps",
    "draw_poses",
    "flip_back",
    "get_affine_transform",
    "get_keypoint_set",
    "get_max_preds",
    "heatmap_to_image",
    "load_image",
    "region_area",
    "save_image",
    "shift_flipped",
]
