"""The examples in examples/ run as documented (offline: local weights)."""

from __future__ import annotations

import json
import subprocess
import sys

from safetensors.torch import save_file

import hrnet_zoo

from .conftest import REPO
from .layouts import to_openmmlab_layout, to_original_layout


def run(*args: str, cwd=None) -> str:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_custom_network_example():
    """Both networks (HRNet's blocks, Lite-HRNet's) give 1/4-resolution logits and learn in three SGD steps; the
    Lite-HRNet one is under a tenth of the size."""
    import re

    out = run(str(REPO / "examples" / "custom_network.py"))
    params = {}
    for name in ("TwoScaleSegmenter", "LiteTwoScaleSegmenter"):
        assert f"{name} logits: (2, 5, 32, 24)" in out
        losses = [float(v) for v in re.findall(rf"^{name} step \d: loss ([\d.]+)$", out, re.MULTILINE)]
        assert len(losses) == 3 and losses[-1] < losses[0], out
        params[name] = int(re.search(rf"^{name}: (\d+) parameters$", out, re.MULTILINE).group(1))
    assert params["LiteTwoScaleSegmenter"] < params["TwoScaleSegmenter"] / 10


def test_predict_example(tmp_path):
    weights = tmp_path / "w.safetensors"
    save_file(hrnet_zoo.create_model("hrnet_w18_small_pose").state_dict(), str(weights))
    photo = str(REPO / "examples" / "images" / "astronaut.jpg")
    out = run(
        str(REPO / "examples" / "predict.py"),
        photo,
        "--model",
        "hrnet_w18_small_pose",
        "--checkpoint",
        str(weights),
        "--out",
        str(tmp_path / "run"),
    )
    assert "left_shoulder" in out and (tmp_path / "run" / "astronaut_pose.png").is_file()


def test_predict_bottom_up_example(tmp_path):
    weights = tmp_path / "w.safetensors"
    save_file(hrnet_zoo.create_model("higherhrnet_w32").state_dict(), str(weights))
    photo = str(REPO / "examples" / "images" / "astronaut.jpg")
    args = ["--model", "higherhrnet_w32", "--checkpoint", str(weights), "--input-size", "256"]
    out = run(str(REPO / "examples" / "predict_bottom_up.py"), photo, *args, "--out", str(tmp_path / "run"))
    assert "person(s); keypoints (" in out and (tmp_path / "run" / "astronaut_pose.png").is_file()


def test_finetune_bottom_up_example(tmp_path):
    for model in ("dekr_hrnet_w32", "higherhrnet_w32"):
        out = run(
            str(REPO / "examples" / "finetune_bottom_up.py"),
            *("--synthetic", "--model", model, "--input-size", "128", "--max-steps", "2"),
            *("--out", str(tmp_path / model)),
        )
        assert '"epoch": 0' in out and (tmp_path / model / "model" / "config.json").is_file()


def test_lint():
    """ruff check and ruff format --check pass on the whole project."""
    for args in (["check", "."], ["format", "--check", "."]):
        out = subprocess.run([sys.executable, "-m", "ruff", *args], capture_output=True, text=True, cwd=REPO)
        assert out.returncode == 0, out.stdout + out.stderr


def test_weights_example(tmp_path):
    import torch

    source = tmp_path / "original.pth"
    torch.save(to_original_layout(hrnet_zoo.create_model("hrnet_w18_small_pose").state_dict()), source)
    out = run(
        str(REPO / "examples" / "weights.py"), str(source), str(tmp_path / "hub"), "--model", "hrnet_w18_small_pose"
    )
    assert "outputs identical to the source: True" in out
    assert (tmp_path / "hub" / "config.json").is_file()


def test_timm_citizen_example(tmp_path):
    out = run(str(REPO / "examples" / "timm_citizen.py"), "--out", str(tmp_path / "m"))
    assert "reloaded through timm with the same metadata: True" in out
    assert "features (getter): [(1, 36, 16, 16), (1, 144, 4, 4)]" in out and "UDP targets: (1, 4, 32, 32)" in out


def test_video_example(tmp_path):
    import torch

    from .test_detect import person_biased_ssdlite

    weights, detector = tmp_path / "w.safetensors", tmp_path / "ssdlite.pth"
    save_file(hrnet_zoo.create_model("hrnet_w18_small_pose").state_dict(), str(weights))
    torch.save(person_biased_ssdlite(), detector)
    out = run(
        str(REPO / "examples" / "video.py"),
        "--demo-clip",
        "--model",
        "hrnet_w18_small_pose",
        "--checkpoint",
        str(weights),
        "--detector",
        "ssdlite320_mobilenet_v3_large",
        "--detector-checkpoint",
        str(detector),
        "--max-persons",
        "2",
        "--out",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert "run-clip.mp4 frame 11: 2 person(s)" in out and "24 poses in" in out
    assert (tmp_path / "run" / "run-clip_pose.mp4").is_file()


def test_live_video_example(tmp_path):
    import torch

    from .test_detect import person_biased_ssdlite

    weights, detector = tmp_path / "w.safetensors", tmp_path / "ssdlite.pth"
    save_file(hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(128, 96)).state_dict(), str(weights))
    torch.save(person_biased_ssdlite(), detector)
    args = ["--demo-clip", "--model", "hrnet_w18_small_pose", "--checkpoint", str(weights), "--max-persons", "2"]
    detection = ["--detector", "ssdlite320_mobilenet_v3_large", "--detector-checkpoint", str(detector)]
    options = ["--detect-every", "4", "--smooth", "one_euro", "--keypoint-format", "body25", "--out", "live"]
    out = run(str(REPO / "examples" / "live_video.py"), *args, *detection, *options, cwd=tmp_path)
    assert "live-clip.mp4 frame 15: track ids" in out and "track id(s) in" in out
    lines = (tmp_path / "live" / "poses.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == list(range(16))
    assert all(len(r["ids"]) == len(r["keypoints"]) and all(len(k) == 25 for k in r["keypoints"]) for r in records)
    assert (tmp_path / "live" / "live-clip_first.png").is_file()


def test_zoo_tasks_example(tmp_path, monkeypatch, capsys):
    """Each task runs from a checkpoint in its upstream layout and draws its own skeleton (in this process)."""
    import re
    import runpy

    import torch

    from hrnet_zoo.models.pretrained import PRETRAINED_CFGS

    photo = str(REPO / "examples" / "images" / "astronaut.jpg")
    for task, joints in (("face", 98), ("hand", 21), ("animal", 17), ("wholebody", 133)):
        tag = re.search(rf'"{task}": "([\w.]+)"', (REPO / "examples" / "zoo_tasks.py").read_text()).group(1)
        weights = tmp_path / f"{task}.pth"
        v1 = "/mmpose/v1/" in PRETRAINED_CFGS[tag].url
        upstream = to_openmmlab_layout(hrnet_zoo.create_model(tag).state_dict(), v1)
        torch.save({"state_dict": upstream}, weights)
        argv = [
            "zoo_tasks.py",
            task,
            photo,
            "--box",
            "100",
            "20",
            "330",
            "490",
            "--checkpoint",
            str(weights),
            "--out",
            str(tmp_path / f"{task}.png"),
        ]
        monkeypatch.setattr("sys.argv", argv)
        runpy.run_path(str(REPO / "examples" / "zoo_tasks.py"), run_name="__main__")
        out = capsys.readouterr().out
        assert f"1 subject(s) x {joints} keypoints" in out and (tmp_path / f"{task}.png").is_file()
        assert f"({len(PRETRAINED_CFGS[tag].pose_meta.keypoints.skeleton)} skeleton links)" in out
