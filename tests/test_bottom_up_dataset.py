"""The bottom-up data set and training epoch: items against a direct computation (the references' affine matrix
transcribed, the targets of the warped keypoints), what the warped image shows at the warped keypoints, flips,
masks of crowds, collation, clear errors, and a few fine-tuning steps of tiny DEKR and HigherHRNet networks.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask
from torch.utils.data import DataLoader

import hrnet_zoo
from hrnet_zoo.codec import BottomUpCodec
from hrnet_zoo.io.images import load_image
from hrnet_zoo.keypoints import KeypointSet
from hrnet_zoo.models.dekr import DEKR, DEKRConfig
from hrnet_zoo.models.higherhrnet import HigherHRNet, HigherHRNetConfig
from hrnet_zoo.models.meta import PoseMeta
from hrnet_zoo.train.bottom_up_dataset import (
    AESample,
    BottomUpAugmentation,
    BottomUpWarp,
    CocoBottomUpDataset,
    DEKRSample,
)
from hrnet_zoo.train.bottom_up_losses import DEKRLoss, HigherHRNetLoss
from hrnet_zoo.train.bottom_up_targets import ae_targets, dekr_person_areas, dekr_targets
from hrnet_zoo.train.loop import bottom_up_loss, train_bottom_up_epoch
from hrnet_zoo.train.synthetic import SYNTHETIC_CATEGORY, make_synthetic_dataset

from .conftest import DATA

# ----------------------------------------------------------------------------------------------------------------
# Data: the synthetic kites, and a hand-made image with left/right keypoints, crowds and an unlabelled person

HAND_CATEGORY = {"id": 1, "name": "figure", "keypoints": ["left_hand", "right_hand", "head"], "skeleton": [[1, 3]]}
HAND_SIZE = (80, 120)  # (height, width)
RED, GREEN, BLUE = (230, 30, 30), (30, 200, 30), (30, 60, 230)
#: (x, y, v) of a large person and of a small one (COCO area under 32**2: no DEKR centre; its head unlabelled).
PERSON_A = [[30, 40, 2], [70, 42, 2], [50, 20, 2]]
PERSON_B = [[80, 15, 2], [95, 15, 2], [0, 0, 0]]
#: Ignored regions as image-pixel rectangles (x0, x1, y0, y1): a crowd (uncompressed RLE, COCO's own form), a crowd
#: (compressed RLE) and a person without labelled keypoints (polygon).
CROWD, CROWD_COMPRESSED, UNLABELLED = (70, 95, 50, 75), (50, 62, 60, 75), (25, 45, 55, 75)


def rect_mask(rect):
    x0, x1, y0, y1 = rect
    mask = np.zeros(HAND_SIZE, np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def uncompressed_rle(mask):
    """COCO's crowd format: run lengths of the column-major mask, starting with a run of zeros."""
    flat = mask.flatten(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return {"counts": ([0] if flat[0] else []) + counts, "size": list(mask.shape)}


def annotation(ann_id, keypoints, bbox, area, **extra):
    flat = np.asarray(keypoints, float).reshape(-1).tolist()
    return {"id": ann_id, "image_id": 1, "category_id": 1, "keypoints": flat, "bbox": bbox, "area": area, **extra}


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory):
    root = tmp_path_factory.mktemp("hand_made")
    image = Image.new("RGB", HAND_SIZE[::-1], (128, 128, 128))
    draw = ImageDraw.Draw(image)
    for person in (PERSON_A, PERSON_B):
        for (x, y, v), colour in zip(person, (RED, GREEN, BLUE)):
            if v:
                draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
    image.save(root / "one.png")
    compressed = coco_mask.encode(np.asfortranarray(rect_mask(CROWD_COMPRESSED)))
    x0, x1, y0, y1 = UNLABELLED
    annotations = [
        annotation(1, PERSON_A, [25, 15, 50, 30], 2000.0),
        annotation(2, PERSON_B, [75, 10, 25, 10], 500.0),
        annotation(
            3, [[0, 0, 0]] * 3, [70, 50, 25, 25], 625.0, iscrowd=1, segmentation=uncompressed_rle(rect_mask(CROWD))
        ),
        annotation(
            4,
            [[0, 0, 0]] * 3,
            [50, 60, 12, 15],
            180.0,
            iscrowd=1,
            segmentation={"counts": compressed["counts"].decode(), "size": compressed["size"]},
        ),
        annotation(
            5, [[0, 0, 0]] * 3, [x0, y0, x1 - x0, y1 - y0], 400.0, segmentation=[[x0, y0, x1, y0, x1, y1, x0, y1]]
        ),
    ]
    images = [{"id": 1, "file_name": "one.png", "height": HAND_SIZE[0], "width": HAND_SIZE[1]}]
    path = root / "figures.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [HAND_CATEGORY]}))
    return {"annotations": path, "images": root}


@pytest.fixture(scope="module")
def kites(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("kites"), num_train=8, num_val=1, image_size=(96, 128))


def tiny_dekr(keypoints):
    config = json.loads((DATA / "dekr_tiny_config.json").read_text())
    return DEKR(DEKRConfig.from_original(config["spec"], len(keypoints), 64), keypoints=keypoints)


def tiny_higherhrnet(keypoints):
    config = json.loads((DATA / "higherhrnet_tiny_config.json").read_text())
    config["MODEL"]["NUM_JOINTS"] = len(keypoints)
    meta = PoseMeta(keypoints, BottomUpCodec("associative_embedding", input_size=(64, 64)))
    return HigherHRNet(HigherHRNetConfig.from_original(config), pose_meta=meta)


HAND_KEYPOINTS = KeypointSet.from_coco_category(HAND_CATEGORY)
KITE_KEYPOINTS = KeypointSet.from_coco_category(SYNTHETIC_CATEGORY)

# ----------------------------------------------------------------------------------------------------------------
# The direct computation


def reference_matrix(center, side, res, rotation):
    """The references' ``RandomAffineTransform._get_affine_matrix`` (a square ``res`` map, ``scale = side / 200``)."""
    h = side
    t = np.array([[res / h, 0, res * (-center[0] / h + 0.5)], [0, res / h, res * (-center[1] / h + 0.5)], [0, 0, 1]])
    if rotation:
        rad = -rotation * np.pi / 180
        rot = np.array([[np.cos(rad), -np.sin(rad), 0], [np.sin(rad), np.cos(rad), 0], [0, 0, 1]])
        shift = np.array([[1, 0, -res / 2], [0, 1, -res / 2], [0, 0, 1]])
        t = np.linalg.inv(shift) @ rot @ shift @ t
    return t[:2]


def expected_joints(joints, warp, res, width, flip_index):
    """Keypoints mirrored (``x -> width - 1 - x``, left and right swapped) and moved by the references' matrix."""
    joints = np.array(joints, float)
    if warp.flip:
        joints[..., 0] = width - 1 - joints[..., 0]
        joints = joints[:, flip_index]
    joints[..., :2] = joints[..., :2] @ reference_matrix(warp.center, warp.side, res, warp.rotation)[:, :2].T
    joints[..., :2] += reference_matrix(warp.center, warp.side, res, warp.rotation)[:, 2]
    return joints


def annotated_joints(path, image_index=0):
    data = json.loads(path.read_text())
    image = data["images"][image_index]
    anns = [a for a in data["annotations"] if a["image_id"] == image["id"] and np.any(a["keypoints"][2::3])]
    anns = [a for a in anns if not a.get("iscrowd")]
    return np.array([np.reshape(a["keypoints"], (-1, 3)) for a in anns]), np.array([a["area"] for a in anns]), image


def denormalised(image, meta):
    return image * torch.tensor(meta.std)[:, None, None] + torch.tensor(meta.mean)[:, None, None]


WARPS = [
    BottomUpWarp((60.0, 40.0), 80.0),
    BottomUpWarp((66.0, 45.0), 100.0, 20.0, True),
    BottomUpWarp((50, 35), 70, -15),
]

# ----------------------------------------------------------------------------------------------------------------
# Items


@pytest.mark.parametrize("warp", WARPS)
def test_dekr_sample_equals_the_direct_computation(kites, warp):
    model = tiny_dekr(KITE_KEYPOINTS)
    data = CocoBottomUpDataset(kites["train_annotations"], kites["train_images"], model)
    joints, areas, info = annotated_joints(kites["train_annotations"])
    sample = data.sample(0, warp)
    assert isinstance(sample, DEKRSample) and sample.image.shape == (3, 64, 64)
    out = expected_joints(joints, warp, 16, info["width"], KITE_KEYPOINTS.flip_index)
    at_input = expected_joints(joints, warp, 64, info["width"], KITE_KEYPOINTS.flip_index)
    np.testing.assert_allclose(data.warped_joints(0, warp, (16, 16)), out, atol=1e-3)
    np.testing.assert_allclose(data.warped_joints(0, warp, (64, 64)), at_input, atol=1e-3)
    inverse = np.linalg.inv(np.vstack([reference_matrix(warp.center, warp.side, 16, warp.rotation), [0, 0, 1]]))
    v, u = np.mgrid[:16, :16]
    x, y = np.tensordot(inverse[:2], np.stack([u, v, np.ones_like(u)]), 1)
    if warp.flip:
        x = info["width"] - 1 - x
    inside = (x > -0.5) & (x < info["width"] - 0.5) & (y > -0.5) & (y < info["height"] - 0.5)  # the warped mask
    expected = dekr_targets(out, 16, areas=dekr_person_areas(at_input), mask=inside, center_visible=areas >= 32**2)
    for got, want in zip(sample[1:], expected):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-3)
    # the warped image shows at each warped keypoint what the image shows at the keypoint
    original = load_image(data.records[0].path).float() / 255
    image = denormalised(sample.image, model.pose_meta)
    for (x, y, _), (u, v, _) in zip(joints.reshape(-1, 3), at_input.reshape(-1, 3)):
        if 0 <= round(u) < 64 and 0 <= round(v) < 64:
            colour = original[:, round(y), round(x)]
            assert (image[:, round(v), round(u)] - colour).abs().max() < 0.1


@pytest.mark.parametrize("warp", WARPS)
def test_ae_sample_equals_the_direct_computation(kites, warp):
    model = tiny_higherhrnet(KITE_KEYPOINTS)
    data = CocoBottomUpDataset(kites["train_annotations"], kites["train_images"], model)
    assert data.output_sizes == [(16, 16), (32, 32)]
    joints, _, info = annotated_joints(kites["train_annotations"])
    sample = data.sample(0, warp)
    assert isinstance(sample, AESample)
    for i, res in enumerate((16, 32)):
        out = expected_joints(joints, warp, res, info["width"], KITE_KEYPOINTS.flip_index)
        expected = ae_targets(out, res, 2.0, max_people=30)
        np.testing.assert_allclose(sample.heatmaps[i].numpy(), expected.heatmaps, atol=1e-3)
        assert torch.equal(sample.joints[i], torch.from_numpy(expected.joints))
        assert sample.masks[i].shape == (res, res)


def test_flip_swaps_left_and_right(hand_made):
    model = tiny_dekr(HAND_KEYPOINTS)
    data = CocoBottomUpDataset(hand_made["annotations"], hand_made["images"], model)
    plain, flipped = BottomUpWarp((60.0, 40.0), 80.0), BottomUpWarp((60.0, 40.0), 80.0, flip=True)
    for warp, left_colour in ((plain, RED), (flipped, GREEN)):
        joints = data.warped_joints(0, warp, (64, 64))
        expected = expected_joints([PERSON_A, PERSON_B], warp, 64, HAND_SIZE[1], [1, 0, 2])
        np.testing.assert_allclose(joints, expected, atol=1e-3)
        sample = data.sample(0, warp)
        image = denormalised(sample.image, model.pose_meta)
        u, v = joints[0, 0, :2].round().astype(int)  # person A's left hand: its right hand, mirrored, when flipped
        assert (image[:, v, u] * 255 - torch.tensor(left_colour)).abs().max() < 20
        x, y = np.floor(joints[0, 0, :2] / 4 + 0.5).astype(int)
        assert sample.heatmaps[0, y, x] > 0.9  # its heatmap peaks there
    x_plain = data.warped_joints(0, plain, (64, 64))[0, :, 0]
    x_flipped = data.warped_joints(0, flipped, (64, 64))[0, :, 0]
    # the region is centred on the mirror axis (x = 59.5 in the image, 32 - 0.4 at the input)
    np.testing.assert_allclose(x_flipped, 2 * (32 - 0.5 * 64 / 80) - x_plain[[1, 0, 2]], atol=1e-3)


def test_masks_cover_crowds_and_unlabelled_persons(hand_made):
    model = tiny_dekr(HAND_KEYPOINTS)
    data = CocoBottomUpDataset(hand_made["annotations"], hand_made["images"], model)
    keep = data.ignore_mask(0).numpy()
    assert keep.shape == HAND_SIZE
    for rect in (CROWD, CROWD_COMPRESSED):
        np.testing.assert_array_equal(keep[rect_mask(rect) == 1], 0)
    x0, x1, y0, y1 = UNLABELLED
    assert (keep[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] == 0).all()
    direct = 1 - rect_mask(CROWD) - rect_mask(CROWD_COMPRESSED) - rect_mask(UNLABELLED)
    assert np.abs(keep - direct).sum() <= 2 * (x1 - x0 + y1 - y0)  # the polygon's edge pixels
    # at the output: the image's mask where the region is uniform around the output pixel's centre, 0 off the image
    warp = BottomUpWarp((90.0, 40.0), 80.0)  # image x 50..130: output x >= 14 lies off the image
    mask = data.sample(0, warp).heatmap_mask.amax(0).numpy() > 0.05
    inverse = np.linalg.inv(np.vstack([reference_matrix(warp.center, warp.side, 16, 0.0), [0, 0, 1]]))
    padded = np.pad(direct, 20)  # zero beyond the image, as the warp's border
    checked = 0
    for v in range(16):
        for u in range(16):
            x, y = (inverse @ [u, v, 1])[:2].round().astype(int) + 20
            window = padded[y - 4 : y + 5, x - 4 : x + 5]
            if window.min() == window.max():
                assert mask[v, u] == window[0, 0], (u, v)
                checked += 1
    assert checked > 150
    ae = CocoBottomUpDataset(hand_made["annotations"], hand_made["images"], tiny_higherhrnet(HAND_KEYPOINTS))
    masks = ae.sample(0, warp).masks
    np.testing.assert_array_equal(masks[0].numpy(), mask)  # the same mask at each output's resolution
    assert masks[1].shape == (32, 32) and masks[1][::2, ::2].ne(masks[0]).float().mean() < 0.15
    heatmap_mask = data.sample(0, warp).heatmap_mask
    np.testing.assert_allclose(np.unique(heatmap_mask.numpy()), [0.0, 0.1, 1.0])


def test_draw_warp_follows_the_settings(kites):
    model = tiny_dekr(KITE_KEYPOINTS)
    aug = BottomUpAugmentation(min_scale=0.8, max_scale=1.2, max_rotation=10, max_translate=20, flip_prob=0.25)
    data = CocoBottomUpDataset(kites["train_annotations"], kites["train_images"], model, augmentation=aug)
    warps = [data.draw_warp(0) for _ in range(400)]
    sides = np.array([w.side for w in warps]) / 96
    assert 0.8 <= sides.min() < 0.82 and 1.18 < sides.max() <= 1.2
    rotations = np.array([w.rotation for w in warps])
    assert -10 <= rotations.min() < -9 and 9 < rotations.max() <= 10
    shifts = np.array([w.center for w in warps]) - [64, 48]
    assert (np.abs(shifts) <= 20 * sides[:, None] * 96 / 200).all() and (shifts == shifts.round()).all()
    assert 0.18 < np.mean([w.flip for w in warps]) < 0.32
    fixed = CocoBottomUpDataset(kites["train_annotations"], kites["train_images"], model, train=False)
    assert fixed.draw_warp(0) == BottomUpWarp((64.0, 48.0), 96.0)
    torch.testing.assert_close(fixed[0].image, fixed.sample(0, BottomUpWarp((64.0, 48.0), 96.0)).image)


def test_a_default_data_loader_collates(kites):
    for model, kind in ((tiny_dekr(KITE_KEYPOINTS), DEKRSample), (tiny_higherhrnet(KITE_KEYPOINTS), AESample)):
        data = CocoBottomUpDataset(kites["train_annotations"], kites["train_images"], model)
        batch = next(iter(DataLoader(data, batch_size=3, num_workers=2)))
        assert isinstance(batch, kind) and batch.image.shape == (3, 3, 64, 64)
        if kind is DEKRSample:
            assert [tuple(t.shape) for t in batch[1:]] == [(3, 5, 16, 16)] * 2 + [(3, 8, 16, 16)] * 2
        else:
            assert [tuple(t.shape) for t in batch.heatmaps] == [(3, 4, 16, 16), (3, 4, 32, 32)]
            assert [tuple(t.shape) for t in batch.masks] == [(3, 16, 16), (3, 32, 32)]
            assert [(tuple(t.shape), t.dtype) for t in batch.joints] == [((3, 30, 4, 2), torch.int64)] * 2


def test_clear_errors(kites, hand_made, tmp_path):
    ann, images = kites["train_annotations"], kites["train_images"]
    top_down = hrnet_zoo.create_model("hrnet_w18_small_pose", num_joints=4)
    with pytest.raises(ValueError, match=r"top-down model.*CocoKeypointDataset"):
        CocoBottomUpDataset(ann, images, top_down)
    with pytest.raises(ValueError, match="bottom-up pose model or its pose_meta"):
        CocoBottomUpDataset(ann, images, torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="has 4 keypoints but the model predicts 3"):
        CocoBottomUpDataset(ann, images, tiny_dekr(HAND_KEYPOINTS))
    renamed = KeypointSet("kite", ("a", "b", "c", "d"))
    with pytest.raises(ValueError, match=r"names the keypoints top, green_wing.*keypoints=KeypointSet.from_coco"):
        CocoBottomUpDataset(ann, images, tiny_dekr(renamed))
    with pytest.raises(ValueError, match="more than max_people=1"):
        CocoBottomUpDataset(
            hand_made["annotations"], hand_made["images"], tiny_higherhrnet(HAND_KEYPOINTS), max_people=1
        )
    with pytest.raises(FileNotFoundError, match=r"8 image files .* are missing.*on_missing='skip'"):
        CocoBottomUpDataset(ann, tmp_path, tiny_dekr(KITE_KEYPOINTS))
    with pytest.raises(ValueError, match="holds no image"):
        CocoBottomUpDataset(ann, tmp_path, tiny_dekr(KITE_KEYPOINTS), on_missing="skip")
    Image.new("RGB", (50, 40)).save(tmp_path / "one.png")
    wrong_size = CocoBottomUpDataset(hand_made["annotations"], tmp_path, tiny_dekr(HAND_KEYPOINTS))
    with pytest.raises(ValueError, match=r"is 50x40 pixels but .* says 120x80"):
        wrong_size[0]
    with pytest.raises(ValueError, match="min_scale <= max_scale"):
        BottomUpAugmentation(min_scale=1.5, max_scale=1.0)
    with pytest.raises(ValueError, match=r"not a bottom-up model.*train_one_epoch"):
        bottom_up_loss(top_down)
    data = CocoBottomUpDataset(ann, images, tiny_dekr(KITE_KEYPOINTS))
    model = tiny_higherhrnet(KITE_KEYPOINTS)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="DEKRSample batches do not fit HigherHRNetLoss"):
        train_bottom_up_epoch(model, DataLoader(data, batch_size=2), optimizer)
    with pytest.raises(ValueError, match="a batch must be a DEKRSample or an AESample"):
        train_bottom_up_epoch(model, [(torch.zeros(1, 3, 64, 64),)], optimizer)


# ----------------------------------------------------------------------------------------------------------------
# Training


def test_default_losses_are_the_references():
    loss = bottom_up_loss(tiny_dekr(KITE_KEYPOINTS))
    assert isinstance(loss, DEKRLoss) and (loss.heatmap_factor, loss.offset_factor) == (1.0, 0.03)
    loss = bottom_up_loss(tiny_higherhrnet(KITE_KEYPOINTS))
    assert isinstance(loss, HigherHRNetLoss) and loss.with_ae == (True, False) and loss.with_heatmaps == (True, True)
    assert loss.push_factor == loss.pull_factor == (0.001, 0.001) and loss.ae_loss.loss_type == "exp"


@pytest.mark.parametrize("make_model", [tiny_dekr, tiny_higherhrnet])
def test_fine_tuning_lowers_the_loss(kites, make_model):
    torch.manual_seed(0)
    model = make_model(KITE_KEYPOINTS).train()
    data = CocoBottomUpDataset(kites["train_annotations"], kites["train_images"], model, train=False)
    loader = DataLoader(data, batch_size=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = [train_bottom_up_epoch(model, loader, optimizer) for _ in range(4)]
    assert all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0], losses
