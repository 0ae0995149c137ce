"""mmpose 1.x's DEKR test protocol against transcriptions of mmpose's code (``dekr_openmmlab_reference``).

The oracle runs on mmpose's layout (displacements from the centre to the keypoint), the decoder on the package's
(offsets the other way: the checkpoint conversion negates them); both see the same centre-last heatmaps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrnet_zoo.codec.bottom_up_codec import BottomUpCodec
from hrnet_zoo.codec.dekr_openmmlab import decode_dekr_openmmlab, openmmlab_bottom_up_resize
from hrnet_zoo.keypoints import get_keypoint_set
from hrnet_zoo.models.dekr import RescoreNet

from .dekr_openmmlab_reference import (
    ref_bottomup_resize,
    ref_coco_scores,
    ref_decode,
    ref_flip_heatmaps,
    ref_flip_test,
    ref_get_warp_matrix,
    ref_to_image,
)

#: mmpose's configs/_base_/datasets/coco.py ``skeleton_info``, in its order.
MMPOSE_COCO_LINKS = (
    *(("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee")),
    *(("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip")),
    *(("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow")),
    *(("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist")),
    *(("left_eye", "right_eye"), ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear")),
    *(("right_eye", "right_ear"), ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder")),
)
#: The same for crowdpose.py.
MMPOSE_CROWDPOSE_LINKS = (
    *(("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee")),
    *(("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip")),
    *(("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow")),
    *(("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist")),
    *(("top_head", "neck"), ("right_shoulder", "neck"), ("left_shoulder", "neck")),
)
#: The torso links of mmpose's ``rescore_cfg.norm_indexes``.
NORM_LINKS = {"coco": (5, 6), "crowdpose": (0, 1)}
INPUT = (64, 64)


@pytest.mark.parametrize(("name", "links"), [("coco", MMPOSE_COCO_LINKS), ("crowdpose", MMPOSE_CROWDPOSE_LINKS)])
def test_keypoint_set_skeleton_is_mmposes_skeleton_links(name, links):
    keypoints = get_keypoint_set(name)
    assert keypoints.skeleton == tuple((keypoints.names.index(a), keypoints.names.index(b)) for a, b in links)


# ----------------------------------------------------------------------------------------------------------------
# The resize


@pytest.mark.parametrize("input_size", [(512, 512), (640, 640), (64, 64), (500, 300)])
def test_resize_is_mmposes_bottomup_resize(input_size):
    rng = np.random.default_rng(0)
    for h, w in [(480, 640), (640, 427), (333, 500), (500, 333), (512, 512), (97, 1000), (427, 640)]:
        resize = openmmlab_bottom_up_resize((h, w), input_size)
        _, padded, e_center, e_scale, e_matrix = ref_bottomup_resize(np.zeros((h, w, 3), np.uint8), input_size[::-1])
        assert resize.size == resize.base_size == padded[::-1]
        assert resize.size[0] % 32 == 0 and resize.size[1] % 32 == 0
        np.testing.assert_array_equal(resize.center.numpy(), e_center)
        np.testing.assert_allclose(resize.scale.numpy() * 200, e_scale, rtol=1e-7)
        np.testing.assert_allclose(resize.matrix().numpy(), e_matrix, rtol=1e-6, atol=1e-4)  # float32 points
        # mmpose maps back by input_scale / input_size, the inverse of its warp: the class's to_image
        inverse = ref_get_warp_matrix(e_center, e_scale, padded, inv=True)
        points = (rng.random((4, 17, 2)) * np.array(padded)).astype(np.float32)
        expected = ref_to_image(points, padded, e_center, e_scale)
        np.testing.assert_allclose(expected, points @ inverse[:, :2].T + inverse[:, 2], rtol=1e-5, atol=1e-3)
        scores = rng.random((4, 17, 1)).astype(np.float32)
        got = resize.to_image(torch.from_numpy(np.concatenate([points, scores], axis=2))).numpy()
        np.testing.assert_allclose(got[..., :2], expected, rtol=1e-6, atol=1e-4)
        np.testing.assert_array_equal(got[..., 2:], scores)


def test_resize_warp_is_mmposes_warp():
    image = np.random.default_rng(1).random((50, 77, 3), dtype=np.float32)
    for img in (image, np.ascontiguousarray(image.transpose(1, 0, 2))):
        resize = openmmlab_bottom_up_resize(img.shape[:2], INPUT)
        expected, padded, *_ = ref_bottomup_resize(img, INPUT)
        got = resize.warp(torch.from_numpy(img).permute(2, 0, 1))
        assert got.shape == (3, padded[1], padded[0])
        np.testing.assert_allclose(got.permute(1, 2, 0).numpy(), expected, atol=2e-3)


# ----------------------------------------------------------------------------------------------------------------
# The decoder


def mmpose_outputs(seed: int, k: int, h: int, w: int, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """mmpose-layout outputs of a plain and a flipped pass: centre-last heatmaps with many centre peaks, and
    displacements whose poses cluster around a few people, tightly for some (the pose NMS merges their copies),
    loosely for others; the flipped pass is the plain one mirrored, with noise."""
    gen = torch.Generator().manual_seed(seed)
    heatmaps = torch.rand(batch, k + 1, h, w, generator=gen)
    people = 5
    templates = torch.rand(batch, people, k, 2, generator=gen) * torch.tensor([w, h])
    spread = torch.tensor([0.01, 0.05, 0.3, 1.0, 3.0])
    person = (torch.arange(w) * people // w).expand(h, w)  # columns in bands, one per person
    poses = templates[:, person] + spread[person][None, :, :, None, None] * torch.randn(
        batch, h, w, k, 2, generator=gen
    )
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    grid = torch.stack([x, y], dim=-1)[None, :, :, None].float()
    displacements = (poses - grid).permute(0, 3, 4, 1, 2).reshape(batch, 2 * k, h, w).contiguous()
    flip = list(get_keypoint_set("coco" if k == 17 else "crowdpose").flip_index)
    flipped_heatmaps = ref_flip_heatmaps(heatmaps.clone(), [*flip, k], shift_heatmap=False)
    flipped_heatmaps = flipped_heatmaps + 0.1 * torch.rand(flipped_heatmaps.shape, generator=gen)
    flipped = ref_flip_heatmaps(displacements.clone(), flip, "offset", shift_heatmap=False)
    flipped = flipped + 0.1 * torch.randn(flipped.shape, generator=gen)
    return heatmaps, displacements, flipped_heatmaps, flipped


def reference(outputs, flip, resize, net, skeleton, norm_links):
    """mmpose's whole path per image: flip test, DEKRHead.decode, add_pred_to_datasample, CocoMetric's score."""
    heatmaps, displacements, flipped_heatmaps, flipped = outputs
    padded = resize.size[::-1]
    center, scale = resize.center.numpy(), (resize.scale.float() * 200).numpy()
    results = []
    for b in range(heatmaps.shape[0]):
        h, d = heatmaps[b : b + 1].clone(), displacements[b : b + 1].clone()
        if flip is not None:
            h, d = ref_flip_test(h, d, flipped_heatmaps[b : b + 1].clone(), flipped[b : b + 1].clone(), flip, padded[0])
        keypoints, scores = ref_decode(
            h[0], d[0], np.array([4.0, 4.0], np.float32), net, skeleton, norm_links, nms_dist_thr=0.05
        )
        results.append((keypoints, ref_to_image(keypoints, padded, center, scale), scores, ref_coco_scores(scores)))
    return results


CASES = [("coco", (70, 150)), ("coco", (150, 70)), ("crowdpose", (100, 100)), ("coco", (61, 93))]


@pytest.mark.parametrize("rescore", [False, True], ids=["plain", "rescore"])
@pytest.mark.parametrize("flip_test", [False, True], ids=["single", "flip"])
@pytest.mark.parametrize(("name", "image_size"), CASES)
def test_decoder_is_mmposes(name, image_size, flip_test, rescore):
    keypoint_set = get_keypoint_set(name)
    k = len(keypoint_set.names)
    resize = openmmlab_bottom_up_resize(image_size, INPUT)
    outputs = mmpose_outputs(sum(image_size) + k, k, resize.size[0] // 4, resize.size[1] // 4)
    torch.manual_seed(k)
    net = RescoreNet(3 * len(keypoint_set.skeleton) + k).eval() if rescore else None
    codec = BottomUpCodec(
        protocol="openmmlab1", input_size=INPUT, nms_joints=k // 2, rescore_norm_links=NORM_LINKS[name]
    )
    flip = list(keypoint_set.flip_index) if flip_test else None
    heatmaps, displacements, flipped_heatmaps, flipped = outputs
    package = (heatmaps, -displacements, flipped_heatmaps, -flipped) if flip_test else (heatmaps, -displacements)
    with torch.no_grad():
        expected = reference(outputs, flip, resize, net, keypoint_set.skeleton, NORM_LINKS[name])
        kwargs = dict(codec=codec, rescore_net=net, skeleton=keypoint_set.skeleton)
        in_image = decode_dekr_openmmlab(*package, flip_index=flip, resize=resize, **kwargs)
        in_input = decode_dekr_openmmlab(*package, flip_index=flip, **kwargs)
    merged = 0
    for (e_input, e_image, e_joint_scores, e_scores), (image, scores), (inputs, input_scores) in zip(
        expected, in_image, in_input
    ):
        assert 1 < len(e_input) == image.shape[0] == inputs.shape[0] and image.shape[1:] == (k, 3)
        merged += 30 - len(e_input)
        np.testing.assert_allclose(inputs[..., :2].numpy(), e_input, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(image[..., :2].numpy(), e_image, rtol=1e-5, atol=1e-4)
        for got in (image, inputs):
            np.testing.assert_allclose(got[..., 2].numpy(), e_joint_scores, rtol=1e-5, atol=1e-6)
        for got in (scores, input_scores):
            np.testing.assert_allclose(got.numpy(), e_scores, rtol=1e-5, atol=1e-6)
    assert merged > 0  # the pose NMS merged copies


def test_decoder_means_what_mmpose_means():
    """One centre at heatmap pixel (5, 3), offsets from every pixel to a fixed pose, flat joint heatmaps: the pose
    comes out at 4x the heatmap pixels, with the centre score times the joint heatmap as every score, and the
    resize maps it to the image (a 128 x 128 image is the 64 x 64 input at half the zoom)."""
    k, h, w = 17, 16, 16
    heatmaps = torch.full((1, k + 1, h, w), 0.5)
    heatmaps[:, k] = 0
    heatmaps[0, k, 3, 5] = 0.8
    pose = torch.rand(k, 2, generator=torch.Generator().manual_seed(3)) * 15
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    offsets = (torch.stack([x, y], dim=-1)[:, :, None] - pose).permute(2, 3, 0, 1).reshape(1, 2 * k, h, w)
    codec = BottomUpCodec(protocol="openmmlab1", input_size=INPUT)
    ((keypoints, scores),) = decode_dekr_openmmlab(heatmaps, offsets.float(), codec=codec)
    torch.testing.assert_close(keypoints[0, :, :2], 4 * pose)
    torch.testing.assert_close(keypoints[0, :, 2], torch.full((k,), 0.4))
    torch.testing.assert_close(scores, torch.tensor([0.4]))
    resize = openmmlab_bottom_up_resize((128, 128), INPUT)
    ((in_image, _),) = decode_dekr_openmmlab(heatmaps, offsets.float(), codec=codec, resize=resize)
    torch.testing.assert_close(in_image[0, :, :2], 8 * pose)
    heatmaps[:, k] = 0.005  # below the threshold: nobody
    ((nobody, no_scores),) = decode_dekr_openmmlab(heatmaps, offsets.float(), codec=codec, resize=resize)
    assert nobody.shape == (0, k, 3) and no_scores.shape == (0,)


def test_decoder_input_checks():
    codec = BottomUpCodec(protocol="openmmlab1", input_size=INPUT)
    heatmaps, offsets = torch.rand(1, 18, 16, 16), torch.rand(1, 34, 16, 16)
    flip = list(get_keypoint_set("coco").flip_index)
    with pytest.raises(ValueError, match="centre last"):
        decode_dekr_openmmlab(heatmaps[:, :17], offsets, codec=codec)
    with pytest.raises(ValueError, match=r"\(B, 2K, H, W\)"):
        decode_dekr_openmmlab(heatmaps, offsets[:, :33], codec=codec)
    with pytest.raises(ValueError, match="both"):
        decode_dekr_openmmlab(heatmaps, offsets, heatmaps, codec=codec, flip_index=flip)
    with pytest.raises(ValueError, match="flip_index"):
        decode_dekr_openmmlab(heatmaps, offsets, heatmaps, offsets, codec=codec)
    with pytest.raises(ValueError, match="skeleton"):
        decode_dekr_openmmlab(heatmaps, offsets, codec=codec, rescore_net=RescoreNet(74))
    with pytest.raises(ValueError, match="nms_joints"):
        decode_dekr_openmmlab(heatmaps[:, :5], offsets[:, :8], codec=codec)
    with pytest.raises(ValueError, match="method"):
        decode_dekr_openmmlab(heatmaps, offsets, codec=BottomUpCodec(method="associative_embedding"))
    with pytest.raises(ValueError, match="positive"):
        openmmlab_bottom_up_resize((0, 10), INPUT)
