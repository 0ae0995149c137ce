"""The whole HRNet family: every tag's metadata, its upstream checkpoint layout, keypoint sets, codecs, the list."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import hrnet_zoo
from hrnet_zoo.cli import main
from hrnet_zoo.codec import BottomUpCodec
from hrnet_zoo.evaluation import auc, epe, interocular_distance, nme, pck
from hrnet_zoo.keypoints import COCO_KEYPOINTS, MPII_KEYPOINTS, get_keypoint_set, list_keypoint_sets
from hrnet_zoo.models import ARCHITECTURES, HRNetConfig, HRNetV2Pose, LiteHRNetConfig
from hrnet_zoo.models.dekr import rescore_input_size
from hrnet_zoo.models.pretrained import PRETRAINED_CFGS, TASKS

from .conftest import REPO
from .layouts import to_openmmlab_layout, to_original_layout
from .test_dekr import to_openmmlab as dekr_original_to_openmmlab

ZOO = json.loads((REPO / "src" / "hrnet_zoo" / "data" / "openmmlab_zoo.json").read_text())
RECORDS = {f"{r['architecture']}.{r['tag']}": r for r in ZOO["checkpoints"]}
TAGGED = {name: cfg for name, cfg in PRETRAINED_CFGS.items() if cfg.has_weights}


def _family(architecture: str) -> str:
    return ARCHITECTURES[architecture].model_cls.family


def _bottom_up(architecture: str) -> bool:
    return ARCHITECTURES[architecture].kind == "bottom_up"


BOTTOM_UP = {name: cfg for name, cfg in TAGGED.items() if _bottom_up(cfg.architecture)}
#: Each bottom-up family's decoder, upstream checkpoint layout (mmpose 1.x's DEKR, 0.x's HigherHRNet) and origin.
_BOTTOM_UP_FAMILIES = {
    "DEKR": ("dekr", "openmmlab1", "https://github.com/HRNet/DEKR", "arxiv:2104.02300"),
    "HigherHRNet": (
        "associative_embedding",
        "openmmlab",
        "https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation",
        "arxiv:1908.10357",
    ),
}


def _all_branches(architecture: str) -> bool:
    """Whether the architecture is HRNetV2 (head on all branches), as its ``ARCHITECTURES`` entry says."""
    return ARCHITECTURES[architecture].model_cls is HRNetV2Pose


_TO_LITE_REFERENCE = [
    (r"^backbone\.transition(\d+)\.branches\.", r"backbone.transition\1."),
    (r"^(backbone\.stage\d+\.\d+)\.fuse\.paths\.", r"\1.fuse_layers."),
]
#: The package's DEKR head keys in the original DEKR's names (the rescoring net aside).
_TO_DEKR_ORIGINAL_HEAD = [
    (r"^head\.heatmap_transition\.", "transition_heatmap."),
    (r"^head\.heatmap_blocks\.", "head_heatmap.0."),
    (r"^head\.heatmap_final\.", "head_heatmap.1."),
    (r"^head\.offset_transition\.", "transition_offset."),
    (r"^head\.offset_regression\.branches\.(\d+)\.blocks\.", r"offset_feature_layers.\1."),
    (r"^head\.offset_regression\.branches\.(\d+)\.final\.", r"offset_final_layer.\1."),
]
#: The package's HigherHRNet head keys in mmpose 0.x's ``AEHigherResolutionHead`` names (each basic block wrapped).
_TO_HIGHER_OPENMMLAB_HEAD = [
    (r"^head\.deconv_layers\.(\d+)\.0\.", r"keypoint_head.deconv_layers.\1.0."),
    (r"^head\.deconv_layers\.(\d+)\.(\d+)\.", r"keypoint_head.deconv_layers.\1.\2.0."),
    (r"^head\.", "keypoint_head."),
]


def _rename(state_dict: dict, rules: list[tuple[str, str]]) -> dict:
    """Each key renamed by the first rule that matches it."""
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            key, count = re.subn(pattern, replacement, key)
            if count:
                break
        out[key] = value
    return out


def _bottom_up_upstream(architecture: str, state_dict: dict) -> dict:
    """A bottom-up model's state dict in OpenMMLab's keys: mmpose 1.x's ``DEKRHead`` (grouped offset convs, the
    rescoring net under ``head.rescore_net``) or mmpose 0.x's HigherHRNet (``backbone.``, ``keypoint_head.``)."""
    backbone = {k: v for k, v in state_dict.items() if k.startswith("backbone.")}
    backbone = {f"backbone.{k}": v for k, v in to_original_layout(backbone).items()}
    head = {k: v for k, v in state_dict.items() if not k.startswith("backbone.")}
    if _family(architecture) == "HigherHRNet":
        return backbone | _rename(head, _TO_HIGHER_OPENMMLAB_HEAD)
    rescore = {f"head.{k}": v for k, v in head.items() if k.startswith("rescore_net.")}
    original = {k[len("backbone.") :]: v for k, v in backbone.items()} | _rename(head, _TO_DEKR_ORIGINAL_HEAD)
    joints = state_dict["head.heatmap_final.bias"].numel() - 1  # the centre heatmap is the last
    return dekr_original_to_openmmlab(original, joints) | rescore


def upstream_layout(architecture: str, state_dict: dict, v1: bool) -> dict:
    """The package layout in the tag's upstream keys: OpenMMLab's HRNet, Lite-HRNet's reference (mmpose 0.x
    ``keypoint_head.final_layer``, 1.x ``head.final_layer``), or OpenMMLab's DEKR and HigherHRNet, as its
    ``ARCHITECTURES`` entry says."""
    if _bottom_up(architecture):
        return _bottom_up_upstream(architecture, state_dict)
    if not isinstance(ARCHITECTURES[architecture].config, LiteHRNetConfig):
        return to_openmmlab_layout(state_dict, v1)
    head = (r"^head\.", "head.final_layer." if v1 else "keypoint_head.final_layer.")
    return _rename(state_dict, [*_TO_LITE_REFERENCE, head])


def test_every_tag_has_consistent_metadata():
    assert len(TAGGED) >= 60
    for name, cfg in TAGGED.items():
        file_name = cfg.url.rsplit("/", 1)[1]
        assert re.search(rf"[-_]{cfg.sha256_prefix}[-_]\d{{8}}\.pth$", file_name), name
        assert cfg.url.startswith("https://download.openmmlab.com/mmpose/"), name
        assert re.fullmatch(r"https://github\.com/open-mmlab/mmpose/blob/[\w.]+/configs/.+\.md", cfg.metrics_source)
        assert cfg.metrics and all(isinstance(v, (int, float)) for v in cfg.metrics.values()), name
        assert cfg.task in TASKS and cfg.license == "apache-2.0", name
        codec = cfg.pose_meta.codec
        assert codec.input_size == cfg.input_size and name.endswith(f"_{cfg.input_size[0]}x{cfg.input_size[1]}")
        if _bottom_up(cfg.architecture):  # its family's decoder, and where the family was published
            method, _, origin, paper = _BOTTOM_UP_FAMILIES[_family(cfg.architecture)]
            assert (codec.method, cfg.origin_url, cfg.paper) == (method, origin, paper), name
            continue
        assert codec.decoding == ("dark" if "_dark" in name else "udp" if "_udp" in name else "argmax"), name
        hrnet = isinstance(ARCHITECTURES[cfg.architecture].config, HRNetConfig)  # Lite-HRNet's hand tag: no HRNetV2
        assert _all_branches(cfg.architecture) == (cfg.task in ("face", "hand") and hrnet), name
    for key, record in RECORDS.items():  # the generated table, field by field
        cfg = PRETRAINED_CFGS[key]
        assert cfg.num_joints == len(get_keypoint_set(record["keypoints"]))
        if _bottom_up(cfg.architecture):  # no head kind to record: the architecture has one
            assert "head" not in record and record["codec"]["method"] == cfg.pose_meta.codec.method, key
            continue
        assert cfg.pose_meta.codec.shift_flipped == record["codec"]["shift_flipped"]
        assert record["head"] == ("concat" if _all_branches(cfg.architecture) else "simple")  # the table decides
    repeats = [s for s in ZOO["skipped"] if "repeat_of" in s]  # a table's second row of a served checkpoint
    for repeat in repeats:
        served = RECORDS[repeat["repeat_of"]]
        assert (served["mmpose_name"], served["url"]) == (repeat["name"], repeat["url"])
    assert len(repeats) >= 5
    names = [r["mmpose_name"] for r in ZOO["checkpoints"]] + [s["name"] for s in ZOO["skipped"] if s not in repeats]
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
    bottom_up = {
        f"{a}.{t}" for a in ("dekr_hrnet_w32", "higherhrnet_w32") for t in ("coco_512x512", "crowdpose_512x512")
    }
    bottom_up |= {"dekr_hrnet_w48.coco_640x640", "dekr_hrnet_w48.crowdpose_640x640", "higherhrnet_w48.coco_512x512"}
    assert bottom_up <= set(BOTTOM_UP)
    udp = [s for s in ZOO["skipped"] if s["name"].startswith("associative_embedding_") and s["name"].endswith("_udp")]
    assert len(udp) == 2 and all("UDP" in s["reason"] for s in udp)  # its decoding is not served
    assert len(set(names)) == len(names)


def _layouts() -> dict[tuple, str]:
    """One top-down tag for each head type (plain, HRNetV2 concat) and mmpose generation (0.x, 1.x files); one
    bottom-up tag of each family, of other keypoints than COCO's (a head, and DEKR's rescoring net, for 14)."""
    chosen: dict[tuple, str] = {}
    for name, cfg in sorted(TAGGED.items(), key=lambda item: item[1].architecture != "hrnet_w32_pose"):
        if _bottom_up(cfg.architecture):
            if cfg.pose_meta.keypoints.name != "coco":
                chosen.setdefault((_family(cfg.architecture),), name)
        else:
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
        upstream = upstream_layout(cfg.architecture, own, "/mmpose/v1/" in cfg.url)
        converted, layout = ARCHITECTURES[cfg.architecture].model_cls.checkpoint_layout(upstream)
        assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in own.items()}, name
        if _bottom_up(cfg.architecture):  # DEKR's grouped offset convs come back in another order
            assert layout == _BOTTOM_UP_FAMILIES[_family(cfg.architecture)][1], name
            continue
        lite = isinstance(ARCHITECTURES[cfg.architecture].config, LiteHRNetConfig)
        expected = ("litehrnet" if lite else "openmmlab") + ("1" if "/mmpose/v1/" in cfg.url else "")
        assert layout == expected, name
        assert list(converted) == list(own), name
    assert len(built) >= 24 and {"litehrnet_18_pose", "litehrnet_30_pose"} <= {group[0] for group in built}
    assert {("dekr_hrnet_w32", 14, True), ("higherhrnet_w32", 14, False)} <= set(built)


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
    assert list(loaded) == list(source.state_dict())
    for key, value in source.state_dict().items():  # DEKR's transform biases pass through mmpose's T - I
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=1e-7, msg=key)
    assert len(_layouts()) == 6


def test_bottom_up_defaults_are_the_papers_coco_tags():
    """``create_model(arch, pretrained=True)`` takes the first record: COCO at the paper's input size."""
    defaults = {
        "dekr_hrnet_w32": "coco_512x512",
        "dekr_hrnet_w48": "coco_640x640",
        "higherhrnet_w32": "coco_512x512",
        "higherhrnet_w48": "coco_512x512",  # mmpose trained W48 at 512 only
    }
    assert {arch: hrnet_zoo.get_pretrained_cfg(arch).tag for arch in defaults} == defaults
    assert hrnet_zoo.create_model("dekr_hrnet_w48", device="meta").pretrained_cfg["tag"] == "coco_640x640"


@pytest.mark.parametrize("name", sorted(BOTTOM_UP))
def test_bottom_up_tags_build_as_recorded(name):
    """Each bottom-up record builds (meta tensors) with its keypoints, a rescoring net exactly when its codec
    rescores (of the features its skeleton gives), its recorded size, and outputs for its keypoints."""
    cfg, record = BOTTOM_UP[name], RECORDS[name]
    codec = cfg.pose_meta.codec
    assert BottomUpCodec.from_dict(codec.to_dict()) == codec
    assert BottomUpCodec.from_dict(record["codec"]) == codec
    assert record["codec"] == {k: codec.to_dict()[k] for k in record["codec"]}  # written as the codec writes it
    model = hrnet_zoo.create_model(name, device="meta")
    joints = len(get_keypoint_set(record["keypoints"]))
    assert model.num_joints == cfg.num_joints == joints and model.pose_meta == cfg.pose_meta
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(cfg.params_m, abs=5e-4)
    outputs = model(torch.empty(1, 3, *cfg.input_size, device="meta"))
    stride = cfg.input_size[0] // outputs[0].shape[-2]
    if _family(cfg.architecture) == "HigherHRNet":
        assert [y.shape[1] for y in outputs] == [2 * joints, joints] and stride == 4
        assert codec.heatmap_stages == (True, True) and codec.tag_stages == (True, False)
        assert getattr(model, "rescore_net", None) is None and not codec.rescore
        return
    assert [y.shape[1] for y in outputs] == [joints + 1, 2 * joints] and stride == 4
    assert (model.rescore_net is not None) == codec.rescore and codec.protocol == "openmmlab1"
    if codec.rescore:  # mmpose 1.x's features: the keypoint set's links, normalised by two of them
        features = rescore_input_size(joints)
        skeleton = get_keypoint_set(record["keypoints"]).skeleton
        assert model.rescore_net.l1.in_features == features == 3 * len(skeleton) + joints
        assert codec.rescore_skeleton == "keypoints" and all(0 <= i < len(skeleton) for i in codec.rescore_norm_links)


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
    """Tasks in order, each split by kind: the bottom-up tags in their own section of their task."""
    assert main(["list", "--pretrained"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("## ")]
    assert list(dict.fromkeys(header.split(",")[0] for header in headers)) == [f"## {task}" for task in TASKS]
    sections = dict(zip(headers, re.split(r"^## .*$", out, flags=re.M)[1:]))
    for name, cfg in BOTTOM_UP.items():
        header = next(h for h, text in sections.items() if name in text.split())
        assert header.startswith(f"## {cfg.task}, bottom-up"), name
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
            cfg.pose_meta.codec.method if _bottom_up(cfg.architecture) else cfg.pose_meta.codec.decoding,
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
