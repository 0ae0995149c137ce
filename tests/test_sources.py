"""Sources and run outputs: videos read and written with PyAV, the frame generator, results pycocotools reads."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from safetensors.torch import save_file

import hrnet_zoo
from hrnet_zoo import PoseEstimator
from hrnet_zoo.cli import main
from hrnet_zoo.io.outputs import run_folder
from hrnet_zoo.keypoints import COCO_KEYPOINTS
from hrnet_zoo.pose import Frame, RunWriter, Source, VideoReader, VideoWriter, find_sources, read_frames

from .conftest import REPO

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"
FPS = Fraction(30000, 1001)


def moving_box_frames(count: int, size: tuple[int, int] = (96, 130)) -> list[torch.Tensor]:
    height, width = size
    frames = []
    for i in range(count):
        image = torch.full((3, height, width), 30, dtype=torch.uint8)
        image[:, 20:80, 10 + 5 * i : 40 + 5 * i] = torch.tensor([220, 180, 40], dtype=torch.uint8)[:, None, None]
        frames.append(image)
    return frames


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    """A 7-frame 29.97 fps H.264 clip, written with the package's own writer."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with VideoWriter(path, FPS, (96, 130)) as writer:
        for image in moving_box_frames(7):
            writer.write(image)
    return str(path)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("weights") / "w.safetensors"
    save_file(hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 64)).state_dict(), str(path))
    return str(path)


def test_video_round_trip(video):
    with VideoReader(Source(video, "video")) as reader:
        assert reader.fps == FPS and reader.size == (96, 130) and reader.frame_count == 7
        decoded = list(reader)
    assert len(decoded) == 7 and decoded[0].shape == (3, 96, 130) and decoded[0].dtype == torch.uint8
    for got, sent in zip(decoded, moving_box_frames(7)):  # lossy H.264, but the picture is the one written
        assert (got.float() - sent.float()).abs().mean() < 4
    with VideoWriter(video.replace("clip", "odd"), 25, (31, 45)) as writer:  # 4:2:0 needs even sizes: padded
        writer.write(torch.zeros(3, 31, 45, dtype=torch.uint8))
    with VideoReader(Source(video.replace("clip", "odd"), "video")) as reader:
        assert reader.size == (32, 46) and len(list(reader)) == 1


def test_find_sources_and_read_frames(video, tmp_path):
    shutil.copy(video, tmp_path / "b.mp4")
    shutil.copy(PHOTO, tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("skipped")
    sources = find_sources([tmp_path, str(tmp_path / "*.jpg"), 0, "3", "0"])
    kinds = [(s.kind, s.stem) for s in sources]
    assert kinds == [("image", "a"), ("video", "b"), ("webcam", "webcam0"), ("webcam", "webcam3")]  # each once
    frames = list(read_frames([tmp_path / "a.jpg", str(tmp_path / "b.mp4")]))
    assert [(f.source.kind, f.index, f.fps) for f in frames] == [("image", 0, None)] + [
        ("video", i, FPS) for i in range(7)
    ]
    with pytest.raises(FileNotFoundError, match=r"input file .*nope\.mp4.* not found"):
        find_sources([tmp_path / "nope.mp4"])
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match=r"could not open video .*broken\.mp4"):
        list(read_frames(tmp_path / "broken.mp4"))
    with pytest.raises(ValueError, match="could not open webcam '9'"):
        list(read_frames(9))


def test_stream_yields_each_frame_as_decoded(video):
    model = hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 64))
    boxes_seen = []

    def detector(image):
        boxes_seen.append(image.shape)
        return [[10, 10, 60, 90]], [0.75]

    estimator = PoseEstimator(model, device="cpu", flip_test=False, detector=detector)
    stream = estimator.stream(
        [video, str(PHOTO)], boxes={"astronaut.jpg": [[0, 0, 50, 60], [5, 5, 50, 60]]}, batch_frames=3
    )
    first_frame, first_result = next(stream)  # a generator: the first batch only has been read
    assert len(boxes_seen) == 3 and first_frame.index == 0 and len(first_result) == 1
    rest = list(stream)
    assert [f.index for f, _ in rest] == [1, 2, 3, 4, 5, 6, 0] and len(boxes_seen) == 7  # the photo has boxes
    photo_frame, photo_result = rest[-1]
    assert photo_frame.source.kind == "image" and photo_result.boxes.tolist() == [[0, 0, 50, 60], [5, 5, 55, 65]]
    direct = estimator.predict([first_frame.image], boxes=[[[10, 10, 50, 80]]])[0]
    np.testing.assert_allclose(first_result.keypoints, direct.keypoints)
    with pytest.raises(ValueError, match="batch_frames must be positive"):
        next(estimator.stream(video, batch_frames=0))


def test_run_writer_results_load_in_pycocotools(video, tmp_path):
    model = hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 64))
    estimator = PoseEstimator(
        model, device="cpu", flip_test=False, detector=lambda image: ([[10, 10, 60, 90], [50, 5, 120, 95]], [0.9, 0.6])
    )
    shutil.copy(video, tmp_path / "clip.mp4")
    sources = find_sources([video, str(PHOTO), tmp_path / "clip.mp4"])
    out = tmp_path / "run"
    with RunWriter(out, sources, estimator.keypoints, info={"model": "tiny"}) as writer:
        assert not (out / "results.json").exists()  # streamed to a hidden partial file until the run ends
        for frame, result in estimator.stream(sources):
            writer.add(frame, result)
    assert sorted(p.name for p in out.iterdir()) == [
        "astronaut_pose.png",
        "clip_2_pose.mp4",
        "clip_pose.mp4",
        "images.json",
        "results.json",
    ]
    coco = COCO(str(out / "images.json"))
    predictions = coco.loadRes(str(out / "results.json"))
    assert len(coco.imgs) == 15 and len(predictions.anns) == 30
    assert coco.imgs[8] == {"id": 8, "file_name": str(PHOTO), "frame": 0, "width": 512, "height": 512}
    assert coco.imgs[15]["frame"] == 6 and coco.imgs[15]["file_name"] == str(tmp_path / "clip.mp4")
    assert coco.cats[1]["keypoints"] == list(COCO_KEYPOINTS.names) and coco.cats[1]["skeleton"][0] == [16, 14]
    assert json.loads((out / "images.json").read_text())["info"]["model"] == "tiny"
    first = predictions.loadAnns(predictions.getAnnIds(imgIds=[1]))
    assert [a["box_score"] for a in first] == [0.9, 0.6] and first[0]["bbox"] == [10, 10, 50, 80]
    for name in ("clip_pose.mp4", "clip_2_pose.mp4"):
        with VideoReader(Source(str(out / name), "video")) as reader:
            assert reader.fps == FPS and reader.size == (96, 130) and len(list(reader)) == 7


def test_run_writer_on_interrupt_and_failure(video, tmp_path):
    estimator = PoseEstimator(
        hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 64)), device="cpu", flip_test=False
    )
    sources = find_sources([video])
    with pytest.raises(KeyboardInterrupt), RunWriter(tmp_path / "stopped", sources, estimator.keypoints) as writer:
        for frame, result in estimator.stream(sources, batch_frames=2):
            writer.add(frame, result)
            if frame.index == 2:
                raise KeyboardInterrupt  # Ctrl-C on a webcam: what was done is kept, complete
    assert len(json.loads((tmp_path / "stopped" / "images.json").read_text())["images"]) == 3
    with VideoReader(Source(str(tmp_path / "stopped" / "clip_pose.mp4"), "video")) as reader:
        assert len(list(reader)) == 3
    with pytest.raises(RuntimeError), RunWriter(tmp_path / "failed", sources, estimator.keypoints) as writer:
        frame, result = next(estimator.stream(sources))
        writer.add(frame, result)
        raise RuntimeError("disk full")
    assert not (tmp_path / "failed").exists()  # no partial or unfinished file, no empty folder is left
    bad = Frame(torch.zeros(3, 96, 130, dtype=torch.uint8), sources[0])
    result = estimator.predict(bad.image)[0]
    result.keypoints[0, 3, 0] = float("nan")
    with RunWriter(tmp_path / "nan", sources, estimator.keypoints, draw=False) as writer:
        writer.add(bad, result)
    assert json.loads((tmp_path / "nan" / "results.json").read_text()) == [] and writer.dropped == 1


def test_run_folders_are_never_reused(tmp_path):
    assert run_folder(tmp_path / "out") == tmp_path / "out"
    (tmp_path / "out").mkdir()
    assert run_folder(tmp_path / "out") == tmp_path / "out"  # empty: used
    (tmp_path / "out" / "results.json").write_text("[]")
    (tmp_path / "out-2").mkdir()
    (tmp_path / "out-2" / "results.json").write_text("[]")
    assert run_folder(tmp_path / "out") == tmp_path / "out-3"
    assert run_folder(tmp_path / "out", exist_ok=True) == tmp_path / "out"


def test_cli_video_and_images(video, weights, tmp_path, capsys):
    shutil.copy(PHOTO, tmp_path / "clip.jpg")  # same stem as the video
    args = [
        "predict",
        video,
        str(tmp_path / "clip.jpg"),
        "--model",
        "hrnet_w18_small_pose",
        "--checkpoint",
        weights,
        "--device",
        "cpu",
        "--detector",
        "none",
        "--out-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    assert "8 frame(s), 8 person(s)" in capsys.readouterr().out
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["clip_2_pose.png", "clip_pose.mp4", "images.json", "results.json"]
    predictions = COCO(str(out / "images.json")).loadRes(str(out / "results.json"))
    assert sorted(predictions.getImgIds()) == list(range(1, 9))
    with VideoReader(Source(str(out / "clip_pose.mp4"), "video")) as reader:
        assert reader.fps == FPS and reader.size == (96, 130) and len(list(reader)) == 7
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main([*args, "--no-draw"]) == 0  # the folder holds a run: a new one is made
    assert sorted(p.name for p in (tmp_path / "out-2").iterdir()) == ["images.json", "results.json"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert main([*args, "--exist-ok", "--no-draw"]) == 0
    assert (out / "results.json").stat().st_mtime_ns != before["results.json"]
    assert (out / "clip_pose.mp4").stat().st_mtime_ns == before["clip_pose.mp4"]
    (out / "clip_pose.mp4").unlink()
    (out / "clip_pose.mp4").symlink_to(tmp_path / "elsewhere.mp4")
    assert main([*args, "--exist-ok"]) == 2 and "symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere.mp4").exists()


def test_cli_detector_from_a_local_checkpoint(weights, tmp_path, capsys):
    from .test_detect import LIGHT, person_biased_ssdlite

    checkpoint = tmp_path / "ssdlite.pth"
    torch.save(person_biased_ssdlite(), checkpoint)
    args = [
        "predict",
        str(PHOTO),
        "--model",
        "hrnet_w18_small_pose",
        "--checkpoint",
        weights,
        "--device",
        "cpu",
        "--detector",
        LIGHT,
        "--detector-checkpoint",
        str(checkpoint),
        "--detection-threshold",
        "0.3",
        "--out-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(results) > 1 and all(r["box_score"] >= 0.3 for r in results)
    info = json.loads((tmp_path / "out" / "images.json").read_text())["info"]
    assert info["detector"] == LIGHT and info["model"] == "hrnet_w18_small_pose"
