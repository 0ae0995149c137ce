"""Associative-embedding decoding against transcriptions of HigherHRNet's reference loops.

References: ``lib/core/group.py`` (``HeatmapParser``, ``match_by_tag``), ``lib/core/inference.py``
(``get_multi_stage_outputs``, ``aggregate_results``), ``tools/valid.py`` and the shared geometry of
``bottom_up_reference`` (``get_multi_scale_size``, ``resize_align_multi_scale``, ``get_final_preds``). Each
transcription below restates the reference's per-person / per-joint loop; its Hungarian step (``munkres`` there) is
a brute force over permutations, and the assignment itself is checked against munkres 1.1's on tie-heavy matrices
(``data/ae_munkres_cases.npz``, made by ``tools/make_munkres_golden.py``).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hrnet_zoo.codec._munkres import munkres_assignment
from hrnet_zoo.codec.associative_embedding import (
    COCO_GROUPING_ORDER,
    adjust_keypoints,
    aggregate_ae_scales,
    decode_associative_embedding,
    group_by_tags,
    heatmap_nms,
    multi_stage_outputs,
    refine_keypoints,
    top_k_candidates,
)
from hrnet_zoo.codec.bottom_up import bottom_up_resize
from hrnet_zoo.keypoints import COCO_KEYPOINTS

from .bottom_up_reference import ref_affine, ref_final_preds, ref_multi_scale_size

COCO_FLIP = COCO_KEYPOINTS.flip_index
MUNKRES_CASES = Path(__file__).parent / "data" / "ae_munkres_cases.npz"

# ----------------------------------------------------------------------------------------------------------------
# Transcriptions of the reference


def brute_force_match(cost):
    """All (row, col) pairs of the first minimum-cost assignment of every row (rows <= cols)."""
    rows, cols = cost.shape
    best = min(itertools.permutations(range(cols), rows), key=lambda p: sum(cost[r, c] for r, c in enumerate(p)))
    return [(r, c) for r, c in enumerate(best)]


def ref_top_k(det, tag, kernel, k):
    det = det * torch.eq(torch.nn.MaxPool2d(kernel, 1, (kernel - 1) // 2)(det), det).float()
    b, j, h, w = det.shape
    val_k, ind = det.view(b, j, -1).topk(k, dim=2)
    tag = tag.view(tag.size(0), tag.size(1), w * h, -1)
    tag_k = torch.stack([torch.gather(tag[:, :, :, i], 2, ind) for i in range(tag.size(3))], dim=3)
    ind_k = torch.stack((ind % w, (ind / w).long()), dim=3)
    return tag_k.numpy(), ind_k.numpy(), val_k.numpy()


def ref_match_by_tag(tag_k, loc_k, val_k, order, max_people, det_thr, tag_thr, use_val, ignore_too_much):
    default = np.zeros((len(order), 3 + tag_k.shape[2]))
    joint_dict, tag_dict = {}, {}
    for i, idx in enumerate(order):
        tags = tag_k[idx]
        joints = np.concatenate((loc_k[idx], val_k[idx, :, None], tags), 1)
        mask = joints[:, 2] > det_thr
        tags, joints = tags[mask], joints[mask]
        if joints.shape[0] == 0:
            continue
        if i == 0 or len(joint_dict) == 0:
            for tag, joint in zip(tags, joints):
                joint_dict.setdefault(tag[0], np.copy(default))[idx] = joint
                tag_dict[tag[0]] = [tag]
            continue
        keys = list(joint_dict.keys())[:max_people]
        if ignore_too_much and len(keys) == max_people:
            continue
        grouped = [np.mean(tag_dict[key], axis=0) for key in keys]
        diff = np.linalg.norm(joints[:, None, 3:] - np.array(grouped)[None, :, :], ord=2, axis=2)
        cost = np.round(diff) * 100 - joints[:, 2:3] if use_val else np.copy(diff)
        if len(joints) > len(keys):
            cost = np.concatenate((cost, np.zeros((len(joints), len(joints) - len(keys))) + 1e10), axis=1)
        for row, col in brute_force_match(cost):
            if col < len(keys) and diff[row][col] < tag_thr:
                joint_dict[keys[col]][idx] = joints[row]
                tag_dict[keys[col]].append(tags[row])
            else:
                joint_dict.setdefault(tags[row][0], np.copy(default))[idx] = joints[row]
                tag_dict[tags[row][0]] = [tags[row]]
    return np.array([joint_dict[key] for key in joint_dict]).astype(np.float32)


def ref_adjust(people, det):
    for person in people:
        for joint_id, joint in enumerate(person):
            if joint[2] > 0:
                y, x = joint[0:2]
                xx, yy = int(x), int(y)
                tmp = det[joint_id]
                y += 0.25 if tmp[xx, min(yy + 1, tmp.shape[1] - 1)] > tmp[xx, max(yy - 1, 0)] else -0.25
                x += 0.25 if tmp[min(xx + 1, tmp.shape[0] - 1), yy] > tmp[max(0, xx - 1), yy] else -0.25
                person[joint_id, 0:2] = (y + 0.5, x + 0.5)
    return people


def ref_refine(det, tag, keypoints):
    tags = [tag[i, y, x] for i, (x, y) in enumerate(keypoints[:, :2].astype(np.int32)) if keypoints[i, 2] > 0]
    prev_tag = np.mean(tags, axis=0)
    ans = []
    for i in range(keypoints.shape[0]):
        tmp = det[i]
        tt = ((tag[i] - prev_tag[None, None, :]) ** 2).sum(axis=2) ** 0.5
        y, x = np.unravel_index(np.argmax(tmp - np.round(tt)), tmp.shape)
        val, xx, yy = tmp[y, x], x, y
        x, y = x + 0.5, y + 0.5
        x += 0.25 if tmp[yy, min(xx + 1, tmp.shape[1] - 1)] > tmp[yy, max(xx - 1, 0)] else -0.25
        y += 0.25 if tmp[min(yy + 1, tmp.shape[0] - 1), xx] > tmp[max(0, yy - 1), xx] else -0.25
        ans.append((x, y, val))
    for i, (x, y, val) in enumerate(ans):
        if val > 0 and keypoints[i, 2] == 0:
            keypoints[i, :3] = (x, y, val)
    return keypoints


def ref_parse(det, tag, kernel, max_people, det_thr, tag_thr, use_val, refine=True):
    """HeatmapParser.parse for one image: det (1, K, H, W), tag (1, K, H, W, L)."""
    tag_k, loc_k, val_k = ref_top_k(det, tag, kernel, max_people)
    people = ref_match_by_tag(
        tag_k[0], loc_k[0], val_k[0], COCO_GROUPING_ORDER, max_people, det_thr, tag_thr, use_val, False
    )
    people = ref_adjust(people, det[0].numpy())
    scores = [p[:, 2].mean() for p in people]
    if refine:
        people = np.array([ref_refine(det[0].numpy(), tag[0].numpy(), p) for p in people])
    return people, scores


def ref_multi_stage(outputs, outputs_flip, num_joints, with_heatmaps, with_ae, size_projected):
    """get_multi_stage_outputs with the model's outputs given (size_projected as (w, h))."""
    heatmaps_avg, num_heatmaps, heatmaps, tags = 0, 0, [], []
    for flip, outs in ((False, outputs), (True, outputs_flip)):
        if outs is None:
            continue
        heatmaps_avg, num_heatmaps = 0, 0
        for i, output in enumerate(outs):
            if len(outs) > 1 and i != len(outs) - 1:
                output = F.interpolate(output, size=outs[-1].shape[2:], mode="bilinear", align_corners=False)
            if flip:
                output = torch.flip(output, [3])
            if with_heatmaps[i]:
                hms = output[:, :num_joints]
                heatmaps_avg += hms[:, COCO_FLIP] if flip else hms
                num_heatmaps += 1
            if with_ae[i]:
                tags.append(output[:, num_joints:][:, COCO_FLIP] if flip else output[:, num_joints:])
        heatmaps.append(heatmaps_avg / num_heatmaps)
    if size_projected:
        size = (size_projected[1], size_projected[0])
        heatmaps = [F.interpolate(h, size=size, mode="bilinear", align_corners=False) for h in heatmaps]
        tags = [F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in tags]
    return heatmaps, tags


def ref_aggregate(scale_factors, project2image, flip, per_scale):
    final_heatmaps, tags_list = None, []
    for s, (heatmaps, tags) in zip(scale_factors, per_scale):
        if s == 1 or len(scale_factors) == 1:
            if final_heatmaps is not None and not project2image:
                tags = [
                    F.interpolate(t, size=final_heatmaps.shape[2:], mode="bilinear", align_corners=False) for t in tags
                ]
            tags_list += [torch.unsqueeze(t, dim=4) for t in tags]
        heatmaps_avg = (heatmaps[0] + heatmaps[1]) / 2.0 if flip else heatmaps[0]
        if final_heatmaps is None:
            final_heatmaps = heatmaps_avg
        elif project2image:
            final_heatmaps = final_heatmaps + heatmaps_avg
        else:
            final_heatmaps = final_heatmaps + F.interpolate(
                heatmaps_avg, size=final_heatmaps.shape[2:], mode="bilinear", align_corners=False
            )
    return final_heatmaps / float(len(scale_factors)), torch.cat(tags_list, dim=4)


# ----------------------------------------------------------------------------------------------------------------
# Inputs


def random_maps(seed, k=17, h=24, w=20, tag_dim=2, tag_scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, k, h, w, generator=g), torch.rand(1, k, h, w, tag_dim, generator=g) * tag_scale


def gaussian(h, w, x, y, sigma=2.0):
    ys, xs = np.mgrid[0:h, 0:w]
    return np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))


def drawn_people(joints, peak, tag_values, h=64, w=64):
    """Heatmaps (1, K, H, W) with a Gaussian per joint and tags (1, K, H, W, 1): each pixel the tag of the nearest
    person's joint. joints: (P, K, 2) integer x, y; peak: (P, K) heights."""
    k = joints.shape[1]
    heatmaps = np.zeros((k, h, w), np.float32)
    tags = np.zeros((k, h, w), np.float32)
    ys, xs = np.mgrid[0:h, 0:w]
    for j in range(k):
        heatmaps[j] = np.max([peak[p, j] * gaussian(h, w, *joints[p, j]) for p in range(len(joints))], axis=0)
        nearest = np.argmin([(xs - x) ** 2 + (ys - y) ** 2 for x, y in joints[:, j]], axis=0)
        tags[j] = np.asarray(tag_values, np.float32)[nearest]
    return torch.from_numpy(heatmaps)[None], torch.from_numpy(tags)[None, ..., None]


def three_people():
    rng = np.random.default_rng(0)
    centers = np.array([[12, 14], [32, 40], [52, 20]])
    joints = np.stack([c + rng.integers(-8, 9, (17, 2)) for c in centers])
    # Keep joints of different persons apart (at least 2 px) so each Gaussian keeps its own peak.
    for j in range(17):
        for p in range(3):
            for q in range(p):
                while np.abs(joints[p, j] - joints[q, j]).max() < 3:
                    joints[p, j] += 1
    return joints


# ----------------------------------------------------------------------------------------------------------------
# Tests


def brute_force_cost(cost):
    """The minimum total cost of assigning every row (rows <= cols) or every column."""
    cost = cost if cost.shape[0] <= cost.shape[1] else cost.T
    return sum(cost[r, c] for r, c in brute_force_match(cost))


def test_munkres_equals_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(200):
        rows, cols = rng.integers(1, 6), rng.integers(1, 6)
        cost = rng.normal(size=(rows, cols))
        pairs = munkres_assignment(cost)
        if rows <= cols:
            assert [tuple(p) for p in pairs] == brute_force_match(cost)
        else:  # munkres pads with zero columns: the best assignment of every column
            assert sorted(map(tuple, pairs[:, ::-1])) == sorted(brute_force_match(cost.T))
    for _ in range(200):  # with ties: an optimum, one pair per row or column
        cost = rng.integers(0, 3, rng.integers(1, 6, 2)).astype(np.float64)
        pairs = munkres_assignment(cost)
        assert len(pairs) == min(cost.shape) and len(set(pairs[:, 0])) == len(set(pairs[:, 1])) == len(pairs)
        assert cost[pairs[:, 0], pairs[:, 1]].sum() == brute_force_cost(cost)
    assert munkres_assignment(np.zeros((0, 3))).shape == (0, 2)


def test_munkres_breaks_ties_as_the_munkres_package():
    cases = np.load(MUNKRES_CASES)
    assert str(cases["version"]).startswith("1.1.")
    shapes, counts = cases["shapes"], cases["counts"]
    costs = np.split(cases["costs"], np.cumsum(shapes.prod(axis=1))[:-1])
    expected = np.split(cases["pairs"], np.cumsum(counts)[:-1])
    assert len(shapes) >= 300
    for shape, cost, pairs in zip(shapes, costs, expected):
        np.testing.assert_array_equal(munkres_assignment(cost.reshape(shape)), pairs)


def test_nms_and_top_k_match_reference():
    heatmaps, tags = random_maps(0)
    for kernel in (3, 5):
        peaks = heatmap_nms(heatmaps, kernel)
        expected = heatmaps * torch.eq(torch.nn.MaxPool2d(kernel, 1, (kernel - 1) // 2)(heatmaps), heatmaps).float()
        torch.testing.assert_close(peaks, expected, rtol=0, atol=0)
        vals, locs, cand_tags = top_k_candidates(peaks, tags, 7)
        tag_k, loc_k, val_k = ref_top_k(heatmaps, tags, kernel, 7)
        np.testing.assert_array_equal(vals.numpy(), val_k)
        np.testing.assert_array_equal(locs.numpy(), loc_k)
        np.testing.assert_array_equal(cand_tags.numpy(), tag_k)
    with pytest.raises(ValueError, match="odd"):
        heatmap_nms(heatmaps, 4)


def random_people(seed, num_people=5, size=40):
    """Drawn persons at random places with random peak heights (a fifth below 0.3) and well separated tags."""
    rng = np.random.default_rng(seed)
    joints = rng.integers(2, size - 2, (num_people, 17, 2))
    peak = rng.uniform(0.3, 1.0, (num_people, 17)) * (rng.random((num_people, 17)) > 0.2)
    return drawn_people(joints, peak, 3.0 * np.arange(num_people) + rng.normal(0, 0.2, num_people), size, size)


@pytest.mark.parametrize("use_val, ignore_too_much", [(False, False), (False, True), (True, False), (True, True)])
def test_group_by_tags_matches_reference(use_val, ignore_too_much):
    for seed in range(6):
        # Random maps give many candidates at similar tags; with use_detection_val their rounded costs tie, which
        # munkres and the brute force break differently, so that case uses separated persons.
        heatmaps, tags = random_people(seed) if use_val else random_maps(seed)
        tag_k, loc_k, val_k = ref_top_k(heatmaps, tags, 5, 5)
        expected = ref_match_by_tag(
            tag_k[0], loc_k[0], val_k[0], COCO_GROUPING_ORDER, 5, 0.3, 1.0, use_val, ignore_too_much
        )
        got = group_by_tags(val_k[0], loc_k[0], tag_k[0], 0.3, 1.0, use_val, ignore_too_much, max_num_people=5)
        np.testing.assert_array_equal(got, expected)


def test_adjust_and_refine_match_reference():
    heatmaps, tags = random_maps(3, tag_dim=1)
    tag_k, loc_k, val_k = ref_top_k(heatmaps, tags, 5, 6)
    people = ref_match_by_tag(tag_k[0], loc_k[0], val_k[0], COCO_GROUPING_ORDER, 6, 0.6, 1.0, False, False)
    assert (people[..., 2] == 0).any()  # some joints are missing
    det, tag = heatmaps[0].numpy(), tags[0].numpy()
    adjusted = adjust_keypoints(people, det)
    np.testing.assert_array_equal(adjusted, ref_adjust(people.copy(), det))
    refined = refine_keypoints(det, tag, adjusted)
    np.testing.assert_array_equal(refined, np.array([ref_refine(det, tag, p.copy()) for p in adjusted]))


@pytest.mark.parametrize("refine", [True, False])
def test_decode_matches_reference_parse(refine):
    for seed in range(4):
        heatmaps, tags = random_maps(10 + seed, tag_scale=3.0)
        ((people, scores),) = decode_associative_embedding(
            heatmaps, tags, 6, 3, 0.5, 1.0, use_detection_val=False, refine=refine
        )
        expected, expected_scores = ref_parse(heatmaps, tags, 3, 6, 0.5, 1.0, False, refine)
        np.testing.assert_array_equal(people, expected)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)


def test_three_drawn_people_are_grouped_and_a_missing_joint_is_refined():
    joints = three_people()
    peak = np.ones((3, 17))
    peak[0, 5] = 0.05  # below the detection threshold: only refine finds it
    heatmaps, tags = drawn_people(joints, peak, [0.0, 1.0, 2.0])
    for refine in (False, True):
        ((people, scores),) = decode_associative_embedding(heatmaps, tags, refine=refine)
        assert people.shape == (3, 17, 4)
        order = np.argsort(people[:, 0, 3])  # by tag
        people, scores = people[order], scores[order]
        np.testing.assert_array_equal(people[..., 3][people[..., 2] > 0.1], np.repeat([0.0, 1.0, 2.0], [16, 17, 17]))
        detected = peak > 0.1
        # A symmetric peak: both neighbours equal, so -0.25 then +0.5.
        np.testing.assert_allclose(people[..., :2][detected], joints[detected] + 0.25, atol=1e-6)
        np.testing.assert_allclose(people[..., 2][detected], 1.0, atol=1e-6)
        np.testing.assert_allclose(scores, [16 / 17, 1.0, 1.0], atol=1e-6)
        if refine:
            np.testing.assert_allclose(people[0, 5, :3], [*(joints[0, 5] + 0.25), 0.05], atol=1e-6)
        else:
            np.testing.assert_array_equal(people[0, 5], 0.0)
    ((expected, _),) = [ref_parse(heatmaps, tags, 5, 30, 0.1, 1.0, True)]
    np.testing.assert_array_equal(decode_associative_embedding(heatmaps, tags)[0][0], expected)


def test_no_peaks_and_more_people_than_allowed():
    heatmaps, tags = torch.zeros(2, 17, 32, 32), torch.zeros(2, 17, 32, 32)
    for people, scores in decode_associative_embedding(heatmaps, tags):
        assert people.shape == (0, 17, 4) and scores.shape == (0,)
    rng = np.random.default_rng(2)
    joints = np.stack([np.stack([rng.integers(1, 5, 17) + 8 * p, rng.integers(1, 31, 17)], 1) for p in range(5)])
    peak = np.repeat(np.array([0.5, 0.9, 0.6, 0.8, 0.7])[:, None], 17, 1)
    heatmaps, tags = drawn_people(joints, peak, [0.0, 2.0, 4.0, 6.0, 8.0], w=48)
    ((people, scores),) = decode_associative_embedding(heatmaps, tags, max_num_people=3)
    assert people.shape == (3, 17, 4)
    assert sorted(people[:, 0, 3].tolist()) == [2.0, 6.0, 8.0]  # the three highest persons
    np.testing.assert_allclose(sorted(scores), [0.7, 0.8, 0.9], atol=1e-6)


@pytest.mark.parametrize("flip, project", [(False, None), (True, None), (True, (40, 56))])
def test_multi_stage_outputs_match_reference(flip, project):
    g = torch.Generator().manual_seed(4)
    outputs = [torch.rand(1, 34, 8, 12, generator=g), torch.rand(1, 17, 16, 24, generator=g)]
    flipped = [torch.rand(1, 34, 8, 12, generator=g), torch.rand(1, 17, 16, 24, generator=g)] if flip else None
    heatmaps, tags = multi_stage_outputs(outputs, 17, flipped, COCO_FLIP if flip else None, project_size=project)
    size_projected = (project[1], project[0]) if project else None
    ref_heatmaps, ref_tags = ref_multi_stage(outputs, flipped, 17, (True, True), (True, False), size_projected)
    assert len(heatmaps) == len(ref_heatmaps) == (2 if flip else 1) and len(tags) == len(ref_tags)
    for a, b in zip([*heatmaps, *tags], [*ref_heatmaps, *ref_tags]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="flip_index"):
        multi_stage_outputs(outputs, 17, outputs)


@pytest.mark.parametrize("scales, project2image", [([1], False), ([2, 1, 0.5], False), ([2, 1, 0.5], True)])
def test_aggregate_scales_matches_reference(scales, project2image):
    g = torch.Generator().manual_seed(5)
    per_scale = []
    for s in scales:
        size = (12, 16) if project2image else (int(12 * s), int(16 * s))
        per_scale.append(([torch.rand(1, 17, *size, generator=g) for _ in range(2)], [torch.rand(1, 17, *size)] * 2))
    heatmaps, tags = aggregate_ae_scales([(s, h, t) for s, (h, t) in zip(scales, per_scale)], project2image)
    ref_heatmaps, ref_tags = ref_aggregate(scales, project2image, True, per_scale)
    torch.testing.assert_close(heatmaps, ref_heatmaps, rtol=0, atol=0)
    torch.testing.assert_close(tags, ref_tags, rtol=0, atol=0)
    assert tags.shape[-1] == 2


def test_bottom_up_resize_warp_and_to_image_match_reference():
    for h, w in [(480, 640), (427, 320), (500, 500)]:
        for s, min_scale in [(1.0, 1.0), (2.0, 0.5), (0.5, 0.5)]:
            resize = bottom_up_resize((h, w), 512, s, min_scale)
            (ew, eh), e_center, e_scale = ref_multi_scale_size(h, w, 512, s, min_scale)
            assert resize.size == (eh, ew)
            np.testing.assert_array_equal(resize.center.numpy(), e_center)
            np.testing.assert_array_equal(resize.scale.numpy(), e_scale)
    image = np.random.default_rng(6).random((90, 70, 3), dtype=np.float32)
    resize = bottom_up_resize((90, 70), 128)
    resized = resize.warp(torch.from_numpy(image).permute(2, 0, 1))
    center, scale = resize.center.numpy(), resize.scale.numpy()
    (w, h), _, _ = ref_multi_scale_size(90, 70, 128, 1.0, 1.0)
    expected = cv2.warpAffine(image, ref_affine(center, scale, (w, h), False), (w, h))
    assert resized.shape == (3, h, w)
    np.testing.assert_allclose(resized.permute(1, 2, 0).numpy(), expected, atol=2e-3)
    people = np.random.default_rng(7).random((3, 17, 4)).astype(np.float32) * 60
    got = resize.to_image(torch.from_numpy(people), (h // 2, w // 2)).numpy()
    np.testing.assert_allclose(got, ref_final_preds(people, center, scale, (w // 2, h // 2)), rtol=1e-6, atol=1e-4)
    assert resize.to_image(torch.from_numpy(people[:0]), (h, w)).shape == (0, 17, 4)


def test_decode_maps_to_the_image_after_refine():
    heatmaps, tags = drawn_people(three_people(), np.ones((3, 17)), [0.0, 1.0, 2.0])
    resize = bottom_up_resize((100, 120), 128)
    ((people, scores),) = decode_associative_embedding(heatmaps, tags, resize=resize)
    ((expected, expected_scores),) = [ref_parse(heatmaps, tags, 5, 30, 0.1, 1.0, True)]
    expected = ref_final_preds(expected, resize.center.numpy(), resize.scale.numpy(), (64, 64))
    np.testing.assert_allclose(people, expected, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)
