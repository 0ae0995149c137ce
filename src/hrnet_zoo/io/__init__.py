"""Files in and out: images as ``(3, H, W)`` uint8 tensors, COCO-format annotations and detections read and
checked, and result files written safely (never over an input, never through a link, never half-written)."""

from .coco_files import read_coco_keypoints, read_detections
from .images import Channels, ImageLike, load_image, save_image
from .outputs import (
    JsonArrayStream,
    check_output_dir,
    claim_run_folder,
    finite_records,
    plan_outputs,
    run_folder,
    write_json,
)

__all__ = [
    "Channels",
    "ImageLike",
    "JsonArrayStream",
    "check_output_dir",
    "claim_run_folder",
    "finite_records",
    "load_image",
    "plan_outputs",
    "read_coco_keypoints",
    "read_detections",
    "run_folder",
    "save_image",
    "write_json",
]
