"""Every subcommand with bad arguments and files: exit code 2, one message naming what was wrong, no traceback,
and nothing written that the user did not name as an output."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

import hrnet_zoo
import hrnet_zoo.deploy.export as export_module
import hrnet_zoo_cli
from hrnet_zoo.cli import build_parser, main
from hrnet_zoo.deploy.export import ExportedPoseModel
from hrnet_zoo.errors import OutputRefusedError
from hrnet_zoo.evaluation import evaluate
from hrnet_zoo.io.outputs import claim_run_folder

from .conftest import REPO

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"
ARCH = "hrnet_w18_small_pose"
PYTHON_WORDS = ("pretrained=", "checkpoint_path", "hrnet_zoo.", "dict(", "()", "num_joints=", "timm.create_model")


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
    annotation, kite_image = kites / "annotations" / "person_keypoints_val.json", next((kites / "val").iterdir())
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
        ([*evaluate, "--results", str(annotation)], "it is one of the inputs; choose another --results"),
        ([*evaluate, "--out", str(annotation)], "it is one of the inputs; choose another --out"),
        ([*evaluate, "--results", str(kite_image)], "it is one of the inputs; choose another --results"),
        ([*evaluate, "--out", a], "it exists; pass --overwrite to replace it, or choose another --out"),
        ([*evaluate, "--results", str(root / "x12.json"), "--out", str(root / "x12.json")], "two outputs"),
        ([*evaluate, "--results", w, "--overwrite"], "it is one of the inputs; choose another --results"),
        (["export", "--model", str(root / "m.onnx"), "--output", str(root / "x13.onnx")], "is already exported"),
        (["export", "--model", ARCH, "--checkpoint", w, "--input-size", "0", "0"], "positive multiples of 32"),
        (["export", "--model", ARCH, "--checkpoint", w, "--input-size", "65", "49"], "--input-size 65 49"),
        (predict(a, out="x13", weights=str(root / "o2")), "--checkpoint '" + str(root / "o2") + "' is a folder"),
        (predict(a, out="x14", extra=("--no-pretrained",)), "drop one"),
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
        assert not any(python in err for python in PYTHON_WORDS), (args, err)  # the command speaks flags
        assert args[0] == "predict" or "--out-dir" not in err, (args, err)  # and only its own
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


def _predict_args(root: Path, out: str | Path, *extra: str) -> list[str]:
    options = ["--model", ARCH, "--checkpoint", str(root / "w.safetensors"), "--device", "cpu", "--no-flip"]
    return ["predict", str(root / "a.jpg"), *options, "--detector", "none", "--out-dir", str(out), *extra]


def test_two_runs_started_together_never_share_a_folder(files, tmp_path):
    out, count = tmp_path / "out", 8
    start, running = threading.Barrier(count), threading.Barrier(count)

    def claim(_: int) -> Path:
        start.wait(timeout=30)
        with claim_run_folder(out) as folder:
            running.wait(timeout=30)  # every run holds its folder at once
            return folder

    with ThreadPoolExecutor(count) as pool:
        folders = list(pool.map(claim, range(count)))
    assert sorted(folders) == sorted([out, *(tmp_path / f"out-{n}" for n in range(2, count + 1))])
    runs = tmp_path / "runs"
    start = threading.Barrier(2)

    def predict(_: int) -> int:
        start.wait(timeout=30)
        return main(_predict_args(files["root"], runs, "--no-draw"))

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(predict, range(2))) == [0, 0]
    for folder in (runs, tmp_path / "runs-2"):  # each run's results complete in a folder of its own
        assert sorted(p.name for p in folder.iterdir()) == ["images.json", "results.json"]
        assert len(json.loads((folder / "images.json").read_text())["images"]) == 1


def test_a_failed_claim_leaves_no_folder(tmp_path):
    with pytest.raises(RuntimeError), claim_run_folder(tmp_path / "out"):
        raise RuntimeError("the run broke")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()
    with claim_run_folder(tmp_path / "empty") as folder:  # an empty folder the user named is used as it is
        assert folder == tmp_path / "empty"


def test_wrong_out_dirs_are_named_before_the_model_loads(files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(files["root"])  # a folder holding files
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    nan = ("--checkpoint", str(files["root"] / "nan.safetensors"))  # refused only once the model loads
    for out, expected in (
        (".", "output folder '.' holds files, and has no name to number"),
        ("/", "output folder '/' holds files"),
        ("", "--out-dir is empty"),
        (str(tmp_path / "dangling"), "is a symbolic link to nothing"),
    ):
        assert main([*_predict_args(files["root"], out), *nan]) == 2
        err = capsys.readouterr().err
        assert expected in err and "NaN" not in err and "empty name" not in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling"]


def test_evaluate_refuses_its_inputs_as_output_in_the_library(files):
    kites = files["kites"]
    annotation = kites / "annotations" / "person_keypoints_val.json"
    before = annotation.read_bytes()
    estimator = hrnet_zoo.PoseEstimator(hrnet_zoo.create_model(ARCH), device="cpu")
    for output, reason in ((annotation, "input"), (files["root"] / "a.jpg", "exists")):
        with pytest.raises(OutputRefusedError) as refused:
            evaluate(estimator, annotation, kites / "val", output=output)
        assert refused.value.reason == reason and refused.value.path == output and "--" not in str(refused.value)
    assert annotation.read_bytes() == before


def test_export_writes_one_file_and_never_replaces_its_data_file(files, tmp_path, capsys, monkeypatch):
    output, data = tmp_path / "m.onnx", tmp_path / "m.onnx.data"
    data.write_text("a file of the user's")
    args = ["export", "--model", ARCH, "--no-pretrained", "--input-size", "64", "64", "--output", str(output)]
    assert main(args) == 0
    assert (
        sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
        and data.read_text() == "a file of the user's"
    )
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(output), load_external_data=False)
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer)
    monkeypatch.setattr(export_module, "ONNX_PROTO_LIMIT", 1)  # as for a model over 2 GiB: weights go beside it
    big_data = tmp_path / "big.onnx.data"
    big_data.write_text("a file of the user's")
    assert main([*args, "--output", str(tmp_path / "big.onnx")]) == 2
    err = capsys.readouterr().err
    assert f"refusing to replace {big_data}: it exists; pass --overwrite to replace it" in err, err
    assert big_data.read_text() == "a file of the user's" and not (tmp_path / "big.onnx").exists()


def test_an_exported_program_runs_with_predict(files, tmp_path, capsys):
    program = tmp_path / "m.pt2"
    export_args = ["export", "--model", ARCH, "--checkpoint", str(files["root"] / "w.safetensors"), "--format", "pt2"]
    assert main([*export_args, "--input-size", "64", "64", "--output", str(program)]) == 0
    out = tmp_path / "out"
    args = ["predict", str(files["root"] / "a.jpg"), "--model", str(program), "--device", "cpu", "--detector", "none"]
    assert main([*args, "--out-dir", str(out), "--no-draw"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 1 and len(results[0]["keypoints"]) == 17 * 3
    assert ExportedPoseModel(program).pose_meta.input_size == (64, 64)


def test_no_pretrained_builds_random_weights_with_a_warning(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # nothing is downloaded
    args = ["predict", str(files["root"] / "a.jpg"), "--model", ARCH, "--no-pretrained", "--device", "cpu"]
    assert main([*args, "--detector", "none", "--no-draw", "--out-dir", str(tmp_path / "out")]) == 0
    assert "random weights; its results are meaningless" in capsys.readouterr().err
    assert (tmp_path / "out" / "results.json").is_file()
    for command in ("evaluate", "export"):
        help_text = subprocess.run(
            [sys.executable, "-m", "hrnet_zoo.cli", command, "--help"], capture_output=True, text=True, timeout=300
        ).stdout
        assert "--pretrained, --no-pretrained" in help_text, command


def test_help_and_version_start_without_torch():
    """The console script answers --help and --version from the standard library; their text is the full CLI's."""
    probe = (
        "import sys, hrnet_zoo_cli\n"
        "try:\n    hrnet_zoo_cli.main([sys.argv[1]])\n"
        "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'timm', 'hrnet_zoo')))"
    )
    for flag in ("--help", "--version"):
        out = subprocess.run([sys.executable, "-c", probe, flag], capture_output=True, text=True, check=True).stdout
        assert out.strip().endswith("[]"), out
    parser, commands = hrnet_zoo_cli.top_level_parser()
    for name, text in hrnet_zoo_cli.COMMANDS.items():
        commands.add_parser(name, help=text)
    assert parser.format_help() == build_parser().format_help()
    assert hrnet_zoo_cli.package_version() == hrnet_zoo.__version__


def test_a_webcam_that_cannot_be_opened_is_reported_before_any_weights(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # loading the weights would fail with another message
    assert main(["predict", "97", "--detector", "none", "--out-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "could not open webcam '97'" in err and "weights" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_names_the_run_folder_and_leaves_nothing(files, tmp_path, capsys, monkeypatch):
    """A write that fails without naming its file (ENOSPC while streaming results) names the run folder."""

    def full(self, item):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hrnet_zoo.io.outputs.JsonArrayStream, "add", full)
    weights = str(files["root"] / "w.safetensors")
    args = ["predict", str(PHOTO), "--model", ARCH, "--checkpoint", weights, "--detector", "none", "--device", "cpu"]
    assert main([*args, "--out-dir", str(tmp_path / "run")]) == 2
    advice = "free some space there, or choose another --out-dir"
    assert capsys.readouterr().err.strip() == f"error: No space left on device: {tmp_path / 'run'}; {advice}"
    assert list(tmp_path.iterdir()) == []


def test_a_claim_left_by_a_killed_run_is_free_again(tmp_path):
    """The claim file records its run's process: a run that was killed does not hold its folder forever."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".hrnet_zoo-claim").write_text("999999999")  # a process that no longer runs
    with claim_run_folder(folder) as claimed:
        assert claimed == folder
        with claim_run_folder(folder) as second:  # while this run holds it, another gets a fresh folder
            assert second == tmp_path / "run-2"


def test_sigterm_during_an_export_leaves_no_half_written_file(files, tmp_path, capsys, monkeypatch):
    """SIGTERM is handled like Ctrl-C by every command: the export's partial file is removed, exit status 130."""
    before = signal.getsignal(signal.SIGTERM)

    def killed_while_writing(model, path, *args):
        path.write_bytes(b"half an onnx file")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError("SIGTERM was not handled")

    monkeypatch.setattr(export_module, "_write_onnx", killed_while_writing)
    weights = str(files["root"] / "w.safetensors")
    assert main(["export", "--model", ARCH, "--checkpoint", weights, "--output", str(tmp_path / "m.onnx")]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back
