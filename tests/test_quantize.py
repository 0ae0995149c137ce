"""The int8 path: ONNX Runtime static quantization, the ONNX model stand-in, PoseEstimator and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import hrnet_zoo
from hrnet_zoo import PoseEstimator
from hrnet_zoo.cli import main
from hrnet_zoo.deploy import OnnxPoseModel, calibration_crops, export_onnx, quantize
from hrnet_zoo.keypoints import KeypointSet

from .conftest import REPO

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"
SIZE = (128, 96)
BOXES = [[120, 20, 300, 480], [0, 0, 200, 260], [250, 200, 250, 300], [60, 100, 150, 150]]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    kite = KeypointSet("kite", ("top", "left_wing", "right_wing", "tail"), flip_pairs=((1, 2),))
    model = hrnet_zoo.create_model("hrnet_w18_small_pose", keypoints=kite, input_size=SIZE).eval()
    for p in model.parameters():  # weights with some structure, so the int8 error is measured on real signal
        p.data.normal_(0, 0.05)
    return model


@pytest.fixture(scope="module")
def int8(model, tmp_path_factory):
    return quantize(model, [PHOTO], tmp_path_factory.mktemp("q") / "int8.onnx", boxes=[BOXES])


def test_calibration_crops_are_the_predictors(model):
    """int8 calibrates on exactly the crops the estimator makes: given boxes, and whole images without them."""
    estimator = PoseEstimator(model, device="cpu")
    image = np.asarray(Image.open(PHOTO))[:300, 50:450]  # a second image of another size
    crops = calibration_crops(model, [PHOTO, image], [BOXES, None])
    expected = estimator.crops([PHOTO, image], [BOXES, None]).inputs
    assert crops.shape == (5, 3, *SIZE) and torch.equal(crops, expected)
    assert torch.equal(calibration_crops(model, [image], None), estimator.crops(image).inputs)
    assert calibration_crops(model, expected, None) is expected, "a tensor is taken as crops already"
    with pytest.raises(ValueError, match="boxes for 1 calibration images but 2 images"):
        calibration_crops(model, [PHOTO, image], [BOXES])


def test_int8_model_is_close_to_fp32(model, int8):
    assert int8.precision == "int8" and int8.pose_meta == model.pose_meta and int8.in_chans == 3
    crops = PoseEstimator(model, device="cpu").crops(PHOTO, BOXES).inputs
    with torch.no_grad():
        reference = model(crops)
    heatmaps = int8(crops)
    assert heatmaps.shape == reference.shape == (4, 4, 32, 24) and heatmaps.dtype == torch.float32
    correlation = np.corrcoef(heatmaps.flatten().numpy(), reference.flatten().numpy())[0, 1]
    assert correlation > 0.98, correlation
    assert (heatmaps - reference).abs().max() < 0.1 * reference.abs().max()


def test_pose_estimator_runs_the_int8_model(model, int8):
    fp32 = PoseEstimator(model, device="cpu").predict(PHOTO, boxes=BOXES)[0]
    quantized = PoseEstimator(int8).predict(PHOTO, boxes=BOXES)[0]
    assert quantized.keypoints.shape == fp32.keypoints.shape == (4, 4, 3)
    assert quantized.keypoint_names == fp32.keypoint_names
    np.testing.assert_allclose(quantized.areas, fp32.areas)


def test_fp32_onnx_carries_the_metadata(model, tmp_path):
    path = export_onnx(model, tmp_path / "fp32.onnx")
    fp32 = OnnxPoseModel(path)
    assert fp32.precision == "fp32" and fp32.pose_meta == model.pose_meta
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(fp32(x), model(x), rtol=1e-3, atol=1e-4)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OnnxPoseModel(tmp_path / "nope.onnx")
    (tmp_path / "bad.onnx").write_text("not onnx")
    with pytest.raises(ValueError, match="could not load ONNX model"):
        OnnxPoseModel(tmp_path / "bad.onnx")
    with pytest.raises(ValueError, match="at least one person crop"):
        quantize(model, torch.zeros(0, 3, *SIZE))


def test_cli_exports_and_runs_int8(model, tmp_path, capsys):
    folder = hrnet_zoo.save_pretrained(model, tmp_path / "kite")
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for i, box in enumerate(BOXES):
        x, y, w, h = box
        Image.open(PHOTO).crop((x, y, x + w, y + h)).save(calibration / f"person{i}.jpg")
    out = tmp_path / "kite_int8.onnx"
    args = ["export", "--model", f"local-dir:{folder}", "--int8", "--calibration", str(calibration)]
    assert main([*args, "--output", str(out)]) == 0 and out.is_file()
    assert "int8, calibrated on 4 images" in capsys.readouterr().out
    results = tmp_path / "results"
    assert main(["predict", str(PHOTO), "--model", str(out), "--detector", "none", "--out-dir", str(results)]) == 0
    assert len(json.loads((results / "results.json").read_text())[0]["keypoints"]) == 12
    assert main([*args[:4], "--int8"]) == 2 and "needs --calibration" in capsys.readouterr().err
    assert main([*args[:4], "--int8", "--calibration", str(tmp_path / "none")]) == 2
    assert "--calibration" in capsys.readouterr().err
    weights = tmp_path / "w.safetensors"
    save_file(model.state_dict(), str(weights))
    assert main(["predict", str(PHOTO), "--model", str(out), "--checkpoint", str(weights)]) == 2
    assert "drop --checkpoint" in capsys.readouterr().err
