"""timm's model contract, point by point, as timm's own tests/test_models.py checks it on its models.

Where the dense heatmap output makes one of timm's assertions inapplicable (pooled logits after
``reset_classifier(0)``, ``outputs.shape[-1] == num_classes`` in the backward test), the checks follow the variant
timm uses for spatial-output models (``test_model_default_cfgs_non_std``): features keep their spatial layout.
"""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.models._manipulate import group_parameters
from timm.optim import create_optimizer_v2

import hrnet_zoo
from hrnet_zoo.models import HRNetPose, LiteHRNetPose

MODELS = hrnet_zoo.list_models(kind="top_down")  # the bottom-up models: tests/test_bottom_up_models.py
SMALL = "hrnet_w18_small_pose"
LITE = "litehrnet_18_pose"
X = (1, 3, 64, 96)


@pytest.mark.parametrize("name", MODELS)
def test_default_cfg_and_factory_kwargs_on_the_meta_device(name):
    """timm's test_model_default_cfgs(_non_std) on the meta device: factory device/dtype, metadata, head reset."""
    with pytest.raises(TypeError, match="not_a_model_arg"):
        hrnet_zoo.create_model(name, device="meta", not_a_model_arg=1)
    model = hrnet_zoo.create_model(name, device="meta", dtype=torch.float32).eval()
    assert {t.device.type for t in [*model.parameters(), *model.buffers()]} == {"meta"}
    cfg = model.default_cfg
    assert cfg is model.pretrained_cfg and model.in_chans == cfg["input_size"][0] == 3
    assert model.num_classes == hrnet_zoo.get_pretrained_cfg(name).num_joints
    assert model.num_features == model.head_hidden_size > 0
    x = torch.randn(1, *cfg["input_size"], device="meta")
    features = model.forward_features(x)
    assert tuple(features.shape[-2:]) == tuple(cfg["pool_size"]) and features.shape[1] == model.num_features
    pre_logits = model.forward_head(features, pre_logits=True)
    assert pre_logits.shape[1] == model.head_hidden_size
    assert cfg["classifier"] + ".weight" in model.state_dict() and cfg["first_conv"] + ".weight" in model.state_dict()
    model.reset_classifier(0)
    assert model.num_classes == 0 and model(x).shape == pre_logits.shape
    headless = hrnet_zoo.create_model(name, num_classes=0, device="meta", dtype=torch.float32)
    assert headless(x).shape == pre_logits.shape and headless.pretrained_cfg["num_classes"] == 0
    # reset_classifier keeps the parent's device, dtype and mode
    model.to(dtype=torch.float64)
    model.reset_classifier(2)
    head = list(model.get_classifier().parameters())
    assert head and all(p.device.type == "meta" and p.dtype == torch.float64 for p in head)
    assert all(m.training is False for m in model.modules())
    # frozen parameters stay frozen through a head reset
    frozen = hrnet_zoo.create_model(name, device="meta", dtype=torch.float32).requires_grad_(False)
    frozen.reset_classifier(0)
    assert not [n for n, p in frozen.named_parameters() if p.requires_grad]


def test_factory_dtype_and_dtype_change_after_forward():
    model = hrnet_zoo.create_model(SMALL, dtype=torch.float64).eval()
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert model(torch.randn(*X, dtype=torch.float64)).dtype == torch.float64
    model.to(torch.bfloat16)
    assert model(torch.randn(*X, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_backward_with_a_new_head():
    """timm's test_model_backward with num_classes=42, for a dense output: 42 heatmaps, every parameter learns."""
    model = hrnet_zoo.create_model(SMALL, num_classes=42).train()
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 42, 16, 16)
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", [SMALL, LITE])
def test_group_matcher_orders_parameters_for_layer_decay(name):
    model = hrnet_zoo.create_model(name)
    for coarse in (False, True):
        groups = group_parameters(model, model.group_matcher(coarse=coarse), reverse=True)
        assert len(set(groups.values())) > 1 and set(groups) == {n for n, _ in model.named_parameters()}
        order = [groups[n] for n, _ in model.named_parameters()]
        assert order == sorted(order), "groups follow the network from stem to head"
        assert groups[model.pretrained_cfg["first_conv"] + ".weight"] == 0 and groups["head.weight"] == max(order)
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, layer_decay=0.5)
    scales = sorted({g["lr_scale"] for g in optimizer.param_groups})
    assert len(scales) > 3 and scales[-1] == 1.0


def test_pretrained_adapts_the_first_conv_to_in_chans(tmp_path):
    """timm's test_model_load_pretrained: pretrained weights with in_chans=1 and a new or no head."""
    source = hrnet_zoo.create_model(SMALL)
    for p in source.parameters():
        p.data.normal_(0, 0.05)
    path = tmp_path / "w.safetensors"
    save_file(source.state_dict(), str(path))
    overlay = {"file": str(path)}
    grey = hrnet_zoo.create_model(SMALL, pretrained=True, pretrained_cfg_overlay=overlay, in_chans=1, num_classes=5)
    expected = source.backbone.stem.conv1.weight.sum(dim=1, keepdim=True)
    torch.testing.assert_close(grey.backbone.stem.conv1.weight, expected)
    assert grey.num_classes == 5 and grey.pretrained_cfg["input_size"] == (1, 256, 192)
    assert grey(torch.randn(1, 1, 64, 64)).shape == (1, 5, 16, 16)
    torch.testing.assert_close(
        grey.backbone.stage4[1].branches[0][0].conv1.weight, source.backbone.stage4[1].branches[0][0].conv1.weight
    )
    headless = hrnet_zoo.create_model(SMALL, pretrained=True, pretrained_cfg_overlay=overlay, in_chans=1, num_classes=0)
    assert headless(torch.randn(1, 1, 64, 64)).shape == (1, 18, 16, 16)


def test_fx_tracing_matches_eager():
    """HRNet only: Lite-HRNet's CrossResolutionWeighting (hrnet_zoo.layers.lite) iterates a tensor's split, which
    torch.fx cannot trace."""
    model = hrnet_zoo.create_model(SMALL).eval()
    x = torch.randn(*X)
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 3, 60, 96))  # the checks still run outside tracing


@pytest.mark.parametrize("name", [SMALL, LITE])
def test_forward_intermediates(name):
    """timm's test_model_forward_intermediates: feature_info describes the intermediates; output == features."""
    model = hrnet_zoo.create_model(name).eval()
    x = torch.randn(*X)
    info = timm.models.FeatureInfo(model.feature_info, list(range(len(model.feature_info))))
    output, intermediates = model.forward_intermediates(x)
    assert len(intermediates) == len(info.channels()) == 4
    for c, r, t in zip(info.channels(), info.reduction(), intermediates):
        assert t.shape == (1, c, X[2] // r, X[3] // r)
    torch.testing.assert_close(output, model.forward_features(x), rtol=1e-5, atol=1e-8)
    last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
    assert [t.shape[1] for t in last_two] == info.channels()[2:]
    model.set_grad_checkpointing()
    torch.testing.assert_close(model.forward_intermediates(x)[0], output, rtol=1e-4, atol=1e-5)
    assert model.prune_intermediate_layers([0, 1]) == [0, 1] and model.num_classes == 0
    model.prune_intermediate_layers([0, 1], prune_norm=True)
    assert model.forward_features(x).shape == (1, info.channels()[1], X[2] // 8, X[3] // 8)


@pytest.mark.parametrize(
    ("name", "channels", "feature_cls"),
    [
        (SMALL, [36, 144], "getter"),
        (SMALL, [36, 144], "hook"),
        (SMALL, [36, 144], "fx"),
        (LITE, [80, 320], "getter"),
        (LITE, [80, 320], "hook"),  # no fx: see test_fx_tracing_matches_eager
    ],
)
def test_feature_wrappers_equal_the_default_features(feature_cls, name, channels):
    torch.manual_seed(0)
    reference = hrnet_zoo.create_model(name, features_only=True, out_indices=(1, 3)).eval()
    torch.manual_seed(0)
    wrapped = hrnet_zoo.create_model(name, features_only=True, feature_cls=feature_cls, out_indices=(1, 3)).eval()
    assert wrapped.feature_info.channels() == reference.feature_info.channels() == channels
    assert wrapped.feature_info.reduction() == [8, 32] and wrapped.pose_meta == reference.pose_meta
    x = torch.randn(*X)
    for ours, theirs in zip(wrapped(x), reference(x), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    with pytest.raises(ValueError, match="feature_cls must be one of"):
        hrnet_zoo.create_model(SMALL, features_only=True, feature_cls="list")


def test_timm_create_model_is_the_same_factory():
    torch.manual_seed(0)
    ours = hrnet_zoo.create_model("hrnet_w32_pose.mpii_256x256", device="meta")
    torch.manual_seed(0)
    theirs = timm.create_model("hrnet_w32_pose.mpii_256x256", device="meta")
    assert isinstance(theirs, HRNetPose) and theirs.pose_meta == ours.pose_meta
    assert theirs.pretrained_cfg == ours.pretrained_cfg and theirs.num_classes == 16
    assert timm.data.resolve_data_config({}, model=theirs)["input_size"] == (3, 256, 256)
    lite = timm.create_model("litehrnet_30_pose.coco_384x288", device="meta")
    assert (
        isinstance(lite, LiteHRNetPose)
        and lite.pose_meta == hrnet_zoo.get_pretrained_cfg("litehrnet_30_pose.coco_384x288").pose_meta
    )
    assert lite.pretrained_cfg["input_size"] == (3, 384, 288) and "litehrnet_18_pose.mpii_256x256" in timm.list_models(
        "litehrnet_*", pretrained=True
    )
