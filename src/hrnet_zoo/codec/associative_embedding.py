"""Associative-embedding grouping: HigherHRNet's bottom-up decoding of heatmaps and tags into persons.

Reference (MIT): https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation, ``lib/core/group.py``
(``HeatmapParser``: ``nms``, ``top_k``, ``match_by_tag``, ``adjust``, ``refine``, ``parse``),
``lib/core/inference.py`` (``get_multi_stage_outputs``, ``aggregate_results``) and ``tools/valid.py`` (their order);
its image geometry is :mod:`.bottom_up`'s. The functions here follow them step for step; choices of the reference
kept on purpose:

- Groups are keyed by the first tag value of the joint that opened them; a new group whose key equals an existing
  one replaces that group's joint and restarts its tag list (the reference's ``dict`` keyed by ``tag[0]``).
- Only the first ``max_num_people`` groups take part in matching, yet later joints may still open groups, so more
  than ``max_num_people`` persons can come out; ``ignore_too_much`` skips a joint once the cap is reached.
- The assignment is :func:`munkres_assignment`, munkres 1.1's algorithm in its order: with ``use_detection_val``
  the cost ``100 * round(distance) - score`` ties often (the score is constant along a row), a tie has several
  optimal assignments, and another solver (scipy's) picks other ones.
- Person scores are the mean over all joints of the scores before ``refine`` fills missing joints.
- Sizes of images and maps are ``(height, width)`` here (the reference writes ``(width, height)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._munkres import munkres_assignment
from .bottom_up import BottomUpResize

__all__ = [
    "COCO_GROUPING_ORDER",
    "adjust_keypoints",
    "aggregate_ae_scales",
    "decode_associative_embedding",
    "group_by_tags",
    "heatmap_nms",
    "multi_stage_outputs",
    "refine_keypoints",
    "top_k_candidates",
]

COCO_GROUPING_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
"""The reference's ``joint_order`` for COCO: head, shoulders, hips, then the limbs outwards."""


def _default_order(num_joints: int) -> tuple[int, ...]:
    return COCO_GROUPING_ORDER if num_joints == len(COCO_GROUPING_ORDER) else tuple(range(num_joints))


def _resize(maps: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)


def heatmap_nms(heatmaps: Tensor, kernel: int = 5) -> Tensor:
    """Zero every value of ``(B, K, H, W)`` heatmaps that is not the maximum of its ``kernel`` window (odd)."""
    if kernel % 2 != 1:
        raise ValueError(f"the NMS kernel must be odd, got {kernel}")
    peaks = F.max_pool2d(heatmaps, kernel, stride=1, padding=(kernel - 1) // 2)
    return heatmaps * torch.eq(peaks, heatmaps).float()


def top_k_candidates(heatmaps: Tensor, tags: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """The ``k`` highest values of each (already NMS-ed) heatmap and the tags there.

    Args:
        heatmaps: ``(B, K, H, W)``.
        tags: ``(B, K, H, W, L)`` (``L`` tag values per pixel: one per flip and scale).

    Returns:
        ``(B, K, k)`` values, ``(B, K, k, 2)`` integer ``(x, y)`` locations and ``(B, K, k, L)`` tags.
    """
    b, j, _, w = heatmaps.shape
    vals, index = heatmaps.reshape(b, j, -1).topk(k, dim=2)
    flat_tags = tags.reshape(b, j, -1, tags.shape[-1])
    cand_tags = torch.gather(flat_tags, 2, index[..., None].expand(-1, -1, -1, tags.shape[-1]))
    return vals, torch.stack([index % w, index // w], dim=3), cand_tags


def _open_group(
    groups: dict[float, np.ndarray],
    group_tags: dict[float, list[np.ndarray]],
    joint: int,
    row: np.ndarray,
    tag: np.ndarray,
    empty: np.ndarray,
) -> None:
    """Open (or, on a key collision, overwrite as the reference does) the group keyed by the tag's first value."""
    key = float(tag[0])
    groups.setdefault(key, empty.copy())[joint] = row
    group_tags[key] = [tag]


def group_by_tags(
    vals: np.ndarray,
    locs: np.ndarray,
    tags: np.ndarray,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    use_detection_val: bool = True,
    ignore_too_much: bool = False,
    max_num_people: int = 30,
    joint_order: Sequence[int] | None = None,
) -> np.ndarray:
    """Group one image's candidates into persons, joint by joint in ``joint_order`` (the reference's ``match_by_tag``).

    Candidates scoring above ``detection_threshold`` are assigned to the mean tags of the groups so far
    (:func:`munkres_assignment`, cost the tag distance, or ``100 * round(distance) - score`` with
    ``use_detection_val``); a pair farther apart
    than ``tag_threshold``, or a candidate left over, opens a group.

    Args:
        vals: ``(K, M)`` candidate scores.
        locs: ``(K, M, 2)`` candidate ``(x, y)``.
        tags: ``(K, M, L)`` candidate tags.
        joint_order: The order joints are grouped in; COCO's :data:`COCO_GROUPING_ORDER` for 17 joints, else
            ``0..K-1``.

    Returns:
        ``(P, K, 3 + L)`` float32 persons: ``x, y, score`` and the tags of each joint, zeros where missing.
    """
    num_joints, _, tag_dim = tags.shape
    order = _default_order(num_joints) if joint_order is None else tuple(joint_order)
    empty = np.zeros((num_joints, 3 + tag_dim))
    groups: dict[float, np.ndarray] = {}
    group_tags: dict[float, list[np.ndarray]] = {}
    for step, joint in enumerate(order):
        rows = np.concatenate([locs[joint], vals[joint, :, None], tags[joint]], axis=1).astype(np.float64)
        keep = rows[:, 2] > detection_threshold
        rows, row_tags = rows[keep], tags[joint][keep]
        if len(rows) == 0:
            continue
        if step == 0 or not groups:
            for row, tag in zip(rows, row_tags):
                _open_group(groups, group_tags, joint, row, tag, empty)
            continue
        keys = list(groups)[:max_num_people]
        if ignore_too_much and len(keys) == max_num_people:
            continue
        means = np.array([np.mean(group_tags[key], axis=0) for key in keys])
        distance = np.linalg.norm(rows[:, None, 3:] - means[None], ord=2, axis=2)
        cost = np.round(distance) * 100 - rows[:, 2:3] if use_detection_val else distance
        if len(rows) > len(keys):
            cost = np.concatenate([cost, np.full((len(rows), len(rows) - len(keys)), 1e10)], axis=1)
        for r, c in munkres_assignment(cost):
            if c < len(keys) and distance[r, c] < tag_threshold:
                groups[keys[c]][joint] = rows[r]
                group_tags[keys[c]].append(row_tags[r])
            else:
                _open_group(groups, group_tags, joint, rows[r], row_tags[r], empty)
    if not groups:
        return np.zeros((0, num_joints, 3 + tag_dim), np.float32)
    return np.array(list(groups.values())).astype(np.float32)


def _quarter_offsets(heatmaps: np.ndarray, joints: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(N, 2)`` steps of +-0.25 towards the higher neighbour (borders clamped) at integer ``(x, y)``."""
    h, w = heatmaps.shape[1:]
    maps = heatmaps[joints]
    n = np.arange(len(joints))
    right = maps[n, y, np.minimum(x + 1, w - 1)] > maps[n, y, np.maximum(x - 1, 0)]
    down = maps[n, np.minimum(y + 1, h - 1), x] > maps[n, np.maximum(y - 1, 0), x]
    return np.where(np.stack([right, down], axis=1), 0.25, -0.25)


def adjust_keypoints(keypoints: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Shift detected joints (score > 0) a quarter pixel towards their higher neighbour, plus half a pixel.

    Args:
        keypoints: ``(P, K, C)`` persons, ``x, y, score`` first.
        heatmaps: ``(K, H, W)`` heatmaps of the image.

    Returns:
        A ``(P, K, C)`` copy with the adjusted ``x, y``.
    """
    out = keypoints.copy()
    person, joint = np.nonzero(keypoints[..., 2] > 0)
    xy = keypoints[person, joint, :2]
    whole = xy.astype(np.int64)
    out[person, joint, :2] = xy + _quarter_offsets(heatmaps, joint, whole[:, 0], whole[:, 1]) + 0.5
    return out


def refine_keypoints(heatmaps: np.ndarray, tags: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Fill each person's missing joints (score 0) from the heatmaps, near the mean tag of its detected joints.

    For every joint, the pixel maximising ``heatmap - round(|tag - mean tag|)`` is taken (half a pixel plus the
    quarter step as :func:`adjust_keypoints`) when its heatmap value is positive.

    Args:
        heatmaps: ``(K, H, W)``.
        tags: ``(K, H, W, L)``.
        keypoints: ``(P, K, C)`` persons, ``x, y, score`` first.

    Returns:
        A ``(P, K, C)`` copy with the missing joints filled where found.
    """
    out = keypoints.copy()
    num_joints, _, w = heatmaps.shape
    joints = np.arange(num_joints)
    for person in out:
        seen = np.nonzero(person[:, 2] > 0)[0]
        at = person[seen, :2].astype(np.int32)
        mean_tag = np.mean(tags[seen, at[:, 1], at[:, 0]], axis=0)
        distance = ((tags - mean_tag) ** 2).sum(axis=3) ** 0.5
        best = (heatmaps - np.round(distance)).reshape(num_joints, -1).argmax(axis=1)
        y, x = best // w, best % w
        val = heatmaps[joints, y, x]
        fill = (val > 0) & (person[:, 2] == 0)
        xy = np.stack([x, y], axis=1) + 0.5 + _quarter_offsets(heatmaps, joints, x, y)
        person[fill, :2] = xy[fill]
        person[fill, 2] = val[fill]
    return out


def decode_associative_embedding(
    heatmaps: Tensor,
    tags: Tensor,
    max_num_people: int = 30,
    nms_kernel: int = 5,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    use_detection_val: bool = True,
    ignore_too_much: bool = False,
    joint_order: Sequence[int] | None = None,
    adjust: bool = True,
    refine: bool = True,
    resize: BottomUpResize | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Persons from heatmaps and tags, per image (the reference's ``HeatmapParser.parse``, defaults of its COCO runs).

    Args:
        heatmaps: ``(B, K, H, W)``.
        tags: ``(B, K, H, W, L)``, or ``(B, 1, H, W, L)`` for a single tag map shared by all joints;
            ``(B, K, H, W)`` is taken as ``L = 1``.
        resize: Maps the persons from heatmap pixels to image pixels (:meth:`BottomUpResize.to_image` from the
            ``(H, W)`` maps, the reference's ``get_final_preds``), after ``refine``.

    Returns:
        Per image, ``(P, K, 3 + L)`` float32 persons (``x, y, score``, tags; in heatmap pixels, or image pixels
        with ``resize``) and ``(P,)`` person scores.
    """
    if tags.dim() == 4:
        tags = tags[..., None]
    tags = tags.expand(-1, heatmaps.shape[1], -1, -1, -1)
    candidates = top_k_candidates(heatmap_nms(heatmaps, nms_kernel), tags, max_num_people)
    vals, locs, cand_tags = (t.detach().cpu().numpy() for t in candidates)
    heatmaps_np, tags_np = heatmaps.detach().cpu().numpy(), tags.detach().cpu().numpy()
    results = []
    for i in range(heatmaps.shape[0]):
        people = group_by_tags(
            vals[i],
            locs[i],
            cand_tags[i],
            detection_threshold,
            tag_threshold,
            use_detection_val,
            ignore_too_much,
            max_num_people,
            joint_order,
        )
        if adjust:
            people = adjust_keypoints(people, heatmaps_np[i])
        scores = people[:, :, 2].mean(axis=1)
        if refine:
            people = refine_keypoints(heatmaps_np[i], tags_np[i], people)
        if resize is not None:
            people = resize.to_image(torch.from_numpy(people), tuple(heatmaps.shape[-2:])).numpy()
        results.append((people, scores))
    return results


def _average_stages(
    outputs: Sequence[Tensor],
    num_joints: int,
    heatmap_stages: Sequence[bool],
    tag_stages: Sequence[bool],
    flip_index: Sequence[int] | None,
    tag_per_joint: bool,
) -> tuple[Tensor, list[Tensor]]:
    """Mean heatmap of the chosen stages, resized to the last one's size, and their tags (flipped back if asked)."""
    size = outputs[-1].shape[2:]
    heatmap_sum, count, tags = 0, 0, []
    for i, output in enumerate(outputs):
        if i != len(outputs) - 1:
            output = _resize(output, size)
        if flip_index is not None:
            output = torch.flip(output, [3])
        if heatmap_stages[i]:
            heatmaps = output[:, :num_joints]
            heatmap_sum = heatmap_sum + (heatmaps if flip_index is None else heatmaps[:, list(flip_index)])
            count += 1
        if tag_stages[i]:
            stage_tags = output[:, num_joints:]
            tags.append(stage_tags[:, list(flip_index)] if flip_index is not None and tag_per_joint else stage_tags)
    if count == 0:
        raise ValueError("no stage is chosen for the heatmaps")
    return heatmap_sum / count, tags


def multi_stage_outputs(
    outputs: Sequence[Tensor],
    num_joints: int,
    flipped_outputs: Sequence[Tensor] | None = None,
    flip_index: Sequence[int] | None = None,
    tag_per_joint: bool = True,
    heatmap_stages: Sequence[bool] | None = None,
    tag_stages: Sequence[bool] | None = None,
    project_size: tuple[int, int] | None = None,
) -> tuple[list[Tensor], list[Tensor]]:
    """One scale's heatmaps and tags from the network's outputs (the reference's ``get_multi_stage_outputs``).

    Every output but the last is resized to the last one's size (stride 4 to stride 2 for HigherHRNet); the chosen
    stages' heatmaps are averaged, their tags kept. ``flipped_outputs`` (the outputs for the mirrored image) are
    flipped back, their joints permuted by ``flip_index``. ``project_size`` (PROJECT2IMAGE) resizes everything to
    that ``(height, width)``, the input size at scale 1 (:attr:`BottomUpResize.base_size`).

    Args:
        outputs: The network's outputs, ``(B, K + T, H_i, W_i)`` (``T`` tag maps, possibly 0).
        heatmap_stages: Which outputs give heatmaps (the reference's ``TEST.WITH_HEATMAPS``); default all.
        tag_stages: Which outputs give tags (``TEST.WITH_AE``); default those with more than ``K`` channels.

    Returns:
        A list of ``(B, K, H, W)`` heatmaps (the image's, then the flipped one's) and a list of ``(B, T, H, W)`` tags.
    """
    heatmap_stages = [True] * len(outputs) if heatmap_stages is None else heatmap_stages
    tag_stages = [o.shape[1] > num_joints for o in outputs] if tag_stages is None else tag_stages
    heatmaps, tags = _average_stages(outputs, num_joints, heatmap_stages, tag_stages, None, tag_per_joint)
    heatmap_list = [heatmaps]
    if flipped_outputs is not None:
        if flip_index is None:
            raise ValueError("flip testing needs the flip_index")
        flipped, flipped_tags = _average_stages(
            flipped_outputs, num_joints, heatmap_stages, tag_stages, flip_index, tag_per_joint
        )
        heatmap_list.append(flipped)
        tags = tags + flipped_tags
    if project_size is not None:
        heatmap_list = [_resize(h, project_size) for h in heatmap_list]
        tags = [_resize(t, project_size) for t in tags]
    return heatmap_list, tags


def aggregate_ae_scales(
    per_scale: Sequence[tuple[float, Sequence[Tensor], Sequence[Tensor]]], project2image: bool
) -> tuple[Tensor, Tensor]:
    """Average heatmaps over scales and stack tags (the reference's ``aggregate_results`` loop in ``valid.py``).

    Args:
        per_scale: ``(scale, heatmaps, tags)`` from :func:`multi_stage_outputs`, scales in decreasing order.
            Heatmaps are flip-averaged; tags are kept from scale 1 only (or the single scale).
        project2image: Whether the maps were projected to one size; if not, heatmaps and tags are resized to the
            first scale's size.

    Returns:
        ``(B, K, H, W)`` heatmaps and ``(B, K, H, W, L)`` tags.
    """
    final: Tensor | None = None
    tag_list: list[Tensor] = []
    for scale, heatmaps, tags in per_scale:
        if scale == 1 or len(per_scale) == 1:
            if final is not None and not project2image:
                tags = [_resize(t, final.shape[2:]) for t in tags]
            tag_list += [t.unsqueeze(4) for t in tags]
        average = (heatmaps[0] + heatmaps[1]) / 2.0 if len(heatmaps) == 2 else heatmaps[0]
        if final is None:
            final = average
        else:
            final = final + (average if project2image else _resize(average, final.shape[2:]))
    if final is None:
        raise ValueError("no scale given")
    return final / float(len(per_scale)), torch.cat(tag_list, dim=4)
