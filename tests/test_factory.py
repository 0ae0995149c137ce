"""The factory and the pretrained configurations: names, metadata schema, clear errors."""

from __future__ import annotations

import re

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import hrnet_zoo
from hrnet_zoo.models.pretrained import PRETRAINED_CFGS


def test_list_models_and_pretrained():
    assert hrnet_zoo.list_models("*w32*") == ["dekr_hrnet_w32", "higherhrnet_w32", "hrnet_w32_pose"]
    w32 = hrnet_zoo.list_pretrained("hrnet_w32*")
    originals = ["hrnet_w32_pose.coco_256x192", "hrnet_w32_pose.coco_384x288", "hrnet_w32_pose.mpii_256x256"]
    assert set(originals) <= set(w32) and "hrnet_w32_pose.coco_dark_256x192" in w32
    assert all(name.startswith("hrnet_w32_pose.") for name in w32)
    assert hrnet_zoo.list_models(pretrained=True) == hrnet_zoo.list_pretrained()
    assert hrnet_zoo.is_model("hrnet_w48_pose.coco_384x288") and not hrnet_zoo.is_model("hrnet_w32")
    assert not hrnet_zoo.is_model("hrnet_w32_pose.imagenet_1k")


def test_default_tag_and_pretrained_cfg():
    cfg = hrnet_zoo.get_pretrained_cfg("hrnet_w32_pose")
    assert cfg.name == "hrnet_w32_pose.coco_256x192"
    assert cfg.input_size == (256, 192) and cfg.num_joints == 17 and cfg.pose_meta.keypoints.names[0] == "nose"
    assert cfg.metrics["coco_val_ap"] == 0.746 and cfg.paper_metrics["coco_val_ap"] == 0.744
    assert cfg.url.endswith("hrnet_w32_coco_256x192-c78dce93_20200708.pth") and cfg.sha256_prefix == "c78dce93"
    model = hrnet_zoo.create_model("hrnet_w32_pose")
    assert model.pose_meta == cfg.pose_meta and model.pretrained_cfg["tag"] == "coco_256x192"


def _size_groups() -> list[list[str]]:
    """Configurations of one architecture, head size and input size: they must record the same sizes."""
    groups: dict[tuple, list[str]] = {}
    for name, cfg in PRETRAINED_CFGS.items():
        groups.setdefault((cfg.architecture, cfg.num_joints, cfg.input_size), []).append(name)
    return list(groups.values())


@pytest.mark.parametrize("names", _size_groups(), ids=lambda names: names[0])
def test_pretrained_cfg_schema_matches_the_model(names):
    """As torchvision checks its weights' meta: the recorded numbers cannot drift from the models."""
    for name in names:
        cfg = PRETRAINED_CFGS[name]
        assert (
            cfg.params_m is not None
            and cfg.gmacs is not None
            and cfg.pose_meta.mean
            and cfg.pose_meta.std
            and cfg.license
        )
        assert (cfg.params_m, cfg.gmacs) == (PRETRAINED_CFGS[names[0]].params_m, PRETRAINED_CFGS[names[0]].gmacs)
        if cfg.has_weights:
            assert cfg.metrics and cfg.metrics_source and cfg.hf_hub_id in (None, f"hrnet-zoo/{name}")
            assert re.fullmatch(r"[0-9a-f]{8}", cfg.sha256_prefix) and cfg.sha256_prefix in cfg.url
            assert all(v > 0 for v in cfg.metrics.values())
            if cfg.hf_hub_id:  # the original tags: COCO AP and PCKh as fractions
                assert all(0 < v <= 1 for v in cfg.metrics.values())
    name, cfg = names[0], PRETRAINED_CFGS[names[0]]
    with torch.device("meta"):
        model = hrnet_zoo.create_model(name)
    assert model.num_joints == cfg.num_joints
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(cfg.params_m, abs=5e-4)
    if cfg.pose_meta.bottom_up:  # transposed convolutions, DEKR's offset matmuls: torch's own counter, as recorded
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, *cfg.input_size, device="meta"))
        macs = counter.get_total_flops() // 2
    else:
        macs = conv_macs(model, cfg.input_size)
    assert macs / 1e9 == pytest.approx(cfg.gmacs, abs=0.006)


def conv_macs(model: torch.nn.Module, input_size: tuple[int, int]) -> int:
    """Multiply-accumulates of every convolution, counted from its output size (meta tensors: no compute)."""
    macs = []

    def count(conv: torch.nn.Conv2d, _: object, out: torch.Tensor) -> None:
        macs.append(out.numel() * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1])

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    model(torch.empty(1, 3, *input_size, device="meta"))
    for hook in hooks:
        hook.remove()
    return sum(macs)


@pytest.mark.parametrize("name", ["hrnet_w18_small_pose", "hrnetv2_w18_pose"])
def test_conv_macs_are_what_torch_flop_counter_counts(name):
    """The recorded GMACs come from torch.utils.flop_counter; the direct count above agrees with it."""
    with torch.device("meta"):
        model = hrnet_zoo.create_model(name)
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.empty(1, 3, 256, 192, device="meta"))
    assert counter.get_total_flops() == 2 * conv_macs(model, (256, 192))


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("hrnet_w32_pos", "unknown model 'hrnet_w32_pos'; did you mean hrnet_w32_pose"),
        ("resnet50", "unknown model 'resnet50'"),
        ("hrnet_w32_pose.coco_512x512", "has no weight tag 'coco_512x512'; available: hrnet_w32_pose.coco_256x192"),
    ],
)
def test_unknown_names(name, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        hrnet_zoo.create_model(name)
    with pytest.raises(ValueError, match=re.escape(match)):
        hrnet_zoo.get_pretrained_cfg(name)


def test_conflicting_joint_arguments():
    with pytest.raises(ValueError, match="disagree"):
        hrnet_zoo.create_model("hrnet_w18_small_pose", num_joints=5, num_classes=6)
