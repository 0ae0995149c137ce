"""Training pieces and evaluation: against the original's loops, pycocotools and direct computations."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from safetensors.torch import load_file
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch.utils.data import DataLoader

import hrnet_zoo
from hrnet_zoo import PoseResult
from hrnet_zoo.cli import main
from hrnet_zoo.codec import HeatmapCodec, TopDownTransform, box_to_center_scale, decode_argmax, region_area
from hrnet_zoo.evaluation import coco_keypoint_ap, evaluate, oks_nms, pckh, rescore
from hrnet_zoo.keypoints import COCO_KEYPOINTS
from hrnet_zoo.train import (
    Augmentation,
    CocoKeypointDataset,
    JointsMSELoss,
    JointsOHKMMSELoss,
    freeze_stages,
    make_synthetic_dataset,
    train_one_epoch,
)

from .conftest import REPO


def test_losses_equal_the_original_loops():
    torch.manual_seed(0)
    output, target = torch.randn(3, 5, 8, 6), torch.randn(3, 5, 8, 6)
    weight = torch.tensor([[1.0, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0]])
    mse = torch.nn.MSELoss()
    flat_out, flat_target = output.reshape(3, 5, -1), target.reshape(3, 5, -1)
    expected = (
        sum(
            0.5 * mse(flat_out[:, j] * weight[:, j : j + 1], flat_target[:, j] * weight[:, j : j + 1]) for j in range(5)
        )
        / 5
    )
    torch.testing.assert_close(JointsMSELoss()(output, target, weight), expected)
    per_joint = 0.5 * ((output - target) * weight[..., None, None]).pow(2).mean((2, 3))
    expected_ohkm = sum(per_joint[i].topk(2).values.sum() / 2 for i in range(3)) / 3
    torch.testing.assert_close(JointsOHKMMSELoss(topk=2)(output, target, weight), expected_ohkm)
    with pytest.raises(ValueError, match="topk=8 is larger"):
        JointsOHKMMSELoss()(output, target, weight)


@pytest.fixture(scope="module")
def kites(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("kites"), num_train=12, num_val=6, image_size=(96, 96))


def imagenet(input_size: tuple[int, int]) -> TopDownTransform:
    """The original codec at ``input_size`` with ImageNet normalisation (the default model's transform)."""
    return TopDownTransform(HeatmapCodec(input_size), IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)


def test_dataset_items(kites):
    data = CocoKeypointDataset(kites["val_annotations"], kites["val_images"], imagenet((64, 64)), train=False)
    assert data.keypoints.names == ("top", "green_wing", "blue_wing", "tail") and data.keypoints.sigmas
    image, target, weight, meta = data[0]
    assert image.shape == (3, 64, 64) and target.shape == (4, 16, 16) and weight.tolist() == [1, 1, 1, 1]
    # Deterministic crops: the targets peak where the annotated joints land in the crop (heatmap = 1/4).
    coords, _ = decode_argmax(target[None])
    torch.testing.assert_close(coords[0], meta["joints"] / 4, atol=0.76, rtol=0)
    training = CocoKeypointDataset(kites["train_annotations"], kites["train_images"], imagenet((64, 64)))
    images, targets, _, metas = next(iter(DataLoader(training, batch_size=4, num_workers=2)))
    assert images.shape == (4, 3, 64, 64) and targets.shape == (4, 4, 16, 16) and metas["center"].shape == (4, 2)


@pytest.mark.parametrize("normalisation", [{}, {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3)}])
def test_dataset_crops_equal_the_predictors(kites, normalisation):
    """An evaluation item is exactly the predictor's crop of the same box, with the model's normalisation."""
    model = hrnet_zoo.create_model(
        "hrnet_w18_small_pose", num_joints=4, input_size=(64, 48), pretrained_cfg_overlay=normalisation
    )
    data = CocoKeypointDataset(kites["val_annotations"], kites["val_images"], model.pose_meta.transform, train=False)
    data.check_model(model)
    estimator = hrnet_zoo.PoseEstimator(model, device="cpu")
    fractional = 0
    for index, record in enumerate(data.records):
        image, _, _, meta = data[index]
        crops = estimator.crops(record.image_path, [list(record.box)])
        assert torch.equal(image, crops.inputs[0]), index
        assert torch.equal(meta["center"], crops.center[0]) and torch.equal(meta["scale"], crops.scale[0])
        fractional += any(v != round(v) for v in record.box)
    assert fractional > 0, "boxes with fractions, where xywh and xyxy round differently, are among them"
    mean = torch.tensor(model.pose_meta.mean).view(3, 1, 1)
    std = torch.tensor(model.pose_meta.std).view(3, 1, 1)
    pixels = image * std + mean  # undone by hand: the crop of a [0, 1] image
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5 and pixels.max() > 0.5


def coco_like(tmp_path, keypoints_per_person, image_exists=True):
    from PIL import Image

    (tmp_path / "img").mkdir(exist_ok=True)
    if image_exists:
        noise = np.random.default_rng(0).integers(0, 256, (120, 100, 3), dtype=np.uint8)
        Image.fromarray(noise).save(tmp_path / "img" / "a.png")
    anns = [
        {
            "id": i + 1,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [10, 10, 50, 80],
            "area": 4000,
            "keypoints": kpts,
            "num_keypoints": sum(v > 0 for v in kpts[2::3]),
        }
        for i, kpts in enumerate(keypoints_per_person)
    ]
    category = {"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS.names), "skeleton": []}
    image = {"id": 1, "file_name": "a.png", "width": 100, "height": 120}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": [image], "annotations": anns, "categories": [category]}))
    return path, tmp_path / "img"


def test_dataset_bad_input(tmp_path):
    visible = [20.0, 30.0, 2.0] * 17
    nothing = [0.0, 0.0, 0.0] * 17
    outside = [150.0, -30.0, 2.0] + [20.0, 30.0, 2.0] * 16
    ann, images = coco_like(tmp_path, [visible, nothing, outside])
    data = CocoKeypointDataset(ann, images, imagenet((64, 48)), train=False)
    assert len(data) == 2, "the person with no labelled joint is skipped"
    _, _, weight, _ = data[1]
    assert weight[0] == 0 and weight[1:].all(), "a joint outside the image gets no target"
    model = hrnet_zoo.create_model("hrnet_w18_small_pose", num_joints=5, input_size=(64, 48))
    with pytest.raises(ValueError, match="predicts 5 joints but the data set has 17"):
        data.check_model(model)
    with pytest.raises(ValueError, match=r"codec .* differs from the data set's.*transform=model\.pose_meta"):
        data.check_model(hrnet_zoo.create_model("hrnet_w18_small_pose", num_joints=17))
    with pytest.raises(ValueError, match="transform must be a TopDownTransform"):
        CocoKeypointDataset(ann, images, HeatmapCodec((64, 48)))
    ann, images = coco_like(tmp_path, [[1.0, 2.0, 2.0] * 5])
    with pytest.raises(ValueError, match="has 5 keypoints but the keypoint set 'person' has 17"):
        CocoKeypointDataset(ann, images)
    (tmp_path / "missing").mkdir()
    ann, images = coco_like(tmp_path / "missing", [visible], image_exists=False)
    with pytest.raises(FileNotFoundError, match=r"1 image files .* are missing.*on_missing='skip'"):
        CocoKeypointDataset(ann, images)
    with pytest.raises(ValueError, match="holds no person"):
        CocoKeypointDataset(ann, images, on_missing="skip")


def test_dataset_refuses_a_model_with_other_normalisation(tmp_path):
    ann, images = coco_like(tmp_path, [[20.0, 30.0, 2.0] * 17])
    data = CocoKeypointDataset(ann, images, train=False)  # the default: 256x192, ImageNet statistics
    assert data.transform == imagenet((256, 192))
    data.check_model(hrnet_zoo.create_model("hrnet_w18_small_pose"))  # the same transform: accepted
    other = hrnet_zoo.create_model(
        "hrnet_w18_small_pose", pretrained_cfg_overlay={"mean": (0.5,) * 3, "std": (0.5,) * 3}
    )
    assert other.pose_meta.codec == data.codec, "only the normalisation differs"
    message = (
        r"normalises its inputs with mean \[0\.5, 0\.5, 0\.5\] and std \[0\.5, 0\.5, 0\.5\], the data set with "
        r"mean \[0\.485, 0\.456, 0\.406\] and std \[0\.229, 0\.224, 0\.225\]; build the data set with "
        r"transform=model\.pose_meta\.transform"
    )
    with pytest.raises(ValueError, match=message):
        data.check_model(other)
    # The fix the message names works, and the items carry the model's normalisation.
    fixed = CocoKeypointDataset(ann, images, other.pose_meta.transform, train=False)
    fixed.check_model(other)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD))
    torch.testing.assert_close(fixed[0][0] * 0.5 + 0.5, data[0][0] * std + mean)


def test_flip_augmentation_swaps_pairs(tmp_path):
    kpts = [float(v) for j in range(17) for v in (20.0 + j, 30.0 + 2 * j, 2.0)]
    ann, images = coco_like(tmp_path, [kpts])
    always_flip = Augmentation(scale_factor=0.0, rotation_prob=0.0, flip_prob=1.0, half_body_prob=0.0)
    plain = CocoKeypointDataset(ann, images, imagenet((64, 48)), train=False)[0][3]["joints"]
    flipped = CocoKeypointDataset(ann, images, imagenet((64, 48)), augmentation=always_flip)[0][3]["joints"]
    # Left and right joints exchanged and mirrored: x -> W - 1 - x in the image and the centre with it, as the
    # original does, which mirrors crop coordinates about the crop's centre W / 2 (x -> 48 - x).
    expected = plain[COCO_KEYPOINTS.flip_index].clone()
    expected[:, 0] = 48 - expected[:, 0]
    torch.testing.assert_close(flipped, expected, atol=0.3, rtol=0)


def ground_truth_results(annotation_file):
    data = json.loads(annotation_file.read_text())
    return data, [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in data["annotations"]
    ]


def test_ap_of_perfect_and_perturbed_predictions(kites):
    data, results = ground_truth_results(kites["val_annotations"])
    sigmas = data["categories"][0]["sigmas"]
    assert coco_keypoint_ap(data, results, sigmas)["AP"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    perturbed = copy.deepcopy(results)
    for r in perturbed:
        k = np.array(r["keypoints"]).reshape(-1, 3)
        k[:, :2] += rng.normal(0, 3.0, k[:, :2].shape)
        r["keypoints"] = k.reshape(-1).tolist()
        r["score"] = float(rng.uniform(0.5, 1))
    ours = coco_keypoint_ap(data, perturbed, sigmas)
    gt = COCO(str(kites["val_annotations"]))
    reference = COCOeval(gt, gt.loadRes(perturbed), "keypoints")
    reference.params.kpt_oks_sigmas = np.array(sigmas)
    reference.evaluate()
    reference.accumulate()
    reference.summarize()
    assert ours["AP"] == pytest.approx(reference.stats[0]) and ours["AR"] == pytest.approx(reference.stats[5])
    assert 0.0 < ours["AP"] < 0.95


def reference_oks_nms(kpts, scores, areas, sigmas, threshold):
    """The original oks_nms structure: sort, then compare the best with every remaining pose in a loop."""
    order = np.argsort(scores)[::-1]
    variances = (np.array(sigmas) * 2) ** 2
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        ious = []
        for j in order[1:]:
            e = (kpts[j, :, 0] - kpts[i, :, 0]) ** 2 + (kpts[j, :, 1] - kpts[i, :, 1]) ** 2
            e = e / variances / ((areas[i] + areas[j]) / 2 + np.spacing(1)) / 2
            ious.append(np.sum(np.exp(-e)) / e.shape[0])
        order = order[np.where(np.array(ious) <= threshold)[0] + 1]
    return keep


def test_oks_nms_matches_a_direct_implementation():
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 200, (4, 17, 2))
    kpts = np.concatenate([base[rng.integers(0, 4, 30)] + rng.normal(0, 4, (30, 17, 2)), rng.random((30, 17, 1))], 2)
    scores, areas = rng.random(30), rng.uniform(2000, 9000, 30)
    for threshold in (0.3, 0.5, 0.9):
        kept = oks_nms(kpts, scores, areas, COCO_KEYPOINTS.sigmas, threshold)
        assert kept == reference_oks_nms(kpts, scores, areas, COCO_KEYPOINTS.sigmas, threshold)
    assert 4 <= len(oks_nms(kpts, scores, areas, COCO_KEYPOINTS.sigmas, 0.5)) < 30


def test_rescore_and_pckh():
    scores = rescore(np.array([[0.9, 0.1, 0.5], [0.1, 0.1, 0.1]]), np.array([0.5, 1.0]))
    np.testing.assert_allclose(scores, [0.5 * 0.7, 0.0])
    gt = np.zeros((2, 16, 2))
    pred = gt.copy()
    pred[0, 0, 0] = 6.0  # 0.6 head sizes away: a miss at 0.5
    pred[1, 6, 0] = 50.0  # pelvis: excluded from the mean
    visible = np.ones((2, 16))
    visible[1, 3] = 0
    result = pckh(pred, gt, visible, head_sizes=np.array([10.0, 10.0]))
    assert result["per_joint"][0] == 0.5 and result["per_joint"][6] == 0.5 and result["per_joint"][3] == 1.0
    counts = np.array([2] * 16) - np.eye(16)[3]
    included = np.ones(16, bool)
    included[[6, 7]] = False
    assert result["mean"] == pytest.approx((result["per_joint"] * counts * included).sum() / (counts * included).sum())


class Oracle:
    """An estimator that returns the annotated pose of the person in each box (plus a duplicate to suppress)."""

    def __init__(self, annotations, keypoints):
        self.keypoints, self.input_size = keypoints, (64, 64)
        self.by_box = {(a["image_id"], tuple(a["bbox"])): np.array(a["keypoints"]).reshape(-1, 3) for a in annotations}

    def predict(self, paths, boxes):
        results = []
        for path, image_boxes in zip(paths, boxes):
            image_id = int(path.stem)
            kpts = np.stack([self.by_box[(image_id, tuple(b))] for b in image_boxes]).astype(np.float32)
            kpts[..., 2] = 0.9
            _, scale = box_to_center_scale(torch.tensor(image_boxes), self.input_size)
            scores, areas = kpts[..., 2].mean(1), region_area(scale).numpy()
            results.append(
                PoseResult(kpts, np.array(image_boxes), scores, np.ones_like(scores), areas, (), (), (96, 96))
            )
        return results


def test_evaluate_protocol_with_perfect_predictions(kites, tmp_path):
    data, _ = ground_truth_results(kites["val_annotations"])
    keypoints = CocoKeypointDataset(kites["val_annotations"], kites["val_images"], train=False).keypoints
    detections = [
        {"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.8} for a in data["annotations"]
    ] * 2  # duplicates: OKS-NMS keeps one of each
    oracle = Oracle(data["annotations"], keypoints)
    output = tmp_path / "results.json"
    report = evaluate(oracle, kites["val_annotations"], kites["val_images"], detections=detections, output=output)
    assert report["stats"]["AP"] == pytest.approx(1.0)
    assert len(report["results"]) == len(data["annotations"])
    assert report["results"][0]["score"] == pytest.approx(0.8 * 0.9)
    assert len(json.loads((tmp_path / "results.json").read_text())) == len(data["annotations"])


def test_cli_evaluate(kites, tmp_path, capsys):
    keypoints = CocoKeypointDataset(kites["val_annotations"], kites["val_images"], train=False).keypoints
    model = hrnet_zoo.create_model("hrnet_w18_small_pose", keypoints=keypoints)
    folder = hrnet_zoo.save_pretrained(model, tmp_path / "kite-model")
    args = ["evaluate", "--coco-root", str(kites["root"]), "--split", "val", "--device", "cpu", "--no-flip"]
    assert main([*args, "--model", f"local-dir:{folder}", "--out", str(tmp_path / "stats.json")]) == 0
    assert "| AP | AP .5 |" in capsys.readouterr().out
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["split"] == "val" and 0.0 <= stats["AP"] <= 1.0
    # A 4-joint checkpoint does not fit the 17-joint architecture: the CLI says so instead of crashing.
    args += ["--model", "hrnet_w18_small_pose", "--checkpoint", str(folder / "model.safetensors")]
    assert main(args) == 2
    assert "predicts 4 joints but the model has 17" in capsys.readouterr().err


def test_freeze_stages_survives_train_mode(tmp_path):
    model = hrnet_zoo.create_model("hrnet_w18_small_pose")
    frozen = freeze_stages(model, 2)
    assert frozen == ["stem", "stage1", "transition1", "stage2"]
    model.train()  # frozen stages stay frozen (BatchNorm statistics included) without calling freeze_stages again
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    batch = (torch.randn(2, 3, 64, 64) * 3 + 1, torch.rand(2, 17, 16, 16), torch.ones(2, 17), {})
    for _ in range(2):
        model.train()
        train_one_epoch(model, [batch], optimizer, JointsMSELoss(), torch.device("cpu"))
    after = model.state_dict()
    frozen_keys = [k for k in before if k.startswith(("backbone.stem.", "backbone.stage1.", "backbone.stage2."))]
    assert frozen_keys and all(torch.equal(after[k], before[k]) for k in frozen_keys)
    assert any(k.endswith("running_mean") for k in frozen_keys)
    stage3 = "backbone.stage3.0.branches.0.0.bn1.running_mean"
    assert not torch.equal(after[stage3], before[stage3])
    assert not torch.equal(after["head.weight"], before["head.weight"])
    # A frozen model saves and reloads (frozen BatchNorms have no step counter) and folds for inference.
    folder = hrnet_zoo.save_pretrained(model, tmp_path / "frozen")
    reloaded = hrnet_zoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), model.eval()(x))
        torch.testing.assert_close(hrnet_zoo.deploy.optimize_for_inference(model)(x), model(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="between 0 and 4"):
        freeze_stages(model, 5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_replicas_stay_identical(kites, tmp_path):
    """Two gloo processes on 127.0.0.1 train a few steps; DDP keeps their weights identical."""
    launcher = f"-m torch.distributed.run --nproc-per-node 2 --master-addr 127.0.0.1 --master-port {free_port()}"
    options = "--model hrnet_w18_small_pose --input-size 64 64 --epochs 1 --batch-size 2 --max-steps 3 --workers 0"
    example = [str(REPO / "examples" / "finetune.py"), "--data", str(kites["root"]), "--out", str(tmp_path)]
    command = [sys.executable, *launcher.split(), *example, *options.split(), "--no-eval", "--save-replica"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = (load_file(str(tmp_path / f"replica_{r}.safetensors")) for r in (0, 1))
    parameters = [name for name, _ in hrnet_zoo.create_model("hrnet_w18_small_pose", num_joints=4).named_parameters()]
    assert all(torch.equal(first[k], second[k]) for k in parameters)
    # BatchNorm running statistics are each rank's own (broadcast from rank 0 before every forward pass).
    assert any(not torch.equal(first[k], second[k]) for k in first if k.endswith("running_mean"))
    start = hrnet_zoo.create_model("hrnet_w18_small_pose", num_joints=4).state_dict()
    assert not torch.equal(first["head.weight"], start["head.weight"]), "the replicas trained"
    assert (tmp_path / "model" / "config.json").is_file()
