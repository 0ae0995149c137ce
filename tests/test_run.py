"""The run in the library: ``PoseEstimator.run`` from images and videos to a finished run folder."""

from __future__ import annotations

import json
import logging
import shutil
from fractions import Fraction

import pytest
import torch
from pycocotools.coco import COCO

from hrnet_zoo import PoseEstimator
from hrnet_zoo.errors import OutputRefusedError
from hrnet_zoo.pose import Source, VideoReader, VideoWriter
from hrnet_zoo.pose.run import RunSummary

from .conftest import REPO

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"
FPS = Fraction(25)
TWO_PERSONS = ([[10, 10, 60, 90], [50, 5, 120, 95]], [0.9, 0.6])


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    """A 5-frame clip of a bright box on grey."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with VideoWriter(path, FPS, (96, 130)) as writer:
        for i in range(5):
            image = torch.full((3, 96, 130), 30, dtype=torch.uint8)
            image[:, 20:80, 10 + 5 * i : 40 + 5 * i] = 200
            writer.write(image)
    return str(path)


@pytest.fixture
def estimator(tiny_model) -> PoseEstimator:
    """The tiny golden architecture (5 joints) at 64x64, with a stub detector finding two persons per frame."""
    return PoseEstimator(tiny_model, device="cpu", flip_test=False, input_size=(64, 64), detector=lambda _: TWO_PERSONS)


def stub_detector(fail_on_call: int, error: BaseException):
    """A detector finding one person per frame that raises ``error`` on its ``fail_on_call``-th call."""
    calls = []

    def detect(image: torch.Tensor) -> tuple[list, list]:
        calls.append(image.shape)
        if len(calls) == fail_on_call:
            raise error
        return [[10, 10, 60, 90]], [0.8]

    return detect


def files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_run_writes_a_folder_that_pycocotools_reads(estimator, video, tmp_path):
    out = tmp_path / "out"
    boxes = {"astronaut.jpg": [[100, 20, 330, 490]]}  # by file name: the photo skips the detector
    summary = estimator.run([video, PHOTO], out, boxes=boxes, batch_frames=2, info={"model": "tiny"})
    assert summary == RunSummary(
        folder=out,
        frames=6,
        persons=11,
        results_file=out / "results.json",
        images_file=out / "images.json",
        drawn=(out / "clip_pose.mp4", out / "astronaut_pose.png"),
    )
    assert str(summary) == f"6 frame(s), 11 person(s) -> {out / 'results.json'}, images.json and 2 drawn file(s)"
    assert files(out) == ["astronaut_pose.png", "clip_pose.mp4", "images.json", "results.json"]
    coco = COCO(str(summary.images_file))
    predictions = coco.loadRes(str(summary.results_file))
    assert len(coco.imgs) == 6 and len(predictions.anns) == 11
    assert coco.imgs[6] == {"id": 6, "file_name": str(PHOTO), "frame": 0, "width": 512, "height": 512}
    assert [coco.imgs[i]["frame"] for i in range(1, 6)] == [0, 1, 2, 3, 4]
    assert coco.cats[1]["keypoints"] == [f"joint_{i}" for i in range(5)]
    assert json.loads(summary.images_file.read_text())["info"]["model"] == "tiny"
    photo = predictions.loadAnns(predictions.getAnnIds(imgIds=[6]))
    assert len(photo) == 1 and photo[0]["bbox"] == [100, 20, 330, 490] and photo[0]["box_score"] == 1.0
    first = predictions.loadAnns(predictions.getAnnIds(imgIds=[1]))
    assert [a["box_score"] for a in first] == [0.9, 0.6] and len(first[0]["keypoints"]) == 15
    with VideoReader(Source(str(out / "clip_pose.mp4"), "video")) as reader:
        assert reader.fps == FPS and reader.size == (96, 130) and len(list(reader)) == 5


def test_a_second_run_gets_a_fresh_folder_and_exist_ok_reuses_it(estimator, tmp_path, caplog):
    out = tmp_path / "out"
    first = estimator.run(PHOTO, out, draw=False)
    assert first.folder == out and first.drawn == () and files(out) == ["images.json", "results.json"]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with caplog.at_level(logging.INFO, logger="hrnet_zoo"):
        second = estimator.run(str(PHOTO), str(out))
    assert (
        second.folder == tmp_path / "out-2" and "writing to" in caplog.text and str(tmp_path / "out-2") in caplog.text
    )
    assert files(second.folder) == ["astronaut_pose.png", "images.json", "results.json"]
    assert estimator.run([PHOTO], out).folder == tmp_path / "out-3"
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # the earlier run is untouched
    reused = estimator.run(PHOTO, out, exist_ok=True)
    assert reused.folder == out and files(out) == ["astronaut_pose.png", "images.json", "results.json"]
    assert (out / "results.json").stat().st_mtime_ns != before["results.json"]


def test_an_input_is_never_overwritten(estimator, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(PHOTO, out / "a_pose.png")  # an input named like the drawing of a.jpg
    shutil.copy(PHOTO, tmp_path / "a.jpg")
    inputs = [tmp_path / "a.jpg", out / "a_pose.png"]
    before = (out / "a_pose.png").read_bytes()
    with pytest.raises(OutputRefusedError) as refused:
        estimator.run(inputs, out, exist_ok=True)
    assert refused.value.reason == "input" and refused.value.path == out / "a_pose.png"
    assert "one of the inputs" in str(refused.value) and "--" not in str(refused.value)  # no CLI flags in the library
    assert files(out) == ["a_pose.png"] and (out / "a_pose.png").read_bytes() == before
    summary = estimator.run(inputs, out)  # out holds a file: the run goes to out-2
    assert summary.folder == tmp_path / "out-2" and (out / "a_pose.png").read_bytes() == before
    assert files(summary.folder) == ["a_pose.png", "a_pose_pose.png", "images.json", "results.json"]


def test_links_and_files_in_the_way_are_refused(estimator, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(OutputRefusedError) as refused:
        estimator.run(PHOTO, out, exist_ok=True)
    assert refused.value.reason == "symlink" and not (tmp_path / "elsewhere.json").exists()
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(OutputRefusedError) as refused:
        estimator.run(PHOTO, tmp_path / "a_file")
    assert refused.value.reason == "not_a_folder" and "--" not in str(refused.value)
    assert (tmp_path / "a_file").read_text() == "not a folder" and files(out) == ["results.json"]


def test_ctrl_c_keeps_the_frames_done_in_complete_files(tiny_model, video, tmp_path):
    estimator = PoseEstimator(
        tiny_model, device="cpu", flip_test=False, input_size=(64, 64), detector=stub_detector(4, KeyboardInterrupt())
    )
    summary = estimator.run(video, tmp_path / "out", batch_frames=1)
    assert summary.interrupted and summary.frames == 3 and summary.persons == 3
    assert summary.drawn == (tmp_path / "out" / "clip_pose.mp4",) and str(summary).endswith("(interrupted)")
    assert files(summary.folder) == ["clip_pose.mp4", "images.json", "results.json"]  # no partial file is left
    assert len(COCO(str(summary.images_file)).loadRes(str(summary.results_file)).anns) == 3
    with VideoReader(Source(str(summary.drawn[0]), "video")) as reader:
        assert len(list(reader)) == 3


def test_a_failed_run_leaves_nothing_behind(tiny_model, video, tmp_path):
    estimator = PoseEstimator(
        tiny_model,
        device="cpu",
        flip_test=False,
        input_size=(64, 64),
        detector=stub_detector(3, RuntimeError("detector broke")),
    )
    with pytest.raises(RuntimeError, match="detector broke"):
        estimator.run(video, tmp_path / "out", batch_frames=1)
    assert not (tmp_path / "out").exists()  # no partial file, no folder the run created
    with pytest.raises(ValueError, match="batch_frames must be positive"):
        estimator.run(video, tmp_path / "out", batch_frames=0)
    with pytest.raises(FileNotFoundError, match="not found"):
        estimator.run(tmp_path / "missing.jpg", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_the_progress_bar_is_asked_for(estimator, video, tmp_path, capsys):
    estimator.run(video, tmp_path / "quiet")
    assert capsys.readouterr().err == ""
    estimator.run(video, tmp_path / "loud", progress=True)
    err = capsys.readouterr().err
    assert "frames: 100%" in err and "5/5" in err
