"""A COCO-format keypoint data set for the bottom-up models (DEKR, HigherHRNet): whole images with every person,
the references' augmentation, and the targets of the model's method.

References (MIT): https://github.com/HRNet/DEKR ``lib/dataset/COCOKeypoints.py`` (``get_joints``, ``get_mask``),
``lib/dataset/transforms/transforms.py`` (``RandomAffineTransform``, ``RandomHorizontalFlip``) and
``lib/dataset/build.py``; https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation, the same files. The settings'
defaults are both repositories' COCO experiments (``DATASET.MIN_SCALE`` 0.75, ``MAX_SCALE`` 1.5, ``MAX_ROTATION`` 30,
``MAX_TRANSLATE`` 40, ``FLIP`` 0.5, ``SCALE_TYPE`` short).

Where this data set departs from the references, on purpose:

- The mirror is part of the one affine (the source image is mirrored, then warped), so the image, the masks and
  the joints move together. The references flip the warped input (``x -> 511 - x``) and the output-pixel joints
  (``x -> 127 - x``) separately, which puts a flipped person's targets 3/4 of an output pixel off its image.
- A crowd annotation only masks its region; it is never a person (the references also keep a crowd annotation
  with labelled keypoints as a person). A person without labelled keypoints is masked and has no centre (DEKR's
  reference draws a centre at the image origin for it).
- DEKR's offset weights are ``1 / sqrt(w**2 + h**2)`` of each person's labelled-joint box in *input* pixels: the
  reference's area is also scaled to input pixels by the input affine (the unit its offset loss factor 0.03 was
  tuned for), but its box also holds the image origin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..codec import PIXEL_STD, BottomUpCodec, apply_affine, crop_affine, get_affine_transform
from ..io.coco_files import read_coco_keypoints
from ..io.images import load_image
from ..models.higherhrnet import HigherHRNet
from ..models.meta import PoseMeta
from .bottom_up_targets import ae_targets, dekr_person_areas, dekr_targets
from .dataset import report_missing_images

__all__ = ["AESample", "BottomUpAugmentation", "BottomUpImage", "BottomUpWarp", "CocoBottomUpDataset", "DEKRSample"]


@dataclass(frozen=True)
class BottomUpAugmentation:
    """The references' bottom-up training augmentation (their COCO settings by default).

    Attributes:
        min_scale: The square region's side is the image's short side times ``U(min_scale, max_scale)``
            (``DATASET.MIN_SCALE``; above 1 the persons get smaller).
        max_scale: ``DATASET.MAX_SCALE``.
        max_rotation: Rotation by ``U(-max_rotation, max_rotation)`` degrees (``DATASET.MAX_ROTATION``).
        max_translate: The region's centre moves by an integer number of image pixels in
            ``[-t, t]`` along each axis, ``t = max_translate`` per 200 pixels of region side
            (``DATASET.MAX_TRANSLATE``).
        flip_prob: Probability of a horizontal mirror, left/right keypoints swapped (``DATASET.FLIP``).
    """

    min_scale: float = 0.75
    max_scale: float = 1.5
    max_rotation: float = 30.0
    max_translate: float = 40.0
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {self.min_scale} and {self.max_scale}")
        if self.max_rotation < 0 or self.max_translate < 0 or not 0 <= self.flip_prob <= 1:
            raise ValueError(
                f"max_rotation and max_translate must be >= 0 and flip_prob in [0, 1], got {self.max_rotation}, "
                f"{self.max_translate}, {self.flip_prob}"
            )


@dataclass(frozen=True)
class BottomUpWarp:
    """One draw of the augmentation: the square image region that fills the network input, and the mirror.

    Attributes:
        center: ``(x, y)`` of the region in image pixels (of the mirrored image when ``flip``).
        side: Side of the region in image pixels; it spans the shorter side of the network input.
        rotation: Degrees, counter-clockwise (the references' convention).
        flip: Mirror the image (``x -> width - 1 - x``) before the warp.
    """

    center: tuple[float, float]
    side: float
    rotation: float = 0.0
    flip: bool = False

    def matrix(self, image_width: int, output_size: tuple[int, int]) -> Tensor:
        """``(2, 3)`` float64 image-to-map affine onto an ``output_size`` ``(height, width)`` map (the input, or an
        output at its stride: every map sees the same region, so output pixels are input pixels / stride)."""
        width = self.side * output_size[1] / min(output_size) / PIXEL_STD
        matrix = get_affine_transform(
            torch.tensor([self.center]), torch.tensor([[width, width]]), output_size, self.rotation
        )[0]
        if not self.flip:
            return matrix
        mirror = torch.tensor([[-1.0, 0.0, image_width - 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
        return torch.cat([matrix[:, :2] @ mirror[:, :2], matrix[:, :2] @ mirror[:, 2:] + matrix[:, 2:]], dim=1)


@dataclass(frozen=True)
class BottomUpImage:
    """One annotated image: its persons' joints and the regions the loss ignores.

    Attributes:
        path: The image file.
        image_id: COCO image id.
        size: ``(height, width)`` from the annotation file.
        joints: ``(P, K, 3)`` float64 ``(x, y, v)`` of the persons with a labelled keypoint.
        areas: ``(P,)`` their COCO segment areas (``area``, else the box's).
        ignored: Segmentations (COCO polygons or RLE, else the box as a polygon) of the crowds and of the persons
            without labelled keypoints.
    """

    path: Path
    image_id: int
    size: tuple[int, int]
    joints: np.ndarray
    areas: np.ndarray
    ignored: tuple[Any, ...]


class DEKRSample(NamedTuple):
    """A DEKR training item; a ``DataLoader`` stacks each field over the batch.

    Attributes:
        image: ``(3, H, W)`` normalised input.
        heatmaps: ``(K + 1, H/4, W/4)``, the centre last.
        heatmap_mask: ``(K + 1, H/4, W/4)``: 1 in the Gaussians' windows, ``bg_weight`` elsewhere, 0 where ignored.
        offsets: ``(2K, H/4, W/4)``.
        offset_weights: ``(2K, H/4, W/4)``.
    """

    image: Tensor
    heatmaps: Tensor
    heatmap_mask: Tensor
    offsets: Tensor
    offset_weights: Tensor


class AESample(NamedTuple):
    """An associative-embedding (HigherHRNet) training item, with one entry per model output ``i`` at stride
    ``s_i`` (4, 2, ...); a ``DataLoader`` stacks every entry over the batch.

    Attributes:
        image: ``(3, H, W)`` normalised input.
        heatmaps: ``[(K, H/s_i, W/s_i)]``.
        masks: ``[(H/s_i, W/s_i)]``: 1 to train on, 0 where ignored (crowds, persons without keypoints, outside
            the image).
        joints: ``[(max_people, K, 2)]`` int64 tag indices (:func:`~hrnet_zoo.train.bottom_up_targets.ae_targets`).
    """

    image: Tensor
    heatmaps: list[Tensor]
    masks: list[Tensor]
    joints: list[Tensor]


def _coco_mask_api() -> Any:
    try:
        from pycocotools import mask
    except ImportError as err:
        raise ImportError(
            "the annotation file has crowds or persons without keypoints, whose regions are masked out of the loss "
            "from their segmentations: that needs pycocotools (pip install 'hrnet-zoo[coco]')"
        ) from err
    return mask


def _segment_rle(api: Any, segmentation: Any, height: int, width: int) -> Any:
    """One RLE of a COCO segmentation: polygons (merged), uncompressed or compressed RLE."""
    if isinstance(segmentation, list):
        return api.merge(api.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return api.frPyObjects(segmentation, height, width)
    return segmentation


def _box_polygon(box: list[float]) -> list[list[float]]:
    x, y, w, h = box
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


class CocoBottomUpDataset(Dataset):
    """Images of a COCO-style keypoint annotation file with every person, warped to a bottom-up model's input and
    encoded as its method's targets.

    Each item is a whole image: a square region (the short side, scaled, rotated, shifted and mirrored by
    :class:`BottomUpAugmentation` when ``train``; the centred short side otherwise) warped onto the model's
    ``pose_meta.codec.input_size`` and normalised with ``pose_meta.mean`` / ``std``. Crowd regions, persons without
    labelled keypoints and everything outside the image are masked out of the heatmap loss (the references'
    ``mask``). Targets follow the model: :class:`DEKRSample` (:func:`~hrnet_zoo.train.bottom_up_targets.dekr_targets`
    at stride 4) for DEKR, :class:`AESample` (:func:`~hrnet_zoo.train.bottom_up_targets.ae_targets` at each output's
    stride: 4 and 2 for HigherHRNet) for associative embedding. A default ``DataLoader`` collates them, workers
    included.

    The keypoints (names, and the flip pairs that the mirror swaps) are the model's: the annotation file's category
    must name the same keypoints (a file whose categories name none is taken to hold the model's). Images are kept
    when they have an annotation (persons, crowds), as in the references. Missing image files are reported at
    construction (``on_missing="error"``) or skipped with a warning (``"skip"``).

    Args:
        annotation_file: COCO keypoint annotation JSON.
        image_dir: Folder of the images (``file_name`` is relative to it).
        model: The bottom-up model to train (:class:`~hrnet_zoo.models.dekr.DEKR`,
            :class:`~hrnet_zoo.models.higherhrnet.HigherHRNet`), or its ``pose_meta`` (associative embedding then
            gets one output per ``codec.heatmap_stages`` and one tag map per joint).
        train: Augment; otherwise every image is its centred square.
        augmentation: The augmentation's settings (training only).
        sigma: Gaussian sigma of the joints' heatmaps (``DATASET.SIGMA``, 2).
        center_sigma: DEKR: sigma of the centre heatmap (``DATASET.CENTER_SIGMA``, 4).
        offset_radius: DEKR: offsets are set on the ``2 * radius`` square around each centre
            (``DATASET.OFFSET_RADIUS``, 4).
        bg_weight: DEKR: the heatmap mask outside the Gaussians' windows (``DATASET.BG_WEIGHT``, 0.1).
        min_center_area: DEKR: persons of a smaller COCO ``area`` get no centre (32**2, as the reference's
            ``get_joints``).
        max_people: Associative embedding: persons per image (default ``codec.max_persons``, 30).
        on_missing: ``"error"`` or ``"skip"`` for images whose file is missing.

    Raises:
        ValueError: A top-down model, an annotation file whose keypoints differ from the model's, more persons in
            an image than ``max_people``, or an image without an annotation.

    Example:
        >>> model = hrnet_zoo.create_model("dekr_hrnet_w32", pretrained=True)
        >>> data = CocoBottomUpDataset("person_keypoints_train2017.json", "train2017/", model)
        >>> image, heatmaps, heatmap_mask, offsets, offset_weights = data[0]
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        model: nn.Module | PoseMeta,
        train: bool = True,
        augmentation: BottomUpAugmentation | None = None,
        sigma: float = 2.0,
        center_sigma: float = 4.0,
        offset_radius: int = 4,
        bg_weight: float = 0.1,
        min_center_area: float = 32.0**2,
        max_people: int | None = None,
        on_missing: str = "error",
    ) -> None:
        if on_missing not in ("error", "skip"):
            raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
        meta = model if isinstance(model, PoseMeta) else getattr(model, "pose_meta", None)
        if not isinstance(meta, PoseMeta):
            raise ValueError(f"model must be a bottom-up pose model or its pose_meta, got {type(model).__name__}")
        if not meta.bottom_up:
            raise ValueError(
                "this is a top-down model (it takes person crops): train it on CocoKeypointDataset(annotation_file, "
                "image_dir, model.pose_meta.transform); CocoBottomUpDataset is for DEKR and HigherHRNet"
            )
        self.annotation_file = Path(annotation_file)
        self.image_dir = Path(image_dir)
        self.pose_meta = meta
        self.train = train
        self.augmentation = augmentation or BottomUpAugmentation()
        self.sigma, self.center_sigma, self.offset_radius = sigma, center_sigma, offset_radius
        self.bg_weight, self.min_center_area = bg_weight, min_center_area
        self.max_people = self.codec.max_persons if max_people is None else max_people
        if self.codec.method == "dekr":
            self.strides: tuple[float, ...] = (4.0,)
            self.tag_per_joint = True
        elif isinstance(model, HigherHRNet):
            self.strides = tuple(model.reductions)
            self.tag_per_joint = model.cfg.head.tag_per_joint
        else:
            self.strides = tuple(4.0 / 2**i for i in range(len(self.codec.heatmap_stages)))
            self.tag_per_joint = True
        self.records = self._load_records(read_coco_keypoints(self.annotation_file), on_missing)
        if not self.records:
            raise ValueError(f"{self.annotation_file} holds no image with an annotation")
        if any(r.ignored for r in self.records):
            _coco_mask_api()  # fail now, not in the first batch

    @property
    def codec(self) -> BottomUpCodec:
        """The model's :class:`~hrnet_zoo.codec.BottomUpCodec` (``pose_meta.codec``)."""
        return self.pose_meta.codec

    @property
    def output_sizes(self) -> list[tuple[int, int]]:
        """``(height, width)`` of each target map: the input size over each output's stride."""
        height, width = self.codec.input_size
        return [(round(height / s), round(width / s)) for s in self.strides]

    def _category_ids(self, data: dict[str, Any]) -> set[int] | None:
        """The keypoint categories (``None``: the file names none, every annotation counts), checked against the
        model's keypoints."""
        categories = [c for c in data.get("categories", []) if c.get("keypoints")]
        keypoints = self.pose_meta.keypoints
        for category in categories:
            names = tuple(category["keypoints"])
            if len(names) != len(keypoints):
                raise ValueError(
                    f"{self.annotation_file}: category {category.get('name')!r} has {len(names)} keypoints but the "
                    f"model predicts {len(keypoints)}; create the model for them: hrnet_zoo.create_model(name, "
                    "keypoints=KeypointSet.from_coco_category(category))"
                )
            if names != keypoints.names:
                raise ValueError(
                    f"{self.annotation_file}: category {category.get('name')!r} names the keypoints "
                    f"{', '.join(names[:4])}... but the model's are {', '.join(keypoints.names[:4])}...; create the "
                    "model with keypoints=KeypointSet.from_coco_category(category) (their left/right pairs are what "
                    "the flip augmentation swaps)"
                )
        return {c["id"] for c in categories} if categories else None

    def _load_records(self, data: dict[str, Any], on_missing: str) -> list[BottomUpImage]:
        category_ids = self._category_ids(data)
        num_joints = len(self.pose_meta.keypoints)
        by_image: dict[int, list[dict[str, Any]]] = {}
        for ann in data["annotations"]:
            if category_ids is None or ann.get("category_id", 1) in category_ids:
                by_image.setdefault(ann["image_id"], []).append(ann)
        records, missing = [], []
        for image in data["images"]:
            annotations = by_image.get(image["id"])
            if not annotations:
                continue
            path = self.image_dir / image["file_name"]
            if not path.is_file():
                missing.append(str(path))
                continue
            persons, areas, ignored = [], [], []
            for ann in annotations:
                keypoints = np.asarray(ann.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
                if not ann.get("iscrowd", 0) and len(keypoints) != num_joints:
                    raise ValueError(
                        f"{self.annotation_file}: annotation {ann.get('id')} has {len(keypoints)} keypoints but the "
                        f"model predicts {num_joints}"
                    )
                if ann.get("iscrowd", 0) or not (keypoints[:, 2] > 0).any():
                    ignored.append(ann.get("segmentation") or _box_polygon(ann["bbox"]))
                    continue
                persons.append(keypoints)
                areas.append(float(ann.get("area", ann["bbox"][2] * ann["bbox"][3])))
            if len(persons) > self.max_people and self.codec.method == "associative_embedding":
                raise ValueError(
                    f"{path} has {len(persons)} persons, more than max_people={self.max_people}; pass a larger "
                    "max_people"
                )
            joints = np.stack(persons) if persons else np.zeros((0, num_joints, 3))
            size = (int(image["height"]), int(image["width"]))
            records.append(BottomUpImage(path, image["id"], size, joints, np.asarray(areas), tuple(ignored)))
        report_missing_images(missing, self.annotation_file, on_missing)
        return records

    def __len__(self) -> int:
        return len(self.records)

    def draw_warp(self, index: int) -> BottomUpWarp:
        """The warp of image ``index``: a random draw of :attr:`augmentation` (torch's random generator, seeded per
        ``DataLoader`` worker) when training, its centred short side otherwise."""
        height, width = self.records[index].size
        center, side = (width / 2.0, height / 2.0), float(min(height, width))
        if not self.train:
            return BottomUpWarp(center, side)
        aug = self.augmentation
        u_scale, u_rotation, u_flip = torch.rand(3).tolist()
        side *= aug.min_scale + u_scale * (aug.max_scale - aug.min_scale)
        limit = int(aug.max_translate * side / PIXEL_STD)
        dx, dy = torch.randint(-limit, limit + 1, (2,)).tolist()
        rotation = (2 * u_rotation - 1) * aug.max_rotation
        return BottomUpWarp((center[0] + dx, center[1] + dy), side, rotation, u_flip < aug.flip_prob)

    def ignore_mask(self, index: int) -> Tensor:
        """``(H, W)`` float32 of image ``index``: 1 to train on, 0 in the crowds' and unlabelled persons' regions."""
        record = self.records[index]
        if not record.ignored:
            return torch.ones(record.size)
        api = _coco_mask_api()
        rles = [_segment_rle(api, s, *record.size) for s in record.ignored]
        return torch.from_numpy(api.decode(api.merge(rles)) == 0).float()

    def warped_joints(self, index: int, warp: BottomUpWarp, output_size: tuple[int, int]) -> np.ndarray:
        """``(P, K, 3)`` the joints of image ``index`` on an ``output_size`` map of ``warp``: moved by its affine,
        and with left and right swapped (the keypoint set's ``flip_index``) when it mirrors."""
        record = self.records[index]
        matrix = warp.matrix(record.size[1], output_size)
        joints = record.joints.copy()
        xy = torch.from_numpy(joints[:, :, :2].reshape(1, -1, 2))
        joints[:, :, :2] = apply_affine(xy, matrix[None]).reshape(joints.shape[0], -1, 2).numpy()
        return joints[:, self.pose_meta.keypoints.flip_index] if warp.flip else joints

    def sample(self, index: int, warp: BottomUpWarp) -> DEKRSample | AESample:
        """Image ``index`` warped by ``warp``, with its targets (what :meth:`__getitem__` returns for a drawn warp)."""
        record = self.records[index]
        image = load_image(record.path)
        if tuple(image.shape[1:]) != record.size:
            raise ValueError(
                f"{record.path} is {image.shape[2]}x{image.shape[1]} pixels but {self.annotation_file} says "
                f"{record.size[1]}x{record.size[0]}; the keypoints would not match the image"
            )
        input_size = self.codec.input_size
        pixels = crop_affine(image.float() / 255, warp.matrix(record.size[1], input_size)[None], input_size)[0]
        pixels = TF.normalize(pixels, list(self.pose_meta.mean), list(self.pose_meta.std))
        keep = self.ignore_mask(index)[None]
        masks, joints = [], []
        for size in self.output_sizes:
            warped = crop_affine(keep, warp.matrix(record.size[1], size)[None], size)[0, 0]
            masks.append((warped > 0.5).float())
            joints.append(self.warped_joints(index, warp, size))
        if self.codec.method == "dekr":
            return self._dekr_sample(pixels, masks[0], joints[0], index, warp)
        targets = [
            ae_targets(j, size, self.sigma, self.max_people, self.tag_per_joint)
            for j, size in zip(joints, self.output_sizes)
        ]
        return AESample(
            pixels,
            [torch.from_numpy(t.heatmaps) for t in targets],
            masks,
            [torch.from_numpy(t.joints) for t in targets],
        )

    def _dekr_sample(
        self, pixels: Tensor, mask: Tensor, joints: np.ndarray, index: int, warp: BottomUpWarp
    ) -> DEKRSample:
        input_joints = self.warped_joints(index, warp, self.codec.input_size)
        targets = dekr_targets(
            joints,
            self.output_sizes[0],
            self.sigma,
            self.center_sigma,
            self.offset_radius,
            self.bg_weight,
            areas=dekr_person_areas(input_joints),
            mask=mask.numpy(),
            center_visible=self.records[index].areas >= self.min_center_area,
        )
        return DEKRSample(pixels, *(torch.from_numpy(t) for t in targets))

    def __getitem__(self, index: int) -> DEKRSample | AESample:
        """Image ``index`` with a freshly drawn warp (:meth:`draw_warp`) and its targets."""
        return self.sample(index, self.draw_warp(index))
