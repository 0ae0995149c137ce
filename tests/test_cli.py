"""The hrnet-zoo command: list, predict with local weights, the offline message, convert."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import hrnet_zoo
from hrnet_zoo.cli import main

from .conftest import REPO
from .layouts import to_original_layout

PHOTO = str(REPO / "examples" / "images" / "astronaut.jpg")


def test_list(capsys):
    assert main(["list", "*w32*"]) == 0
    out = capsys.readouterr().out
    assert "hrnet_w32_pose.coco_384x288" in out and "coco_val_ap=0.76" in out and "hrnet_w48" not in out
    top_down, bottom_up = out.split("## body, bottom-up")
    assert "## body, top-down" in top_down and "dekr" not in top_down
    assert "dekr_hrnet_w32.coco_512x512" in bottom_up and "higherhrnet_w32.coco_512x512" in bottom_up
    assert main(["list", "--kind", "bottom_up"]) == 0
    out = capsys.readouterr().out
    assert "dekr_hrnet_w48" in out and "hrnet_w32_pose" not in out and "top-down" not in out


def test_predict_refuses_top_down_flags_for_a_bottom_up_model_before_any_work(tmp_path, capsys):
    out_dir = tmp_path / "out"
    args = ["predict", PHOTO, "--model", "dekr_hrnet_w32.coco_512x512", "--out-dir", str(out_dir)]
    assert main([*args, "--boxes", str(tmp_path / "none.json")]) == 2  # refused before the boxes file is read
    err = capsys.readouterr().err
    assert "is a bottom-up model" in err and "so --boxes does not apply; drop it" in err
    assert not out_dir.exists()


def test_predict_precision(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setattr(hrnet_zoo._utils, "cpu_has_bf16_units", lambda: False)
    args = ["predict", PHOTO, "--model", "hrnet_w18_small_pose", "--no-pretrained", "--detector", "none"]
    args += ["--device", "cpu"]
    assert main([*args, "--precision", "bf16", "--out-dir", str(tmp_path / "bf16")]) == 2
    assert "needs bf16 units (AMX or AVX512-BF16)" in capsys.readouterr().err
    with caplog.at_level("INFO", logger="hrnet_zoo"):
        assert main([*args, "--precision", "auto", "--out-dir", str(tmp_path / "auto")]) == 0
    assert "amp='auto': float32 (no bf16 units) on cpu" in caplog.text


def test_predict_with_a_local_checkpoint(tmp_path, capsys):
    model = hrnet_zoo.create_model("hrnet_w18_small_pose")
    weights = tmp_path / "w.safetensors"
    save_file(model.state_dict(), str(weights))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"astronaut.jpg": [[120, 20, 300, 480], [10, 10, 100, 100]]}))
    out_dir = tmp_path / "out"
    args = ["predict", PHOTO, "--model", "hrnet_w18_small_pose", "--checkpoint", str(weights)]
    assert main([*args, "--boxes", str(boxes), "--out-dir", str(out_dir), "--device", "cpu"]) == 0
    results = json.loads((out_dir / "results.json").read_text())
    assert len(results) == 2 and results[0]["bbox"] == [120.0, 20.0, 300.0, 480.0] and results[0]["image_id"] == 1
    assert Image.open(out_dir / "astronaut_pose.png").size == (512, 512)
    assert "2 person(s)" in capsys.readouterr().out


def test_predict_offline_says_how_to_supply_weights(tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["predict", PHOTO, "--model", "hrnet_w18_small_pose", "--out-dir", str(tmp_path)]) == 2
    assert "has no pretrained weights" in capsys.readouterr().err
    assert main(["predict", PHOTO, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "could not get the weights of hrnet_w32_pose.coco_256x192" in err
    assert "--checkpoint PATH" in err and "--no-pretrained" in err
    assert not any(python in err for python in ("checkpoint_path=", "pretrained=False", "hrnet_zoo.", "dict(")), err
    weights = tmp_path / "w.safetensors"
    save_file(hrnet_zoo.create_model("hrnet_w18_small_pose").state_dict(), str(weights))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))  # no cached detector weights
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    args = ["predict", PHOTO, "--model", "hrnet_w18_small_pose", "--checkpoint", str(weights), "--out-dir"]
    assert main([*args, str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth" in err and "--detector-checkpoint PATH" in err
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()


def _offline(*args: object, **kwargs: object) -> None:
    from urllib.error import URLError

    raise URLError("[Errno -2] Name or service not known")


def test_predict_missing_image(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope.jpg")]) == 2
    assert "not found" in capsys.readouterr().err


def test_convert_round_trip(tmp_path):
    """An original-layout W18-small checkpoint converted to the Hub layout reloads to identical outputs."""
    source = hrnet_zoo.create_model("hrnet_w18_small_pose").eval()
    for p in source.parameters():
        p.data.normal_(0, 0.05)
    src = tmp_path / "original.pth"
    torch.save({"state_dict": to_original_layout(source.state_dict())}, src)
    assert main(["convert", str(src), str(tmp_path / "hub"), "--model", "hrnet_w18_small_pose"]) == 0
    config = json.loads((tmp_path / "hub" / "config.json").read_text())
    assert config["architecture"] == "hrnet_w18_small_pose" and config["num_classes"] == 17
    assert config["model_args"]["pose_meta"]["keypoints"]["name"] == "coco"
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "Citation" in card and "original.pth" in card and "no metrics" in card.lower() and "coco_val_ap" not in card
    assert hrnet_zoo.models.detect_layout(torch.load(src)["state_dict"]) == "original"
    reloaded = hrnet_zoo.create_model("hrnet_w18_small_pose", checkpoint_path=tmp_path / "hub" / "model.safetensors")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(x), source(x), rtol=0, atol=0)


def test_bad_arguments():
    with pytest.raises(SystemExit):
        main(["predict"])


def test_predict_folders_globs_and_same_stems(tmp_path, capsys):
    import shutil

    weights = tmp_path / "w.safetensors"
    save_file(hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 48)).state_dict(), str(weights))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(PHOTO, tmp_path / "a" / "shot.jpg")
    shutil.copy(PHOTO, tmp_path / "b" / "shot.jpg")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    args = [
        "predict",
        str(tmp_path / "a"),
        str(tmp_path / "b" / "*.jpg"),
        "--model",
        "hrnet_w18_small_pose",
        "--checkpoint",
        str(weights),
        "--device",
        "cpu",
        "--no-flip",
        "--detector",
        "none",
        "--out-dir",
        str(out),
    ]
    assert main(args) == 0
    names = ["images.json", "results.json", "shot_2_pose.png", "shot_pose.png"]
    assert sorted(p.name for p in out.iterdir()) == names
    images = json.loads((out / "images.json").read_text())["images"]
    assert [i["file_name"] for i in images] == [str(tmp_path / "a" / "shot.jpg"), str(tmp_path / "b" / "shot.jpg")]

    import subprocess
    import sys

    help_text = subprocess.run(
        [sys.executable, "-m", "hrnet_zoo.cli", "predict", "--help"], capture_output=True, text=True
    ).stdout
    assert "usage: hrnet-zoo predict" in help_text and "(default: hrnet_zoo_out)" in help_text
    assert "--flip, --no-flip" in help_text and "(default: None)" not in help_text
