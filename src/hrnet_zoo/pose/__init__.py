"""Pose estimation around :class:`hrnet_zoo.PoseEstimator` (top-down) and :class:`hrnet_zoo.BottomUpEstimator`:
person detection, image and video sources, drawing, tracking and smoothing in video, and the files of a run.

The estimators and their :class:`hrnet_zoo.PoseResult` are imported from ``hrnet_zoo`` (their shared base,
:class:`EstimatorBase`, from here); crops and heatmap codecs live
in :mod:`hrnet_zoo.codec`, keypoint sets in :mod:`hrnet_zoo.keypoints`, image files in :mod:`hrnet_zoo.io`.
"""

from .bottom_up import poses_to_result
from .detect import DEFAULT_DETECTOR, DETECTORS, Detector, PersonDetector, detect_persons
from .draw import draw_poses
from .estimator_base import EstimatorBase
from .run import RunSummary
from .run_writer import RunWriter
from .smooth import OneEuro, OneEuroFilter, OneEuroSmoother, Savgol, smooth_savgol
from .sources import Frame, GivenBoxes, Source, VideoReader, VideoWriter, find_sources, read_frames
from .track import KalmanBoxFilter, PoseTracker, TrackerConfig, boxes_from_poses
from .video import CPU_VIDEO_DEFAULTS, CpuVideoDefaults, Smoothing, VideoOptions

__all__ = [
    "CPU_VIDEO_DEFAULTS",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "CpuVideoDefaults",
    "Detector",
    "EstimatorBase",
    "Frame",
    "GivenBoxes",
    "KalmanBoxFilter",
    "OneEuro",
    "OneEuroFilter",
    "OneEuroSmoother",
    "PersonDetector",
    "PoseTracker",
    "RunSummary",
    "RunWriter",
    "Savgol",
    "Smoothing",
    "Source",
    "TrackerConfig",
    "VideoOptions",
    "VideoReader",
    "VideoWriter",
    "boxes_from_poses",
    "detect_persons",
    "draw_poses",
    "find_sources",
    "poses_to_result",
    "read_frames",
    "smooth_savgol",
]
