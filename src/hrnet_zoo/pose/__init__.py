"""Top-down pose estimation: images and videos in, poses out (the predictor), person detection, sources, drawing
and run outputs.

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
from .detect import DEFAULT_DETECTOR, DETECTORS, Detector, PersonDetector, detect_persons
from .draw import draw_poses, save_image
from .images import load_image
from .predictor import Crops, PoseEstimator, PoseResult
from .run_writer import RunWriter
from .sources import Frame, Source, VideoReader, VideoWriter, find_sources, read_frames

__all__ = [
    "COCO_KEYPOINTS",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "MPII_KEYPOINTS",
    "PIXEL_STD",
    "Crops",
    "Detector",
    "Frame",
    "HeatmapCodec",
    "KeypointSet",
    "PersonDetector",
    "PoseEstimator",
    "PoseResult",
    "RunWriter",
    "Source",
    "VideoReader",
    "VideoWriter",
    "apply_affine",
    "box_to_center_scale",
    "center_scale_to_box",
    "crop_affine",
    "decode_argmax",
    "decode_dark",
    "decode_dark_udp",
    "detect_persons",
    "draw_poses",
    "find_sources",
    "flip_back",
    "get_affine_transform",
    "get_keypoint_set",
    "get_max_preds",
    "load_image",
    "read_frames",
    "region_area",
    "save_image",
    "shift_flipped",
]
