"""Top-down pose estimation around :class:`hrnet_zoo.PoseEstimator`: person detection, image and video sources,
drawing, and the files of a run.

The estimator and its :class:`hrnet_zoo.PoseResult` are imported from ``hrnet_zoo``; crops and heatmap codecs live
in :mod:`hrnet_zoo.codec`, keypoint sets in :mod:`hrnet_zoo.keypoints`, image files in :mod:`hrnet_zoo.io`.
"""

from .detect import DEFAULT_DETECTOR, DETECTORS, Detector, PersonDetector, detect_persons
from .draw import draw_poses
from .run import RunSummary
from .run_writer import RunWriter
from .sources import Frame, GivenBoxes, Source, VideoReader, VideoWriter, find_sources, read_frames

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "Detector",
    "Frame",
    "GivenBoxes",
    "PersonDetector",
    "RunSummary",
    "RunWriter",
    "Source",
    "VideoReader",
    "VideoWriter",
    "detect_persons",
    "draw_poses",
    "find_sources",
    "read_frames",
]
