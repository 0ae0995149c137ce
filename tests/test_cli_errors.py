"""Every subcommand with bad arguments and files: exit code 2, one message naming what was wrong, no traceback,
and nothing written that the user did not name as an output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

import hrnet_zoo
from hrnet_zoo.cli import main

from .conftest import REPO

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"
ARCH = "hrnet_w18_small_pose"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs for the table: a photo, good and bad weights, a kite data set, a published folder."""
    root = tmp_path_factory.mktemp("cli")
    model = hrnet_zoo.create_model(ARCH)
    save_file(model.state_dict(), str(root / "w.safetensors"))
    nan = dict(model.state_dict())
    nan["head.weight"] = torch.full_like(nan["head.weight"], float("nan"))
    save_file(nan, str(root / "nan.safetensors"))
    save_file(hrnet_zoo.create_model(ARCH, num_joints=5).state_dict(), str(root / "five_joints.safetensors"))
    shutil.copy(PHOTO, root / "a.jpg")
    (root / "o2").mkdir()
    shutil.copy(PHOTO, root / "o2" / "a_pose.png")
    (root / "a_file").write_text("not a folder")
    (root / "not.json").write_text("{oops")
    bad_config = hrnet_zoo.save_pretrained(model, root / "bad-config")
    (bad_config / "config.json").write_text("{oops")
    hrnet_zoo.save_pretrained(model, root / "published")
    from hrnet_zoo.train import make_synthetic_dataset

    kites = make_synthetic_dataset(root / "kites", num_train=2, num_val=2, image_size=(64, 64))
    detections = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]}]  # no score
    (root / "no_score.json").write_text(json.dumps(detections))
    return {"root": root, "kites": kites["root"]}


def cases(root: Path, kites: Path) -> list[tuple[list[str], str]]:
    w, a = str(root / "w.safetensors"), str(root / "a.jpg")

    def predict(*images: object, out: str, weights: str = w, device: str = "cpu", extra: tuple = ()) -> list[str]:
        detector = () if "--detector" in extra else ("--detector", "none")  # no downloads unless a case asks
        options = ["--model", ARCH, "--checkpoint", weights, "--device", device, "--out-dir", str(root / out)]
        return ["predict", *map(str, images), *options, *detector, *extra]

    evaluate = ["evaluate", "--coco-root", str(kites), "--split", "val", "--model", ARCH, "--checkpoint", w]
    return [
        (["predict", str(root / "missing.jpg")], "input file '"),
        (predict(a, out="x1", device="tpu"), "--device 'tpu' is not a device"),
        (predict(a, out="x2", device="cuda"), "no CUDA device is available"),
        (predict(a, out="a_file"), "is an existing file, not a folder; choose another --out-dir"),
        (
            predict(a, root / "o2" / "a_pose.png", out="o2", extra=("--exist-ok",)),
            "it is one of the inputs; choose another --out-dir",
        ),
        (predict(root / "o2" / "*.gif", out="x3"), "matches no file"),
        (predict(root / "kites" / "annotations", out="x3"), "holds no images or videos"),
        (predict(root / "a_file", out="x3"), "could not decode image"),
        (
            predict(
                a,
                out="x3",
                extra=("--detector", "ssdlite320_mobilenet_v3_large", "--detector-checkpoint", str(root / "nope.pth")),
            ),
            "nope.pth",
        ),
        (predict(a, out="x3", extra=("--detector", "none", "--detector-checkpoint", w)), "needs a --detector"),
        (predict(a, out="x4", extra=("--boxes", str(root / "not.json"))), "is not JSON"),
        (predict(a, out="x5", extra=("--boxes", str(root / "nope.json"))), "--boxes file"),
        (predict(a, out="x6", extra=("--batch-size", "0")), "--batch-size must be at least 1"),
        (predict(a, out="x7", weights=str(root / "nope.pth")), "--checkpoint"),
        (predict(a, out="x8", weights=str(root / "nan.safetensors")), "NaN or infinite"),
        (
            predict(a, out="x8", weights=str(root / "five_joints.safetensors")),
            "predict 5 joints: name the --model they were made for",
        ),
        (
            ["predict", a, "--model", f"local-dir:{root / 'bad-config'}", "--out-dir", str(root / "x9")],
            "is not JSON",
        ),
        (["predict", a, "--model", "hrnet_w32_pos", "--out-dir", str(root / "x10")], "did you mean hrnet_w32_pose"),
        (["evaluate", "--coco-root", str(root / "nowhere")], "does not exist"),
        ([*evaluate, "--device", "cpu"], "the model predicts 17 joints but"),
        ([*evaluate, "--boxes", str(root / "no_score.json")], "must have 'image_id', 'bbox' and 'score'"),
        ([*evaluate, "--device", "tpu"], "--device 'tpu' is not a device"),
        (
            ["export", "--model", ARCH, "--checkpoint", w, "--output", w],
            "it is one of the inputs; choose another --output",
        ),
        (
            ["export", "--model", ARCH, "--checkpoint", w, "--output", a],
            "it exists; pass --overwrite to replace it, or choose another --output",
        ),
        (["convert", w, str(root / "published"), "--model", ARCH], "exists; pass --overwrite"),
        (
            ["convert", w, str(root / "a_file"), "--model", ARCH],
            "is an existing file, not a folder; choose another out_dir",
        ),
        (["convert", str(root / "nope.pth"), str(root / "x11"), "--model", ARCH], "does not exist"),
        (["push", str(root / "a_file"), "me/repo"], "is not in the Hub layout"),
        (["push", str(root / "published"), "me/repo"], "could not upload"),
    ]


def test_every_subcommand_fails_cleanly(files, capsys, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    root = files["root"]
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    for args, expected in cases(root, files["kites"]):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err and "Traceback" not in err, (args, err)
    changed = [p for p, t in before.items() if not p.exists() or (p.is_file() and p.stat().st_mtime_ns != t)]
    assert changed == [], "inputs and existing files stay as they were"
    created = [p for p in root.rglob("*") if p not in before and not (p.is_dir() and p.name == "__pycache__")]
    assert [p for p in created if p.is_file() or p.name.startswith("x")] == [], f"a failed command wrote {created}"


def test_argument_errors_exit_with_2(capsys):
    for args in (
        ["predict"],
        ["export"],
        ["nosuchcommand"],
        ["predict", "a.jpg", "--batch-size", "many"],
        ["predict", "a.jpg", "--detector", "yolo"],
    ):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_an_input_inside_the_output_folder_is_never_replaced(files, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(PHOTO, out / "a_pose.png")  # an input named like the drawing of a.jpg
    shutil.copy(PHOTO, tmp_path / "a.jpg")
    args = [
        "predict",
        str(tmp_path / "a.jpg"),
        str(out / "a_pose.png"),
        "--model",
        ARCH,
        "--checkpoint",
        str(files["root"] / "w.safetensors"),
        "--device",
        "cpu",
        "--detector",
        "none",
        "--out-dir",
        str(out),
    ]
    before = (out / "a_pose.png").read_bytes()
    assert main(args) == 0  # out holds files: the run goes to out-2
    assert sorted(p.name for p in (tmp_path / "out-2").iterdir()) == [
        "a_pose.png",
        "a_pose_pose.png",
        "images.json",
        "results.json",
    ]
    assert main([*args, "--exist-ok"]) == 2 and "it is one of the inputs" in capsys.readouterr().err
    assert (out / "a_pose.png").read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["a_pose.png"]


def test_the_installed_command_prints_no_traceback(tmp_path):
    script = shutil.which("hrnet-zoo")
    command = [script] if script else [sys.executable, "-m", "hrnet_zoo.cli"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    bad = (
        ["predict", str(tmp_path / "none.jpg")],
        ["predict", str(PHOTO), "--device", "nosuchdevice"],
        ["convert", str(tmp_path / "none.pth"), str(tmp_path / "out"), "--model", ARCH],
    )
    for args in bad:
        out = subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.startswith("error: "), out.stderr
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=300)
    assert version.returncode == 0 and hrnet_zoo.__version__ in version.stdout
