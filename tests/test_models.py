"""Every registered model: build, forward/backward, features, head reset, state-dict round trip, input errors."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

import hrnet_zoo
from hrnet_zoo.models import HRNetFeatures, HRNetPose

MODELS = hrnet_zoo.list_models()
SMALL = (64, 96)  # (H, W): multiples of 32, tiny enough for W48 on a CPU


def test_registry_is_complete():
    assert MODELS == ["hrnet_w18_pose", "hrnet_w18_small_pose", "hrnet_w32_pose", "hrnet_w48_pose", "hrnetv2_w18_pose"]


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
