"""Live video through the estimator, the run and the CLI: track ids, detection every N frames, smoothing, keypoint
formats and the CPU defaults, on synthetic clips written with PyAV."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

import hrnet_zoo
from hrnet_zoo import PoseEstimator
from hrnet_zoo.cli import main
from hrnet_zoo.keypoint_formats import keypoint_format
from hrnet_zoo.pose import (
    CPU_VIDEO_DEFAULTS,
    OneEuro,
    Savgol,
    Source,
    TrackerConfig,
    VideoWriter,
    smooth_savgol,
)

SIZE = (96, 128)  # height, width of the clips
FPS = 30


class DotModel(nn.Module):
    """A pose "network" that follows a dot: its joints lie on a ring about the centroid of the crop's brightest
    pixels (Gaussian heatmaps of peak ``peak``), so its keypoints follow the dot smoothly, sub-pixel."""

    def __init__(self, peak: float = 0.5) -> None:
        super().__init__()
        self.pose_meta = hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 64)).pose_meta
        self.peak = nn.Parameter(torch.tensor(peak))
        angles = torch.linspace(0, 2 * torch.pi, len(self.pose_meta.keypoints) + 1)[:-1]
        self.register_buffer("ring", torch.stack([2.5 * angles.cos(), 3.5 * angles.sin()], -1))  # heatmap pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        brightness = x.mean(1)
        low, high = brightness.amin((1, 2), keepdim=True), brightness.amax((1, 2), keepdim=True)
        weights = torch.relu(brightness - (low + high) / 2)
        height, width = brightness.shape[-2:]
        total = weights.sum((1, 2))
        cy = (weights.sum(2) * torch.arange(height, dtype=x.dtype)).sum(1) / total / 4
        cx = (weights.sum(1) * torch.arange(width, dtype=x.dtype)).sum(1) / total / 4
        joint_x = cx[:, None] + self.ring[:, 0]  # (N, K)
        joint_y = cy[:, None] + self.ring[:, 1]
        hy, hx = torch.arange(height // 4, dtype=x.dtype), torch.arange(width // 4, dtype=x.dtype)
        distance = (hy[None, None, :, None] - joint_y[..., None, None]) ** 2 + (
            hx[None, None, None, :] - joint_x[..., None, None]
        ) ** 2
        return self.peak * torch.exp(-distance / (2 * 1.5**2))


def dot_clip(path, centres) -> str:
    """A clip of a bright Gaussian dot at ``centres`` (one (x, y) per frame) on a dark background."""
    ys, xs = torch.meshgrid(torch.arange(SIZE[0]), torch.arange(SIZE[1]), indexing="ij")
    with VideoWriter(path, FPS, SIZE) as writer:
        for x, y in centres:
            spot = 200 * torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 4.0**2))
            writer.write((30 + spot).round().clamp(0, 255).to(torch.uint8).expand(3, -1, -1))
    return str(path)


@pytest.fixture(scope="module")
def noisy_still(tmp_path_factory) -> str:
    """30 frames of a still dot whose drawn position jitters by 1.5 px (sd)."""
    rng = np.random.default_rng(0)
    centres = [(64 + dx, 48 + dy) for dx, dy in rng.normal(0, 1.5, (30, 2))]
    return dot_clip(tmp_path_factory.mktemp("clips") / "still.mp4", centres)


class StubDetector:
    """Gives per call the next frame's boxes from a table, shuffled; counts its calls."""

    def __init__(self, frames: list[list[tuple[str, list[float]]]]) -> None:
        self.frames, self.calls = frames, 0
        self.shuffle = random.Random(0).shuffle

    def boxes_of(self, frame: int) -> list[tuple[str, list[float]]]:
        return self.frames[min(frame, len(self.frames) - 1)]

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        persons = list(self.boxes_of(self.calls))
        self.calls += 1
        self.shuffle(persons)
        boxes = torch.tensor([box for _, box in persons], dtype=torch.float32).reshape(-1, 4)
        return boxes, torch.full((len(boxes),), 0.9)


def jitter(track: np.ndarray) -> float:
    """RMS frame-to-frame displacement of a ``(T, 2)`` track."""
    return float(np.sqrt((np.diff(track, axis=0) ** 2).sum(1).mean()))


def test_two_persons_crossing_keep_their_ids(tmp_path):
    clip = dot_clip(tmp_path / "blank.mp4", [(-100, -100)] * 16)
    frames = []
    for i in range(16):  # A walks right, B walks left; they overlap around frame 7; B is missed on frames 9, 10
        a = ("A", [10 + 5 * i, 20, 40 + 5 * i, 80])
        b = ("B", [88 - 5 * i, 22, 118 - 5 * i, 82])
        frames.append([a] if i in (9, 10) else [a, b])
    detector = StubDetector(frames)
    estimator = PoseEstimator(hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 64)), flip_test=False)
    estimator.detector = detector
    ids: dict[str, set[int]] = {"A": set(), "B": set()}
    for frame, result in estimator.stream(clip, track=True):
        assert result.tracked and result.track_ids.dtype == np.int64 and len(result.track_ids) == len(result)
        for box, track_id in zip(result.boxes, result.track_ids):
            who = next(name for name, given in detector.boxes_of(frame.index) if np.allclose(box, given))
            ids[who].add(int(track_id))
    assert detector.calls == 16
    assert len(ids["A"]) == 1 and len(ids["B"]) == 1 and ids["A"] != ids["B"]


def test_detect_every_n_frames_and_detections_asked_for(noisy_still):
    person = [("dot", [40.0, 24.0, 88.0, 72.0])]
    for threshold, calls in ((0.4, [0, 3, 6]), (0.6, list(range(9)))):  # joints score 0.5
        detector = StubDetector([person] * 30)
        estimator = PoseEstimator(DotModel(peak=0.5), flip_test=False, decoder="dark")
        estimator.detector = detector
        detected = []
        for frame, result in estimator.stream(
            noisy_still, track=TrackerConfig(keypoint_threshold=threshold), detect_every=3
        ):
            if frame.index >= 9:
                break
            if detector.calls > len(detected):
                detected.append(frame.index)
            assert result.track_ids.tolist() == [1]  # the same person throughout
            x0, y0, x1, y1 = result.boxes[0]
            assert x0 < result.keypoints[0, 0, 0] < x1 and y0 < result.keypoints[0, 0, 1] < y1
        assert detected == calls, threshold


def test_a_lost_track_asks_for_a_detection_at_once(noisy_still):
    person = [("dot", [40.0, 24.0, 88.0, 72.0])]
    detector = StubDetector([[], person, person, person, person, person])  # nobody on frame 0: no track yet
    estimator = PoseEstimator(DotModel(), flip_test=False, decoder="dark")
    estimator.detector = detector
    persons, detected = [], []
    for frame, result in estimator.stream(noisy_still, track=TrackerConfig(keypoint_threshold=0.1), detect_every=4):
        persons.append(len(result))
        if detector.calls > len(detected):
            detected.append(frame.index)
        if frame.index == 5:
            break
    assert persons == [0, 1, 1, 1, 1, 1]
    assert detected == [0, 1, 5]  # frame 0 found nobody: frame 1 is detected at once, then every 4th from there


def test_one_euro_removes_jitter_of_a_noisy_still_clip(noisy_still):
    estimator = PoseEstimator(DotModel(), flip_test=False, decoder="dark")
    raw = np.stack([r.keypoints[0, 0, :2] for _, r in estimator.stream(noisy_still, track=True)])
    smoothed = np.stack([r.keypoints[0, 0, :2] for _, r in estimator.stream(noisy_still, smooth="one_euro")])
    assert jitter(raw) > 1.0  # the dot's drawn jitter reaches the keypoints
    assert jitter(smoothed) < 0.4 * jitter(raw)
    assert np.abs(smoothed.mean(0) - raw.mean(0)).max() < 1.0  # no drift: only the jitter goes
    stronger = OneEuro(min_cutoff=0.1)
    steadier = np.stack([r.keypoints[0, 0, :2] for _, r in estimator.stream(noisy_still, smooth=stronger)])
    assert jitter(steadier) < jitter(smoothed)


def test_savgol_smooths_each_track_of_the_whole_video(noisy_still):
    estimator = PoseEstimator(DotModel(), flip_test=False, decoder="dark")
    raw = list(estimator.stream(noisy_still, track=True))
    config = Savgol(window=7)
    smoothed = list(estimator.stream(noisy_still, smooth=config))
    expected = smooth_savgol([(r.track_ids, r.keypoints) for _, r in raw], config)
    assert [f.index for f, _ in smoothed] == list(range(30))
    for (frame, result), keypoints in zip(smoothed, expected):
        assert frame.image.shape == (3, *SIZE)
        np.testing.assert_allclose(result.keypoints, keypoints, atol=1e-5)
    assert jitter(np.stack([r.keypoints[0, 0, :2] for _, r in smoothed])) < 0.5 * jitter(
        np.stack([r.keypoints[0, 0, :2] for _, r in raw])
    )


def test_video_options_are_checked_before_any_frame():
    estimator = PoseEstimator(DotModel(), flip_test=False)
    for kwargs, words in (
        ({"smooth": "kalman"}, "smooth must be"),
        ({"detect_every": 0}, "detect_every must be"),
        ({"track": "yes"}, "track must be"),
        ({"smooth": "savgol"}, "webcam 0 never ends"),
    ):
        with pytest.raises(ValueError, match=words):
            next(estimator.stream(Source("0", "webcam"), **kwargs))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("weights") / "w.safetensors"
    save_file(hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 64)).state_dict(), str(path))
    return str(path)


def predict_args(clip: str, weights: str, out, *extra: str) -> list[str]:
    model = ["--model", "hrnet_w18_small_pose", "--checkpoint", weights, "--device", "cpu"]
    return ["predict", clip, *model, "--out-dir", str(out), *extra]


def test_cli_track_smooth_and_keypoint_format(noisy_still, weights, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--detector", "none", "--track", "--smooth", "one_euro", "--keypoint-format", "openpose18"]
    assert main(predict_args(noisy_still, weights, out, *args)) == 0
    results = json.loads((out / "results.json").read_text())
    table = json.loads((out / "images.json").read_text())
    assert len(results) == 30 and {r["track_id"] for r in results} == {1}
    assert all(len(r["keypoints"]) == 18 * 3 for r in results)
    assert table["categories"][0]["keypoints"] == list(keypoint_format("openpose18").names)
    assert table["info"]["tracked"] and table["info"]["smooth"] == "one_euro"
    assert table["info"]["keypoint_format"] == "openpose18"
    assert (out / "still_pose.mp4").is_file()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--one-euro", "1", "0.5"], "--one-euro sets the one_euro filter: add --smooth one_euro"),
        (["--smooth", "savgol", "--savgol-window", "4"], "--savgol-window"),
        (["--smooth", "one_euro", "--one-euro", "0", "1"], "--one-euro"),
        (["--detect-every", "0"], "--detect-every must be at least 1"),
    ],
)
def test_cli_video_flags_are_checked_before_any_weights_load(noisy_still, tmp_path, capsys, extra, words):
    out = tmp_path / "out"
    assert main(predict_args(noisy_still, str(tmp_path / "missing.safetensors"), out, *extra)) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_gives_a_cpu_the_fast_video_pipeline(weights, tmp_path, capsys, monkeypatch):
    clip = dot_clip(tmp_path / "short.mp4", [(64, 48)] * 3)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))
    name = CPU_VIDEO_DEFAULTS.detector
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    net = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=91)
    state = net.state_dict()
    state["roi_heads.box_predictor.cls_score.weight"].mul_(0.01)  # every proposal a person
    state["roi_heads.box_predictor.cls_score.bias"].zero_()[1] = 8.0
    (tmp_path / "torch_hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp_path / "torch_hub" / "checkpoints" / url.rsplit("/", 1)[1])
    out = tmp_path / "out"
    assert main(predict_args(clip, weights, out, "--no-draw")) == 0
    assert f"videos on a CPU: person detector {name} on every 5 frame(s)" in capsys.readouterr().err
    info = json.loads((out / "images.json").read_text())["info"]
    assert info["detector"] == name and info["detect_every"] == CPU_VIDEO_DEFAULTS.detect_every
    assert info["flip_test"] is False and info["tracked"] is True
    results = json.loads((out / "results.json").read_text())
    assert results and all(isinstance(r["track_id"], int) for r in results)


def test_results_convert_between_formats_and_refuse_others():
    from hrnet_zoo import PoseResult
    from hrnet_zoo.keypoints import MPII_KEYPOINTS, get_keypoint_set
    from hrnet_zoo.pose.result import converted_set

    coco = get_keypoint_set("coco")
    keypoints = np.random.default_rng(0).uniform(10, 90, (2, 17, 3)).astype(np.float32)
    boxes = np.array([[0, 0, 50, 50], [10, 10, 90, 90]], np.float32)
    result = PoseResult(keypoints, boxes, np.ones(2), np.ones(2), np.ones(2), coco.names, coco.skeleton, (100, 100))
    body25 = replace(result, track_ids=np.array([4, 7])).convert("body25")
    assert body25.keypoints.shape == (2, 25, 3) and body25.keypoint_names == keypoint_format("body25").names
    np.testing.assert_allclose(body25.keypoints[:, 1, :2], keypoints[:, 5:7, :2].mean(1))  # Neck
    assert body25.track_ids.tolist() == [4, 7] and body25.to_coco(1)[1]["track_id"] == 7
    assert converted_set(coco, "h36m") == keypoint_format("h36m")
    with pytest.raises(ValueError, match="only poses of the keypoint formats coco"):
        converted_set(MPII_KEYPOINTS, "openpose18")
