"""Geometry and heatmap codecs: person crops, heatmap encoding and decoding, the way back to the image; and the
bottom-up decoders (DEKR's centres and offsets, associative embedding's tag grouping) with their resizing, and the
:class:`BottomUpCodec` a bottom-up model carries.

Pure tensor code, below the models: a model carries its :class:`HeatmapCodec`, and its metadata builds the one
:class:`TopDownTransform` (boxes to normalised crops and back) that the predictor, the training data set, int8
calibration and evaluation use.
"""

from ._munkres import munkres_assignment
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
from .associative_embedding import (
    COCO_GROUPING_ORDER,
    adjust_keypoints,
    aggregate_ae_scales,
    decode_associative_embedding,
    group_by_tags,
    heatmap_nms,
    multi_stage_outputs,
    refine_keypoints,
    top_k_candidates,
)
from .bottom_up import BottomUpResize, bottom_up_resize
from .bottom_up_codec import BOTTOM_UP_METHODS, BottomUpCodec, BottomUpMethod
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
from .dekr_decoding import (
    DEKR_COCO_LINKS,
    DEKR_CROWDPOSE_LINKS,
    DEKR_RESCORE_NORM_LINKS,
    aggregate_dekr_scales,
    centre_nms,
    decode_dekr,
    dekr_rescore,
    flip_input,
    flip_test_outputs,
    heat_values,
    offsets_to_poses,
    pool_kernel,
    pose_nms,
    rescore_features,
    scale_proposals,
    up_interpolate,
)
from .encoding import encode_heatmaps
from .heatmap_codec import HEATMAP_STRIDE, HeatmapCodec
from .transform import MAX_BOX_SIDE, MIN_BOX_SIDE, TopDownTransform

__all__ = [
    "BOTTOM_UP_METHODS",
    "COCO_GROUPING_ORDER",
    "DEKR_COCO_LINKS",
    "DEKR_CROWDPOSE_LINKS",
    "DEKR_RESCORE_NORM_LINKS",
    "HEATMAP_STRIDE",
    "MAX_BOX_SIDE",
    "MIN_BOX_SIDE",
    "PIXEL_STD",
    "BottomUpCodec",
    "BottomUpMethod",
    "BottomUpResize",
    "HeatmapCodec",
    "TopDownTransform",
    "adjust_keypoints",
    "aggregate_ae_scales",
    "aggregate_dekr_scales",
    "apply_affine",
    "bottom_up_resize",
    "box_to_center_scale",
    "center_scale_to_box",
    "centre_nms",
    "crop_affine",
    "decode_argmax",
    "decode_associative_embedding",
    "decode_dark",
    "decode_dark_udp",
    "decode_dekr",
    "default_blur_kernel",
    "dekr_rescore",
    "encode_heatmaps",
    "flip_back",
    "flip_input",
    "flip_test_outputs",
    "gaussian_blur",
    "get_affine_transform",
    "get_max_preds",
    "get_udp_transform",
    "group_by_tags",
    "heat_values",
    "heatmap_nms",
    "multi_stage_outputs",
    "munkres_assignment",
    "offsets_to_poses",
    "pool_kernel",
    "pose_nms",
    "refine_keypoints",
    "region_area",
    "rescore_features",
    "scale_proposals",
    "shift_flipped",
    "top_k_candidates",
    "up_interpolate",
]
