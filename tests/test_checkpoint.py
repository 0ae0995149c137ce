"""Checkpoint files: layouts detected and converted, strict checks, no half-loaded model, head re-initialisation."""

from __future__ import annotations

import logging
import os
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

import hrnet_zoo
from hrnet_zoo.errors import CheckpointMismatchError
from hrnet_zoo.models import HRNetPose, load_checkpoint, read_checkpoint
from hrnet_zoo.models._layouts import detect_layout, to_package_layout

from .layouts import original_to_openmmlab


@pytest.fixture
def original_sd(tiny_weights_path):
    return load_file(str(tiny_weights_path))


def outputs(model, seed=1):
    torch.manual_seed(seed)
    with torch.no_grad():
        return model.eval()(torch.randn(1, 3, 64, 64))


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def openmmlab_layout(original):
    return {"meta": {"epoch": 210, "mmcv_version": "1.1.1"}, "state_dict": original_to_openmmlab(original)}


def test_layouts_give_identical_models(tiny_model, original_sd, tmp_path, tiny_config):
    reference = outputs(load_checkpoint(tiny_model, original_sd) or tiny_model)
    files = {
        "original.pth": original_sd,
        "original_ddp.pth": {"state_dict": {"module." + k: v for k, v in original_sd.items()}},
        "openmmlab.pth": openmmlab_layout(original_sd),
        "package.safetensors": to_package_layout(original_sd)[0],
    }
    for name, content in files.items():
        path = tmp_path / name
        if name.endswith(".safetensors"):
            save_file(content, str(path))
        else:
            torch.save(content, path)
        model = HRNetPose(tiny_model.backbone.cfg, num_joints=tiny_config["num_joints"])
        assert load_checkpoint(model, path) == []
        torch.testing.assert_close(outputs(model), reference, rtol=0, atol=0, msg=name)


def test_detect_layout():
    assert detect_layout({"conv1.weight": 0, "layer1.0.conv1.weight": 0}) == "original"
    assert detect_layout({"backbone.conv1.weight": 0}) == "openmmlab"
    assert detect_layout({"backbone.stem.conv1.weight": 0}) == "hrnet_zoo"
    with pytest.raises(ValueError, match=r"not an HRNet checkpoint.*first keys are fc.weight"):
        detect_layout({"fc.weight": 0})


def test_missing_keys_leave_the_model_untouched(tiny_model, original_sd):
    before = snapshot(tiny_model)
    del original_sd["stage3.0.branches.1.0.conv1.weight"]
    original_sd["stage2.0.fuse_layers.0.1.0.weight"] = torch.zeros(1)
    original_sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(tiny_model, original_sd)
    message = str(info.value)
    assert "nothing was loaded" in message
    assert "missing in the state dict (1): backbone.stage3.0.branches.1.0.conv1.weight" in message
    assert "unexpected in the state dict (1): extra.weight" in message
    assert "backbone.stage2.0.fuse.paths.0.1.0.weight (checkpoint (1,), model (4, 8, 1, 1))" in message
    after = tiny_model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_joint_count_mismatch(tiny_model, original_sd, caplog):
    trimmed = original_sd
    model = HRNetPose(tiny_model.backbone.cfg, num_joints=3)
    with pytest.raises(CheckpointMismatchError, match=r"predicts 5 joints but the model has 3.*num_joints=5"):
        load_checkpoint(model, trimmed)
    head_before = model.head.weight.clone()
    with caplog.at_level(logging.WARNING):
        left = load_checkpoint(model, trimmed, reset_head=True)
    assert left == ["head.weight", "head.bias"] and "predicts 5 joints, the model 3" in caplog.text
    assert torch.equal(model.head.weight, head_before)
    assert torch.equal(model.backbone.stem.conv1.weight, trimmed["conv1.weight"])


def test_create_model_with_checkpoint_path(tmp_path, caplog):
    source = hrnet_zoo.create_model("hrnet_w18_small_pose")
    for p in source.parameters():
        p.data.normal_(0, 0.05)
    path = tmp_path / "w18s.safetensors"
    save_file(source.state_dict(), str(path))
    model = hrnet_zoo.create_model("hrnet_w18_small_pose", checkpoint_path=path)
    torch.testing.assert_close(outputs(model), outputs(source), rtol=0, atol=0)
    with pytest.raises(CheckpointMismatchError, match="predicts 17 joints but the model has 5"):
        hrnet_zoo.create_model("hrnet_w18_small_pose", checkpoint_path=path, num_classes=5)
    with caplog.at_level(logging.WARNING):
        fine_tune = hrnet_zoo.create_model("hrnet_w18_small_pose", checkpoint_path=path, num_joints=5)
    assert fine_tune.num_joints == 5 and "head is not loaded" in caplog.text
    assert torch.equal(fine_tune.backbone.stem.conv1.weight, source.backbone.stem.conv1.weight)
    with pytest.raises(CheckpointMismatchError, match=r"nothing was loaded\.\n  missing in the checkpoint"):
        hrnet_zoo.create_model("hrnet_w18_pose", checkpoint_path=path)
    features = hrnet_zoo.create_model("hrnet_w18_small_pose", features_only=True, checkpoint_path=path)
    torch.testing.assert_close(features.backbone.stem.conv1.weight, source.backbone.stem.conv1.weight)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pth")
    truncated = tmp_path / "truncated.safetensors"
    save_file({"a": torch.zeros(100)}, str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:-50])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        read_checkpoint(truncated)


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_code_is_not_executed(tmp_path):
    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        pickle.dump({"state_dict": Exploit()}, f)
    with pytest.raises(ValueError, match="could not read checkpoint"):
        read_checkpoint(path)
