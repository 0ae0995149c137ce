"""Transcriptions of mmpose 1.x's DEKR test (github.com/open-mmlab/mmpose at 759b39c), the oracle of
``test_dekr_openmmlab.py``. They follow mmpose's code in its own layout: heatmaps with the centre last and
displacements from the centre to the keypoint, sizes ``(width, height)``, one image at a time.

- ``BottomupResize._get_input_size`` and ``transform`` (``resize_mode='expand'``, no UDP) with ``get_warp_matrix``;
- ``BottomupPoseEstimator.add_pred_to_datasample``'s way back to the image;
- ``flip_heatmaps`` (``models/utils/tta.py``) and the flip test of ``DEKRHead.predict``;
- ``SPR.decode``, ``SPR.get_keypoint_scores`` and ``batch_heatmap_nms``;
- ``RescoreNet.make_feature`` and ``forward`` (on the layers of a package ``RescoreNet``);
- ``DEKRHead.decode`` with ``nearby_joints_nms``;
- ``CocoMetric``'s ``score`` for ``score_mode='keypoint'``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------------------------
# datasets/transforms/bottomup_transforms.py, structures/bbox/transforms.py, pose_estimators/bottomup.py


def ref_ceil_to_multiple(size, base):
    return tuple(int(np.ceil(s / base) * base) for s in size)


def ref_get_input_size(img_size, input_size, size_factor=32):
    """_get_input_size with resize_mode='expand': (actual_input_size, padded_input_size), both (w, h)."""
    img_w, img_h = img_size
    ratio = img_w / img_h
    pad_w, pad_h = ref_ceil_to_multiple(input_size, size_factor)
    rsz_w = max(pad_w, pad_h * ratio)
    rsz_h = max(pad_h, pad_w / ratio)
    actual_input_size = (rsz_w, rsz_h)
    padded_input_size = ref_ceil_to_multiple(actual_input_size, size_factor)
    return actual_input_size, padded_input_size


def ref_get_3rd_point(a, b):
    direction = a - b
    return b + np.r_[-direction[1], direction[0]]


def ref_get_warp_matrix(center, scale, output_size, inv=False):
    """get_warp_matrix without rotation or shift, fix_aspect_ratio=True."""
    src_w = scale[0]
    dst_w, dst_h = output_size
    src_dir = np.array([src_w * -0.5, 0.0])
    dst_dir = np.array([dst_w * -0.5, 0.0])
    src = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center
    src[1, :] = center + src_dir
    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    src[2, :] = ref_get_3rd_point(src[0, :], src[1, :])
    dst[2, :] = ref_get_3rd_point(dst[0, :], dst[1, :])
    if inv:
        return cv2.getAffineTransform(np.float32(dst), np.float32(src))
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def ref_bottomup_resize(img, input_size, size_factor=32):
    """BottomupResize.transform for one input size: (warped image, input_size, input_center, input_scale, warp)."""
    img_h, img_w = img.shape[:2]
    actual_input_size, padded_input_size = ref_get_input_size((img_w, img_h), input_size, size_factor)
    center = np.array([img_w / 2, img_h / 2], dtype=np.float32)
    scale = np.array(
        [img_w * padded_input_size[0] / actual_input_size[0], img_h * padded_input_size[1] / actual_input_size[1]],
        dtype=np.float32,
    )
    warp_mat = ref_get_warp_matrix(center, scale, padded_input_size)
    warped = cv2.warpAffine(img, warp_mat, padded_input_size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return warped, padded_input_size, center, scale, warp_mat


def ref_to_image(keypoints, input_size, input_center, input_scale):
    """add_pred_to_datasample: input to image pixels (float32 NumPy, as mmpose's predictions)."""
    return keypoints / input_size * input_scale + input_center - 0.5 * input_scale


# ----------------------------------------------------------------------------------------------------------------
# models/utils/tta.py and DEKRHead.predict


def ref_flip_heatmaps(heatmaps, flip_indices=None, flip_mode="heatmap", shift_heatmap=True):
    if flip_mode == "heatmap":
        heatmaps = heatmaps.flip(-1)
        if flip_indices is not None:
            assert len(flip_indices) == heatmaps.shape[1]
            heatmaps = heatmaps[:, flip_indices]
    elif flip_mode == "offset":
        b, c, h, w = heatmaps.shape
        heatmaps = heatmaps.view(b, c // 2, -1, h, w)
        heatmaps = heatmaps.flip(-1)
        if flip_indices is not None:
            assert len(flip_indices) == c // 2
            heatmaps = heatmaps[:, flip_indices]
        heatmaps[:, :, 0] = -heatmaps[:, :, 0]
        heatmaps = heatmaps.view(b, c, h, w)
    if shift_heatmap:
        heatmaps[..., 1:] = heatmaps[..., :-1].clone()
    return heatmaps


def ref_flip_test(heatmaps, displacements, heatmaps_flip, displacements_flip, flip_indices, input_width):
    """DEKRHead.predict's flip branch at scale 1 (shift_heatmap=True)."""
    heatmaps_flip = ref_flip_heatmaps(
        heatmaps_flip, flip_mode="heatmap", flip_indices=[*flip_indices, len(flip_indices)], shift_heatmap=True
    )
    heatmaps = (heatmaps + heatmaps_flip) / 2.0
    displacements_flip = ref_flip_heatmaps(
        displacements_flip, flip_mode="offset", flip_indices=flip_indices, shift_heatmap=False
    )
    x_scale_factor = 1 * (input_width / heatmaps.shape[-1])
    displacements_flip[:, ::2] += (x_scale_factor - 1) / x_scale_factor
    displacements = (displacements + displacements_flip) / 2.0
    return heatmaps, displacements


# ----------------------------------------------------------------------------------------------------------------
# codecs/spr.py, codecs/utils/post_processing.py


def ref_batch_heatmap_nms(batch_heatmaps, kernel_size=5):
    padding = (kernel_size - 1) // 2
    maximum = F.max_pool2d(batch_heatmaps, kernel_size, stride=1, padding=padding)
    maximum_indicator = torch.eq(batch_heatmaps, maximum)
    return batch_heatmaps * maximum_indicator.float()


def ref_get_keypoint_scores(heatmaps, keypoints):
    k, h, w = heatmaps.shape
    keypoints = torch.stack((keypoints[..., 0] / (w - 1) * 2 - 1, keypoints[..., 1] / (h - 1) * 2 - 1), dim=-1)
    keypoints = keypoints.transpose(0, 1).unsqueeze(1).contiguous()
    keypoint_scores = (
        F.grid_sample(heatmaps.unsqueeze(1), keypoints, padding_mode="border", align_corners=False)
        .view(k, -1)
        .transpose(0, 1)
        .contiguous()
    )
    return keypoint_scores


def ref_spr_decode(heatmaps, displacements, scale_factor, nms_kernel=5, max_instances=30, thr=0.01):
    """SPR.decode with generate_keypoint_heatmaps=True: keypoints (N, K, 2), root scores, keypoint scores."""
    _k, h, w = displacements.shape
    k = _k // 2
    displacements = displacements.view(k, 2, h, w)
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    regular_grid = torch.stack([x, y], dim=0).to(displacements)
    posemaps = (regular_grid[None] + displacements).flatten(2)
    root_heatmap_peaks = ref_batch_heatmap_nms(heatmaps[None, -1:], nms_kernel)
    root_scores, pos_idx = root_heatmap_peaks.flatten().topk(max_instances)
    mask = root_scores > thr
    root_scores, pos_idx = root_scores[mask], pos_idx[mask]
    keypoints = posemaps[:, :, pos_idx].permute(2, 0, 1).contiguous()
    keypoint_scores = ref_get_keypoint_scores(heatmaps[:k], keypoints)
    keypoints = torch.cat([kpt * scale_factor[i] for i, kpt in enumerate(keypoints.split(1, -1))], dim=-1)
    return keypoints, (root_scores, keypoint_scores)


# ----------------------------------------------------------------------------------------------------------------
# DEKRHead's RescoreNet and decode, evaluation/functional/nms.py


def ref_rescore(net, keypoints, keypoint_scores, skeleton, norm_indexes):
    """RescoreNet.make_feature + forward, on the linear layers l1..l3 of ``net``."""
    joint_1, joint_2 = zip(*skeleton)
    num_link = len(skeleton)
    joint_relate = (keypoints[:, joint_1] - keypoints[:, joint_2])[:, :, :2]
    joint_length = joint_relate.norm(dim=2)
    normalize = (joint_length[:, norm_indexes[0]] + joint_length[:, norm_indexes[1]]) / 2
    normalize = normalize.unsqueeze(1).expand(normalize.size(0), num_link)
    normalize = normalize.clamp(min=1).contiguous()
    joint_length = joint_length / normalize[:, :]
    joint_relate = joint_relate / normalize.unsqueeze(-1)
    joint_relate = joint_relate.flatten(1)
    feature = torch.cat((joint_relate, joint_length, keypoint_scores), dim=1).float()
    x = torch.relu(net.l1(feature))
    x = torch.relu(net.l2(x))
    return net.l3(x).squeeze(1)


def ref_nearby_joints_nms(kpts_db, dist_thr=0.05, num_nearby_joints_thr=None, score_per_joint=False, max_dets=30):
    assert dist_thr > 0
    if len(kpts_db) == 0:
        return []
    if score_per_joint:
        scores = np.array([k["score"].mean() for k in kpts_db])
    else:
        scores = np.array([k["score"] for k in kpts_db])
    kpts = np.array([k["keypoints"] for k in kpts_db])
    num_people, num_joints, _ = kpts.shape
    if num_nearby_joints_thr is None:
        num_nearby_joints_thr = num_joints // 2
    assert num_nearby_joints_thr < num_joints
    pose_area = kpts.max(axis=1) - kpts.min(axis=1)
    pose_area = np.sqrt(np.power(pose_area, 2).sum(axis=1))
    pose_area = pose_area.reshape(num_people, 1, 1)
    pose_area = np.tile(pose_area, (num_people, num_joints))
    close_dist_thr = pose_area * dist_thr
    instance_dist = kpts[:, None] - kpts
    instance_dist = np.sqrt(np.power(instance_dist, 2).sum(axis=3))
    close_instance_num = (instance_dist < close_dist_thr).sum(2)
    close_instance = close_instance_num > num_nearby_joints_thr
    ignored_pose_inds, keep_pose_inds = set(), []
    indexes = np.argsort(scores)[::-1]
    for i in indexes:
        if i in ignored_pose_inds:
            continue
        keep_inds = close_instance[i].nonzero()[0]
        keep_ind = keep_inds[np.argmax(scores[keep_inds])]
        if keep_ind not in ignored_pose_inds:
            keep_pose_inds.append(keep_ind)
            ignored_pose_inds = ignored_pose_inds.union(set(keep_inds))
    if max_dets > 0 and len(keep_pose_inds) > max_dets:
        sub_inds = np.argsort(scores[keep_pose_inds])[-1 : -max_dets - 1 : -1]
        keep_pose_inds = [keep_pose_inds[i] for i in sub_inds]
    return keep_pose_inds


def ref_decode(heatmaps, displacements, scale_factor, rescore_net=None, skeleton=None, norm_indexes=(5, 6), **cfg):
    """DEKRHead.decode for one image (batch of one): keypoints (N, K, 2) and keypoint_scores (N, K), NumPy.

    ``cfg``: nms_dist_thr, nms_joints_thr, max_num_people (test_cfg) and nms_kernel, max_instances, thr (SPR).
    """
    keypoints, (root_scores, keypoint_scores) = ref_spr_decode(
        heatmaps,
        displacements,
        scale_factor,
        cfg.get("nms_kernel", 5),
        cfg.get("max_instances", 30),
        cfg.get("thr", 0.01),
    )
    if rescore_net is not None and skeleton and len(keypoints) > 0:
        instance_scores = ref_rescore(rescore_net, keypoints, keypoint_scores, skeleton, norm_indexes)
        instance_scores[torch.isnan(instance_scores)] = 0
        root_scores = root_scores * instance_scores
    keypoints, keypoint_scores = keypoints.numpy(), keypoint_scores.numpy()
    scores = root_scores.numpy()[..., None] * keypoint_scores
    if len(keypoints) > 0 and cfg.get("nms_dist_thr", 0) > 0:
        kpts_db = [dict(keypoints=keypoints[i], score=keypoint_scores[i]) for i in range(len(keypoints))]
        keep_instance_inds = ref_nearby_joints_nms(
            kpts_db,
            cfg["nms_dist_thr"],
            cfg.get("nms_joints_thr", None),
            score_per_joint=True,
            max_dets=cfg.get("max_num_people", 30),
        )
        keypoints = keypoints[keep_instance_inds]
        scores = scores[keep_instance_inds]
    return keypoints, scores


def ref_coco_scores(keypoint_scores):
    """CocoMetric with score_mode='keypoint': each instance's score is the mean of its keypoint scores."""
    return np.array([np.mean(s) for s in keypoint_scores], dtype=np.float32)
