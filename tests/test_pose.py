"""The pose toolkit against the original's outputs (golden data), OpenCV, and direct computations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

import hrnet_zoo
from hrnet_zoo import KeypointSet, PoseEstimator
from hrnet_zoo.codec import (
    HeatmapCodec,
    box_to_center_scale,
    center_scale_to_box,
    crop_affine,
    decode_argmax,
    decode_dark,
    flip_back,
    get_affine_transform,
    get_max_preds,
    shift_flipped,
)
from hrnet_zoo.io.images import load_image, save_image
from hrnet_zoo.keypoints import COCO_KEYPOINTS, MPII_KEYPOINTS
from hrnet_zoo.pose import draw_poses

from .conftest import DATA, REPO

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(DATA / "postprocess.npz"))


def test_affine_matrices_equal_the_original(golden):
    for row, expected in zip(golden["affine_cases"], golden["affines"]):
        cx, cy, sx, sy, rot, w, h, inv = row
        got = get_affine_transform(torch.tensor([[cx, cy]]), torch.tensor([[sx, sy]]), (int(h), int(w)), rot, bool(inv))
        np.testing.assert_allclose(got[0].numpy(), expected, atol=1e-4, rtol=0)


def test_affine_batched_equals_one_by_one(golden):
    cases = torch.tensor(golden["affine_cases"][golden["affine_cases"][:, 7] == 0])
    batched = get_affine_transform(cases[:, :2], cases[:, 2:4], (256, 192), cases[:, 4])
    for case, matrix in zip(cases, batched):
        single = get_affine_transform(case[None, :2], case[None, 2:4], (256, 192), float(case[4]))[0]
        torch.testing.assert_close(matrix, single)


@pytest.mark.parametrize(("key", "rotation"), [("crop", 0.0), ("crop_rot30", 30.0)])
def test_crop_matches_opencv_warp_affine(golden, key, rotation):
    image = torch.from_numpy(golden["image"]).permute(2, 0, 1).float()
    center, scale = torch.tensor(golden["crop_center"])[None], torch.tensor(golden["crop_scale"])[None]
    matrix = get_affine_transform(center, scale, (256, 192), rotation)
    crop = crop_affine(image, matrix, (256, 192))[0].round().clamp(0, 255).permute(1, 2, 0).numpy()
    assert np.abs(crop - golden[key].astype(np.float32)).mean() < 1.0


def test_crop_batch_of_random_regions_matches_opencv():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    center = torch.tensor(rng.uniform(20, 140, (5, 2)), dtype=torch.float32)
    scale = torch.tensor(rng.uniform(0.2, 0.8, (5, 2)), dtype=torch.float32)
    rotation = torch.tensor(rng.uniform(-45, 45, 5))
    matrices = get_affine_transform(center, scale, (64, 48), rotation)
    crops = crop_affine(torch.from_numpy(image).permute(2, 0, 1).float(), matrices, (64, 48))
    for crop, matrix in zip(crops, matrices):
        expected = cv2.warpAffine(image, matrix.numpy(), (48, 64), flags=cv2.INTER_LINEAR).astype(np.float32)
        assert np.abs(crop.round().permute(1, 2, 0).numpy() - expected).mean() < 1.0


def test_box_to_center_scale_as_the_original():
    """The original's _xywh2cs: centre, widen to the aspect ratio 192/256, scale by 1/200 and 1.25."""
    center, scale = box_to_center_scale(torch.tensor([[10.0, 20.0, 30.0, 100.0], [0.0, 0.0, 200.0, 100.0]]), (256, 192))
    torch.testing.assert_close(center, torch.tensor([[25.0, 70.0], [100.0, 50.0]]))
    torch.testing.assert_close(scale, torch.tensor([[75.0, 100.0], [200.0, 200.0 / 0.75]]) / 200 * 1.25)
    xyxy_center, xyxy_scale = box_to_center_scale(torch.tensor([[10.0, 20.0, 40.0, 120.0]]), (256, 192), "xyxy")
    torch.testing.assert_close(xyxy_center, center[:1])
    torch.testing.assert_close(xyxy_scale, scale[:1])
    box = center_scale_to_box(center[1:], scale[1:])
    torch.testing.assert_close(box, torch.tensor([[0.0, 50.0 - 133.3333, 200.0, 266.6667]]), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="box_format"):
        box_to_center_scale(torch.zeros(1, 4), (256, 192), "cxcywh")


def test_flip_back_equals_the_original(golden):
    assert [tuple(p) for p in golden["flip_pairs"]] == list(COCO_KEYPOINTS.flip_pairs)
    flipped = flip_back(torch.from_numpy(golden["heatmaps"]), COCO_KEYPOINTS.flip_index)
    np.testing.assert_array_equal(flipped.numpy(), golden["flipped"])


def test_shift_flipped():
    x = torch.arange(8.0).view(1, 1, 2, 4)
    torch.testing.assert_close(shift_flipped(x), torch.tensor([[[[0.0, 0, 1, 2], [4, 4, 5, 6]]]]))


def test_decoding_equals_the_original(golden):
    heatmaps = torch.from_numpy(golden["heatmaps"])
    coords, scores = get_max_preds(heatmaps)
    np.testing.assert_array_equal(coords.numpy(), golden["argmax_preds"])
    coords, scores = decode_argmax(heatmaps)
    codec = HeatmapCodec((256, 192))
    preds = codec.to_image(coords, torch.from_numpy(golden["center"]), torch.from_numpy(golden["scale"]))
    np.testing.assert_allclose(preds.numpy(), golden["preds"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(scores.numpy(), golden["maxvals"][..., 0], atol=1e-6)


def gaussian_heatmaps(centers: np.ndarray, size=(64, 48), sigma=2.0) -> torch.Tensor:
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    maps = [np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)) for cx, cy in centers]
    return torch.tensor(np.stack(maps), dtype=torch.float32).view(1, len(centers), *size)


def test_dark_recovers_sub_pixel_peaks():
    rng = np.random.default_rng(1)
    centers = rng.uniform(6, 40, (17, 2))
    heatmaps = gaussian_heatmaps(centers)
    dark, _ = decode_dark(heatmaps)
    argmax, _ = decode_argmax(heatmaps)
    dark_error = np.abs(dark[0].numpy() - centers).max()
    argmax_error = np.abs(argmax[0].numpy() - centers).max()
    assert dark_error < 0.05 < argmax_error


def test_decoders_on_an_empty_batch():
    empty = torch.zeros(0, 17, 64, 48)
    for decode in (decode_argmax, decode_dark):
        coords, scores = decode(empty)
        assert coords.shape == (0, 17, 2) and scores.shape == (0, 17)


def test_keypoint_sets():
    assert len(COCO_KEYPOINTS) == 17 and len(MPII_KEYPOINTS) == 16 and len(COCO_KEYPOINTS.sigmas) == 17
    assert COCO_KEYPOINTS.flip_index[5] == 6 and MPII_KEYPOINTS.flip_index[0] == 5
    category = {"name": "hand", "keypoints": ["wrist", "left_tip", "right_tip"], "skeleton": [[1, 2], [1, 3]]}
    hand = KeypointSet.from_coco_category(category)
    assert hand.skeleton == ((0, 1), (0, 2)) and hand.flip_pairs == ((1, 2),)
    assert KeypointSet.from_dict(hand.to_dict()) == hand
    with pytest.raises(ValueError, match="out of range"):
        KeypointSet("bad", ("a",), skeleton=((0, 1),))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((20, 30), np.uint8),
        np.zeros((20, 30, 4), np.uint8),
        Image.new("L", (30, 20)),
        Image.new("RGBA", (30, 20)),
        torch.zeros(1, 20, 30),
        torch.zeros(3, 20, 30, dtype=torch.float32),
    ],
)
def test_load_image_variants(image):
    rgb = load_image(image)
    assert rgb.shape == (3, 20, 30) and rgb.dtype == torch.uint8


def test_load_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match=r"values in \[0, 255\]; give floats in \[0, 1\]"):
        load_image(np.linspace(0, 255, 48).reshape(4, 4, 3))
    with pytest.raises(ValueError, match=r"tensor image is floating point with values in \[200, 200\]"):
        load_image(torch.full((3, 4, 4), 200.0))
    with pytest.raises(ValueError, match="dtype int64"):
        load_image(np.zeros((4, 4, 3), np.int64))
    with pytest.raises(ValueError, match="NaN"):
        load_image(np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="channels must be 'rgb' or 'bgr'"):
        load_image(np.zeros((4, 4, 3), np.uint8), channels="hsv")
    with pytest.raises(ValueError, match="unsupported image type"):
        load_image(42)


def test_pixels_mean_what_they_say(tmp_path):
    """EXIF orientation, 16-bit and float images, OpenCV's BGR order."""
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)  # a red left edge
    photo = Image.fromarray(rgb)
    exif = photo.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    photo.save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    upright = load_image(tmp_path / "rotated.jpg")
    assert upright.shape == (3, 30, 20) and upright[0, :8].float().mean() > 200 > upright[0, -8:].float().mean()
    grey16 = np.arange(600, dtype=np.uint16).reshape(20, 30) * 100
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    loaded = load_image(tmp_path / "grey16.png")
    np.testing.assert_array_equal(loaded[0].numpy(), np.round(grey16.astype(np.float64) * 255 / 65535))
    np.testing.assert_array_equal(load_image(grey16)[0].numpy(), loaded[0].numpy())
    np.testing.assert_array_equal(load_image(rgb.astype(np.float32) / 255).numpy(), load_image(rgb).numpy())
    bgr = rgb[:, :, ::-1]
    np.testing.assert_array_equal(load_image(bgr, channels="bgr").numpy(), load_image(rgb).numpy())
    assert load_image(bgr)[2, 0, 0] == 255, "without channels='bgr' the array is taken as RGB"


@pytest.fixture(scope="module")
def estimator():
    torch.manual_seed(0)
    return PoseEstimator(hrnet_zoo.create_model("hrnet_w18_small_pose"), input_size=(128, 96))


def test_whole_chain_on_a_photograph(estimator, tmp_path):
    boxes = [[120.0, 20.0, 300.0, 480.0], [0.0, 0.0, 100.0, 120.0]]
    results = estimator.predict([PHOTO, str(PHOTO)], boxes=[boxes, None])
    assert len(results) == 2
    first, whole = results
    assert first.keypoints.shape == (2, 17, 3) and whole.keypoints.shape == (1, 17, 3)
    np.testing.assert_allclose(first.boxes[0], [120, 20, 420, 500])
    assert first.image_size == (512, 512) and first.keypoint_names == COCO_KEYPOINTS.names
    # Decoded joints lie in the (padded, aspect-corrected) person region they were cropped from.
    center, scale = box_to_center_scale(torch.tensor(boxes), (128, 96))
    lo, hi = (center - scale * 100).numpy(), (center + scale * 100).numpy()
    np.testing.assert_allclose(first.areas, (scale[:, 0] * scale[:, 1] * 200**2).numpy(), rtol=1e-6)
    xy = first.keypoints[..., :2]
    assert np.all(xy >= lo[:, None] - 1e-3) and np.all(xy <= hi[:, None] + 1e-3)
    coco = first.to_coco(image_id=7)
    assert coco[1]["bbox"] == [0.0, 0.0, 100.0, 120.0] and len(coco[0]["keypoints"]) == 51
    drawn = draw_poses(load_image(PHOTO), first.keypoints, first.skeleton, first.boxes, score_threshold=0.0)
    assert drawn.shape == (3, 512, 512) and not torch.equal(drawn, load_image(PHOTO))
    save_image(drawn, tmp_path / "pose.png")
    assert Image.open(tmp_path / "pose.png").size == (512, 512)


def test_predictor_matches_the_step_by_step_chain(estimator):
    """PoseEstimator == crop + normalise + model + flip-back + shift + decode + map back, done by hand."""
    box = torch.tensor([[120.0, 20.0, 300.0, 480.0]])
    result = estimator.predict(PHOTO, boxes=box.numpy())[0]
    center, scale = box_to_center_scale(box, (128, 96))
    crop = crop_affine(load_image(PHOTO).float() / 255, get_affine_transform(center, scale, (128, 96)), (128, 96))
    assert (estimator.transform.mean, estimator.transform.std) == (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    x = (crop - torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1)
    with torch.no_grad():
        model = estimator.model
        flipped = shift_flipped(flip_back(model(x.flip(-1)), COCO_KEYPOINTS.flip_index))
        heatmaps = (model(x) + flipped) / 2
    coords, scores = decode_argmax(heatmaps)
    expected = HeatmapCodec((128, 96)).to_image(coords, center, scale)
    np.testing.assert_allclose(result.keypoints[0, :, :2], expected[0].numpy(), atol=1e-3)
    np.testing.assert_allclose(result.keypoints[0, :, 2], scores[0].numpy(), atol=1e-6)


def test_predictor_edge_cases(estimator):
    empty = estimator.predict(PHOTO, boxes=np.zeros((0, 4)))[0]
    assert empty.keypoints.shape == (0, 17, 3) and empty.scores.shape == (0,)
    with pytest.raises(ValueError, match="box 0 of image 0 is empty"):
        estimator.predict(PHOTO, boxes=[[10, 10, 0, 50]])
    with pytest.raises(ValueError, match="lies entirely outside the 512x512 image"):
        estimator.predict(PHOTO, boxes=[[600, 10, 50, 50]])
    with pytest.raises(ValueError, match="boxes for 1 images but 2 images"):
        estimator.predict([PHOTO, PHOTO], boxes=[None])
    xyxy = estimator.predict(PHOTO, boxes=[[120, 20, 420, 500]], box_format="xyxy")[0]
    xywh = estimator.predict(PHOTO, boxes=[[120, 20, 300, 480]])[0]
    np.testing.assert_allclose(xyxy.keypoints, xywh.keypoints)
    dark = PoseEstimator(estimator.model, decoder="dark", input_size=(128, 96)).predict(PHOTO)[0]
    assert dark.keypoints.shape == (1, 17, 3)
    with pytest.raises(ValueError, match="decoder must be"):
        PoseEstimator(estimator.model, decoder="soft-argmax")


def test_peaks_with_ties_follow_numpy_argmax():
    """Quantised heatmaps have many equal maxima: the first one wins, as with the original's np.argmax."""
    heatmaps = torch.rand(20, 17, 64, 48).round(decimals=1)
    coords, scores = get_max_preds(heatmaps)
    index = np.argmax(heatmaps.flatten(2).numpy(), axis=2)
    np.testing.assert_array_equal(coords[..., 0].numpy(), index % 48)
    np.testing.assert_array_equal(coords[..., 1].numpy(), index // 48)
    np.testing.assert_array_equal(scores.numpy(), heatmaps.flatten(2).amax(2).numpy())


def test_pose_result_is_easy_to_use(estimator):
    result = estimator.predict(PHOTO, boxes=[[120, 20, 300, 480], [0, 0, 100, 120], [300, 300, 100, 100]])[0]
    assert len(result) == 3 and repr(result) == "PoseResult(3 persons x 17 keypoints, image 512x512)"
    second = result[1]
    assert len(second) == 1 and np.array_equal(second.keypoints[0], result.keypoints[1])
    assert np.array_equal(result[-1].boxes, result.boxes[2:]) and len(result[:2]) == 2
    with pytest.raises(IndexError, match="person 3 out of range for 3 persons"):
        result[3]
    assert len(second.to_coco(image_id=1)) == 1
    drawn = result.plot(PHOTO, score_threshold=0.0)
    assert drawn.shape == (3, 512, 512) and drawn.dtype == torch.uint8
    with pytest.raises(ValueError, match="the poses were found on"):
        result.plot(np.zeros((10, 10, 3), np.uint8))


def test_drawing_colours_sides_and_scales_with_the_image():
    from hrnet_zoo.pose.draw import PALETTE

    image = np.zeros((400, 600, 3), np.uint8)
    names = ("nose", "left_eye", "right_eye")
    keypoints = np.array([[[100, 100, 1.0], [200, 100, 1.0], [300, 100, 0.1]]], np.float32)
    drawn = draw_poses(image, keypoints, [(0, 1)], keypoint_names=names, score_threshold=0.3)
    rgb = {n: tuple(int(v) for v in Image.new("RGB", (1, 1), PALETTE[n]).getpixel((0, 0))) for n in PALETTE}
    assert tuple(drawn[:, 100, 200].tolist()) == rgb["left"] and tuple(drawn[:, 100, 100].tolist()) == rgb["centre"]
    assert tuple(drawn[:, 100, 150].tolist()) == rgb["centre"], "a limb across sides is drawn as centre"
    assert drawn[:, 100, 300].sum() == 0, "joints below the threshold are hidden"
    assert tuple(drawn[:, 101, 200].tolist()) == rgb["left"], "joints have a radius of 2 px at this size"
    single = draw_poses(image, keypoints, [(0, 1)], color="white", keypoint_names=names)
    assert tuple(single[:, 100, 200].tolist()) == (255, 255, 255)


def test_bgr_arrays_give_the_same_poses(estimator):
    rgb = load_image(PHOTO).permute(1, 2, 0).numpy()
    boxes = [[120, 20, 300, 480]]
    expected = estimator.predict(rgb, boxes=boxes)[0].keypoints
    np.testing.assert_array_equal(
        estimator.predict(rgb[:, :, ::-1], boxes=boxes, channels="bgr")[0].keypoints, expected
    )
    assert not np.array_equal(estimator.predict(rgb[:, :, ::-1].copy(), boxes=boxes)[0].keypoints, expected)
