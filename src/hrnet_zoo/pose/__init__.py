"""Top-down pose estimation pieces: keypoint metadata, transforms, codecs and the predictor."""

from .keypoints import COCO_KEYPOINTS, MPII_KEYPOINTS, KeypointSet, get_keypoint_set

__all__ = ["COCO_KEYPOINTS", "MPII_KEYPOINTS", "KeypointSet", "get_keypoint_set"]
