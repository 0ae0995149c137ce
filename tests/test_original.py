"""Exactly the original network: golden outputs, original checkpoint keys, the paper's sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import hrnet_zoo
from hrnet_zoo.models import HRNetConfig, load_checkpoint
from hrnet_zoo.models._layouts import detect_layout, to_package_layout

from .conftest import DATA


def test_config_from_original(tiny_config):
    cfg = HRNetConfig.from_original(tiny_config["extra"])
    assert [s.num_channels for s in cfg.stages] == [(4, 8), (4, 8, 16), (4, 8, 16, 32)]
    assert [s.num_modules for s in cfg.stages] == [1, 2, 2]
    assert cfg.stages[1].num_blocks == (1, 2, 1) and cfg.total_stride == 32


def test_tiny_original_reproduced(tiny_model, tiny_weights_path, tiny_io):
    state_dict = load_file(str(tiny_weights_path))
    assert detect_layout(state_dict) == "original"
    tiny_model.load_state_dict(state_dict)  # strict, original layout accepted directly
    tiny_model.eval()
    with torch.no_grad():
        out = tiny_model(torch.from_numpy(tiny_io["input"])).numpy()
    assert out.shape == tiny_io["output"].shape == (2, 5, 32, 24)
    np.testing.assert_allclose(out, tiny_io["output"], rtol=1e-5, atol=1e-5)


def test_tiny_original_sensitive_to_a_single_weight(tiny_model, tiny_weights_path, tiny_io):
    """The comparison above can fail: nudging one fusion weight moves the output past the tolerance."""
    state_dict = load_file(str(tiny_weights_path))
    state_dict["stage4.1.fuse_layers.0.3.0.weight"] += 0.05
    tiny_model.load_state_dict(state_dict)
    with torch.no_grad():
        out = tiny_model.eval()(torch.from_numpy(tiny_io["input"])).numpy()
    assert np.abs(out - tiny_io["output"]).max() > 1e-3


@pytest.mark.parametrize(
    ("keys_file", "name", "num_joints"),
    [
        ("keys_coco_w32_256x192.json", "hrnet_w32_pose.coco_256x192", 17),
        ("keys_coco_w48_256x192.json", "hrnet_w48_pose.coco_256x192", 17),
        ("keys_mpii_w32_256x256.json", "hrnet_w32_pose.mpii_256x256", 16),
    ],
)
def test_original_checkpoint_keys_load_strictly(keys_file, name, num_joints):
    keys = json.loads((DATA / keys_file).read_text())
    model = hrnet_zoo.create_model(name)
    assert model.num_joints == num_joints
    original = {k: torch.full(shape, float(i % 97)) for i, (k, shape) in enumerate(keys)}
    converted, _ = to_package_layout(original)
    # Same keys in the same order as the original state_dict: the module structure matches one to one.
    assert list(converted) == list(model.state_dict())
    left = load_checkpoint(model, original)
    assert left == []
    for (key, _), (own_key, value) in zip(keys, model.state_dict().items()):
        assert torch.equal(value, original[key]), (key, own_key)


@pytest.mark.parametrize(("name", "params_m"), [("hrnet_w32_pose", 28.5), ("hrnet_w48_pose", 63.6)])
def test_parameter_counts_match_the_paper(name, params_m):
    with torch.device("meta"):
        model = hrnet_zoo.create_model(name)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == params_m
