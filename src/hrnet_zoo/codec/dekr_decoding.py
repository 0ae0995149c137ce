"""DEKR's bottom-up decoding, as the original's test protocol (``tools/valid.py``) runs it, in torch.

Reference: https://github.com/HRNet/DEKR (MIT): ``lib/core/inference.py`` (``offset_to_pose``,
``get_multi_stage_outputs``, ``hierarchical_pool``, ``get_maximum_from_heatmap``, ``aggregate_results``),
``lib/core/nms.py`` (``get_heat_value``, ``cal_area_2_torch``, ``nms_core``, ``pose_nms``), ``lib/utils/rescore.py``
(``get_feature``, ``rescore_valid``) and ``lib/utils/transforms.py`` (``up_interpolate``; its image geometry is
:mod:`.bottom_up`'s). The order, per image: the flip test per scale (:func:`flip_test_outputs`), centre NMS and the
poses at the centres (:func:`scale_proposals`), all scales together (:func:`aggregate_dekr_scales`), pose NMS scored
by the heatmaps at the joints (:func:`pose_nms`), the way back to the image (:class:`BottomUpResize`), rescoring
(:func:`dekr_rescore`). :func:`decode_dekr` runs them for one scale. The original's optional ``MATCH_HMP`` step (off in
its published configurations) is not reproduced.

Offsets are the network's ``(x, y)`` per joint, pointing from the keypoint to the centre; coordinates are
``(x, y)`` pixels, a heatmap pixel ``i`` at input pixel ``stride * i``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .bottom_up import BottomUpResize

__all__ = [
    "DEKR_COCO_LINKS",
    "DEKR_CROWDPOSE_LINKS",
    "DEKR_RESCORE_NORM_LINKS",
    "aggregate_dekr_scales",
    "centre_nms",
    "decode_dekr",
    "dekr_rescore",
    "flip_input",
    "flip_test_outputs",
    "heat_values",
    "offsets_to_poses",
    "pool_kernel",
    "pose_nms",
    "rescore_features",
    "scale_proposals",
    "up_interpolate",
]

#: The original rescore net's links for COCO (``JOINT_COCO_LINK_1/2``): its weights expect this order.
DEKR_COCO_LINKS: tuple[tuple[int, int], ...] = (
    *((0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 6), (5, 7), (5, 11)),
    *((6, 8), (6, 12), (7, 9), (8, 10), (11, 12), (11, 13), (12, 14), (13, 15), (14, 16)),
)
#: The same for CrowdPose (``JOINT_CROWDPOSE_LINK_1/2``).
DEKR_CROWDPOSE_LINKS: tuple[tuple[int, int], ...] = (
    *((12, 13), (13, 0), (13, 1), (0, 2), (1, 3), (2, 4), (3, 5), (0, 6)),
    *((1, 7), (6, 8), (7, 9), (8, 10), (9, 11), (6, 7), (0, 1)),
)
#: The two links (indices into the links) whose mean length normalises the rescore features: the torso sides.
DEKR_RESCORE_NORM_LINKS = (9, 11)


def flip_input(images: Tensor, shift: int = 3) -> Tensor:
    """The original's flipped input: mirrored, then moved ``shift`` pixels left (the last ``shift`` columns kept).

    With the shift (``stride - 1``), heatmap pixel ``i`` of the flipped pass lies at ``w - 1 - i`` of the plain one.
    Shapes: ``(B, C, H, W) -> (B, C, H, W)``.
    """
    flipped = images.flip(-1)
    return torch.cat([flipped[..., shift:], flipped[..., flipped.shape[-1] - shift :]], dim=-1)


def offsets_to_poses(offsets: Tensor, flip_index: Sequence[int] | None = None) -> Tensor:
    """The pose regressed at every pixel: the pixel minus its offsets (the original's ``offset_to_pose``).

    With ``flip_index`` the offsets are those of the flipped input, and the poses are returned in the unflipped
    frame: joints swapped by ``flip_index``, ``x`` mirrored to ``w - x - 1`` and the pixel grid mirrored.

    Shapes: ``(B, 2K, H, W) -> (B, H * W, K, 2)``, pixel ``y * W + x``.
    """
    b, c, h, w = offsets.shape
    y, x = torch.meshgrid(
        torch.arange(h, dtype=offsets.dtype, device=offsets.device),
        torch.arange(w, dtype=offsets.dtype, device=offsets.device),
        indexing="ij",
    )
    grid = torch.stack([x, y], dim=-1).reshape(1, h * w, 1, 2)
    poses = grid - offsets.permute(0, 2, 3, 1).reshape(b, h * w, c // 2, 2)
    if flip_index is None:
        return poses
    poses = poses[:, :, list(flip_index)]
    poses = torch.stack([w - poses[..., 0] - 1, poses[..., 1]], dim=-1)
    return poses.reshape(b, h, w, c // 2, 2).flip(2).reshape(b, h * w, c // 2, 2)


def flip_test_outputs(
    heatmaps: Tensor,
    offsets: Tensor,
    flip_heatmaps: Tensor | None = None,
    flip_offsets: Tensor | None = None,
    flip_index: Sequence[int] | None = None,
) -> tuple[Tensor, Tensor]:
    """Heatmaps and poses of one scale, averaged with the flipped pass (the original's ``get_multi_stage_outputs``).

    The flipped pass (on :func:`flip_input`) is mirrored back with its joints swapped by ``flip_index`` (the centre,
    last, stays), and its poses are taken as :func:`offsets_to_poses` with ``flip_index``.

    Shapes: ``(B, K + 1, H, W)``, ``(B, 2K, H, W)`` -> heatmaps ``(B, K + 1, H, W)``, poses ``(B, H * W, K, 2)``.
    """
    poses = offsets_to_poses(offsets)
    if flip_heatmaps is None or flip_offsets is None:
        return heatmaps, poses
    if flip_index is None:
        raise ValueError("the flip test needs flip_index")
    heat_index = [*flip_index, len(flip_index)]
    heatmaps = (heatmaps + flip_heatmaps.flip(3)[:, heat_index]) / 2.0
    return heatmaps, (poses + offsets_to_poses(flip_offsets, flip_index)) / 2.0


def pool_kernel(height: int, width: int, thresholds: tuple[float, float] = (300, 200)) -> int:
    """The centre NMS window the original picks from the map size (``hierarchical_pool``, ``POOL_THRESHOLD1/2``):
    7 above ``thresholds[0]`` mean side, 5 above ``thresholds[1]``, else 3."""
    size = (height + width) / 2.0
    return 7 if size > thresholds[0] else 5 if size > thresholds[1] else 3


def centre_nms(
    centre_heatmap: Tensor, kernel: int | None = None, max_persons: int = 30, threshold: float = 0.01
) -> tuple[Tensor, Tensor, Tensor]:
    """Person centres: local maxima of the centre heatmap (max-pool NMS), the ``max_persons`` best.

    Args:
        centre_heatmap: ``(B, H, W)``.
        kernel: The max-pool window; ``None``: :func:`pool_kernel` of the map size, as the original.
        max_persons: Candidates kept (``DATASET.MAX_NUM_PEOPLE``).
        threshold: A centre must score above it (``TEST.KEYPOINT_THRESHOLD``).

    Returns:
        ``positions`` ``(B, M, 2)`` integer ``(x, y)``, ``scores`` ``(B, M)`` best first and ``keep`` ``(B, M)``
        (score above ``threshold``, a prefix of each row), ``M = min(max_persons, H * W)``.
    """
    b, h, w = centre_heatmap.shape
    kernel = pool_kernel(h, w) if kernel is None else kernel
    maxima = F.max_pool2d(centre_heatmap[:, None], kernel, 1, kernel // 2)[:, 0]
    peaks = centre_heatmap * torch.eq(maxima, centre_heatmap).to(centre_heatmap.dtype)
    scores, index = peaks.reshape(b, h * w).topk(min(max_persons, h * w), dim=1)
    positions = torch.stack([index % w, torch.div(index, w, rounding_mode="floor")], dim=-1)
    return positions, scores, scores > threshold


def up_interpolate(x: Tensor, size: tuple[int, int]) -> Tensor:
    """The original's ``up_interpolate`` to ``size`` ``(height, width)``: with ``f = size // (H, W)`` (floor), pixel
    ``i`` lands on ``f * i`` (bilinear, ``align_corners=True``) and the last ``f - 1`` rows and columns repeat the
    border. Shapes: ``(B, C, H, W) -> (B, C, *size)``.
    """
    h, w = x.shape[-2:]
    fh, fw = int(size[0] / h), int(size[1] / w)
    inner = F.interpolate(x, size=[size[0] - fh + 1, size[1] - fw + 1], mode="bilinear", align_corners=True)
    return F.pad(inner, (0, fw - 1, 0, fh - 1), mode="replicate")


def scale_proposals(
    heatmaps: Tensor,
    poses: Tensor,
    scale: float = 1.0,
    stride: float = 4.0,
    kernel: int | None = None,
    max_persons: int = 30,
    threshold: float = 0.01,
) -> tuple[Tensor, list[Tensor]]:
    """One scale's share of the original's ``aggregate_results``: the heatmaps brought to the scale-1 input size
    and the poses at the centres (:func:`centre_nms`) in scale-1 input pixels, scored by their centre.

    Args:
        heatmaps: ``(B, K + 1, H, W)`` of this scale (:func:`flip_test_outputs`).
        poses: ``(B, H * W, K, 2)`` of this scale.
        scale: The scale of this input (``TEST.SCALE_FACTOR``).
        stride: Input over heatmap size (``INPUT_SIZE / OUTPUT_SIZE``); 1 keeps heatmap pixels at scale 1.

    Returns:
        Heatmaps ``(B, K + 1, int(H * stride / scale), int(W * stride / scale))`` (:func:`up_interpolate`) and,
        per image, proposals ``(P, K, 3)``: ``(x, y, centre score)``.
    """
    reverse_scale = stride / scale
    h, w = heatmaps.shape[-2:]
    resized = up_interpolate(heatmaps, (int(reverse_scale * h), int(reverse_scale * w)))
    positions, scores, keep = centre_nms(heatmaps[:, -1], kernel, max_persons, threshold)
    proposals = []
    for image_poses, image_positions, image_scores, image_keep in zip(poses, positions, scores, keep):
        index = image_positions[image_keep, 1] * w + image_positions[image_keep, 0]
        pose = reverse_scale * image_poses[index]
        centre = image_scores[image_keep][:, None, None].expand(-1, pose.shape[1], 1)
        proposals.append(torch.cat([pose, centre], dim=2))
    return resized, proposals


def aggregate_dekr_scales(
    heatmaps: Sequence[Tensor], proposals: Sequence[Sequence[Tensor]], scales: Sequence[float], decrease: float = 0.9
) -> tuple[Tensor, list[Tensor]]:
    """All scales together, as the original's ``aggregate_results`` and the start of its ``pose_nms``.

    The heatmaps (of the same size, :func:`scale_proposals`) are averaged; the proposals are concatenated from the
    largest scale down, those of every scale but 1 rescored to ``score / its max * scale 1's max * decrease``
    (``TEST.DECREASE``; a max of a scale without proposals is 1).

    Args:
        heatmaps: Per scale, ``(B, K + 1, H, W)``.
        proposals: Per scale, per image, ``(P_s, K, 3)``.
        scales: The scales; one must be 1.

    Returns:
        Average heatmaps ``(B, K + 1, H, W)`` and, per image, proposals ``(P, K, 3)``.
    """
    if 1.0 not in scales:
        raise ValueError(f"the scales must include 1, got {list(scales)}")
    order = sorted(range(len(scales)), key=lambda i: -scales[i])
    average = sum(heatmaps) / len(heatmaps)
    merged = []
    for per_scale in zip(*proposals):
        reference = per_scale[scales.index(1.0)]
        best = reference[:, :, 2].max() if reference.shape[0] else 1
        parts = []
        for i in order:
            pose = per_scale[i]
            if scales[i] != 1.0:
                peak = pose[:, :, 2].max() if pose.shape[0] else 1
                pose = torch.cat([pose[:, :, :2], pose[:, :, 2:] / peak * best * decrease], dim=2)
            parts.append(pose)
        merged.append(torch.cat(parts, dim=0))
    return average, merged


def heat_values(coords: Tensor, heatmaps: Tensor) -> Tensor:
    """The joint heatmaps at the poses' joints, at the floor of the coordinates clamped to the map
    (the original's ``get_heat_value``). Shapes: ``(P, K, 2)``, ``(K + 1, H, W)`` (centre last) -> ``(P, K)``."""
    k = coords.shape[1]
    h, w = heatmaps.shape[-2:]
    y = torch.clamp(torch.floor(coords[:, :, 1]), 0, h - 1).long()
    x = torch.clamp(torch.floor(coords[:, :, 0]), 0, w - 1).long()
    return torch.gather(heatmaps[:k].flatten(1, 2).transpose(0, 1), 0, y * w + x)


def _nms_keep(coords: Tensor, heat_scores: Tensor, threshold: float, num_joints_threshold: int) -> list[int]:
    """The original's ``nms_core``: indices of the poses kept, in the order found.

    Two poses are close when more than ``num_joints_threshold`` joints lie nearer than ``threshold`` times the
    first one's bounding-box diagonal. In proposal order, each pose not yet absorbed gathers its close poses, the
    best by heat score is kept unless absorbed already, and all of them are absorbed. A pose always counts as close
    to itself (the original raises where none is, a pose without extent or with too few joints).
    """
    diagonal = torch.sqrt(
        (coords[:, :, 0].max(-1)[0] - coords[:, :, 0].min(-1)[0]) ** 2
        + (coords[:, :, 1].max(-1)[0] - coords[:, :, 1].min(-1)[0]) ** 2
    )
    distance = (coords[:, None] - coords).pow(2).sum(3).sqrt()
    close = (distance < threshold * diagonal[:, None, None]).sum(2) > num_joints_threshold
    close |= torch.eye(len(coords), dtype=torch.bool, device=coords.device)
    close, heat_scores = close.cpu(), heat_scores.cpu()
    absorbed: set[int] = set()
    keep: list[int] = []
    for i in range(len(coords)):
        if i in absorbed:
            continue
        group = close[i].nonzero()[:, 0]
        best = int(group[torch.argmax(heat_scores[group])])
        if best in absorbed:
            continue
        keep.append(best)
        absorbed.update(group.tolist())
    return keep


def pose_nms(
    proposals: Tensor,
    heatmaps: Tensor,
    threshold: float = 0.05,
    num_joints_threshold: int = 8,
    max_persons: int = 30,
) -> tuple[Tensor, Tensor]:
    """The original's ``pose_nms`` for one image, after :func:`aggregate_dekr_scales`.

    Each joint's score becomes its centre score times the heatmap value there (:func:`heat_values`); a pose's heat
    score, the mean heatmap value of its joints, ranks it in the NMS (:func:`_nms_keep`, ``TEST.NMS_THRE`` and
    ``TEST.NMS_NUM_THRE``), and the best ``max_persons`` by heat score are kept if more survive (best first then,
    else in proposal order).

    Args:
        proposals: ``(P, K, 3)`` ``(x, y, centre score)``.
        heatmaps: ``(K + 1, H, W)`` average heatmaps, in the proposals' pixels.

    Returns:
        ``keypoints`` ``(N, K, 3)`` ``(x, y, score)`` and ``scores`` ``(N,)``, the mean joint score.
    """
    if proposals.shape[0] == 0:
        return proposals, proposals.new_zeros(0)
    coords = proposals[:, :, :2]
    heat = heat_values(coords, heatmaps)
    heat_scores = heat.sum(1) / heat.shape[1]
    keypoints = torch.cat([coords, proposals[:, :, 2:] * heat[:, :, None]], dim=2)
    keep = torch.tensor(_nms_keep(coords, heat_scores, threshold, num_joints_threshold), dtype=torch.long)
    keypoints, heat_scores = keypoints[keep], heat_scores[keep]
    if len(keep) > max_persons:
        keypoints = keypoints[heat_scores.topk(max_persons)[1]]
    return keypoints, keypoints[:, :, 2].mean(1)


def rescore_features(
    poses: Tensor,
    skeleton: Sequence[tuple[int, int]] = DEKR_COCO_LINKS,
    norm_links: tuple[int, int] = DEKR_RESCORE_NORM_LINKS,
) -> Tensor:
    """The rescore net's input (the original's ``get_feature``): per link the joint difference ``(dx, dy)`` and
    its length, divided by the mean length of links ``norm_links`` (at least 1), then the joint scores.

    Shapes: ``(P, K, 3) -> (P, 3 L + K)`` for ``L`` links (74 for COCO): ``[dx0, dy0, dx1, ...]``, the lengths,
    the scores.
    """
    first, second = (list(ends) for ends in zip(*skeleton))
    relative = poses[:, first, :2] - poses[:, second, :2]
    length = (relative[:, :, 0] ** 2 + relative[:, :, 1] ** 2) ** 0.5
    norm = ((length[:, norm_links[0]] + length[:, norm_links[1]]) / 2).clamp(min=1)[:, None]
    return torch.cat([(relative / norm[:, :, None]).flatten(1), length / norm, poses[:, :, 2]], dim=1).float()


def dekr_rescore(
    poses: Tensor,
    scores: Tensor,
    net: nn.Module,
    skeleton: Sequence[tuple[int, int]] = DEKR_COCO_LINKS,
    norm_links: tuple[int, int] = DEKR_RESCORE_NORM_LINKS,
) -> Tensor:
    """Person scores times the rescore net's predicted OKS (NaN taken as 0), the original's ``rescore_valid``.

    Shapes: ``(P, K, 3)`` in image pixels, ``(P,)`` -> ``(P,)``. ``net`` maps ``(P, F)`` to ``(P,)`` or ``(P, 1)``.
    """
    if poses.shape[0] == 0:
        return scores
    predicted = net(rescore_features(poses, skeleton, norm_links)).reshape(-1)
    return torch.where(torch.isnan(predicted), 0.0, predicted) * scores


def decode_dekr(
    heatmaps: Tensor,
    offsets: Tensor,
    flip_heatmaps: Tensor | None = None,
    flip_offsets: Tensor | None = None,
    flip_index: Sequence[int] | None = None,
    *,
    stride: float = 4.0,
    kernel: int | None = None,
    max_persons: int = 30,
    threshold: float = 0.01,
    nms_threshold: float = 0.05,
    nms_joints_threshold: int = 8,
    resize: BottomUpResize | None = None,
    rescore_net: nn.Module | None = None,
    rescore_skeleton: Sequence[tuple[int, int]] = DEKR_COCO_LINKS,
) -> list[tuple[Tensor, Tensor]]:
    """DEKR's single-scale test for a batch: flip test, centre NMS, poses at the centres, pose NMS, rescoring.

    Defaults are the original's COCO settings (``NMS_THRE`` 0.05, ``NMS_NUM_THRE`` 8, 30 people, threshold 0.01).

    Args:
        heatmaps: ``(B, K + 1, H, W)``, the centre last.
        offsets: ``(B, 2K, H, W)``.
        flip_heatmaps: The same for :func:`flip_input` of the input, or ``None``.
        flip_offsets: Likewise.
        flip_index: The mirror joint of each joint (``KeypointSet.flip_index``), for the flip test.
        stride: Input over heatmap size; the keypoints come in input pixels, heatmap pixels with 1.
        kernel: Centre NMS window, ``None`` for :func:`pool_kernel`.
        resize: Maps the keypoints to image pixels (:meth:`BottomUpResize.to_image`) before rescoring.
        rescore_net: Multiplies the scores by its OKS prediction (:func:`dekr_rescore`); ``rescore_skeleton`` must be
            the links it was trained with.

    Returns:
        Per image, ``keypoints`` ``(P, K, 3)`` ``(x, y, score)`` and ``scores`` ``(P,)``.
    """
    heatmaps, poses = flip_test_outputs(heatmaps, offsets, flip_heatmaps, flip_offsets, flip_index)
    resized, proposals = scale_proposals(heatmaps, poses, 1.0, stride, kernel, max_persons, threshold)
    results = []
    for image_heatmaps, image_proposals in zip(resized, proposals):
        keypoints, scores = pose_nms(image_proposals, image_heatmaps, nms_threshold, nms_joints_threshold, max_persons)
        if resize is not None:
            keypoints = resize.to_image(keypoints)
        if rescore_net is not None:
            scores = dekr_rescore(keypoints, scores, rescore_net, rescore_skeleton)
        results.append((keypoints, scores))
    return results
