"""DEKR's bottom-up decoding against transcriptions of the original's test code (github.com/HRNet/DEKR).

The transcriptions, in NumPy/OpenCV loops: ``offset_to_pose`` and ``get_multi_stage_outputs`` (flip test),
``hierarchical_pool`` + ``get_maximum_from_heatmap`` (centre NMS), ``up_interpolate`` and ``aggregate_results``,
``pose_nms`` with ``get_heat_value`` and ``nms_core``, ``get_feature`` + ``rescore_valid``, and the shared
geometry of ``bottom_up_reference`` (``get_multi_scale_size``, ``get_affine_transform``, ``get_final_preds``).
Hand-made maps check the meaning.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrnet_zoo.codec.bottom_up import bottom_up_resize
from hrnet_zoo.codec.dekr_decoding import (
    DEKR_COCO_LINKS,
    DEKR_CROWDPOSE_LINKS,
    aggregate_dekr_scales,
    centre_nms,
    decode_dekr,
    dekr_rescore,
    flip_input,
    flip_test_outputs,
    heat_values,
    offsets_to_poses,
    pool_kernel,
    pose_nms,
    rescore_features,
    scale_proposals,
    up_interpolate,
)
from hrnet_zoo.keypoints import COCO_KEYPOINTS
from hrnet_zoo.models.dekr import RescoreNet

from .bottom_up_reference import ref_affine, ref_final_preds, ref_multi_scale_size

K = 17
FLIP = COCO_KEYPOINTS.flip_index

# ----------------------------------------------------------------------------------------------------------------
# Transcriptions of the reference (one image, maps as (C, H, W) arrays)


def ref_poses(offset):
    """offset_to_pose without flip: every pixel minus its (x, y) offsets, (H*W, K, 2)."""
    c, h, w = offset.shape
    poses = np.zeros((h * w, c // 2, 2), np.float32)
    for y in range(h):
        for x in range(w):
            for j in range(c // 2):
                poses[y * w + x, j] = (x - offset[2 * j, y, x], y - offset[2 * j + 1, y, x])
    return poses


def ref_flip_poses(offset, flip_index):
    """offset_to_pose(flip=True), then the map mirrored (torch.flip(posemap_flip, [3]))."""
    c, h, w = offset.shape
    flipped = ref_poses(offset)[:, flip_index]
    flipped[:, :, 0] = w - flipped[:, :, 0] - 1
    grid = flipped.reshape(h, w, c // 2, 2)[:, ::-1]
    return np.ascontiguousarray(grid).reshape(h * w, c // 2, 2)


def ref_flip_test(heatmap, offset, heatmap_flip, offset_flip, flip_index):
    heat_index = [*flip_index, len(flip_index)]
    heatmap = (heatmap + heatmap_flip[:, :, ::-1][heat_index]) / 2.0
    return heatmap, (ref_poses(offset) + ref_flip_poses(offset_flip, flip_index)) / 2.0


def ref_centres(centre, max_people=30, threshold=0.01, thresholds=(300, 200)):
    h, w = centre.shape
    size = (h + w) / 2.0
    kernel = 7 if size > thresholds[0] else 5 if size > thresholds[1] else 3
    r = kernel // 2
    padded = np.pad(centre, r, constant_values=-np.inf)
    peaks = np.zeros_like(centre)
    for y in range(h):
        for x in range(w):
            if padded[y : y + kernel, x : x + kernel].max() == centre[y, x]:
                peaks[y, x] = centre[y, x]
    scores, index = torch.from_numpy(peaks).reshape(-1).topk(max_people)
    chosen = scores > threshold
    return index[chosen].numpy(), scores[chosen].numpy()


def ref_up_interpolate(x, size):
    h, w = x.shape[-2:]
    fh, fw = int(size[0] / h), int(size[1] / w)
    inner = torch.nn.functional.interpolate(
        torch.from_numpy(x)[None], size=[size[0] - fh + 1, size[1] - fw + 1], mode="bilinear", align_corners=True
    )
    return torch.nn.ReplicationPad2d((0, fw - 1, 0, fh - 1))(inner)[0].numpy()


def ref_aggregate(heatmap_sum, poses, heatmap, posemap, scale, ratio=4.0):
    reverse = ratio / scale
    h, w = heatmap.shape[-2:]
    heatmap_sum = heatmap_sum + ref_up_interpolate(heatmap, (int(reverse * h), int(reverse * w)))
    index, score = ref_centres(heatmap[-1])
    pose = reverse * posemap[index]
    poses.append(np.concatenate([pose, np.repeat(score[:, None, None], pose.shape[1], 1)], axis=2))
    return heatmap_sum, poses


def ref_heat_value(coord, heatmap):
    _, h, w = heatmap.shape
    out = np.zeros(coord.shape[:2], np.float32)
    for p in range(coord.shape[0]):
        for j in range(coord.shape[1]):
            y = int(np.clip(np.floor(coord[p, j, 1]), 0, h - 1))
            x = int(np.clip(np.floor(coord[p, j, 0]), 0, w - 1))
            out[p, j] = heatmap[j, y, x]
    return out


def ref_nms_core(coord, heat_score, nms_thre=0.05, nms_num_thre=8):
    n = coord.shape[0]
    extent = coord.max(1) - coord.min(1)
    area = (extent**2).sum(1)
    close = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(n):
            dist = np.sqrt(((coord[i] - coord[j]) ** 2).sum(1))
            close[i, j] = (dist < nms_thre * np.sqrt(area[i])).sum() > nms_num_thre
    ignored, keep = [], []
    for i in range(n):
        if i in ignored:
            continue
        group = list(np.nonzero(close[i])[0])
        best = group[int(np.argmax(heat_score[group]))]
        if best in ignored:
            continue
        keep.append(best)
        ignored += [g for g in group if g not in ignored]
    return keep


def ref_pose_nms(heatmap_avg, poses, scales=(1.0,), decrease=0.9, max_people=30):
    order = sorted(scales, reverse=True)
    norm = poses[order.index(1.0)]
    best = norm[:, :, 2].max() if norm.shape[0] else 1
    for i, pose in enumerate(poses):
        if i != order.index(1.0):
            pose[:, :, 2] = pose[:, :, 2] / (pose[:, :, 2].max() if pose.shape[0] else 1) * best * decrease
    score = np.concatenate([p[:, :, 2:] for p in poses])
    coord = np.concatenate([p[:, :, :2] for p in poses])
    if coord.shape[0] == 0:
        return np.zeros((0, coord.shape[1], 3)), np.zeros(0)
    heat = ref_heat_value(coord, heatmap_avg)
    heat_score = heat.sum(1) / coord.shape[1]
    out = np.concatenate([coord, score * heat[:, :, None]], axis=2)
    keep = ref_nms_core(coord, heat_score)
    out, heat_score = out[keep], heat_score[keep]
    if len(keep) > max_people:
        out = out[torch.from_numpy(heat_score).topk(max_people)[1].numpy()]
    return out, out[:, :, 2].mean(1)


def ref_feature(x, links):
    first, second = [a for a, _ in links], [b for _, b in links]
    relate = x[:, first, :2] - x[:, second, :2]
    length = (relate[:, :, 0] ** 2 + relate[:, :, 1] ** 2) ** 0.5
    norm = (length[:, 9] + length[:, 11]) / 2
    norm = np.tile(norm, (len(first), 2, 1)).transpose(2, 0, 1)
    norm[norm < 1] = 1
    length = length / norm[:, :, 0]
    relate = (relate / norm).reshape(-1, len(first) * 2)
    return np.concatenate([relate, length, x[:, :, 2]], axis=1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def random_maps(h=24, w=20, seed=0, batch=1):
    g = torch.Generator().manual_seed(seed)
    heatmaps = torch.rand(batch, K + 1, h, w, generator=g) * 0.5
    offsets = (torch.rand(batch, 2 * K, h, w, generator=g) - 0.5) * 16
    return heatmaps, offsets


def gaussian(h, w, cx, cy, sigma):
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))


def person_joints(cx, cy):
    """A standing person of 17 COCO joints around (cx, cy): head up, feet down."""
    shape = [(0, -8), (-1, -9), (1, -9), (-2, -8), (2, -8), (-3, -5), (3, -5), (-4, -2), (4, -2)]
    shape += [(-5, 1), (5, 1), (-2, 1), (2, 1), (-2, 5), (2, 5), (-2, 9), (2, 9)]
    return torch.tensor([(cx + dx, cy + dy) for dx, dy in shape], dtype=torch.float32)


def scene(persons, h=64, w=64, radius=4):
    """Maps of hand-placed persons: a Gaussian centre peak, joint peaks, offsets constant in a disk round the
    centre pointing each pixel's pose onto the joints. ``persons``: ``(centre (x, y), joints (K, 2), peak)``."""
    heatmaps = torch.zeros(1, K + 1, h, w)
    offsets = torch.zeros(1, 2 * K, h, w)
    for (cx, cy), joints, peak in persons:
        heatmaps[0, K] = torch.maximum(heatmaps[0, K], peak * gaussian(h, w, cx, cy, 2.0))
        for j, (jx, jy) in enumerate(joints.tolist()):
            heatmaps[0, j] = torch.maximum(heatmaps[0, j], gaussian(h, w, jx, jy, 1.0))
        inside = gaussian(h, w, cx, cy, 1.0) > np.exp(-(radius**2) / 2)
        for j, (jx, jy) in enumerate(joints.tolist()):
            offsets[0, 2 * j][inside] = cx - jx
            offsets[0, 2 * j + 1][inside] = cy - jy
    return heatmaps, offsets


def mirror(heatmaps, offsets):
    """The exact outputs of a flip-equivariant network on the flipped input."""
    w = heatmaps.shape[-1]
    flip_heatmaps = heatmaps[:, [*FLIP, K]].flip(3)
    poses = offsets_to_poses(offsets).reshape(1, *offsets.shape[-2:], K, 2)[:, :, :, FLIP].flip(2)
    poses = torch.stack([w - 1 - poses[..., 0], poses[..., 1]], dim=-1)
    x = torch.arange(w, dtype=torch.float32)[:, None]
    y = torch.arange(offsets.shape[-2], dtype=torch.float32)[:, None, None]
    flip_offsets = torch.stack([x - poses[..., 0], y - poses[..., 1]], dim=-1)
    return flip_heatmaps, flip_offsets.reshape(1, *offsets.shape[-2:], 2 * K).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------------------------------------------
# Each step against the reference


def test_offsets_to_poses_is_the_reference():
    _, offsets = random_maps(7, 9, batch=2)
    poses = offsets_to_poses(offsets)
    assert poses.shape == (2, 63, K, 2)
    for b in range(2):
        np.testing.assert_array_equal(poses[b].numpy(), ref_poses(offsets[b].numpy()))
        np.testing.assert_array_equal(
            offsets_to_poses(offsets, FLIP)[b].numpy(), ref_flip_poses(offsets[b].numpy(), FLIP)
        )


def test_flip_test_outputs_is_the_reference():
    heatmaps, offsets = random_maps(seed=1)
    flip_heatmaps, flip_offsets = random_maps(seed=2)
    got_h, got_p = flip_test_outputs(heatmaps, offsets, flip_heatmaps, flip_offsets, FLIP)
    ref_h, ref_p = ref_flip_test(
        heatmaps[0].numpy(), offsets[0].numpy(), flip_heatmaps[0].numpy(), flip_offsets[0].numpy(), FLIP
    )
    np.testing.assert_array_equal(got_h[0].numpy(), ref_h)
    np.testing.assert_allclose(got_p[0].numpy(), ref_p, rtol=0, atol=1e-5)
    assert flip_test_outputs(heatmaps, offsets)[0] is heatmaps
    with pytest.raises(ValueError, match="flip_index"):
        flip_test_outputs(heatmaps, offsets, flip_heatmaps, flip_offsets)


def test_flip_average_of_a_mirror_image_changes_nothing():
    heatmaps, offsets = random_maps(seed=3)
    flip_heatmaps, flip_offsets = mirror(heatmaps, offsets)
    got_h, got_p = flip_test_outputs(heatmaps, offsets, flip_heatmaps, flip_offsets, FLIP)
    torch.testing.assert_close(got_h, heatmaps)
    torch.testing.assert_close(got_p, offsets_to_poses(offsets))


def test_flip_input_is_the_reference():
    image = torch.rand(2, 3, 8, 12)
    ref = torch.flip(image, [3])
    ref[:, :, :, :-3] = ref[:, :, :, 3:].clone()
    torch.testing.assert_close(flip_input(image), ref, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("size", "kernel"), [((128, 128), 3), ((200, 200), 3), ((160, 242), 5), ((300, 300), 5), ((250, 352), 7)]
)
def test_pool_kernel_follows_the_map_size(size, kernel):
    assert pool_kernel(*size) == kernel


@pytest.mark.parametrize("size", [(24, 20), (210, 200), (310, 300)])
def test_centre_nms_is_the_reference(size):
    g = torch.Generator().manual_seed(sum(size))
    centre = torch.rand(2, *size, generator=g) ** 4
    positions, scores, keep = centre_nms(centre)
    for b in range(2):
        index, ref_scores = ref_centres(centre[b].numpy())
        got = positions[b][keep[b]]
        np.testing.assert_array_equal((got[:, 1] * size[1] + got[:, 0]).numpy(), index)
        np.testing.assert_array_equal(scores[b][keep[b]].numpy(), ref_scores)


def test_centre_nms_edges():
    centre = torch.zeros(1, 16, 16)
    assert not centre_nms(centre)[2].any()  # nothing above the threshold: no one
    centre[0, 0, 15], centre[0, 15, 0], centre[0, 1, 14] = 0.9, 0.5, 0.8  # corners; (14, 1) next to (15, 0)
    positions, scores, keep = centre_nms(centre, max_persons=5)
    assert positions.shape == (1, 5, 2) and keep.sum() == 2
    assert positions[0, :2].tolist() == [[15, 0], [0, 15]] and scores[0, :2].tolist() == pytest.approx([0.9, 0.5])
    assert centre_nms(centre, kernel=1)[2].sum() == 3
    assert centre_nms(centre[:, :2, :2], max_persons=30)[0].shape == (1, 4, 2)  # fewer pixels than persons


def test_up_interpolate_is_the_reference():
    x = torch.rand(2, 3, 5, 7)
    for size in [(20, 28), (13, 18), (5, 7)]:
        got = up_interpolate(x, size)
        assert got.shape[-2:] == size
        np.testing.assert_allclose(got[1].numpy(), ref_up_interpolate(x[1].numpy(), size), rtol=0, atol=1e-6)
    torch.testing.assert_close(up_interpolate(x, (10, 14))[..., ::2, ::2], x)


def test_heat_values_clamp_to_the_map():
    heatmaps = torch.rand(K + 1, 9, 11)
    coords = (torch.rand(4, K, 2) - 0.2) * 14
    np.testing.assert_array_equal(
        heat_values(coords, heatmaps).numpy(), ref_heat_value(coords.numpy(), heatmaps.numpy())
    )


def clustered_proposals(n, seed, spread=0.3):
    """Proposals in a few clusters of near-duplicates (so the NMS suppresses), with centre scores."""
    g = torch.Generator().manual_seed(seed)
    base = (
        person_joints(0, 0)[None] * (1 + torch.rand(4, 1, 1, generator=g)) + torch.rand(4, 1, 2, generator=g) * 40 + 10
    )
    which = torch.randint(0, 4, (n,), generator=g)
    coords = base[which] + torch.randn(n, K, 2, generator=g) * spread * (1 + torch.rand(n, 1, 1, generator=g) * 3)
    return torch.cat([coords, torch.rand(n, 1, 1, generator=g).expand(n, K, 1)], dim=2)


@pytest.mark.parametrize(("n", "max_persons", "seed"), [(1, 30, 0), (12, 30, 1), (40, 30, 2), (25, 3, 3)])
def test_pose_nms_is_the_reference(n, max_persons, seed):
    proposals = clustered_proposals(n, seed)
    heatmaps = torch.rand(K + 1, 64, 64, generator=torch.Generator().manual_seed(seed))
    keypoints, scores = pose_nms(proposals, heatmaps, max_persons=max_persons)
    ref_k, ref_s = ref_pose_nms(heatmaps.numpy(), [proposals.numpy().copy()], max_people=max_persons)
    assert 0 < len(keypoints) <= max_persons and (n < 12 or len(keypoints) < n)
    np.testing.assert_allclose(keypoints.numpy(), ref_k, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores.numpy(), ref_s, rtol=1e-6, atol=0)


def test_pose_nms_without_proposals_and_without_extent():
    keypoints, scores = pose_nms(torch.zeros(0, K, 3), torch.rand(K + 1, 8, 8))
    assert keypoints.shape == (0, K, 3) and scores.shape == (0,)
    flat = torch.full((2, K, 3), 4.0)  # every joint at one point: the reference raises, here each is its own group
    assert len(pose_nms(flat, torch.rand(K + 1, 8, 8))[0]) == 2


@pytest.mark.parametrize("scales", [(1.0,), (2.0, 1.0, 0.5)])
def test_multi_scale_is_the_reference(scales):
    per_scale_h, per_scale_p = [], []
    ref_sum, ref_list = 0, []
    for i, s in enumerate(sorted(scales, reverse=True)):
        size = int(16 * s)
        heatmaps, offsets = random_maps(size, size, seed=10 + i)
        heatmaps = heatmaps**3
        resized, proposals = scale_proposals(*flip_test_outputs(heatmaps, offsets), scale=s)
        assert resized.shape[-2:] == (64, 64)
        per_scale_h.append(resized)
        per_scale_p.append(proposals)
        ref_sum, ref_list = ref_aggregate(ref_sum, ref_list, heatmaps[0].numpy(), ref_poses(offsets[0].numpy()), s)
        np.testing.assert_allclose(proposals[0].numpy(), ref_list[-1], rtol=1e-6, atol=1e-5)
    average, merged = aggregate_dekr_scales(per_scale_h, per_scale_p, sorted(scales, reverse=True))
    ref_average = ref_sum / len(scales)
    np.testing.assert_allclose(average[0].numpy(), ref_average, rtol=0, atol=1e-6)
    keypoints, scores = pose_nms(merged[0], average[0])
    ref_k, ref_s = ref_pose_nms(ref_average, ref_list, scales)
    np.testing.assert_allclose(keypoints.numpy(), ref_k, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(scores.numpy(), ref_s, rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="include 1"):
        aggregate_dekr_scales(per_scale_h, per_scale_p, [2.0] * len(scales))


def test_rescore_features_and_rescore_are_the_reference():
    poses = clustered_proposals(6, 4).clone()
    poses[0, :, :2] = 3.0  # no torso: the normaliser is clamped to 1
    feats = rescore_features(poses)
    assert feats.shape == (6, 74)
    np.testing.assert_allclose(
        feats.numpy(), ref_feature(poses.numpy().astype(np.float64), DEKR_COCO_LINKS), rtol=1e-6, atol=1e-6
    )
    crowd = poses[:, :14]
    np.testing.assert_allclose(
        rescore_features(crowd, DEKR_CROWDPOSE_LINKS).numpy(),
        ref_feature(crowd.numpy(), DEKR_CROWDPOSE_LINKS),
        rtol=1e-6,
        atol=1e-6,
    )
    net = RescoreNet(74).eval()
    scores = torch.rand(6)
    with torch.no_grad():
        expected = net(torch.from_numpy(ref_feature(poses.numpy(), DEKR_COCO_LINKS))) * scores
        torch.testing.assert_close(dekr_rescore(poses, scores, net), expected)
        net.l3.bias.fill_(float("nan"))
        assert dekr_rescore(poses, scores, net).tolist() == [0.0] * 6
        assert dekr_rescore(poses[:0], scores[:0], net).shape == (0,)


@pytest.mark.parametrize("image_size", [(480, 640), (640, 427), (500, 500), (333, 1000)])
@pytest.mark.parametrize(("scale", "min_scale"), [(1.0, 1.0), (2.0, 1.0), (0.5, 0.5)])
def test_bottom_up_resize_is_the_reference(image_size, scale, min_scale):
    h, w = image_size
    resize = bottom_up_resize(image_size, 512, scale, min_scale)
    size, center, region = ref_multi_scale_size(h, w, 512, scale, min_scale)
    base_size = ref_multi_scale_size(h, w, 512, 1.0, min_scale)[0]
    assert resize.size == (size[1], size[0]) and resize.base_size == (base_size[1], base_size[0])
    np.testing.assert_array_equal(resize.center.numpy(), center)
    np.testing.assert_allclose(resize.scale.numpy(), region, rtol=1e-6)
    np.testing.assert_allclose(resize.matrix().numpy(), ref_affine(center, region, size), rtol=1e-5, atol=1e-4)
    poses = (torch.rand(3, K, 3) * torch.tensor([base_size[0], base_size[1], 1.0])).float()
    got = resize.to_image(poses)
    np.testing.assert_allclose(
        got.numpy(), ref_final_preds(poses.numpy(), center, region, base_size), rtol=1e-5, atol=1e-3
    )
    assert got.dtype == poses.dtype


# ----------------------------------------------------------------------------------------------------------------
# Hand-made persons and the whole single-scale test


def three_persons():
    people = [((14.0, 16.0), person_joints(14, 16), 0.9), ((40.0, 24.0), person_joints(40, 24) * 1.0, 0.7)]
    people.append(((61.0, 57.0), person_joints(61, 57), 0.8))  # near the corner: joints off the map
    return people


def test_hand_made_persons_decode_to_their_joints():
    people = three_persons()
    heatmaps, offsets = scene(people)
    ((keypoints, scores),) = decode_dekr(heatmaps, offsets)
    assert keypoints.shape == (3, K, 3) and scores.shape == (3,)
    # Proposal order (best centre first) survives the NMS; joints in input pixels, 4 per heatmap pixel.
    for got, (_, joints, _) in zip(keypoints, sorted(people, key=lambda p: -p[2])):
        torch.testing.assert_close(got[:, :2], 4 * joints, rtol=0, atol=0)
    assert scores.tolist() == pytest.approx(keypoints[:, :, 2].mean(1).tolist())
    ((one, _),) = decode_dekr(heatmaps, offsets, stride=1.0)
    torch.testing.assert_close(one[0, :, :2], people[0][1], rtol=0, atol=0)


def test_pose_nms_drops_a_duplicate_person():
    people = three_persons()
    people.append(((20.0, 16.0), person_joints(14, 16) + 0.3, 0.6))  # a second centre, the same person
    heatmaps, offsets = scene(people)
    assert centre_nms(heatmaps[:, K])[2].sum() == 4
    ((keypoints, _),) = decode_dekr(heatmaps, offsets)
    assert len(keypoints) == 3
    torch.testing.assert_close(keypoints[0, :, :2], 4 * people[0][1], rtol=0, atol=0)  # the better heat score


def test_no_centre_no_person():
    heatmaps, offsets = scene(three_persons())
    heatmaps[:, K] = 0.005
    results = decode_dekr(heatmaps, offsets, flip_heatmaps=heatmaps, flip_offsets=offsets, flip_index=FLIP)
    assert results[0][0].shape == (0, K, 3) and results[0][1].shape == (0,)


def test_flip_test_of_a_mirror_image_decodes_the_same():
    heatmaps, offsets = scene(three_persons())
    flip_heatmaps, flip_offsets = mirror(heatmaps, offsets)
    ((plain, plain_scores),) = decode_dekr(heatmaps, offsets)
    ((flipped, flipped_scores),) = decode_dekr(heatmaps, offsets, flip_heatmaps, flip_offsets, FLIP)
    torch.testing.assert_close(flipped, plain, rtol=0, atol=1e-4)
    torch.testing.assert_close(flipped_scores, plain_scores)


def test_decode_dekr_is_the_reference_pipeline():
    heatmaps, offsets = random_maps(32, 48, seed=5, batch=2)
    flip_heatmaps, flip_offsets = random_maps(32, 48, seed=6, batch=2)
    heatmaps, flip_heatmaps = heatmaps**3, flip_heatmaps**3
    resize = bottom_up_resize((130, 190), 128)
    assert resize.base_size == (128, 192)
    net = RescoreNet(74).eval()
    with torch.no_grad():
        results = decode_dekr(heatmaps, offsets, flip_heatmaps, flip_offsets, FLIP, resize=resize, rescore_net=net)
    for b, (keypoints, scores) in enumerate(results):
        heat, poses = ref_flip_test(*(t[b].numpy() for t in (heatmaps, offsets, flip_heatmaps, flip_offsets)), FLIP)
        heat_sum, proposals = ref_aggregate(0, [], heat, poses, 1.0)
        ref_k, ref_s = ref_pose_nms(heat_sum, proposals)
        ref_k = ref_final_preds(ref_k.astype(np.float32), resize.center.numpy(), resize.scale.numpy(), (192, 128))
        with torch.no_grad():
            ref_s = net(torch.from_numpy(ref_feature(ref_k, DEKR_COCO_LINKS))).numpy() * ref_s
        assert len(keypoints) > 1
        np.testing.assert_allclose(keypoints.numpy(), ref_k, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(scores.numpy(), ref_s, rtol=1e-4, atol=1e-6)
