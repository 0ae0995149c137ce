"""mmpose 1.x's DEKR test protocol, the one OpenMMLab's DEKR tables were measured with, in torch.

Reference (Apache-2.0): https://github.com/open-mmlab/mmpose at 759b39c (1.x): the resize of
``datasets/transforms/bottomup_transforms.py`` (``BottomupResize(input_size, size_factor=32, resize_mode='expand')``)
and the way back in ``models/pose_estimators/bottomup.py`` (``add_pred_to_datasample``); the flip test of
``models/heads/hybrid_heads/dekr_head.py`` (``DEKRHead.predict`` with ``shift_heatmap=True``, and
``models/utils/tta.py``'s ``flip_heatmaps``), its ``decode`` and ``RescoreNet``; ``codecs/spr.py`` (``SPR.decode``,
``get_keypoint_scores``, ``codecs/utils``' ``batch_heatmap_nms``); ``evaluation/functional/nms.py``
(``nearby_joints_nms``); and the person score of ``evaluation/metrics/coco_metric.py`` (``score_mode='keypoint'``), as
the DEKR configurations (``configs/body_2d_keypoint/dekr/``) set them.

Where mmpose 1.x differs from the original DEKR (:mod:`.dekr_decoding`, :func:`.bottom_up_resize`):

- **Resize.** The short side becomes the input size rounded up to a multiple of 32 (the original: 64), the long side
  keeps the aspect and is padded to a multiple of 32; the region is centred on ``(w / 2, h / 2)``, not rounded.
- **Flip test.** The flipped input is mirrored without a shift; the flipped heatmaps are mirrored and moved one pixel
  right (the first column repeated), the flipped offsets mirrored and their ``x`` moved by ``(stride - 1) / stride``
  heatmap pixels. The original shifts the flipped input by ``stride - 1`` pixels and mirrors the maps exactly.
- **Centres.** A fixed 5 x 5 max-pool NMS (``decode_nms_kernel``), where the original picks 7, 5 or 3 from the map
  size (``hierarchical_pool``).
- **Joint scores.** Each joint's heatmap sampled bilinearly at the stride-4 pose (``grid_sample``, border padding,
  normalised by ``W - 1`` but with ``align_corners=False``, so it reads ``x * W / (W - 1) - 0.5``); the original
  upsamples the heatmaps to the input size and reads the pixel below the pose, times the centre score.
- **Rescoring** runs before the pose NMS, on the input-pixel poses and the sampled joint scores, with the data set's
  skeleton (mmpose's ``skeleton_links``, not the link order the net was trained with) and its torso links; the
  centre score is multiplied by the prediction. The original rescores the image-pixel poses after the NMS.
- **Pose NMS** (``nearby_joints_nms``) visits the poses best first by their mean sampled joint score and keeps the
  best of each close group; the original visits them in centre order, ranked by the mean heat value.
- **Scores.** A joint's score is centre score x rescoring x sampled joint score; the person's, the mean of its joint
  scores (COCO's ``score`` with ``score_mode='keypoint'``; mmpose gives no ``bbox_scores``, so the metric's are 1).
- Single scale only (mmpose 1.x's DEKR ``decode`` raises for multi-scale tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .affine import PIXEL_STD
from .bottom_up import BottomUpResize
from .dekr_decoding import _nms_keep, centre_nms, dekr_rescore, offsets_to_poses

if TYPE_CHECKING:
    from .bottom_up_codec import BottomUpCodec

__all__ = ["decode_dekr_openmmlab", "openmmlab_bottom_up_resize"]

#: ``BottomupResize``'s ``size_factor`` in mmpose's DEKR configurations.
_SIZE_FACTOR = 32


def _ceil_to_factor(size: float) -> int:
    return int(math.ceil(size / _SIZE_FACTOR) * _SIZE_FACTOR)


def openmmlab_bottom_up_resize(image_size: tuple[int, int], input_size: tuple[int, int]) -> BottomUpResize:
    """mmpose 1.x's ``BottomupResize(input_size, size_factor=32, resize_mode='expand')`` of an ``image_size``
    ``(height, width)`` image for an ``input_size`` ``(height, width)`` network.

    Both sides of ``input_size`` are rounded up to multiples of 32; the image is zoomed so that it covers that size
    with its aspect kept (its short side fits), and the input is that zoomed size rounded up to multiples of 32, the
    image centred in it. mmpose's ``input_center`` is ``(w / 2, h / 2)`` and its ``input_scale``, in pixels,
    ``image size * input size / zoomed size``: the same similarity ``get_affine_transform`` forms from a centre and
    a scale in units of 200 pixels (its zoom set by the width), so the result is a :class:`BottomUpResize` whose
    ``base_size`` is its ``size``, and ``to_image`` is mmpose's ``keypoints / input_size * input_scale +
    input_center - input_scale / 2`` (in float64, mmpose in float32).
    """
    h, w = (int(s) for s in image_size)
    if min(h, w) < 1 or min(int(s) for s in input_size) < 1:
        raise ValueError(f"image and input sizes must be positive (height, width), got {image_size}, {input_size}")
    ratio = w / h
    pad_h, pad_w = (_ceil_to_factor(s) for s in input_size)
    zoomed_w, zoomed_h = max(pad_w, pad_h * ratio), max(pad_h, pad_w / ratio)
    size = (_ceil_to_factor(zoomed_h), _ceil_to_factor(zoomed_w))
    center = torch.tensor([w / 2, h / 2], dtype=torch.float32)
    scale = torch.tensor([w * size[1] / zoomed_w, h * size[0] / zoomed_h], dtype=torch.float32)
    return BottomUpResize(size, size, center, scale.double() / PIXEL_STD)


def _flip_back(heatmaps: Tensor, offsets: Tensor, flip_index: Sequence[int], stride: float) -> tuple[Tensor, Tensor]:
    """The outputs of the mirrored input brought back as mmpose's ``DEKRHead.predict`` does: heatmaps mirrored,
    joints swapped (the centre, last, stays) and moved one pixel right (``shift_heatmap``: the first column
    repeated); offsets mirrored, swapped, ``x`` negated and moved by ``(stride - 1) / stride`` pixels.

    Shapes: ``(B, K + 1, H, W)``, ``(B, 2K, H, W)`` -> the same, in the package's offset direction.
    """
    k = offsets.shape[1] // 2
    heat = heatmaps.flip(-1)[:, [*flip_index, k]]
    heat = torch.cat([heat[..., :1], heat[..., :-1]], dim=-1)
    pairs = offsets.unflatten(1, (k, 2)).flip(-1)[:, list(flip_index)]
    # mmpose adds (stride - 1) / stride to its displacements' x; the package's offsets are their negatives.
    pairs = torch.stack([-pairs[:, :, 0] - (stride - 1) / stride, pairs[:, :, 1]], dim=2)
    return heat, pairs.flatten(1, 2)


def _sampled_scores(heatmaps: Tensor, coords: Tensor) -> Tensor:
    """SPR's ``get_keypoint_scores``: each joint's heatmap sampled bilinearly (border padding) at its coordinate,
    normalised by ``W - 1`` and ``H - 1`` with ``align_corners=False`` as mmpose does.

    Shapes: ``(K, H, W)``, ``(P, K, 2)`` heatmap pixels -> ``(P, K)``.
    """
    k, h, w = heatmaps.shape
    grid = torch.stack([coords[..., 0] / (w - 1) * 2 - 1, coords[..., 1] / (h - 1) * 2 - 1], dim=-1)
    sampled = F.grid_sample(
        heatmaps[:, None], grid.transpose(0, 1)[:, None], padding_mode="border", align_corners=False
    )  # (K, 1, 1, P)
    return sampled.reshape(k, -1).T


def _nearby_joints_nms(
    coords: Tensor, scores: Tensor, threshold: float, num_joints_threshold: int, max_persons: int
) -> Tensor:
    """mmpose's ``nearby_joints_nms``: indices of the poses kept, in the order found.

    The poses are visited best first by ``scores`` (ties: the later pose first, as NumPy's reversed ``argsort``
    for up to 16 poses); closeness and absorption are the original's (:func:`._nms_keep`). If more than
    ``max_persons`` survive, the best ``max_persons`` are kept, best first.

    Shapes: ``(P, K, 2)``, ``(P,)`` -> ``(N,)`` long.
    """
    order = torch.argsort(scores, stable=True).flip(0)
    found = _nms_keep(coords[order], scores[order], threshold, num_joints_threshold)
    kept = order[torch.tensor(found, dtype=torch.long, device=order.device)]
    if len(kept) > max_persons:
        kept = kept[torch.argsort(scores[kept], stable=True).flip(0)[:max_persons]]
    return kept


def _check_inputs(
    heatmaps: Tensor,
    offsets: Tensor,
    flipped_heatmaps: Tensor | None,
    flipped_offsets: Tensor | None,
    flip_index: Sequence[int] | None,
    codec: BottomUpCodec,
    rescore_net: nn.Module | None,
    skeleton: Sequence[tuple[int, int]] | None,
) -> None:
    if heatmaps.dim() != 4 or offsets.dim() != 4 or offsets.shape[1] % 2:
        raise ValueError(
            f"expected heatmaps (B, K + 1, H, W) and offsets (B, 2K, H, W), got {tuple(heatmaps.shape)} and "
            f"{tuple(offsets.shape)}"
        )
    k = offsets.shape[1] // 2
    if heatmaps.shape[1] != k + 1 or heatmaps.shape[0] != offsets.shape[0] or heatmaps.shape[2:] != offsets.shape[2:]:
        raise ValueError(
            f"heatmaps {tuple(heatmaps.shape)} do not fit offsets {tuple(offsets.shape)}: expected "
            f"(B, K + 1, H, W) with the centre last and (B, 2K, H, W) of the same batch and size"
        )
    if (flipped_heatmaps is None) != (flipped_offsets is None):
        raise ValueError("the flip test needs both flipped_heatmaps and flipped_displacements (or neither)")
    if flipped_heatmaps is not None and flipped_offsets is not None:
        if flipped_heatmaps.shape != heatmaps.shape or flipped_offsets.shape != offsets.shape:
            raise ValueError(
                f"the flipped outputs {tuple(flipped_heatmaps.shape)}, {tuple(flipped_offsets.shape)} must have the "
                f"plain outputs' shapes {tuple(heatmaps.shape)}, {tuple(offsets.shape)}"
            )
        if flip_index is None or len(flip_index) != k:
            raise ValueError(f"the flip test needs flip_index with one entry per joint ({k}), got {flip_index}")
    if codec.method != "dekr":
        raise ValueError(f"decode_dekr_openmmlab decodes DEKR outputs, but the codec's method is {codec.method!r}")
    if codec.nms_joints >= k:
        raise ValueError(f"codec.nms_joints must be below the number of joints ({k}), got {codec.nms_joints}")
    if rescore_net is not None and not skeleton:
        raise ValueError("rescoring needs the skeleton the features are made of (mmpose's skeleton_links)")


def decode_dekr_openmmlab(
    heatmaps: Tensor,
    displacements: Tensor,
    flipped_heatmaps: Tensor | None = None,
    flipped_displacements: Tensor | None = None,
    flip_index: Sequence[int] | None = None,
    *,
    codec: BottomUpCodec,
    resize: BottomUpResize | None = None,
    rescore_net: nn.Module | None = None,
    skeleton: Sequence[tuple[int, int]] | None = None,
) -> list[tuple[Tensor, Tensor]]:
    """DEKR's single-scale test as mmpose 1.x runs it (``DEKRHead.predict`` and ``decode``, ``SPR.decode``,
    ``nearby_joints_nms``, ``CocoMetric``'s score); the module docstring lists where it differs from the original's.

    Per image: the flip test (the flipped pass brought back by :func:`_flip_back` and averaged), the poses at the
    centres (5 x 5 max-pool NMS of the centre heatmap, ``codec.max_persons`` best above ``codec.threshold``), joint
    scores sampled from the heatmaps at the poses, rescoring of the centre scores, pose NMS (``codec.nms_threshold``
    as ``nms_dist_thr``, ``codec.nms_joints`` as ``nms_joints_thr``: mmpose's configurations leave it at ``K // 2``,
    8 for COCO and 7 for CrowdPose), and the way back to the image.

    Args:
        heatmaps: ``(B, K + 1, H, W)``, the centre last (as mmpose 1.x's and the package's DEKR).
        displacements: ``(B, 2K, H, W)`` offsets in the package's direction, ``(x, y)`` per joint from the keypoint
            to the centre: mmpose 1.x's displacements negated (the checkpoint conversion negates its last conv).
        flipped_heatmaps: The same for the input mirrored by ``x.flip(-1)`` (no shift), or ``None``.
        flipped_displacements: Likewise.
        flip_index: The mirror joint of each joint (mmpose's ``flip_indices``), for the flip test.
        codec: The checkpoint's :class:`~hrnet_zoo.codec.BottomUpCodec` (``input_size`` over ``heatmap_size`` is
            the stride; ``nms_kernel`` the centre NMS window; ``rescore_norm_links`` the rescoring's torso links).
        resize: Maps the keypoints from input to image pixels (:func:`openmmlab_bottom_up_resize`); ``None``
            keeps input pixels.
        rescore_net: Multiplies the centre scores by its OKS prediction (NaN taken as 0), fed the features of
            :func:`~hrnet_zoo.codec.rescore_features` for ``skeleton``.
        skeleton: The data set's links in mmpose's order (``KeypointSet.skeleton``), needed with ``rescore_net``.

    Returns:
        Per image, ``keypoints`` ``(P, K, 3)`` ``(x, y, score)`` with mmpose's ``keypoint_scores`` as scores, and
        ``scores`` ``(P,)``: their mean over the joints, the ``score`` mmpose's COCO evaluation ranks by.
    """
    offsets = displacements
    _check_inputs(heatmaps, offsets, flipped_heatmaps, flipped_displacements, flip_index, codec, rescore_net, skeleton)
    k, w = offsets.shape[1] // 2, heatmaps.shape[-1]
    stride_y, stride_x = (i / o for i, o in zip(codec.input_size, codec.heatmap_size))
    if flipped_heatmaps is not None and flipped_displacements is not None and flip_index is not None:
        heat, off = _flip_back(flipped_heatmaps, flipped_displacements, flip_index, stride_x)
        heatmaps, offsets = (heatmaps + heat) / 2.0, (offsets + off) / 2.0
    poses = offsets_to_poses(offsets)
    positions, centre_scores, keep = centre_nms(heatmaps[:, k], codec.nms_kernel, codec.max_persons, codec.threshold)
    results = []
    for image_heatmaps, image_poses, image_positions, image_scores, image_keep in zip(
        heatmaps, poses, positions, centre_scores, keep
    ):
        coords = image_poses[image_positions[image_keep, 1] * w + image_positions[image_keep, 0]]
        joint_scores = _sampled_scores(image_heatmaps[:k], coords)
        coords = coords * coords.new_tensor([stride_x, stride_y])
        person_scores = image_scores[image_keep]
        if rescore_net is not None and skeleton:
            proposals = torch.cat([coords, joint_scores[..., None]], dim=2)
            person_scores = dekr_rescore(proposals, person_scores, rescore_net, skeleton, codec.rescore_norm_links)
        scores = person_scores[:, None] * joint_scores
        if coords.shape[0] and codec.nms_threshold > 0:
            kept = _nearby_joints_nms(
                coords, joint_scores.mean(1), codec.nms_threshold, codec.nms_joints, codec.max_persons
            )
            coords, scores = coords[kept], scores[kept]
        keypoints = torch.cat([coords, scores[..., None]], dim=2)
        if resize is not None:
            keypoints = resize.to_image(keypoints)
        results.append((keypoints, scores.mean(1)))
    return results
