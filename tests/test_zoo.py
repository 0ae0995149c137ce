"""The whole HRNet family: every tag's metadata, its upstream checkpoint layout, keypoint sets, codecs, the list."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import hrnet_zoo
from hrnet_zoo.cli import main
from hrnet_zoo.evaluation import auc, epe, interocular_distance, nme, pck
from hrnet_zoo.keypoints import COCO_KEYPOINTS, MPII_KEYPOINTS, get_keypoint_set, list_keypoint_sets
from hrnet_zoo.models import ARCHITECTURES, HRNetConfig, HRNetV2Pose, LiteHRNetConfig
from hrnet_zoo.models._layouts import to_package_layout
from hrnet_zoo.models.pretrained import PRETRAINED_CFGS, TASKS

from .conftest import REPO
from .layouts import to_openmmlab_layout

ZOO = json.loads((REPO / "src" / "hrnet_zoo" / "data" / "openmmlab_zoo.json").read_text())
TAGGED = {name: cfg for name, cfg in PRETRAINED_CFGS.items() if cfg.has_weights}


def _all_branches(architecture: str) -> bool:
    """Whether the architecture is HRNetV2 (head on all branches), as its ``ARCHITECTURES`` entry says."""
    return ARCHITECTURES[architecture].model_cls is HRNetV2Pose


_TO_LITE_REFERENCE = [
    (r"^backbone\.transition(\d+)\.branches\.", r"backbone.transition\1."),
    (r"^(backbone\.stage\d+\.\d+)\.fuse\.paths\.", r"\1.fuse_layers."),
]


def upstream_layout(architecture: str, state_dict: dict, v1: bool) -> dict:
    """The package layout in the tag's upstream keys: OpenMMLab's HRNet, or Lite-HRNet's reference (mmpose 0.x
    ``keypoint_head.final_layer``, 1.x ``head.final_layer``), as its ``ARCHITECTURES`` entry's config says."""
    if not isinstance(ARCHITECTURES[architecture].config, LiteHRNetConfig):
        return to_openmmlab_layout(state_dict, v1)
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in [
            *_TO_LITE_REFERENCE,
            (r"^head\.", "head.final_layer." if v1 else "keypoint_head.final_layer."),
        ]:
            key, count = re.subn(pattern, replacement, key)
            if count:
                break
        out[key] = value
    return out


def test_every_tag_has_consistent_metadata():
    assert len(TAGGED) >= 60
    for name, cfg in TAGGED.items():
        file_name = cfg.url.rsplit("/", 1)[1]
        assert re.search(rf"-{cfg.sha256_prefix}_\d{{8}}\.pth$", file_name), name
        assert cfg.url.startswith("https://download.openmmlab.com/mmpose/"), name
        assert re.fullmatch(r"https://github\.com/open-mmlab/mmpose/blob/[\w.]+/configs/.+\.md", cfg.metrics_source)
        assert cfg.metrics and all(isinstance(v, (int, float)) for v in cfg.metrics.values()), name
        assert cfg.task in TASKS and cfg.license == "apache-2.0", name
        codec = cfg.pose_meta.codec
        assert codec.input_size == cfg.input_size and name.endswith(f"_{cfg.input_size[0]}x{cfg.input_size[1]}")
        assert codec.decoding == ("dark" if "_dark" in name else "udp" if "_udp" in name else "argmax"), name
        hrnet = isinstance(ARCHITECTURES[cfg.architecture].config, HRNetConfig)  # Lite-HRNet's hand tag: no HRNetV2
        assert _all_branches(cfg.architecture) == (cfg.task in ("face", "hand") and hrnet), name
    for record in ZOO["checkpoints"]:  # the generated table, field by field
        cfg = PRETRAINED_CFGS[f"{record['architecture']}.{record['tag']}"]
        assert cfg.pose_meta.codec.shift_flipped == record["codec"]["shift_flipped"]
        assert record["head"] == ("concat" if _all_branches(cfg.architecture) else "simple")  # the table decides
        assert cfg.num_joints == len(get_keypoint_set(record["keypoints"]))
    names = [r["mmpose_name"] for r in ZOO["checkpoints"]] + [s["name"] for s in ZOO["skipped"]]
    wanted_tags = (
        "coco_dark_256x192",
        "coco_udp_384x288",
        "coco_wholebody_dark_384x288",
        "crowdpose_256x192",
        "aic_256x192",
        "wflw_256x256",
        "onehand10k_udp_256x256",
        "ap10k_256x256",
    )
    for wanted in wanted_tags:
        assert any(n.endswith(wanted) for n in TAGGED), wanted
    assert len(set(names)) == len(names)


def _layouts() -> dict[tuple[str, bool], str]:
    """One tag for each head type (plain, HRNetV2 concat) and mmpose generation (0.x, 1.x files)."""
    chosen = {}
    for name, cfg in sorted(TAGGED.items(), key=lambda item: item[1].architecture != "hrnet_w32_pose"):
        chosen.setdefault((_all_branches(cfg.architecture), "/mmpose/v1/" in cfg.url), name)
    return chosen


def test_every_tag_takes_its_upstream_layout():
    """For every tag, the keys and shapes of its upstream layout convert to exactly the model's (meta tensors).

    Tags of one architecture, keypoint count and mmpose generation share a layout: one model is built for each.
    """
    built = {}
    for name, cfg in TAGGED.items():
        group = (cfg.architecture, cfg.num_joints, "/mmpose/v1/" in cfg.url)
        if group in built:
            continue
        built[group] = name
        own = hrnet_zoo.create_model(name, device="meta").state_dict()
        converted, layout = to_package_layout(upstream_layout(cfg.architecture, own, "/mmpose/v1/" in cfg.url))
        lite = isinstance(ARCHITECTURES[cfg.architecture].config, LiteHRNetConfig)
        expected = ("litehrnet" if lite else "openmmlab") + ("1" if "/mmpose/v1/" in cfg.url else "")
        assert layout == expected, name
        assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in own.items()}, name
        assert list(converted) == list(own), name
    assert len(built) >= 15 and {"litehrnet_18_pose", "litehrnet_30_pose"} <= {group[0] for group in built}


@pytest.mark.parametrize("name", sorted(_layouts().values()))
def test_upstream_checkpoints_load_strictly(name, tmp_path):
    """A file in the tag's upstream layout (random values, right shapes) loads into create_model(tag)."""
    source = hrnet_zoo.create_model(name)
    with torch.no_grad():
        for p in source.parameters():
            p.normal_(0, 0.02)
    path = tmp_path / "upstream.pth"
    cfg = PRETRAINED_CFGS[name]
    upstream = upstream_layout(cfg.architecture, source.state_dict(), "/mmpose/v1/" in cfg.url)
    torch.save({"meta": {"mmpose_version": "test"}, "state_dict": upstream}, path)
    loaded = hrnet_zoo.create_model(name, checkpoint_path=path).state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(loaded[key], value), key
    assert len(_layouts()) == 4


def test_hrnetv2_head_is_concat_then_convs():
    model = hrnet_zoo.create_model("hrnetv2_w18_pose.onehand10k_256x256").eval()
    assert model.num_features == 18 + 36 + 72 + 144 and model.num_joints == 21
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        branches = model.backbone(x)
        concat = torch.cat(
            [branches[0]] + [torch.nn.functional.interpolate(b, size=(64, 64), mode="bilinear") for b in branches[1:]],
            1,
        )
        conv, bn, _, final = model.head
        expected = final(torch.relu(bn(conv(concat))))
        torch.testing.assert_close(model(x), expected)
        torch.testing.assert_close(model.forward_features(x), concat)
    model.reset_head(5)
    assert model.num_joints == 5 and model(x).shape == (2, 5, 64, 64)


def test_keypoint_sets_are_symmetric_and_complete():
    assert get_keypoint_set("coco").names == tuple(
        json.loads((REPO / "src/hrnet_zoo/data/keypoint_sets.json").read_text())["coco"]["names"]
    )
    for name in list_keypoint_sets():
        kps = get_keypoint_set(name)
        flat = [i for pair in kps.flip_pairs for i in pair]
        assert len(flat) == len(set(flat)), f"{name}: a keypoint in two flip pairs"
        index = kps.flip_index
        assert [index[i] for i in index] == list(range(len(kps))), name
        for i, n in enumerate(kps.names):  # every left_* / right_* (l_*/r_*) keypoint has its mirror as pair
            for a, b in (("left", "right"), ("right", "left")):
                if n.startswith(a) and n.replace(a, b, 1) in kps.names:
                    assert kps.names[index[i]] == n.replace(a, b, 1), (name, n)
        if kps.sigmas is not None:
            assert len(kps.sigmas) == len(kps) and all(s > 0 for s in kps.sigmas)
    assert get_keypoint_set("coco_wholebody").flip_index[:17] == COCO_KEYPOINTS.flip_index
    assert len(get_keypoint_set("coco_wholebody")) == 133 and len(get_keypoint_set("wflw")) == 98
    assert len(MPII_KEYPOINTS) == 16 and len(get_keypoint_set("onehand10k")) == 21


def test_codec_travels_with_the_tag():
    estimator = hrnet_zoo.PoseEstimator(hrnet_zoo.create_model("hrnet_w32_pose.coco_udp_256x192"), device="cpu")
    assert estimator.codec.decoding == "udp" and not estimator.codec.shift_flipped
    dark = hrnet_zoo.create_model("hrnet_w48_pose.coco_dark_384x288")
    assert dark.pose_meta.codec.decoding == "dark" and dark.pose_meta.codec.blur_kernel_size == 11
    assert dark.pretrained_cfg["input_size"] == (3, 384, 288)


def test_w18_has_no_weights_and_says_so(capsys):
    with pytest.raises(Exception, match="hrnet_w18_pose has no pretrained weights"):
        hrnet_zoo.create_model("hrnet_w18_pose", pretrained=True)
    assert main(["list", "*w18*"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"hrnet_w18_pose\s.*no weights", out) and "hrnetv2_w18_pose.wflw_256x256" in out


def test_list_groups_by_task(capsys):
    assert main(["list", "--pretrained"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("## ")]
    assert headers == [f"## {task}" for task in TASKS]
    face = out.split("## face")[1].split("## hand")[0]
    assert "hrnetv2_w18_pose.wflw_256x256" in face and "NME test=4.06" in face
    body = out.split("## body")[1].split("## wholebody")[0]
    lite = [f"litehrnet_{n}_pose.{tag}" for n in (18, 30) for tag in ("coco_256x192", "coco_384x288", "mpii_256x256")]
    assert all(name in body for name in lite) and "litehrnet_18_pose.coco_wholebody_hand_256x256" in out


def test_docs_table_equals_the_configurations():
    rows = {}
    for line in (REPO / "docs" / "models.md").read_text().splitlines():
        match = re.fullmatch(r"\| `([\w.]+)` \| (\w+) \| (\d+x\d+) \| (\d+) \| (\w+) \| ([^|]+) \|", line)
        if match:
            rows[match.group(1)] = match.groups()[1:]
    for name, cfg in TAGGED.items():
        first = cfg.headline_metric
        size = f"{cfg.input_size[0]}x{cfg.input_size[1]}"
        assert rows.pop(name) == (
            cfg.task,
            size,
            str(cfg.num_joints),
            cfg.pose_meta.codec.decoding,
            f"{first[0]}={first[1]}",
        ), name
    assert rows == {}


def test_landmark_metrics_on_hand_computed_cases():
    gt = np.array([[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], [[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]])
    pred = gt + np.array([[[3.0, 4.0], [0.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = np.array([[True, True, True], [True, True, False]])
    # distances: sample 0 -> 5, 0, 1; sample 1 -> 2, 0 (third masked)
    assert epe(pred, gt, mask) == pytest.approx((5 + 0 + 1 + 2 + 0) / 5)
    normalizer = interocular_distance(gt, 1, 2)  # 10 * sqrt(2) and 4 * sqrt(2)
    expected = (5 / (10 * 2**0.5) + 0 + 1 / (10 * 2**0.5) + 2 / (4 * 2**0.5) + 0) / 5
    assert nme(pred, gt, mask, normalizer) == pytest.approx(expected)
    # PCK@0.2 with normaliser 10 per sample: per keypoint -> [0.5 >= .2 fail, .2 fail] = 0; [0, 0] = 1; [.1] = 1
    assert pck(pred, gt, mask, np.array([10.0, 10.0]), 0.2) == pytest.approx((0 + 1 + 1) / 3)
    # AUC over thresholds 0, 0.05 .. 0.95 of 9 px (no distance on a threshold): PCK at each, averaged
    thresholds = np.arange(20) / 20
    per_threshold = [
        np.mean([(float(5 / 9 < t) + float(2 / 9 < t)) / 2, float(0 < t), float(1 / 9 < t)]) for t in thresholds
    ]
    assert auc(pred, gt, mask, normalizer=9.0) == pytest.approx(np.mean(per_threshold))
    zero = np.array([0.0, 10.0])  # a zero normaliser leaves its sample out
    assert nme(pred, gt, mask, zero) == pytest.approx((2 / 10 + 0) / 2)
    with pytest.raises(ValueError, match="must both be"):
        epe(pred[:, :, :1], gt, mask)
