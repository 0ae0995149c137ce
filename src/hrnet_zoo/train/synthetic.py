"""A synthetic keypoint data set in COCO format: drawn figures whose keypoints are known exactly."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["SYNTHETIC_CATEGORY", "make_synthetic_dataset"]

#: Four keypoints of a drawn "kite" figure; each has its own colour so that it can be told apart (and no
#: left/right pair: a flipped kite keeps its colours).
SYNTHETIC_CATEGORY = {
    "id": 1,
    "name": "kite",
    "supercategory": "shape",
    "keypoints": ["top", "green_wing", "blue_wing", "tail"],
    "skeleton": [[1, 2], [1, 3], [2, 4], [3, 4], [1, 4]],
}
_COLOURS = [(230, 40, 40), (40, 200, 40), (40, 80, 230), (230, 200, 30)]
_SIGMAS = [0.05, 0.05, 0.05, 0.05]


def _figure(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Keypoints ``(4, 2)`` of a randomly placed, scaled and rotated kite that stays inside the image."""
    size = rng.uniform(0.25, 0.45) * min(width, height)
    base = np.array([[0.0, -1.0], [-0.6, -0.1], [0.6, -0.1], [0.0, 1.0]]) * size / 2
    angle = rng.uniform(-math.pi / 3, math.pi / 3)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = base @ rotation.T
    low, high = points.min(0), points.max(0)
    centre = rng.uniform(-low + 4, np.array([width, height]) - high - 4)
    return points + centre


def _draw(rng: np.random.Generator, width: int, height: int, figures: list[np.ndarray]) -> Image.Image:
    noise = rng.integers(60, 140, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(noise).resize((width, height), Image.BILINEAR)
    draw = ImageDraw.Draw(image)
    for points in figures:
        pts = [tuple(p) for p in points]
        draw.polygon([pts[0], pts[1], pts[3], pts[2]], fill=(200, 200, 200), outline=(20, 20, 20))
        draw.line([pts[0], pts[3]], fill=(20, 20, 20), width=2)
        radius = max(2.0, 0.04 * min(width, height))
        for (x, y), colour in zip(pts, _COLOURS):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    return image


def make_synthetic_dataset(
    root: str | os.PathLike,
    num_train: int = 400,
    num_val: int = 100,
    image_size: tuple[int, int] = (160, 160),
    max_figures: int = 2,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``train``/``val`` splits of drawn kites with 4 keypoints, in COCO format.

    Layout: ``root/annotations/person_keypoints_{train,val}.json`` and ``root/{train,val}/*.png`` (the
    standard COCO layout that :func:`hrnet_zoo.evaluation.find_coco_split` reads). Category id 1 with keypoint
    names and skeleton, ``num_keypoints``, ``area`` and ``bbox`` per figure (the box around its keypoints,
    enlarged by 10%).

    Returns:
        ``{"root", "train_annotations", "val_annotations", "train_images", "val_images"}`` paths.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    height, width = image_size
    out: dict[str, Path] = {"root": root}
    annotation_id = 1
    for split, count in (("train", num_train), ("val", num_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            image_id = index + 1 + (0 if split == "train" else 1_000_000)
            figures = [_figure(rng, width, height) for _ in range(int(rng.integers(1, max_figures + 1)))]
            file_name = f"{image_id:07d}.png"
            _draw(rng, width, height, figures).save(root / split / file_name)
            images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
            for points in figures:
                low, high = points.min(0), points.max(0)
                pad = 0.1 * (high - low)
                x, y = np.maximum(low - pad, 0)
                w, h = np.minimum(high + pad, [width - 1, height - 1]) - [x, y]
                keypoints = np.concatenate([points, np.full((4, 1), 2.0)], axis=1).round(2).reshape(-1).tolist()
                annotations.append(
                    {
                        "id": annotation_id,
                        "image_id": image_id,
                        "category_id": 1,
                        "iscrowd": 0,
                        "keypoints": keypoints,
                        "num_keypoints": 4,
                        "bbox": [round(float(v), 2) for v in (x, y, w, h)],
                        "area": round(float(w * h), 2),
                    }
                )
                annotation_id += 1
        path = root / "annotations" / f"person_keypoints_{split}.json"
        category = dict(SYNTHETIC_CATEGORY, sigmas=_SIGMAS)
        path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [category]}))
        out[f"{split}_annotations"] = path
        out[f"{split}_images"] = root / split
    return out
