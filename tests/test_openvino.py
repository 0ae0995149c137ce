"""OpenVINO IR export, fp32 and int8 (NNCF), the IR stand-in for the PyTorch model, and PoseEstimator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from hrnet_zoo import PoseEstimator
from hrnet_zoo.deploy import calibration_crops
from hrnet_zoo.models import HRNetConfig, HRNetPose

from .conftest import DATA, REPO

ov = pytest.importorskip("openvino", reason="OpenVINO export needs openvino and nncf")
pytest.importorskip("nncf", reason="OpenVINO export needs openvino and nncf")

from hrnet_zoo.deploy.openvino_model import OpenVINOPoseModel, export_openvino  # noqa: E402

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"
SIZE = (128, 96)
BOXES = [[120, 20, 300, 480], [0, 0, 200, 260], [250, 200, 250, 300], [60, 100, 150, 150]]
OTHER_BOXES = [[100, 50, 250, 400], [200, 100, 200, 300], [0, 0, 512, 512], [300, 0, 200, 200]]


@pytest.fixture(scope="module")
def model() -> HRNetPose:
    """The tiny golden architecture at 128x96 with He-initialised convolutions and BatchNorm statistics taken on
    real crops: activations of unit scale, heatmaps that depend on the input (default-initialised ones are ~0)."""
    torch.manual_seed(0)
    config = json.loads((DATA / "tiny_original_config.json").read_text())
    cfg = HRNetConfig.from_original(config["extra"])
    meta = HRNetPose(cfg, num_joints=config["num_joints"]).pose_meta.at_input_size(SIZE)
    model = HRNetPose(cfg, num_joints=config["num_joints"], pose_meta=meta)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative statistics over the batch below
    crops = calibration_crops(model, [PHOTO], [BOXES + OTHER_BOXES])
    with torch.no_grad():
        model.train()(crops)
    return model.eval()


@pytest.fixture(scope="module")
def fp32_path(model, tmp_path_factory):
    return export_openvino(model, tmp_path_factory.mktemp("ov") / "fp32.xml")


def _relative_error(heatmaps: torch.Tensor, reference: torch.Tensor) -> float:
    return float((heatmaps - reference).abs().max() / (reference.max() - reference.min()))


def test_fp32_ir_matches_pytorch_with_dynamic_batch(model, fp32_path):
    assert sorted(p.name for p in fp32_path.parent.iterdir()) == ["fp32.bin", "fp32.xml"], "no partial files left"
    fp32 = OpenVINOPoseModel(fp32_path)
    assert fp32.precision == "fp32" and fp32.in_chans == 3
    assert fp32.pose_meta == model.pose_meta and fp32.pose_meta.to_dict() == model.pose_meta.to_dict()
    assert list(fp32.parameters()) == []
    for batch in (1, 3):
        x = torch.randn(batch, 3, *SIZE)
        with torch.no_grad():
            reference = model(x)
        heatmaps = fp32(x)
        assert heatmaps.shape == reference.shape == (batch, 5, 32, 24) and heatmaps.dtype == torch.float32
        assert _relative_error(heatmaps, reference) < 1e-3


def test_int8_ir_is_close_to_fp32(model, tmp_path):
    path = export_openvino(model, tmp_path / "int8.xml", calibration=calibration_crops(model, [PHOTO], [BOXES]))
    int8 = OpenVINOPoseModel(path)
    assert int8.precision == "int8" and int8.pose_meta == model.pose_meta
    assert "FakeQuantize" in {op.get_type_name() for op in ov.Core().read_model(str(path)).get_ops()}
    crops = calibration_crops(model, [PHOTO], [OTHER_BOXES])  # other persons than those calibrated on
    with torch.no_grad():
        reference = model(crops)
    heatmaps = int8(crops)
    assert heatmaps.shape == reference.shape and _relative_error(heatmaps, reference) > 1e-4, "really quantized"
    assert np.corrcoef(heatmaps.flatten(), reference.flatten())[0, 1] > 0.85
    # What varies from person to person (the mean over the batch removed), which no input-blind output follows.
    # Random weights amplify int8 noise more than trained ones: NNCF gets 0.82 here, ONNX Runtime's int8 0.89.
    centred = np.corrcoef((heatmaps - heatmaps.mean(0)).flatten(), (reference - reference.mean(0)).flatten())[0, 1]
    assert centred > 0.7, centred


def test_pose_estimator_runs_the_ir(model, fp32_path):
    # PoseEstimator needs device="cpu" (the IR model has no parameters to take a device from) and optimize=False
    # (there is no BatchNorm to fold in it) until it treats OpenVINOPoseModel like OnnxPoseModel.
    reference = PoseEstimator(model, device="cpu").predict(PHOTO, boxes=BOXES)[0]
    result = PoseEstimator(OpenVINOPoseModel(fp32_path), device="cpu", optimize=False).predict(PHOTO, boxes=BOXES)[0]
    assert result.keypoints.shape == reference.keypoints.shape == (4, 5, 3)
    assert result.keypoint_names == reference.keypoint_names
    # One heatmap pixel in the image: the box (padded by up to 25 % to the input's aspect) over the heatmap size.
    pixel = torch.tensor([max(w / 24, h / 32) * 1.25 for _, _, w, h in BOXES])[:, None]
    offsets = (torch.as_tensor(result.keypoints[..., :2]) - torch.as_tensor(reference.keypoints[..., :2])).abs()
    assert (offsets.amax(-1) <= pixel).all()
    np.testing.assert_allclose(result.keypoints[..., 2], reference.keypoints[..., 2], atol=1e-3)


def test_bad_inputs(model, fp32_path, tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.xml"):
        export_openvino(model, tmp_path / "model.onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OpenVINOPoseModel(tmp_path / "nope.xml")
    (tmp_path / "bad.xml").write_text("not an IR")
    with pytest.raises(ValueError, match="could not load OpenVINO IR"):
        OpenVINOPoseModel(tmp_path / "bad.xml")
    bare = ov.Core().read_model(str(fp32_path))  # the same IR without the hrnet_zoo entries
    bare_info = bare.get_rt_info()
    del bare_info["hrnet_zoo"]
    ov.save_model(bare, str(tmp_path / "bare.xml"), compress_to_fp16=False)
    with pytest.raises(ValueError, match="carries no pose metadata"):
        OpenVINOPoseModel(tmp_path / "bare.xml")
    given = OpenVINOPoseModel(tmp_path / "bare.xml", pose_meta=model.pose_meta)
    assert given.pose_meta == model.pose_meta and given.precision == "fp32"
