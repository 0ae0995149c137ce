"""Reading COCO-format keypoint annotations and detections, checked entry by entry.

A malformed file is reported when it is read, naming the file, the entry and what is wrong, instead of a
``KeyError`` in the middle of an epoch or after all inference has run. Pure data: imports only the helpers.
"""

from __future__ import annotations

import math
import os
from typing import Any

from .._utils import read_json

__all__ = ["read_coco_keypoints", "read_detections"]


def _numbers(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )


def _check_box(box: object, where: str) -> None:
    if not (_numbers(box) and len(box) == 4):
        raise ValueError(f"{where}: bbox must be 4 finite numbers [x, y, width, height], got {box!r:.80}")
    if box[2] < 0 or box[3] < 0:
        raise ValueError(f"{where}: bbox {box} has a negative width or height")


def read_coco_keypoints(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a COCO keypoint annotation file (``images``, ``annotations``, ``categories``).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not JSON, an entry that is missing a field or holds a malformed one, or two images with the
            same id (named).
    """
    data = read_json(path, "annotation file")
    name = str(path)
    if not isinstance(data, dict):
        raise ValueError(f"{name} must hold a JSON object with 'images' and 'annotations', got {type(data).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{name} must have an {key!r} list (COCO format), got {type(data.get(key)).__name__}")
    ids = set()
    for i, image in enumerate(data["images"]):
        where = f"{name}: images[{i}]"
        if not isinstance(image, dict) or not {"id", "file_name", "width", "height"} <= set(image):
            raise ValueError(f"{where} must have 'id', 'file_name', 'width' and 'height', got {image!r:.100}")
        if not (_numbers([image["width"], image["height"]]) and image["width"] > 0 and image["height"] > 0):
            raise ValueError(f"{where} must have a positive width and height, got {image['width']}x{image['height']}")
        if not isinstance(image["file_name"], str) or not image["file_name"]:
            raise ValueError(
                f"{where} must have a file_name that is a non-empty string, got {image['file_name']!r:.80}"
            )
        if isinstance(image["id"], bool) or not isinstance(image["id"], int):
            raise ValueError(f"{where} must have an integer id, got {image['id']!r:.80}")
        if image["id"] in ids:
            raise ValueError(f"{where} repeats image id {image['id']!r}; each image must have its own id")
        ids.add(image["id"])
    for i, ann in enumerate(data["annotations"]):
        where = f"{name}: annotations[{i}] (id {ann.get('id') if isinstance(ann, dict) else '?'})"
        if not isinstance(ann, dict) or "image_id" not in ann or "bbox" not in ann:
            raise ValueError(f"{where} must have 'image_id' and 'bbox', got {ann!r:.100}")
        if ann["image_id"] not in ids:
            raise ValueError(f"{where} refers to image_id {ann['image_id']!r}, which 'images' does not list")
        _check_box(ann["bbox"], where)
        keypoints = ann.get("keypoints", [])
        if not _numbers(keypoints) or len(keypoints) % 3:
            raise ValueError(
                f"{where}: keypoints must be finite numbers in (x, y, visibility) triplets, got {keypoints!r:.80}"
            )
    if not isinstance(data.get("categories", []), list):
        raise ValueError(f"{name}: 'categories' must be a list")
    return data


def read_detections(source: str | os.PathLike | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Read and check person detections in COCO results format (``image_id``, ``bbox``, ``score``).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not JSON, not a list, or an entry without a box or score (named).
    """
    name = "detections" if isinstance(source, list) else str(source)
    detections = source if isinstance(source, list) else read_json(source, "detection file")
    if not isinstance(detections, list):
        raise ValueError(f"{name} must hold a list of detections (COCO results format)")
    for i, det in enumerate(detections):
        where = f"{name}: detection {i}"
        if not isinstance(det, dict) or not {"image_id", "bbox", "score"} <= set(det):
            raise ValueError(f"{where} must have 'image_id', 'bbox' and 'score', got {det!r:.100}")
        _check_box(det["bbox"], where)
        if not _numbers([det["score"]]):
            raise ValueError(f"{where}: score must be a finite number, got {det['score']!r}")
    return detections
