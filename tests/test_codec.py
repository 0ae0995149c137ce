"""Heatmap codecs against direct transcriptions of their reference implementations.

References: the original HRNet ``generate_target``; mmpose 0.x ``_msra_generate_target(unbiased_encoding=True)``
(DARK), ``_udp_generate_target`` and ``get_warp_matrix`` (UDP); DarkPose's ``_gaussian_blur`` + ``_taylor`` and
mmpose's ``post_dark_udp`` and ``transform_preds(use_udp=True)``. Each transcription is a per-joint NumPy/OpenCV
loop, as written there.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torchvision.ops import box_convert

import hrnet_zoo
from hrnet_zoo.codec import (
    HeatmapCodec,
    TopDownTransform,
    apply_affine,
    decode_argmax,
    decode_dark,
    decode_dark_udp,
    default_blur_kernel,
    encode_heatmaps,
    gaussian_blur,
    get_udp_transform,
)

# ----------------------------------------------------------------------------------------------------------------
# Transcriptions of the references (sizes as (width, height) arrays, as there)


def ref_generate_target(joints, visible, image_size, heatmap_size, sigma, mode):
    """The original generate_target (mode "msra"), DARK's unbiased encoding ("unbiased") and UDP's ("udp")."""
    k = len(joints)
    weight = visible.astype(np.float32).copy()
    target = np.zeros((k, heatmap_size[1], heatmap_size[0]), np.float32)
    radius = sigma * 3
    size = 2 * radius + 1
    stride = (image_size - 1.0) / (heatmap_size - 1.0) if mode == "udp" else image_size / heatmap_size
    for j in range(k):
        if mode == "unbiased":
            mu_x, mu_y = joints[j][0] / stride[0], joints[j][1] / stride[1]
            ul, br = [mu_x - 3 * sigma, mu_y - 3 * sigma], [mu_x + 3 * sigma + 1, mu_y + 3 * sigma + 1]
            if ul[0] >= heatmap_size[0] or ul[1] >= heatmap_size[1] or br[0] < 0 or br[1] < 0:
                weight[j] = 0
            if weight[j] == 0:
                continue
            x = np.arange(0, heatmap_size[0], 1, np.float32)
            y = np.arange(0, heatmap_size[1], 1, np.float32)[:, None]
            if weight[j] > 0.5:
                target[j] = np.exp(-((x - mu_x) ** 2 + (y - mu_y) ** 2) / (2 * sigma**2))
            continue
        mu_x, mu_y = int(joints[j][0] / stride[0] + 0.5), int(joints[j][1] / stride[1] + 0.5)
        ul, br = [int(mu_x - radius), int(mu_y - radius)], [int(mu_x + radius + 1), int(mu_y + radius + 1)]
        if ul[0] >= heatmap_size[0] or ul[1] >= heatmap_size[1] or br[0] < 0 or br[1] < 0:
            weight[j] = 0
            continue
        x = np.arange(0, size, 1, np.float32)
        y = x[:, None]
        x0 = y0 = size // 2
        if mode == "udp":
            x0 += joints[j][0] / stride[0] - mu_x
            y0 += joints[j][1] / stride[1] - mu_y
        g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))
        gx = max(0, -ul[0]), min(br[0], heatmap_size[0]) - ul[0]
        gy = max(0, -ul[1]), min(br[1], heatmap_size[1]) - ul[1]
        ix, iy = (max(0, ul[0]), min(br[0], heatmap_size[0])), (max(0, ul[1]), min(br[1], heatmap_size[1]))
        if weight[j] > 0.5:
            target[j][iy[0] : iy[1], ix[0] : ix[1]] = g[gy[0] : gy[1], gx[0] : gx[1]]
    return target, weight


def ref_get_max_preds(heatmaps):
    n, k, _, w = heatmaps.shape
    flat = heatmaps.reshape((n, k, -1))
    idx = np.argmax(flat, 2).reshape((n, k, 1))
    maxvals = np.amax(flat, 2).reshape((n, k, 1))
    preds = np.tile(idx, (1, 1, 2)).astype(np.float32)
    preds[:, :, 0] = preds[:, :, 0] % w
    preds[:, :, 1] = preds[:, :, 1] // w
    preds = np.where(np.tile(maxvals, (1, 1, 2)) > 0.0, preds, -1)
    return preds, maxvals


def ref_gaussian_blur(heatmaps, kernel):
    border = (kernel - 1) // 2
    n, k, h, w = heatmaps.shape
    for i in range(n):
        for j in range(k):
            origin_max = np.max(heatmaps[i, j])
            dr = np.zeros((h + 2 * border, w + 2 * border), dtype=np.float32)
            dr[border:-border, border:-border] = heatmaps[i, j].copy()
            dr = cv2.GaussianBlur(dr, (kernel, kernel), 0)
            heatmaps[i, j] = dr[border:-border, border:-border].copy()
            heatmaps[i, j] *= origin_max / np.max(heatmaps[i, j])
    return heatmaps


def ref_taylor(heatmap, coord):
    h, w = heatmap.shape[:2]
    px, py = int(coord[0]), int(coord[1])
    if 1 < px < w - 2 and 1 < py < h - 2:
        dx = 0.5 * (heatmap[py][px + 1] - heatmap[py][px - 1])
        dy = 0.5 * (heatmap[py + 1][px] - heatmap[py - 1][px])
        dxx = 0.25 * (heatmap[py][px + 2] - 2 * heatmap[py][px] + heatmap[py][px - 2])
        dxy = 0.25 * (
            heatmap[py + 1][px + 1] - heatmap[py - 1][px + 1] - heatmap[py + 1][px - 1] + heatmap[py - 1][px - 1]
        )
        dyy = 0.25 * (heatmap[py + 2 * 1][px] - 2 * heatmap[py][px] + heatmap[py - 2 * 1][px])
        derivative = np.array([[dx], [dy]])
        hessian = np.array([[dxx, dxy], [dxy, dyy]])
        if dxx * dyy - dxy**2 != 0:
            offset = -np.linalg.inv(hessian) @ derivative
            coord += np.squeeze(np.array(offset.T), axis=0)
    return coord


def ref_dark(heatmaps, kernel):
    preds, maxvals = ref_get_max_preds(heatmaps)
    logs = np.log(np.maximum(ref_gaussian_blur(heatmaps.copy(), kernel), 1e-10))
    for n in range(preds.shape[0]):
        for k in range(preds.shape[1]):
            preds[n][k] = ref_taylor(logs[n][k], preds[n][k])
    return preds, maxvals[..., 0]


def ref_reflected_blur(batch_heatmaps, kernel):
    """mmpose 0.x ``post_dark_udp``'s blur: OpenCV's default border, in place, no rescaling."""
    for heatmaps in batch_heatmaps:
        for heatmap in heatmaps:
            cv2.GaussianBlur(heatmap, (kernel, kernel), 0, heatmap)
    return batch_heatmaps


def ref_post_dark_udp(coords, batch_heatmaps, kernel, blur=ref_reflected_blur):
    """mmpose 0.x ``post_dark_udp``; with ``blur=ref_gaussian_blur`` (zero padding, rescaled to the maximum: 1.x's
    ``post_processing.gaussian_blur``) it is 1.x's ``refine_keypoints_dark_udp``."""
    b, k, h, w = batch_heatmaps.shape
    n = coords.shape[0]
    batch_heatmaps = blur(batch_heatmaps, kernel)
    np.clip(batch_heatmaps, 0.001, 50, batch_heatmaps)
    np.log(batch_heatmaps, batch_heatmaps)
    pad = np.pad(batch_heatmaps, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge").flatten()
    index = coords[..., 0] + 1 + (coords[..., 1] + 1) * (w + 2)
    index += (w + 2) * (h + 2) * np.arange(0, b * k).reshape(-1, k)
    index = index.astype(int).reshape(-1, 1)
    i_, ix1, iy1, ix1y1 = pad[index], pad[index + 1], pad[index + w + 2], pad[index + w + 3]
    ix1_y1_, ix1_, iy1_ = pad[index - w - 3], pad[index - 1], pad[index - 2 - w]
    dx, dy = 0.5 * (ix1 - ix1_), 0.5 * (iy1 - iy1_)
    derivative = np.concatenate([dx, dy], axis=1).reshape(n, k, 2, 1)
    dxx, dyy = ix1 - 2 * i_ + ix1_, iy1 - 2 * i_ + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)
    hessian = np.concatenate([dxx, dxy, dxy, dyy], axis=1).reshape(n, k, 2, 2)
    hessian = np.linalg.inv(hessian + np.finfo(np.float32).eps * np.eye(2))
    coords -= np.einsum("ijmn,ijnk->ijmk", hessian, derivative).squeeze(-1)
    return coords


def ref_udp(heatmaps, kernel, blur=ref_reflected_blur):
    preds, maxvals = ref_get_max_preds(heatmaps)
    return ref_post_dark_udp(preds, heatmaps.copy(), kernel, blur), maxvals[..., 0]


def ref_transform_preds_udp(coords, center, scale, output_size):
    scale = scale * 200.0
    scale_x, scale_y = scale[0] / (output_size[0] - 1.0), scale[1] / (output_size[1] - 1.0)
    target = np.ones_like(coords)
    target[:, 0] = coords[:, 0] * scale_x + center[0] - scale[0] * 0.5
    target[:, 1] = coords[:, 1] * scale_y + center[1] - scale[1] * 0.5
    return target


def ref_get_warp_matrix(theta, size_input, size_dst, size_target):
    theta = np.deg2rad(theta)
    matrix = np.zeros((2, 3), dtype=np.float32)
    scale_x, scale_y = size_dst[0] / size_target[0], size_dst[1] / size_target[1]
    matrix[0, 0] = math.cos(theta) * scale_x
    matrix[0, 1] = -math.sin(theta) * scale_x
    matrix[0, 2] = scale_x * (
        -0.5 * size_input[0] * math.cos(theta) + 0.5 * size_input[1] * math.sin(theta) + 0.5 * size_target[0]
    )
    matrix[1, 0] = math.sin(theta) * scale_y
    matrix[1, 1] = math.cos(theta) * scale_y
    matrix[1, 2] = scale_y * (
        -0.5 * size_input[0] * math.sin(theta) - 0.5 * size_input[1] * math.cos(theta) + 0.5 * size_target[1]
    )
    return matrix


# ----------------------------------------------------------------------------------------------------------------


def border_heatmaps(size, rng, sigma=2.0):
    """Noisy Gaussian peaks on, next to and away from every border: ``(N, K, h, w)`` float32."""
    h, w = size
    edge = [0.0, 0.3, 1.0, 1.7, 2.4, 3.5, 4.6]
    xs = edge + [w - 1 - e for e in edge] + list(rng.uniform(6, w - 7, 6))
    ys = edge + [h - 1 - e for e in edge] + list(rng.uniform(6, h - 7, 6))
    centers = np.array([(x, y) for x in xs for y in ys[::3]] + [(x, y) for x in xs[::3] for y in ys])
    yy, xx = np.mgrid[0:h, 0:w]
    maps = np.exp(
        -((xx[None] - centers[:, 0, None, None]) ** 2 + (yy[None] - centers[:, 1, None, None]) ** 2) / (2 * sigma**2)
    )
    maps = maps * rng.uniform(0.3, 1.0, (len(centers), 1, 1)) + rng.uniform(0, 0.02, maps.shape)
    return maps.reshape(len(centers) // 4, 4, h, w).astype(np.float32)


@pytest.mark.parametrize(("size", "kernel"), [((64, 48), 11), ((96, 72), 17)])
def test_dark_equals_its_reference_at_every_border(size, kernel):
    heatmaps = border_heatmaps(size, np.random.default_rng(0))
    expected, expected_scores = ref_dark(heatmaps, kernel)
    coords, scores = decode_dark(torch.from_numpy(heatmaps), kernel)
    np.testing.assert_allclose(coords.numpy(), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(scores.numpy(), expected_scores, atol=1e-6)
    codec = HeatmapCodec.dark((size[0] * 4, size[1] * 4))
    assert codec.blur_kernel_size == kernel
    np.testing.assert_allclose(codec.decode(torch.from_numpy(heatmaps))[0].numpy(), expected, atol=1e-4, rtol=0)


def test_dark_near_borders_differs_from_reflection_padding():
    """The comparison above can fail: blurring with reflection instead of zero padding moves peaks near a border."""
    heatmaps = border_heatmaps((64, 48), np.random.default_rng(0))
    expected, _ = ref_dark(heatmaps, 11)
    maps = torch.from_numpy(heatmaps)
    blurred = gaussian_blur(maps, 11, "reflect")
    logs = np.log(
        np.maximum((blurred * (maps.amax((2, 3), keepdim=True) / blurred.amax((2, 3), keepdim=True))).numpy(), 1e-10)
    )
    preds, _ = ref_get_max_preds(heatmaps)
    for n in range(preds.shape[0]):
        for k in range(preds.shape[1]):
            preds[n][k] = ref_taylor(logs[n][k], preds[n][k])
    assert np.abs(preds - expected).max() > 0.05


@pytest.mark.parametrize(("size", "kernel"), [((64, 48), 11), ((96, 72), 17)])
@pytest.mark.parametrize(("padding", "blur"), [("reflect", ref_reflected_blur), ("zeros", ref_gaussian_blur)])
def test_udp_decoding_equals_its_reference_at_every_border(size, kernel, padding, blur):
    heatmaps = border_heatmaps(size, np.random.default_rng(1))
    expected, expected_scores = ref_udp(heatmaps, kernel, blur)
    coords, scores = decode_dark_udp(torch.from_numpy(heatmaps), kernel, padding)
    np.testing.assert_allclose(coords.numpy(), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(scores.numpy(), expected_scores, atol=1e-6)
    other, _ = ref_udp(heatmaps, kernel, ref_gaussian_blur if padding == "reflect" else ref_reflected_blur)
    assert np.abs(other - expected).max() > 0.1  # the two versions disagree near the border: the choice matters


def test_each_udp_tag_decodes_as_the_mmpose_version_of_its_metrics():
    from hrnet_zoo.models.pretrained import PRETRAINED_CFGS

    udp = {n: c for n, c in PRETRAINED_CFGS.items() if getattr(c.pose_meta.codec, "decoding", None) == "udp"}
    assert len(udp) >= 9
    for name, cfg in udp.items():
        assert "_2d_keypoint/" in cfg.metrics_source, name  # a 1.x table: its configs/<task>_2d_keypoint/ tree
        assert cfg.pose_meta.codec.blur_padding == "zeros", name
    codec = HeatmapCodec.udp((256, 192), blur_padding="reflect")
    assert HeatmapCodec.from_dict(codec.to_dict()) == codec
    with pytest.raises(ValueError, match=r"blur_padding='reflect' is 0\.x's UDP decoding"):
        HeatmapCodec.dark((256, 192), blur_padding="reflect")


def test_udp_mapping_back_and_crop_equal_the_reference():
    rng = np.random.default_rng(2)
    codec = HeatmapCodec.udp((256, 192))
    centers = rng.uniform(50, 400, (6, 2)).astype(np.float32)
    scales = rng.uniform(0.5, 2.5, (6, 2)).astype(np.float32)
    coords = rng.uniform(0, 47, (6, 17, 2)).astype(np.float32)
    ours = codec.to_image(torch.from_numpy(coords), torch.from_numpy(centers), torch.from_numpy(scales))
    for i in range(6):
        expected = ref_transform_preds_udp(coords[i], centers[i], scales[i], [48, 64])
        np.testing.assert_allclose(ours[i].numpy(), expected, atol=1e-3, rtol=0)
    for rotation in (0.0, 30.0, -45.0):
        matrices = codec.crop_transform(torch.from_numpy(centers), torch.from_numpy(scales), rotation)
        for i in range(6):
            expected = ref_get_warp_matrix(rotation, centers[i] * 2.0, np.array([191.0, 255.0]), scales[i] * 200.0)
            np.testing.assert_allclose(matrices[i].numpy(), expected, atol=1e-4, rtol=1e-5)
    forward = get_udp_transform(torch.from_numpy(centers), torch.from_numpy(scales), (256, 192))
    inverse = get_udp_transform(torch.from_numpy(centers), torch.from_numpy(scales), (256, 192), inverse=True)
    full = torch.cat([forward, torch.tensor([[[0.0, 0, 1]]], dtype=torch.float64).expand(6, 1, 3)], 1)
    torch.testing.assert_close(inverse @ full, torch.eye(3, dtype=torch.float64)[:2].expand(6, 2, 3))


@pytest.mark.parametrize("mode", ["msra", "unbiased", "udp"])
def test_encodings_equal_their_references(mode):
    rng = np.random.default_rng(3)
    joints = rng.uniform(-40, 230, (4, 17, 2)).astype(np.float32)
    visible = (rng.random((4, 17)) > 0.2).astype(np.float32)
    targets, weights = encode_heatmaps(torch.tensor(joints), torch.tensor(visible), (256, 192), (64, 48), 2.0, mode)
    assert targets.shape == (4, 17, 64, 48)
    for i in range(4):
        expected, expected_weight = ref_generate_target(
            joints[i], visible[i], np.array([192, 256]), np.array([48, 64]), 2, mode
        )
        np.testing.assert_allclose(targets[i].numpy(), expected, atol=5e-6)  # float32 here, float64 there
        np.testing.assert_array_equal(weights[i].numpy(), expected_weight)
    assert 0 < weights.sum() < weights.numel()  # both kinds of joints occur


def test_codec_round_trips_and_validates():
    for codec in (HeatmapCodec(), HeatmapCodec.dark((384, 288)), HeatmapCodec.udp((256, 256), sigma=3.0)):
        assert HeatmapCodec.from_dict(codec.to_dict()) == codec
    assert HeatmapCodec((384, 288)).heatmap_size == (96, 72) and HeatmapCodec((384, 288)).blur_kernel_size == 17
    assert default_blur_kernel((64, 64)) == 11 and default_blur_kernel((128, 96)) == 23
    assert HeatmapCodec().shift_flipped and not HeatmapCodec.udp((256, 192)).shift_flipped
    with pytest.raises(ValueError, match="UDP decoding goes with UDP encoding"):
        HeatmapCodec(decoding="udp")
    with pytest.raises(ValueError, match="blur_kernel_size must be odd"):
        HeatmapCodec(blur_kernel_size=10)
    with pytest.raises(ValueError, match="unknown heatmap codec fields"):
        HeatmapCodec.from_dict({"input_size": [256, 192], "stride": 4})
    with pytest.raises(ValueError, match=r"heatmaps of size \(32, 24\) do not match the codec's \(64, 48\)"):
        HeatmapCodec().decode(torch.zeros(1, 17, 32, 24))


def test_codec_decodes_what_it_encodes():
    """Encode, then decode: each family recovers interior joints (DARK and UDP to a fraction of an input pixel)."""
    joints = torch.tensor([[[50.3, 71.8], [120.6, 200.2], [30.0, 41.0]]])
    for codec, tolerance in (
        (HeatmapCodec(), 3.0),
        (HeatmapCodec.dark((256, 192)), 0.2),
        (HeatmapCodec.udp((256, 192)), 0.2),
    ):
        targets, _ = codec.encode(joints, torch.ones(1, 3))
        coords, _ = codec.decode(targets)
        stride = torch.tensor([191 / 47, 255 / 63]) if codec.encoding == "udp" else torch.tensor([4.0, 4.0])
        assert (coords * stride - joints).abs().max() < tolerance, codec
    assert decode_argmax(torch.zeros(0, 3, 64, 48))[0].shape == (0, 3, 2)


# ----------------------------------------------------------------------------------------------------------------
# The top-down transform


IMAGENET = (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)


@pytest.fixture
def transform():
    return TopDownTransform(HeatmapCodec((128, 96)), *IMAGENET)


def test_transform_boxes_convert_as_torchvision(transform):
    rng = np.random.default_rng(4)
    xywh = np.concatenate([rng.uniform(0, 300, (7, 2)), rng.uniform(1, 200, (7, 2))], 1).round(2)
    expected = box_convert(torch.tensor(xywh), "xywh", "xyxy").float()
    torch.testing.assert_close(transform.boxes(xywh, "xywh"), expected, rtol=0, atol=0)
    torch.testing.assert_close(transform.boxes(expected.tolist(), "xyxy"), expected, rtol=0, atol=0)
    assert transform.boxes(xywh[0]).shape == (1, 4), "one box (4,) is one person"
    assert transform.boxes(np.zeros((0, 4))).shape == (0, 4) and transform.boxes([]).shape == (0, 4)
    whole = transform.boxes(None, image_size=(120, 160))
    assert whole.tolist() == [[0, 0, 160, 120]] and whole.dtype == torch.float32
    # The same box in either format gives the same region, to the bit.
    for a, b in zip(transform.center_scale(torch.tensor(xywh), "xywh"), transform.center_scale(expected)):
        assert torch.equal(a, b)


def test_transform_center_scale_is_the_originals(transform):
    """The original's _xywh2cs: centre, widened or heightened to the input's 96/128 aspect, 1/200, 1.25."""
    center, scale = transform.center_scale(torch.tensor([[10.0, 20.0, 40.0, 120.0], [0.0, 0.0, 200.0, 100.0]]))
    torch.testing.assert_close(center, torch.tensor([[25.0, 70.0], [100.0, 50.0]]))
    torch.testing.assert_close(scale, torch.tensor([[75.0, 100.0], [200.0, 200.0 / 0.75]]) / 200 * 1.25)
    _, padded = transform.center_scale(torch.tensor([[10.0, 20.0, 40.0, 120.0]]), padding=1.5)
    torch.testing.assert_close(padded, scale[:1] / 1.25 * 1.5)


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ({"a": 1}, r"boxes of image 2 must be a \(P, 4\) array or a list of boxes, got a dict"),
        ([[1, 2, "x", 4]], "boxes of image 2 must be numbers"),
        ([[1, 2, 3]], r"boxes of image 2 must have shape \(P, 4\), got \(1, 3\)"),
        ([[0, 0, 5, 5], [0, 0, float("nan"), 5]], r"box 1 of image 2 must hold finite pixel values below 1e\+06"),
        ([[0, 0, 5, 5], [0, 0, 2e6, 5]], "box 1 of image 2 must hold finite"),
        ([[10, 10, 0, 5]], r"box 0 of image 2 is empty: \[10.0, 10.0, 10.0, 15.0\] \(xyxy\)"),
        ([[0, 0, 5, 5], [170, 10, 5, 5]], "box 1 of image 2 .* lies entirely outside the 160x120 image"),
        ([[-10, -10, 10, 10]], "box 0 of image 2 .* lies entirely outside"),
    ],
)
def test_transform_refuses_bad_boxes_by_name(transform, boxes, message):
    with pytest.raises(ValueError, match=message):
        transform.boxes(boxes, "xywh", (120, 160), image_index=2)


def test_transform_errors_without_an_image(transform):
    with pytest.raises(ValueError, match=r"^box 0 is empty"):
        transform.boxes([[0, 0, 0, 5]])
    assert transform.boxes([[1e5, 1e5, 5, 5]]).shape == (1, 4), "without image_size, any place is fine"
    with pytest.raises(ValueError, match="box_format must be 'xywh' or 'xyxy', got 'cxcywh'"):
        transform.boxes([[0, 0, 5, 5]], "cxcywh")
    with pytest.raises(ValueError, match="needs the image_size"):
        transform.boxes(None)
    with pytest.raises(ValueError, match="one finite entry per channel"):
        TopDownTransform(HeatmapCodec(), (0.5, 0.5), (0.2, 0.2, 0.2))
    with pytest.raises(ValueError, match="std positive"):
        TopDownTransform(HeatmapCodec(), (0.5,) * 3, (0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match=r"the image must be \(C, H, W\)"):
        transform.crop(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 2), torch.ones(1, 2))


@pytest.mark.parametrize("codec", [HeatmapCodec((128, 96)), HeatmapCodec.udp((128, 96))])
def test_transform_crop_is_opencvs_warp_normalised(codec):
    """Crops equal OpenCV's warpAffine with the codec's matrix, then (x / 255 - mean) / std."""
    transform = TopDownTransform(codec, *IMAGENET)
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    center, scale = transform.center_scale(torch.tensor([[30.0, 20.0, 90.0, 140.0], [100.0, 40.0, 180.0, 100.0]]))
    crops = transform.crop(torch.from_numpy(image).permute(2, 0, 1), center, scale, rotation=20.0)
    assert crops.shape == (2, 3, 128, 96) and crops.dtype == torch.float32
    mean, std = (np.array(v, np.float32) for v in IMAGENET)
    for crop, matrix in zip(crops, transform.crop_matrix(center, scale, 20.0)):
        warped = cv2.warpAffine(image.astype(np.float32), matrix.numpy(), (96, 128), flags=cv2.INTER_LINEAR)
        expected = (warped / 255 - mean) / std
        np.testing.assert_allclose(crop.permute(1, 2, 0).numpy(), expected, atol=2e-3)
    torch.testing.assert_close(transform.crop_matrix(center, scale, 20.0), codec.crop_transform(center, scale, 20.0))
    empty = transform.crop(torch.zeros(3, 10, 10, dtype=torch.uint8), torch.zeros(0, 2), torch.zeros(0, 2))
    assert empty.shape == (0, 3, 128, 96)


@pytest.mark.parametrize("codec", [HeatmapCodec((128, 96)), HeatmapCodec.udp((128, 96))])
def test_transform_there_and_back(codec):
    """Image points -> input pixels (to_input) -> heatmap pixels -> image points (to_image) is the identity."""
    transform = TopDownTransform(codec, *IMAGENET)
    center, scale = torch.tensor([[80.0, 90.0], [200.0, 150.0]]), torch.tensor([[0.6, 0.8], [1.2, 1.6]])
    points = torch.tensor(np.random.default_rng(6).uniform(40, 160, (2, 5, 2)), dtype=torch.float32)
    inputs = transform.to_input(points, center, scale)
    if codec.encoding == "udp":  # stride (input - 1) / (heatmap - 1)
        stride = torch.tensor([(96 - 1) / (24 - 1), (128 - 1) / (32 - 1)])
    else:
        stride = torch.tensor([4.0, 4.0])
    torch.testing.assert_close(transform.to_image(inputs / stride, center, scale), points, atol=1e-3, rtol=0)
    rotated = transform.to_input(points, center, scale, rotation=90.0)
    torch.testing.assert_close(rotated, apply_affine(points, transform.crop_matrix(center, scale, 90.0)))


def test_transform_normalize_and_crops_of(transform):
    x = torch.rand(2, 3, 4, 5)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    torch.testing.assert_close(transform.normalize(x), (x - mean) / std)
    torch.testing.assert_close(transform.normalize(x[0]), ((x - mean) / std)[0])
    image = torch.from_numpy(np.random.default_rng(7).integers(0, 256, (3, 60, 80), dtype=np.uint8))
    inputs, center, scale = transform.crops_of(image)  # no boxes: the whole image
    expected_center, expected_scale = transform.center_scale(torch.tensor([[0.0, 0.0, 80.0, 60.0]]))
    assert torch.equal(center, expected_center) and torch.equal(scale, expected_scale)
    assert torch.equal(inputs, transform.crop(image, center, scale))
    assert transform.crops_of(image, [[10, 10, 20, 30], [0, 0, 5, 5]])[0].shape == (2, 3, 128, 96)


def test_model_metadata_builds_the_transform():
    meta = hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(128, 96)).pose_meta
    assert meta.transform == TopDownTransform(meta.codec, meta.mean, meta.std)
    assert meta.transform.input_size == (128, 96) and meta.transform.mean == IMAGENET[0]
