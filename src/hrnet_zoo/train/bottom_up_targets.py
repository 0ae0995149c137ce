"""Training targets of the bottom-up models: DEKR's heatmaps and offsets, associative embedding's heatmaps and tags.

References (MIT): https://github.com/HRNet/DEKR ``lib/dataset/target_generators/target_generators.py``
(``HeatmapGenerator``, ``OffsetGenerator``) with the centre and areas of ``lib/dataset/COCOKeypoints.py``
(``get_joints``), and https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation, the same file there
(``HeatmapGenerator``, ``ScaleAwareHeatmapGenerator``, ``JointsGenerator``). The values equal the references' loops;
maps may be rectangular here (the references' are square). Joints are ``(x, y, v)`` in pixels of the *output* map
(the augmentation's affine already applied); ``v > 0`` means labelled. Inputs are never modified.

Where this module departs from DEKR's data pipeline, on purpose:

- A person's centre is the mean of its labelled joints (the reference's ``get_joints`` computes the same, before the
  affine), and it exists only when the person has a labelled joint: the reference also marks a centre at ``(0, 0)``
  for a large person with no labelled joint, a spurious peak in the image corner.
- The reference drops the centre of a person whose COCO segment area is under ``32**2``; that area is not in the
  joints, so pass ``center_visible`` to do the same.
- The offset weights are ``1 / sqrt(area)``; the reference's area is ``w**2 + h**2`` of a box that also holds the
  image origin (its unlabelled and centre rows are still zero when measured), scaled once by the input affine. Pass
  ``areas`` to reproduce any such convention; the default is ``w**2 + h**2`` of the labelled joints' box in output
  pixels, at least 1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["AETargets", "DEKRTargets", "ae_targets", "dekr_person_areas", "dekr_targets"]


class DEKRTargets(NamedTuple):
    """DEKR's targets for one image of ``K`` joints on an ``(H, W)`` output map (all ``float32``).

    Attributes:
        heatmaps: ``(K + 1, H, W)``, the centre heatmap last (as :class:`~hrnet_zoo.models.dekr.DEKR` predicts).
        heatmap_mask: ``(K + 1, H, W)``: 1 inside every drawn Gaussian's window, ``bg_weight`` elsewhere, 0 where
            the image mask ignores the pixel.
        offsets: ``(2K, H, W)``: around each centre, ``(x, y)`` of the pixel minus joint ``k``'s at rows
            ``2k, 2k + 1`` (the vector from the joint to the centre pixel); 0 elsewhere.
        offset_weights: ``(2K, H, W)``: ``1 / sqrt(area)`` of the person an offset belongs to, 0 elsewhere.
    """

    heatmaps: np.ndarray
    heatmap_mask: np.ndarray
    offsets: np.ndarray
    offset_weights: np.ndarray


class AETargets(NamedTuple):
    """Associative embedding's targets for one image of ``K`` joints on an ``(H, W)`` output map.

    Attributes:
        heatmaps: ``(K, H, W)`` ``float32``.
        joints: ``(max_people, K, 2)`` ``int64``: per person, its joints inside the map packed first, each as
            ``(index into the flattened (T, H, W) tag maps, 1)``; ``(0, 0)`` rows pad.
    """

    heatmaps: np.ndarray
    joints: np.ndarray


def _output_hw(output_size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (output_size, output_size) if isinstance(output_size, int) else output_size
    if height <= 0 or width <= 0:
        raise ValueError(f"output_size must be positive (height, width), got {output_size}")
    return int(height), int(width)


def _check_joints(joints: ArrayLike) -> np.ndarray:
    array = np.array(joints, dtype=np.float64)  # a copy: the caller's joints are never modified
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"joints must be (persons, joints, 3) as (x, y, visibility), got shape {array.shape}")
    return array


def _per_person(values: ArrayLike, persons: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(persons, float(array))
    if array.shape != (persons,):
        raise ValueError(f"{name} must be a scalar or one value per person ({persons},), got shape {array.shape}")
    return array


def _inside(x: float, y: float, height: int, width: int) -> bool:
    return 0 <= x < width and 0 <= y < height


def dekr_person_areas(joints: ArrayLike) -> np.ndarray:
    """``(P,)`` the default DEKR areas: ``w**2 + h**2`` of each person's labelled-joint box, at least 1.

    Args:
        joints: ``(P, K, 3)`` ``(x, y, v)``.
    """
    array = _check_joints(joints)
    areas = np.ones(len(array))
    for i, person in enumerate(array):
        labelled = person[person[:, 2] > 0, :2]
        if len(labelled):
            w, h = labelled.max(axis=0) - labelled.min(axis=0)
            areas[i] = max(w * w + h * h, 1.0)
    return areas


def _with_centres(joints: np.ndarray, center_visible: np.ndarray) -> np.ndarray:
    """``(P, K + 1, 3)``: the joints and each person's centre, the mean of its labelled joints."""
    centres = np.zeros((len(joints), 1, 3))
    for i, person in enumerate(joints):
        labelled = person[:, 2] > 0
        if labelled.any() and center_visible[i]:
            centres[i, 0] = (*person[labelled, :2].mean(axis=0), 1.0)
    return np.concatenate([joints, centres], axis=1)


def _draw_dekr_heatmaps(
    joints: np.ndarray, height: int, width: int, sigma: float, center_sigma: float, bg_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """DEKR's ``HeatmapGenerator``: a Gaussian around each (sub-pixel) joint, max over persons, and the window mask."""
    channels = joints.shape[1]
    heatmaps = np.zeros((channels, height, width), np.float32)
    drawn = np.zeros((channels, height, width), bool)
    for person in joints:
        for k, (x, y, v) in enumerate(person):
            if v <= 0 or not _inside(x, y, height, width):
                continue
            s = sigma if k < channels - 1 else center_sigma
            x0, x1 = max(0, math.floor(x - 3 * s - 1)), min(math.ceil(x + 3 * s + 2), width)
            y0, y1 = max(0, math.floor(y - 3 * s - 1)), min(math.ceil(y + 3 * s + 2), height)
            xs, ys = np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64)[:, None]
            window = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * s**2))
            heatmaps[k, y0:y1, x0:x1] = np.maximum(heatmaps[k, y0:y1, x0:x1], window)
            drawn[k, y0:y1, x0:x1] = True
    return heatmaps, np.where(drawn, np.float32(1.0), np.float32(bg_weight))


def _draw_dekr_offsets(
    joints: np.ndarray, areas: np.ndarray, height: int, width: int, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """DEKR's ``OffsetGenerator``: in the ``[c - radius, c + radius)`` box around each (truncated) centre ``c``,
    pixel minus joint; where two persons' boxes meet, the smaller area keeps the pixel (the area map shared by
    all joints, and a zero offset counting as unset, as there)."""
    num_joints = joints.shape[1] - 1
    offsets = np.zeros((2 * num_joints, height, width), np.float32)
    weights = np.zeros((2 * num_joints, height, width), np.float32)
    area_map = np.zeros((height, width), np.float32)
    for person, area in zip(joints, areas):
        cx, cy, cv = int(person[-1, 0]), int(person[-1, 1]), int(person[-1, 2])
        if cv < 1 or not _inside(cx, cy, height, width):
            continue
        x0, x1 = max(cx - radius, 0), min(cx + radius, width)
        y0, y1 = max(cy - radius, 0), min(cy + radius, height)
        xs, ys = np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64)[:, None]
        weight = np.float32(1.0 / np.sqrt(area))
        for k, (x, y, v) in enumerate(person[:-1]):
            if v <= 0 or not _inside(x, y, height, width):
                continue
            box = (slice(y0, y1), slice(x0, x1))
            taken = (offsets[(2 * k, *box)] != 0) | (offsets[(2 * k + 1, *box)] != 0)
            write = ~(taken & (area_map[box].astype(np.float64) < area))
            offsets[(2 * k, *box)][write] = np.broadcast_to(xs - x, write.shape)[write]
            offsets[(2 * k + 1, *box)][write] = np.broadcast_to(ys - y, write.shape)[write]
            weights[(2 * k, *box)][write] = weight
            weights[(2 * k + 1, *box)][write] = weight
            area_map[box][write] = area
    return offsets, weights


def dekr_targets(
    joints: ArrayLike,
    output_size: int | tuple[int, int],
    sigma: float = 2.0,
    center_sigma: float = 4.0,
    radius: int = 4,
    bg_weight: float = 0.1,
    areas: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    center_visible: ArrayLike | None = None,
) -> DEKRTargets:
    """DEKR's targets for one image (defaults: the COCO experiments, ``SIGMA`` 2, ``CENTER_SIGMA`` 4,
    ``OFFSET_RADIUS`` 4, ``BG_WEIGHT`` 0.1).

    Args:
        joints: ``(P, K, 3)`` ``(x, y, v)`` in output pixels.
        output_size: ``(height, width)`` of the output map (or one int for a square one; 128 for a 512 input).
        sigma: Gaussian sigma of the joints' heatmaps.
        center_sigma: Gaussian sigma of the centre heatmap.
        radius: Offsets are set on the ``2 * radius`` square around each centre.
        bg_weight: Heatmap mask value outside every Gaussian's window.
        areas: ``(P,)`` positive person areas for the offset weights ``1 / sqrt(area)``; default
            :func:`dekr_person_areas`.
        mask: ``(H, W)`` image mask, 1 to train on, 0 to ignore (crowds, persons without joints); default all 1.
        center_visible: ``(P,)`` whether each person has a centre (the reference drops those of persons under
            ``32**2`` segment area); default all.

    Returns:
        :class:`DEKRTargets`.
    """
    array = _check_joints(joints)
    height, width = _output_hw(output_size)
    if sigma <= 0 or center_sigma <= 0 or radius < 0:
        raise ValueError(f"sigma and center_sigma must be positive, radius >= 0; got {sigma}, {center_sigma}, {radius}")
    persons = len(array)
    person_areas = dekr_person_areas(array) if areas is None else _per_person(areas, persons, "areas")
    if (person_areas <= 0).any():
        raise ValueError(f"areas must be positive, got {person_areas}")
    visible = np.ones(persons, bool) if center_visible is None else np.asarray(center_visible, bool)
    if visible.shape != (persons,):
        raise ValueError(f"center_visible must be ({persons},), got shape {visible.shape}")
    image_mask = np.ones((height, width), np.float32) if mask is None else np.asarray(mask, np.float32)
    if image_mask.shape != (height, width):
        raise ValueError(f"mask must be the output size {(height, width)}, got shape {image_mask.shape}")
    with_centres = _with_centres(array, visible)
    heatmaps, window_mask = _draw_dekr_heatmaps(with_centres, height, width, sigma, center_sigma, bg_weight)
    offsets, weights = _draw_dekr_offsets(with_centres, person_areas, height, width, int(radius))
    return DEKRTargets(heatmaps, window_mask * image_mask, offsets, weights)


def ae_targets(
    joints: ArrayLike,
    output_size: int | tuple[int, int],
    sigma: float | ArrayLike = 2.0,
    max_people: int = 30,
    tag_per_joint: bool = True,
) -> AETargets:
    """Associative embedding's targets for one image and one output (HigherHRNet: call once per output size).

    The heatmaps are the reference's ``HeatmapGenerator`` (a ``6 sigma + 3`` Gaussian kernel placed at the
    truncated joint, max over persons), or ``ScaleAwareHeatmapGenerator`` when ``sigma`` is one value per person;
    the tag indices its ``JointsGenerator``.

    Args:
        joints: ``(P, K, 3)`` ``(x, y, v)`` in output pixels.
        output_size: ``(height, width)`` of the output map (or one int).
        sigma: Gaussian sigma (COCO: 2), or ``(P,)`` per-person sigmas.
        max_people: Rows of the tag index array (COCO: ``MAX_NUM_PEOPLE`` 30); more persons raise.
        tag_per_joint: One tag map per joint (the index includes ``k * H * W``), else a single one.

    Returns:
        :class:`AETargets`.
    """
    array = _check_joints(joints)
    height, width = _output_hw(output_size)
    persons, num_joints = array.shape[:2]
    sigmas = _per_person(sigma, persons, "sigma")
    if (sigmas <= 0).any():
        raise ValueError(f"sigma must be positive, got {sigma}")
    if persons > max_people:
        raise ValueError(f"{persons} persons exceed max_people={max_people}")
    heatmaps = np.zeros((num_joints, height, width), np.float32)
    tag_index = np.zeros((max_people, num_joints, 2), np.int64)
    for i, (person, s) in enumerate(zip(array, sigmas)):
        centre = 3 * s + 1  # the kernel's centre; its top-left corner sits at the rounded x - 3 sigma - 1
        found = 0
        for k, (x, y, v) in enumerate(person):
            xi, yi = int(x), int(y)
            if v <= 0 or not _inside(xi, yi, height, width):
                continue
            left, top = int(np.round(xi - 3 * s - 1)), int(np.round(yi - 3 * s - 1))
            right, bottom = int(np.round(xi + 3 * s + 2)), int(np.round(yi + 3 * s + 2))
            x0, x1, y0, y1 = max(0, left), min(right, width), max(0, top), min(bottom, height)
            xs = np.arange(x0, x1, dtype=np.float64) - left - centre
            ys = np.arange(y0, y1, dtype=np.float64)[:, None] - top - centre
            window = np.exp(-(xs**2 + ys**2) / (2 * s**2))
            heatmaps[k, y0:y1, x0:x1] = np.maximum(heatmaps[k, y0:y1, x0:x1], window)
            tag_index[i, found] = ((k * height * width if tag_per_joint else 0) + yi * width + xi, 1)
            found += 1
    return AETargets(heatmaps, tag_index)
