"""Bottom-up training targets and losses against transcriptions of their references, hand-made cases, and a few
fine-tuning steps of tiny DEKR and HigherHRNet networks.

References: DEKR (HRNet/DEKR) ``HeatmapGenerator``, ``OffsetGenerator``, ``get_joints``, ``HeatmapLoss``,
``OffsetsLoss``; HigherHRNet (HRNet/HigherHRNet-Human-Pose-Estimation) ``HeatmapGenerator``, ``JointsGenerator``,
``HeatmapLoss``, ``AELoss``, ``MultiLossFactory``. Each transcription is the reference's loop in brief, on square
maps as there.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hrnet_zoo.models.dekr import DEKR, DEKRConfig
from hrnet_zoo.models.higherhrnet import HigherHRNet, HigherHRNetConfig
from hrnet_zoo.train.bottom_up_losses import AssociativeEmbeddingLoss, DEKRLoss, HigherHRNetLoss
from hrnet_zoo.train.bottom_up_targets import ae_targets, dekr_person_areas, dekr_targets

from .conftest import DATA

# ----------------------------------------------------------------------------------------------------------------
# Transcriptions of the references


def ref_dekr_joints(keypoints):
    """get_joints: append the centre (sum of all xy over the labelled count) and measure w**2 + h**2 of the box of
    every row, the still-zero centre row included."""
    people, k = keypoints.shape[:2]
    joints = np.zeros((people, k + 1, 3))
    area = np.zeros((people, 1))
    for i in range(people):
        joints[i, :k] = keypoints[i]
        w = joints[i, :, 0].max() - joints[i, :, 0].min()
        h = joints[i, :, 1].max() - joints[i, :, 1].min()
        area[i, 0] = w * w + h * h
        labelled = len(np.nonzero(joints[i, :-1, 2])[0])
        joints[i, -1, :2] = 0 if labelled <= 0 else joints[i, :-1, :2].sum(axis=0) / labelled
        joints[i, -1, 2] = 1
    return joints, area


def ref_dekr_heatmaps(joints, res, sgm, ct_sgm, bg_weight):
    n = joints.shape[1]
    hms = np.zeros((n, res, res), np.float32)
    ignored = 2 * np.ones((n, res, res), np.float32)
    for p in joints:
        for idx, pt in enumerate(p):
            sigma = sgm if idx < n - 1 else ct_sgm
            x, y = pt[0], pt[1]
            if pt[2] <= 0 or x < 0 or y < 0 or x >= res or y >= res:
                continue
            ul = int(np.floor(x - 3 * sigma - 1)), int(np.floor(y - 3 * sigma - 1))
            br = int(np.ceil(x + 3 * sigma + 2)), int(np.ceil(y + 3 * sigma + 2))
            cc, dd, aa, bb = max(0, ul[0]), min(br[0], res), max(0, ul[1]), min(br[1], res)
            rg = np.zeros((bb - aa, dd - cc))
            for sy in range(aa, bb):
                for sx in range(cc, dd):
                    rg[sy - aa, sx - cc] = np.exp(-((sx - x) ** 2 + (sy - y) ** 2) / (2 * sigma**2))
            hms[idx, aa:bb, cc:dd] = np.maximum(hms[idx, aa:bb, cc:dd], rg)
            ignored[idx, aa:bb, cc:dd] = 1.0
    ignored[ignored == 2] = bg_weight
    return hms, ignored


def ref_dekr_offsets(joints, area, res, radius):
    k = joints.shape[1] - 1
    off = np.zeros((2 * k, res, res), np.float32)
    wt = np.zeros((2 * k, res, res), np.float32)
    amap = np.zeros((res, res), np.float32)
    for pid, p in enumerate(joints):
        cx, cy, cv = int(p[-1, 0]), int(p[-1, 1]), int(p[-1, 2])
        if cv < 1 or cx < 0 or cy < 0 or cx >= res or cy >= res:
            continue
        for idx, pt in enumerate(p[:-1]):
            x, y = pt[0], pt[1]
            if pt[2] <= 0 or x < 0 or y < 0 or x >= res or y >= res:
                continue
            for px in range(max(int(cx - radius), 0), min(int(cx + radius), res)):
                for py in range(max(int(cy - radius), 0), min(int(cy + radius), res)):
                    if (off[idx * 2, py, px] != 0 or off[idx * 2 + 1, py, px] != 0) and amap[py, px] < area[pid]:
                        continue
                    off[idx * 2, py, px], off[idx * 2 + 1, py, px] = px - x, py - y
                    wt[idx * 2, py, px] = wt[idx * 2 + 1, py, px] = 1.0 / np.sqrt(area[pid])
                    amap[py, px] = area[pid]
    return off, wt


def ref_ae_heatmaps(joints, res, sigma):
    size = 6 * sigma + 3
    xs = np.arange(0, size, 1, float)
    g = np.exp(-((xs - 3 * sigma - 1) ** 2 + (xs[:, None] - 3 * sigma - 1) ** 2) / (2 * sigma**2))
    hms = np.zeros((joints.shape[1], res, res), np.float32)
    for p in joints:
        for idx, pt in enumerate(p):
            x, y = int(pt[0]), int(pt[1])
            if pt[2] <= 0 or x < 0 or y < 0 or x >= res or y >= res:
                continue
            ul = int(np.round(x - 3 * sigma - 1)), int(np.round(y - 3 * sigma - 1))
            br = int(np.round(x + 3 * sigma + 2)), int(np.round(y + 3 * sigma + 2))
            c, d = max(0, -ul[0]), min(br[0], res) - ul[0]
            a, b = max(0, -ul[1]), min(br[1], res) - ul[1]
            cc, dd, aa, bb = max(0, ul[0]), min(br[0], res), max(0, ul[1]), min(br[1], res)
            hms[idx, aa:bb, cc:dd] = np.maximum(hms[idx, aa:bb, cc:dd], g[a:b, c:d])
    return hms


def ref_ae_joints(joints, max_people, res, tag_per_joint):
    nodes = np.zeros((max_people, joints.shape[1], 2))
    for i, p in enumerate(joints):
        tot = 0
        for idx, pt in enumerate(p):
            x, y = int(pt[0]), int(pt[1])
            if pt[2] > 0 and 0 <= x < res and 0 <= y < res:
                nodes[i][tot] = ((idx * res**2 if tag_per_joint else 0) + y * res + x, 1)
                tot += 1
    return nodes


def ref_single_tag_loss(pred_tag, joints, loss_type):
    """AELoss.singleTagLoss: pred_tag (N, 1) for one image, joints (M, K, 2)."""
    tags, pull = [], 0
    for person in joints:
        tmp = [pred_tag[j[0]] for j in person if j[1] > 0]
        if not tmp:
            continue
        tmp = torch.stack(tmp)
        tags.append(tmp.mean(dim=0))
        pull = pull + torch.mean((tmp - tags[-1].expand_as(tmp)) ** 2)
    n = len(tags)
    if n == 0:
        return torch.zeros(()), torch.zeros(())
    if n == 1:
        return torch.zeros(()), (pull / n).squeeze()
    a = torch.stack(tags).expand(n, n)
    diff = a - a.permute(1, 0)
    if loss_type == "exp":
        push = torch.exp(-(diff**2)).sum() - n
    else:
        push = torch.clamp(1 - diff.abs(), min=0).sum() - n
    return push / ((n - 1) * n) * 0.5, pull / n


def ref_ae_loss(tags, joints, loss_type):
    flat = tags.contiguous().view(tags.shape[0], -1, 1)
    pairs = [ref_single_tag_loss(flat[i], joints[i].numpy(), loss_type) for i in range(len(flat))]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


# ----------------------------------------------------------------------------------------------------------------
# Inputs


def random_people(rng, people=3, k=4, res=16):
    """Persons close together (overlapping offset boxes), some joints off the map, at least one labelled joint
    each, and unlabelled joints at (0, 0) as COCO stores them."""
    centres = rng.uniform(3, res - 3, size=(people, 1, 2))
    xy = centres + rng.normal(0, 3, size=(people, k, 2))
    v = rng.integers(0, 3, size=(people, k)).astype(float)
    v[:, 0] = 2
    xy[v == 0] = 0
    return np.concatenate([xy, v[..., None]], axis=2)


@pytest.mark.parametrize("seed", range(6))
def test_dekr_targets_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    keypoints = random_people(rng)
    joints, area = ref_dekr_joints(keypoints)
    mask = (rng.random((16, 16)) > 0.2).astype(np.float32)
    kept = keypoints.copy()
    ours = dekr_targets(
        keypoints, 16, sigma=2.0, center_sigma=4.0, radius=4, bg_weight=0.1, areas=area[:, 0], mask=mask
    )
    np.testing.assert_array_equal(keypoints, kept)
    hms, ignored = ref_dekr_heatmaps(joints, 16, 2.0, 4.0, 0.1)
    off, wt = ref_dekr_offsets(joints, area[:, 0], 16, 4)
    np.testing.assert_allclose(ours.heatmaps, hms, rtol=0, atol=1e-7)
    np.testing.assert_allclose(ours.heatmap_mask, mask * ignored, rtol=0, atol=0)
    np.testing.assert_array_equal(ours.offsets, off)
    np.testing.assert_array_equal(ours.offset_weights, wt)
    assert all(t.dtype == np.float32 for t in ours)


def test_dekr_offsets_around_a_known_centre():
    joints = np.array([[[5.0, 6.0, 2.0], [9.0, 4.0, 1.0], [0.0, 0.0, 0.0]]])  # centre (7, 5)
    t = dekr_targets(joints, (12, 14), radius=3)
    assert t.heatmaps.shape == (4, 12, 14) and t.offsets.shape == (6, 12, 14)
    assert t.heatmaps[3, 5, 7] == pytest.approx(1.0) and t.heatmaps[0, 6, 5] == pytest.approx(1.0)
    assert t.offsets[:, 5, 7].tolist() == [7 - 5, 5 - 6, 7 - 9, 5 - 4, 0, 0]  # centre minus joint
    box = np.zeros((12, 14), bool)
    box[2:8, 4:10] = True  # [c - r, c + r)
    ys, xs = np.mgrid[:12, :14]
    for k, (x, y) in enumerate([(5, 6), (9, 4)]):
        np.testing.assert_array_equal(t.offsets[2 * k], np.where(box, xs - x, 0))
        np.testing.assert_array_equal(t.offsets[2 * k + 1], np.where(box, ys - y, 0))
    area = dekr_person_areas(joints)[0]
    assert area == 4**2 + 2**2
    np.testing.assert_allclose(t.offset_weights[:4], np.where(box, 1 / math.sqrt(area), 0)[None].repeat(4, 0))
    assert not t.offset_weights[4:].any()
    assert set(np.unique(t.heatmap_mask)) == {np.float32(0.1), np.float32(1.0)}


def test_dekr_centre_rules():
    joints = np.array([[[5.0, 6.0, 2.0]], [[0.0, 0.0, 0.0]]])
    t = dekr_targets(joints, 16, center_visible=[False, True])
    assert not t.heatmaps[1].any() and not t.offsets.any()  # no centre: one dropped, one without joints
    assert t.heatmaps[0, 6, 5] == pytest.approx(1.0)


@pytest.mark.parametrize(("seed", "sigma", "tag_per_joint"), [(0, 2.0, True), (1, 2.0, False), (2, 1.0, True)])
def test_ae_targets_equal_the_reference(seed, sigma, tag_per_joint):
    rng = np.random.default_rng(seed)
    joints = random_people(rng, people=4, k=5, res=16)
    kept = joints.copy()
    ours = ae_targets(joints, 16, sigma=sigma, max_people=6, tag_per_joint=tag_per_joint)
    np.testing.assert_array_equal(joints, kept)
    np.testing.assert_array_equal(ours.heatmaps, ref_ae_heatmaps(joints, 16, sigma))
    np.testing.assert_array_equal(ours.joints, ref_ae_joints(joints, 6, 16, tag_per_joint))
    assert ours.heatmaps.dtype == np.float32 and ours.joints.shape == (6, 5, 2)


def test_ae_targets_per_person_sigma_and_rectangular_maps():
    joints = np.array([[[4.0, 3.0, 1.0]], [[10.0, 20.0, 1.0]]])
    t = ae_targets(joints, (24, 12), sigma=[1.0, 3.0], max_people=2)
    assert t.heatmaps.shape == (1, 24, 12)
    assert t.heatmaps[0, 3, 4] == 1.0 and t.heatmaps[0, 20, 10] == 1.0
    assert t.heatmaps[0, 3, 6] == pytest.approx(math.exp(-4 / 2)) and t.heatmaps[0, 20, 8] == pytest.approx(
        math.exp(-4 / 18)
    )
    assert t.joints[:, 0].tolist() == [[3 * 12 + 4, 1], [20 * 12 + 10, 1]]


@pytest.mark.parametrize("seed", range(3))
def test_dekr_loss_equals_the_reference(seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    targets = [dekr_targets(random_people(rng), 16) for _ in range(2)]
    stacked = [torch.from_numpy(np.stack(field)) for field in zip(*targets)]
    heatmaps, offsets = torch.rand(2, 5, 16, 16), torch.randn(2, 8, 16, 16) * 3
    heatmap_loss, offset_loss = DEKRLoss()((heatmaps, offsets), stacked)
    gt, mask, gt_off, weights = stacked
    ref_heatmap = (((heatmaps - gt) ** 2) * mask).mean(dim=3).mean(dim=2).mean(dim=1).mean(dim=0)
    l1 = (offsets - gt_off).abs()
    smooth = torch.where(l1 < 1 / 9, 0.5 * l1**2 / (1 / 9), l1 - 0.5 / 9)
    ref_offset = (smooth * weights).sum() / max(torch.nonzero(weights > 0).size()[0], 1)
    torch.testing.assert_close(heatmap_loss, ref_heatmap * 1.0)
    torch.testing.assert_close(offset_loss, ref_offset * 0.03)
    _, no_offsets = DEKRLoss()((heatmaps, offsets), [gt, mask, gt_off, torch.zeros_like(weights)])
    assert no_offsets.item() == 0.0


@pytest.mark.parametrize(("seed", "loss_type"), [(0, "exp"), (1, "max"), (2, "exp")])
def test_ae_loss_equals_the_reference(seed, loss_type):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tags = torch.randn(3, 4, 8, 8, requires_grad=True)
    people = [4, 1, 0]  # several persons, one, none
    joints = torch.from_numpy(
        np.stack([ae_targets(random_people(rng, n, 4, 8), 8, max_people=5).joints for n in people])
    )
    push, pull = AssociativeEmbeddingLoss(loss_type)(tags, joints)
    ref_push, ref_pull = ref_ae_loss(tags, joints, loss_type)
    torch.testing.assert_close(push, ref_push)
    torch.testing.assert_close(pull, ref_pull)
    (grad,) = torch.autograd.grad((push + pull).sum(), tags)
    (ref_grad,) = torch.autograd.grad((ref_push + ref_pull).sum(), tags)
    torch.testing.assert_close(grad, ref_grad)


def test_ae_loss_by_hand():
    tags = torch.zeros(1, 2, 4, 4)
    tags[0, 0, 1, 1] = tags[0, 1, 2, 2] = 0.0  # person 0: tag 0 at both joints
    tags[0, 0, 3, 0] = tags[0, 1, 0, 3] = 1.0  # person 1: tag 1 at both joints
    joints = torch.tensor([[[[1 * 4 + 1, 1], [16 + 2 * 4 + 2, 1]], [[3 * 4 + 0, 1], [16 + 0 * 4 + 3, 1]]]])
    push, pull = AssociativeEmbeddingLoss("exp")(tags, joints)
    assert pull.tolist() == [0.0]
    # exp: sum of exp(-d**2) over the 2 x 2 matrix = 2 + 2 exp(-1); minus 2; over (2 * 1); times 0.5
    assert push.item() == pytest.approx(0.5 * math.exp(-1))
    assert AssociativeEmbeddingLoss("max")(tags, joints)[0].item() == 0.0
    tags[0, 0, 3, 0] = tags[0, 1, 0, 3] = 0.25
    assert AssociativeEmbeddingLoss("max")(tags, joints)[0].item() == pytest.approx(0.5 * 2 * 0.75 / 2)
    tags[0, 1, 0, 3] = 0.75  # person 1's tags 0.25 and 0.75: mean 0.5, squared spread 0.0625; over 2 persons
    assert AssociativeEmbeddingLoss("exp")(tags, joints)[1].item() == pytest.approx(0.0625 / 2)


def test_higherhrnet_loss_equals_the_reference_factory():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    outputs = [torch.randn(2, 6, 8, 8), torch.randn(2, 3, 16, 16)]
    heatmaps = [torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)]
    masks = [(torch.rand(2, 8, 8) > 0.2).float(), (torch.rand(2, 16, 16) > 0.2).float()]
    joints = [torch.from_numpy(np.stack([ae_targets(random_people(rng, 3, 3, 8), 8).joints for _ in range(2)]))]
    losses = HigherHRNetLoss(3)(outputs, heatmaps, masks, [joints[0], None])
    for i in range(2):
        ref = (((outputs[i][:, :3] - heatmaps[i]) ** 2) * masks[i][:, None]).mean(dim=3).mean(dim=2).mean(dim=1)
        torch.testing.assert_close(losses.heatmaps[i], ref * 1.0)
    push, pull = ref_ae_loss(outputs[0][:, 3:], joints[0], "exp")
    torch.testing.assert_close(losses.push[0], push * 0.001)
    torch.testing.assert_close(losses.pull[0], pull * 0.001)
    assert losses.push[1] is None and losses.pull[1] is None
    expected = sum(t.mean() for t in (*losses.heatmaps, losses.push[0], losses.pull[0]))
    torch.testing.assert_close(losses.total(), expected)


def test_clear_errors():
    with pytest.raises(ValueError, match="persons, joints, 3"):
        dekr_targets(np.zeros((4, 3)), 16)
    with pytest.raises(ValueError, match="mask"):
        dekr_targets(np.zeros((1, 4, 3)), 16, mask=np.ones((8, 8)))
    with pytest.raises(ValueError, match="areas"):
        dekr_targets(np.zeros((2, 4, 3)), 16, areas=[1.0])
    with pytest.raises(ValueError, match="max_people"):
        ae_targets(np.zeros((3, 4, 3)), 16, max_people=2)
    with pytest.raises(ValueError, match="heatmaps"):
        DEKRLoss()((torch.zeros(1, 5, 8, 8), torch.zeros(1, 8, 8, 8)), [torch.zeros(1, 5, 4, 4)] * 2 * 2)
    with pytest.raises(ValueError, match="tag indices"):
        AssociativeEmbeddingLoss()(torch.zeros(1, 1, 4, 4), torch.tensor([[[[16, 1]]]]))
    with pytest.raises(ValueError, match="loss_type"):
        AssociativeEmbeddingLoss("sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected 2 outputs"):
        HigherHRNetLoss(3)([torch.zeros(1, 6, 8, 8)], [], [], [])


# ----------------------------------------------------------------------------------------------------------------
# A few fine-tuning steps


def people_at_input(rng, batch, k, size):
    return [random_people(rng, 2, k, size) for _ in range(batch)]


def test_tiny_dekr_fine_tunes():
    torch.manual_seed(0)
    config = json.loads((DATA / "dekr_tiny_config.json").read_text())
    model = DEKR(DEKRConfig.from_original(config["spec"], config["num_joints"], config["input_size"])).train()
    rng = np.random.default_rng(0)
    targets = [dekr_targets(p, 16) for p in people_at_input(rng, 2, config["num_joints"], 16)]
    stacked = [torch.from_numpy(np.stack(field)) for field in zip(*targets)]
    images = torch.randn(2, 3, 64, 64)
    loss_fn, optimizer = DEKRLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss = sum(loss_fn(model(images), stacked))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_tiny_higherhrnet_fine_tunes():
    torch.manual_seed(0)
    config = json.loads((DATA / "higherhrnet_tiny_config.json").read_text())
    model = HigherHRNet(HigherHRNetConfig.from_original(config)).train()
    k = config["MODEL"]["NUM_JOINTS"]
    rng = np.random.default_rng(0)
    people = people_at_input(rng, 2, k, 64)  # input pixels (64 x 96 image, x < 64)
    sizes = [(24, 16), (48, 32)]
    heatmaps, joints = [], []
    for (h, w), stride in zip(sizes, (4, 2)):
        scaled = [np.concatenate([p[..., :2] / stride, p[..., 2:]], axis=2) for p in people]
        per_image = [ae_targets(p, (h, w), max_people=4) for p in scaled]
        heatmaps.append(torch.from_numpy(np.stack([t.heatmaps for t in per_image])))
        joints.append(torch.from_numpy(np.stack([t.joints for t in per_image])))
    masks = [torch.ones(2, h, w) for h, w in sizes]
    images = torch.randn(2, 3, 96, 64)
    loss_fn = HigherHRNetLoss(k, push_factor=(1.0, 1.0), pull_factor=(1.0, 1.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss = loss_fn(model(images), heatmaps, masks, joints).total()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
