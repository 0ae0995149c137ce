"""Every registered model: build, forward/backward, features, head reset, state-dict round trip, input errors;
Lite-HRNet's checkpoint files through ``checkpoint_path``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

import hrnet_zoo
from hrnet_zoo.errors import CheckpointMismatchError
from hrnet_zoo.models import HRNetFeatures, HRNetPose, LiteHRNetFeatures, LiteHRNetPose

MODELS = hrnet_zoo.list_models(kind="top_down")  # the bottom-up models: tests/test_bottom_up_models.py
SMALL = (64, 96)  # (H, W): multiples of 32, tiny enough for W48 on a CPU


def test_registry_is_complete():
    assert hrnet_zoo.list_models(kind="bottom_up") == [
        "dekr_hrnet_w32",
        "dekr_hrnet_w48",
        "higherhrnet_w32",
        "higherhrnet_w48",
    ]
    assert sorted(hrnet_zoo.list_models()) == sorted(MODELS + hrnet_zoo.list_models(kind="bottom_up"))
    with pytest.raises(ValueError, match="kind must be one of"):
        hrnet_zoo.list_models(kind="sideways")
    assert MODELS == [
        "hrnet_w18_pose",
        "hrnet_w18_small_pose",
        "hrnet_w32_pose",
        "hrnet_w48_pose",
        "hrnetv2_w18_pose",
        "litehrnet_18_pose",
        "litehrnet_30_pose",
    ]


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward(name):
    model = hrnet_zoo.create_model(name)
    joints = hrnet_zoo.get_pretrained_cfg(name).num_joints  # 17 (COCO) but for hrnetv2's default, a face tag
    assert isinstance(model, HRNetPose) and model.num_joints == joints
    x = torch.randn(2, 3, *SMALL)
    heatmaps = model(x)
    assert heatmaps.shape == (2, joints, SMALL[0] // 4, SMALL[1] // 4)
    heatmaps.square().mean().backward()
    without_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert without_grad == []
    features = model.forward_features(x)
    assert features.shape == (2, model.num_features, SMALL[0] // 4, SMALL[1] // 4)
    assert model.forward_head(features, pre_logits=True) is features


@pytest.mark.parametrize("name", MODELS)
def test_features_only(name):
    model = hrnet_zoo.create_model(name, features_only=True)
    assert isinstance(model, HRNetFeatures)
    feats = model(torch.randn(1, 3, *SMALL))
    assert [f.shape[1] for f in feats] == model.feature_info.channels()
    assert model.feature_info.reduction() == [4, 8, 16, 32]
    for f, r in zip(feats, model.feature_info.reduction()):
        assert f.shape[-2:] == (SMALL[0] // r, SMALL[1] // r)
    subset = hrnet_zoo.create_model(name, features_only=True, out_indices=(1, 3))
    assert [f.shape[1] for f in subset(torch.randn(1, 3, *SMALL))] == subset.feature_info.channels()
    assert subset.feature_info.reduction() == [8, 32]


def test_features_only_bad_indices():
    with pytest.raises(ValueError, match="out_indices must select among the 4 branches"):
        hrnet_zoo.create_model("hrnet_w18_small_pose", features_only=True, out_indices=(4,))


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_round_trip(name, tmp_path):
    model = hrnet_zoo.create_model(name).eval()
    for p in model.parameters():  # weights other than the initialisation, so a silent no-op load would show
        p.data.normal_(0, 0.05)
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(path))
    copy = hrnet_zoo.create_model(name).eval()
    copy.load_state_dict(load_file(str(path)))
    x = torch.randn(1, 3, *SMALL)
    torch.testing.assert_close(copy(x), model(x), rtol=0, atol=0)


def test_reset_head_and_num_joints():
    model = hrnet_zoo.create_model("hrnet_w18_small_pose", num_joints=5)
    assert model.num_joints == 5 and model.keypoints.names[0] == "joint_0"
    model.reset_head(3)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 16, 16)
    model.reset_classifier(4)
    assert model.get_classifier().out_channels == 4 == model.num_classes
    mpii = hrnet_zoo.create_model("hrnet_w32_pose.mpii_256x256")
    assert mpii.num_joints == 16 and mpii.keypoints.name == "mpii"


def test_grad_checkpointing_gives_the_same_gradients():
    model = hrnet_zoo.create_model("hrnet_w18_small_pose")
    x = torch.randn(2, 3, 64, 64)
    model(x).sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x).sum().backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[n], msg=n)


def test_timm_registry_integration():
    model = timm.create_model("hrnet_w32_pose.mpii_256x256")
    assert isinstance(model, HRNetPose) and model.num_joints == 16
    assert "hrnet_w48_pose.coco_384x288" in timm.list_models("hrnet_*_pose", pretrained=True)
    assert model.pretrained_cfg["classifier"] == "head"
    assert timm.data.resolve_data_config({}, model=model)["input_size"] == (3, 256, 256)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.randn(1, 1, 64, 64), "expects 3 input channels, got 1"),
        (torch.randn(1, 3, 250, 190), "multiples of 32.*got 250x190.*256x192"),
        (torch.randn(3, 64, 64), "add a batch dimension"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "floating point"),
    ],
)
def test_bad_input(x, match):
    model = hrnet_zoo.create_model("hrnet_w18_small_pose")
    with pytest.raises(ValueError, match=match):
        model(x)


# --- Lite-HRNet's checkpoints through create_model(checkpoint_path=...) ---------------------------------------------

DATA = Path(__file__).parent / "data"
LITE = "litehrnet_18_pose"


def lite_reference_state(name: str = "18") -> dict[str, torch.Tensor]:
    """A random full-size state in the reference's (mmpose 0.x) layout, from its recorded keys and shapes (small
    values, unit BN variances: finite outputs)."""
    record = json.loads((DATA / f"litehrnet_{name}_keys.json").read_text())
    state = {k: torch.rand(shape) * 0.1 + k.endswith("running_var") for k, shape in record["keys"]}
    return {k: v.long() if k.endswith("num_batches_tracked") else v for k, v in state.items()}


def test_lite_hrnet_reference_and_openmmlab1_files_load_to_the_same_outputs(tmp_path):
    reference = lite_reference_state()
    v1 = {re.sub(r"^keypoint_head\.final_layer\.", "head.final_layer.", k): v for k, v in reference.items()}
    x = torch.randn(1, 3, 64, 64)
    outputs = []
    for layout, state in {"reference": reference, "openmmlab1": v1}.items():
        path = tmp_path / f"{layout}.pth"
        torch.save({"meta": {"mmpose_version": "test"}, "state_dict": state}, path)
        model = hrnet_zoo.create_model(LITE, checkpoint_path=path).eval()
        assert isinstance(model, LiteHRNetPose)
        assert torch.equal(model.head.weight, reference["keypoint_head.final_layer.weight"]), layout
        with torch.no_grad():
            outputs.append(model(x))
    assert torch.isfinite(outputs[0]).all() and torch.equal(*outputs)
    features = hrnet_zoo.create_model(LITE, features_only=True, checkpoint_path=tmp_path / "reference.pth").eval()
    assert isinstance(features, LiteHRNetFeatures)
    with torch.no_grad():  # the iterative head's keys are dropped; the branches are the pose model's intermediates
        expected = model.forward_intermediates(x, intermediates_only=True)
        assert all(torch.equal(a, b) for a, b in zip(features(x), expected, strict=True))


def test_mismatching_lite_hrnet_checkpoints_give_the_clear_error(tmp_path):
    thirty = tmp_path / "litehrnet_30.pth"
    torch.save({"state_dict": lite_reference_state("30")}, thirty)
    with pytest.raises(CheckpointMismatchError, match=r"(?s)does not fit LiteHRNetPose.*unexpected in the checkpoint"):
        hrnet_zoo.create_model(LITE, checkpoint_path=thirty)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(thirty.read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated"):
        hrnet_zoo.create_model(LITE, checkpoint_path=truncated)
    hrnet = tmp_path / "hrnet.safetensors"
    save_file(hrnet_zoo.create_model("hrnet_w18_small_pose").state_dict(), str(hrnet))
    with pytest.raises(CheckpointMismatchError, match="is for HRNet, the model litehrnet_18_pose is Lite-HRNet"):
        hrnet_zoo.create_model(LITE, checkpoint_path=hrnet)
    with pytest.raises(CheckpointMismatchError, match=r"is for Lite-HRNet.*e\.g\. litehrnet_18_pose"):
        hrnet_zoo.create_model("hrnet_w18_small_pose", checkpoint_path=thirty)


def test_pose_estimator_runs_lite_hrnet():
    estimator = hrnet_zoo.PoseEstimator(hrnet_zoo.create_model(LITE, input_size=(128, 96)), device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (200, 160, 3), dtype=np.uint8)
    result = estimator.predict(image, boxes=[[10.0, 10.0, 100.0, 150.0]])[0]
    assert result.keypoints.shape == (1, 17, 3) and np.isfinite(result.keypoints).all()
