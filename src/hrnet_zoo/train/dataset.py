"""A COCO-format keypoint dataset for top-down training and evaluation, with the original's augmentation."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor
from torch.utils.data import Dataset

from ..codec import HeatmapCodec, TopDownTransform, region_area
from ..io.coco_files import read_coco_keypoints
from ..io.images import load_image
from ..keypoints import COCO_KEYPOINTS, KeypointSet

__all__ = ["Augmentation", "CocoKeypointDataset", "PersonRecord"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Augmentation:
    """The original training augmentation (HRNet's COCO settings by default).

    Attributes:
        scale_factor: The box scale is multiplied by ``clip(1 + N(0, 1) * f, 1 - f, 1 + f)``.
        rotation_factor: With probability ``rotation_prob``, rotate by ``clip(N(0, 1) * f, -2f, 2f)`` degrees.
        rotation_prob: Probability of a rotation.
        flip_prob: Probability of a horizontal flip (left/right joints swapped).
        half_body_prob: Probability of cropping to the upper or lower body, when more than
            ``half_body_min_joints`` joints are visible.
        half_body_min_joints: Visible joints needed for the half-body crop.
    """

    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8


@dataclass(frozen=True)
class PersonRecord:
    """One annotated person: image, box, joints (x, y) and their visibility."""

    image_path: Path
    image_id: int
    box: tuple[float, float, float, float]
    joints: Tensor
    visible: Tensor
    score: float = 1.0


def _clean_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float] | None:
    """The original's box sanitising: clip to the image; ``None`` for an empty box."""
    x, y, w, h = box
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(width - 1.0, x1 + max(0.0, w - 1)), min(height - 1.0, y1 + max(0.0, h - 1))
    if w <= 0 or h <= 0 or x2 < x1 or y2 < y1:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


#: The original's enlargement of the region around the joints of a half-body crop.
HALF_BODY_PADDING = 1.5


def report_missing_images(
    missing: set[str] | list[str], annotation_file: Path, on_missing: str, persons: bool = False
) -> None:
    """Report the image files of ``annotation_file`` that are not there: raise (``on_missing="error"``) or warn that
    they (with ``persons``: their persons) are skipped; five are named."""
    if not missing:
        return
    listed = ", ".join(sorted(missing)[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
    if on_missing == "error":
        raise FileNotFoundError(
            f"{len(missing)} image files of {annotation_file} are missing: {listed}; "
            f"pass on_missing='skip' to leave {'their persons' if persons else 'them'} out"
        )
    what = "the persons of " if persons else ""
    _logger.warning("skipping %s%d missing images: %s", what, len(missing), listed)


class CocoKeypointDataset(Dataset):
    """Persons of a COCO-style keypoint annotation file, cropped to the network input.

    Any number of keypoints works: names, skeleton and flip pairs come from the annotation's category (flip pairs
    inferred from ``left_*``/``right_*`` names) unless ``keypoints`` is given. Each item is
    ``(image (3, h, w) normalised, target (K, h/4, w/4), target_weight (K,), meta)``; ``meta`` holds the crop's
    ``center``, ``scale``, ``rotation``, the ``image_id``, box ``area`` and ``score``, and the transformed
    ``joints``. Works with a standard ``DataLoader`` and workers.

    Crops are made by ``transform``, the :class:`~hrnet_zoo.codec.TopDownTransform` the predictor uses, so an
    evaluation item equals the predictor's crop of the same box; targets are encoded by its codec.

    Persons whose joints are all unlabelled are skipped (as the original does); joints outside the image keep
    their labels and get weight 0 when they fall outside the heatmap. Missing image files are reported at
    construction (``on_missing="error"``, the default) or skipped with a warning (``"skip"``).

    Args:
        annotation_file: COCO keypoint annotation JSON.
        image_dir: Folder of the images (``file_name`` is relative to it).
        transform: Input size, crop geometry, normalisation and target encoding: the model's
            (``model.pose_meta.transform``); by default the original HRNet's codec at 256x192 with ImageNet
            normalisation.
        train: Apply :class:`Augmentation`; otherwise deterministic crops for evaluation.
        keypoints: Keypoint metadata; read from the category by default.
        augmentation: Augmentation settings (training only).
        upper_body: Joint indices of the upper body for the half-body crop (COCO's 0-10 for COCO keypoints;
            half-body is off for other sets unless given).
        on_missing: ``"error"`` or ``"skip"`` for annotations whose image file is missing.

    Example:
        >>> model = hrnet_zoo.create_model("hrnet_w32_pose", pretrained=True)
        >>> data = CocoKeypointDataset("person_keypoints_train.json", "train/", model.pose_meta.transform)
        >>> data.check_model(model)  # same codec, normalisation and joints
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        transform: TopDownTransform | None = None,
        train: bool = True,
        keypoints: KeypointSet | None = None,
        augmentation: Augmentation | None = None,
        upper_body: Sequence[int] | None = None,
        on_missing: str = "error",
    ) -> None:
        if on_missing not in ("error", "skip"):
            raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
        if transform is not None and not isinstance(transform, TopDownTransform):
            raise ValueError(
                f"transform must be a TopDownTransform (model.pose_meta.transform), got {type(transform).__name__}"
            )
        self.annotation_file = Path(annotation_file)
        self.image_dir = Path(image_dir)
        self.transform = transform or TopDownTransform(HeatmapCodec(), IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
        self.train = train
        self.augmentation = augmentation or Augmentation()
        data = read_coco_keypoints(self.annotation_file)
        self.dataset = data
        categories = [c for c in data.get("categories", []) if c.get("keypoints")]
        if keypoints is None:
            if not categories:
                raise ValueError(f"{self.annotation_file} has no category with keypoint names; pass keypoints=")
            keypoints = KeypointSet.from_coco_category(categories[0])
        self.keypoints = keypoints
        self.category_ids = {c["id"] for c in categories} or {1}
        if upper_body is None and keypoints.names == COCO_KEYPOINTS.names:
            upper_body = range(11)
        self.upper_body = set(upper_body or ())
        self.records = self._load_records(data, on_missing)
        if not self.records:
            raise ValueError(f"{self.annotation_file} holds no person with labelled keypoints")

    @property
    def codec(self) -> HeatmapCodec:
        """The heatmap codec of the targets (``transform.codec``)."""
        return self.transform.codec

    def _load_records(self, data: dict[str, Any], on_missing: str) -> list[PersonRecord]:
        images = {im["id"]: im for im in data["images"]}
        num_joints = len(self.keypoints)
        records, missing = [], set()
        for ann in data["annotations"]:
            if ann.get("iscrowd", 0) or ann.get("category_id", 1) not in self.category_ids:
                continue
            kpts = torch.tensor(ann.get("keypoints", []), dtype=torch.float32).reshape(-1, 3)
            if len(kpts) != num_joints:
                raise ValueError(
                    f"annotation {ann.get('id')} has {len(kpts)} keypoints but the keypoint set "
                    f"{self.keypoints.name!r} has {num_joints}"
                )
            if not (kpts[:, 2] > 0).any():
                continue  # no labelled joint: nothing to learn or evaluate
            image = images[ann["image_id"]]
            path = self.image_dir / image["file_name"]
            if not path.is_file():
                missing.add(str(path))
                continue
            box = _clean_box(ann["bbox"], image["width"], image["height"])
            if box is None:
                continue
            records.append(PersonRecord(path, ann["image_id"], box, kpts[:, :2], (kpts[:, 2] > 0).float()))
        report_missing_images(missing, self.annotation_file, on_missing, persons=True)
        return records

    def __len__(self) -> int:
        return len(self.records)

    def check_model(self, model: torch.nn.Module) -> None:
        """Refuse a model the data do not fit: another codec (input size, heatmap geometry), another input
        normalisation, or another number of joints.

        Raises:
            ValueError: What differs, and how to build the data set or the model to match.
        """
        theirs = model.pose_meta.transform
        fix = "build the data set with transform=model.pose_meta.transform"
        if theirs.codec != self.codec:
            raise ValueError(
                f"the model's codec {theirs.codec} differs from the data set's {self.codec}; {fix} (or the model "
                "with input_size=...)"
            )
        if (theirs.mean, theirs.std) != (self.transform.mean, self.transform.std):
            raise ValueError(
                f"the model normalises its inputs with mean {list(theirs.mean)} and std {list(theirs.std)}, the data "
                f"set with mean {list(self.transform.mean)} and std {list(self.transform.std)}; {fix}"
            )
        num = getattr(model, "num_joints", None)
        if num is not None and num != len(self.keypoints):
            raise ValueError(
                f"the model predicts {num} joints but the data set has {len(self.keypoints)} "
                f"({', '.join(self.keypoints.names[:5])}...); create the model with num_joints={len(self.keypoints)} "
                "(and keypoints=dataset.keypoints)"
            )

    def _half_body(self, joints: Tensor, visible: Tensor) -> tuple[Tensor, Tensor] | None:
        upper = [j for j in range(len(joints)) if visible[j] > 0 and j in self.upper_body]
        lower = [j for j in range(len(joints)) if visible[j] > 0 and j not in self.upper_body]
        if torch.randn(()) < 0.5 and len(upper) > 2:
            chosen = upper
        else:
            chosen = lower if len(lower) > 2 else upper
        if len(chosen) < 2:
            return None
        selected = joints[chosen]
        xyxy = torch.cat([selected.amin(0), selected.amax(0)]).unsqueeze(0)
        _, scale = self.transform.center_scale(xyxy, padding=HALF_BODY_PADDING)
        return selected.mean(0), scale[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor, dict[str, Any]]:
        """Person ``index``: crop ``(3, h, w)``, targets ``(K, h/4, w/4)``, target weights ``(K,)`` and meta."""
        record = self.records[index]
        image = load_image(record.image_path)
        joints, visible = record.joints.clone(), record.visible.clone()
        center, scale = self.transform.center_scale(torch.tensor([record.box], dtype=torch.float64), "xywh")
        center, scale = center[0], scale[0]
        rotation = 0.0
        if self.train:
            aug = self.augmentation
            if self.upper_body and visible.sum() > aug.half_body_min_joints and torch.rand(()) < aug.half_body_prob:
                half = self._half_body(joints, visible)
                if half is not None:
                    center, scale = half
            factor = aug.scale_factor
            scale = scale * float((torch.randn(()) * factor + 1).clamp(1 - factor, 1 + factor))
            if torch.rand(()) <= aug.rotation_prob:
                rotation = float(
                    (torch.randn(()) * aug.rotation_factor).clamp(-2 * aug.rotation_factor, 2 * aug.rotation_factor)
                )
            if torch.rand(()) <= aug.flip_prob:
                width = image.shape[-1]
                image = image.flip(-1)
                joints[:, 0] = width - joints[:, 0] - 1
                joints, visible = joints[self.keypoints.flip_index], visible[self.keypoints.flip_index]
                center = torch.stack([width - center[0] - 1, center[1]])
        crop = self.transform.crop(image, center[None], scale[None], rotation)[0]
        joints = self.transform.to_input(joints[None], center[None], scale[None], rotation)[0]
        target, weight = self.codec.encode(joints[None], visible[None])
        meta = {
            "image_id": record.image_id,
            "center": center.float(),
            "scale": scale.float(),
            "rotation": rotation,
            "area": float(region_area(scale)),
            "score": record.score,
            "joints": joints,
            "visible": visible,
            "box": torch.tensor(record.box),
        }
        return crop, target[0], weight[0], meta
