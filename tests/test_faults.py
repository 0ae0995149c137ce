"""Faults and bad input: network failures bounded and survived, weights refused before anything is copied,
clear errors for bad boxes, images, names and data sets. The CLI's own table is in test_cli_errors.py."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants
from PIL import Image
from safetensors.torch import save, save_file

import hrnet_zoo
from hrnet_zoo import PoseEstimator
from hrnet_zoo._download import cache_dir
from hrnet_zoo.errors import CheckpointMismatchError, WeightsUnavailableError
from hrnet_zoo.io.coco_files import read_coco_keypoints, read_detections
from hrnet_zoo.io.images import load_image
from hrnet_zoo.models import PRETRAINED_CFGS, load_checkpoint

from .conftest import REPO
from .test_hub import ARCH, REPO_ID, openmmlab_bytes, register, same_weights

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and ".partial" in p.name]


# ---------------------------------------------------------------------------------------------------- network


@pytest.mark.parametrize("fault", ["cut", "stall", "500"])
def test_a_failing_hub_falls_through_to_upstream(server, monkeypatch, source_model, fault, caplog):
    """Any failure of the Hub (cut body, stall past the timeout, server error) falls through to the next source."""
    cfg = register(monkeypatch, server, openmmlab_bytes(source_model))
    server.files[f"/{REPO_ID}/model.safetensors"] = save(source_model.state_dict())
    server.faults[f"/{REPO_ID}"] = fault
    server.stall_seconds = 3.0
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    start = time.monotonic()
    with caplog.at_level(logging.INFO, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model) and f"from upstream {cfg.url}" in caplog.text
    assert time.monotonic() - start < 60
    assert not [p for p in Path(constants.HF_HUB_CACHE).rglob("model.safetensors") if p.exists()]


@pytest.mark.parametrize("fault", ["cut", "stall", "500"])
def test_a_failing_upstream_is_bounded_and_leaves_nothing(server, monkeypatch, source_model, fault):
    register(monkeypatch, server, openmmlab_bytes(source_model))
    server.faults["/mmpose/" + Path(PRETRAINED_CFGS[ARCH].url).name] = fault
    server.stall_seconds = 4.0
    monkeypatch.setenv("HRNET_ZOO_DOWNLOAD_TIMEOUT", "1")
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        hrnet_zoo.create_model(ARCH, pretrained=True)
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert f"Hugging Face Hub {REPO_ID}/model.safetensors" in message and "upstream http://127.0.0.1" in message
    assert "To supply the weights" in message
    assert leftovers(cache_dir()) == [] and not list((cache_dir() / "upstream").glob("*.safetensors"))


def test_partial_files_of_killed_downloads_are_removed(server, monkeypatch, source_model):
    cfg = register(monkeypatch, server, openmmlab_bytes(source_model))
    folder = cache_dir() / "upstream"
    folder.mkdir(parents=True)
    name = Path(cfg.url)
    stale = folder / f".{name.stem}.partial-999999999{name.suffix}"  # of a process that no longer runs
    stale.write_bytes(b"half a download")
    assert same_weights(hrnet_zoo.create_model(ARCH, pretrained=True), source_model)
    assert not stale.exists() and leftovers(cache_dir()) == []


def test_hub_files_are_checked_against_the_recorded_sha256(server, monkeypatch, source_model, caplog):
    """Other valid weights of the same size on the Hub are rejected, removed, and the upstream file serves."""
    register(monkeypatch, server, openmmlab_bytes(source_model))
    good = save(source_model.state_dict())
    other = hrnet_zoo.create_model(ARCH)
    bad = save(other.state_dict())
    assert len(bad) == len(good) and bad != good
    monkeypatch.setitem(
        PRETRAINED_CFGS, ARCH, replace(PRETRAINED_CFGS[ARCH], hf_hub_sha256=hashlib.sha256(good).hexdigest())
    )
    server.files[f"/{REPO_ID}/model.safetensors"] = bad
    with caplog.at_level(logging.INFO, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model) and "from upstream" in caplog.text
    assert not [p for p in Path(constants.HF_HUB_CACHE).rglob("model.safetensors") if p.exists()]
    server.files[f"/{REPO_ID}/model.safetensors"] = good  # the right file is taken
    (cache_dir() / "upstream").rename(cache_dir() / "moved")
    with caplog.at_level(logging.INFO, logger="hrnet_zoo"):
        assert same_weights(hrnet_zoo.create_model(ARCH, pretrained=True), source_model)
    assert f"from Hugging Face Hub {REPO_ID}" in caplog.text


def test_an_unwritable_cache_still_loads_verified_weights(server, monkeypatch, source_model, tmp_path, caplog):
    register(monkeypatch, server, openmmlab_bytes(source_model))
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HRNET_ZOO_CACHE", str(blocker / "hrnet_zoo"))  # cannot be created
    with caplog.at_level(logging.WARNING, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model) and "could not cache the converted weights" in caplog.text
    assert model.pose_meta.origin.name == ARCH


def test_a_full_cache_still_loads_verified_weights(server, monkeypatch, source_model, caplog):
    register(monkeypatch, server, openmmlab_bytes(source_model))
    import hrnet_zoo.models._weights as weights

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(weights, "save_file", disk_full)
    with caplog.at_level(logging.WARNING, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model) and "No space left on device" in caplog.text
    assert leftovers(cache_dir()) == [] and not list(cache_dir().rglob("*.safetensors"))


def test_download_timeout_setting_is_checked(monkeypatch):
    from hrnet_zoo._download import download_timeout

    monkeypatch.setenv("HRNET_ZOO_DOWNLOAD_TIMEOUT", "2.5")
    assert download_timeout() == 2.5
    monkeypatch.setenv("HRNET_ZOO_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="HRNET_ZOO_DOWNLOAD_TIMEOUT must be a positive number"):
        download_timeout()


# ---------------------------------------------------------------------------------------------------- weights


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def unchanged(model, before) -> bool:
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda sd, k: sd.__setitem__(k, sd[k].clone().fill_(float("nan"))), "holds NaN or infinite values"),
        (lambda sd, k: sd.__setitem__(k, sd[k].clone().fill_(float("inf"))), "holds NaN or infinite values"),
        (lambda sd, k: sd.__setitem__(k, sd[k].long()), "dtype torch.int64"),
        (lambda sd, k: sd.__setitem__(k, sd[k].bool()), "dtype torch.bool"),
        (lambda sd, k: sd.__setitem__(k, sd[k].to(torch.complex64)), "dtype torch.complex64"),
        (lambda sd, k: sd.__setitem__(k, torch.empty_like(sd[k], device="meta")), "meta tensor holds no plain"),
        (lambda sd, k: sd.__setitem__(k, sd[k].to_sparse()), "torch.sparse_coo tensor holds no plain"),
    ],
)
def test_unusable_tensors_are_refused_before_anything_is_copied(source_model, change, match):
    state_dict = dict(source_model.state_dict())
    change(state_dict, "backbone.stage4.1.fuse.paths.0.3.0.weight")  # late in the order: a partial copy would show
    model = hrnet_zoo.create_model(ARCH)
    before = snapshot(model)
    with pytest.raises(CheckpointMismatchError, match=match):
        load_checkpoint(model, state_dict)
    assert unchanged(model, before)


def test_another_width_is_named(source_model):
    model = hrnet_zoo.create_model("hrnet_w32_pose", device="meta")
    w18 = hrnet_zoo.create_model("hrnet_w18_pose").state_dict()
    with pytest.raises(CheckpointMismatchError, match=r"18/36/72/144 channels \(HRNet-W18\).*32/64/128/256.*hrnet_w18"):
        load_checkpoint(model, w18)


def test_counters_are_optional_and_formats_told_by_content(source_model, tmp_path):
    without = {k: v for k, v in source_model.state_dict().items() if not k.endswith("num_batches_tracked")}
    model = hrnet_zoo.create_model(ARCH)
    load_checkpoint(model, without)
    assert same_weights(model, source_model)
    safetensors_named_pth = tmp_path / "weights.pth"
    save_file(source_model.state_dict(), str(safetensors_named_pth))
    pickle_named_safetensors = tmp_path / "weights.safetensors"
    torch.save(source_model.state_dict(), pickle_named_safetensors)
    for path in (safetensors_named_pth, pickle_named_safetensors):
        assert same_weights(hrnet_zoo.create_model(ARCH, checkpoint_path=path), source_model)


# ---------------------------------------------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def estimator():
    return PoseEstimator(hrnet_zoo.create_model(ARCH, input_size=(64, 48)), device="cpu")


@pytest.mark.parametrize(
    ("boxes", "match"),
    [
        ([[10, 10, float("inf"), 50]], "box 0 of image 0 must hold finite pixel values"),
        ([[10, 10, 1e39, 50]], "must hold finite pixel values"),
        ([[10, 10, 50, 50], [10, 10, 2e6, 50]], "box 1 of image 0 must hold finite"),
        ({"a": [1, 2, 3, 4]}, "got a dict"),
        ({1, 2, 3, 4}, "got a set"),
        ([["a", "b", "c", "d"]], "must be numbers"),
        ([[1, 2, 3]], r"must have shape \(P, 4\)"),
    ],
)
def test_bad_boxes(estimator, boxes, match):
    with pytest.raises(ValueError, match=match):
        estimator.predict(PHOTO, boxes=boxes)


def test_empty_inputs_and_huge_images(estimator, monkeypatch):
    assert estimator.predict([]) == []
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the photo is 512x512: a "decompression bomb" now
    with pytest.raises(ValueError, match="too large to load safely"):
        load_image(PHOTO)


def test_names_and_arguments():
    for name in (None, 123, ""):
        with pytest.raises(ValueError, match="model_name must be a model name"):
            hrnet_zoo.create_model(name)
    with pytest.raises(ValueError, match="in_chans must be a positive number"):
        hrnet_zoo.create_model(ARCH, in_chans=0)
    with pytest.raises(ValueError, match="sides from 4 to 2048 pixels"):
        hrnet_zoo.create_model(ARCH, input_size=(4096, 4096))


def test_a_config_asking_for_a_huge_input_is_refused(tmp_path):
    import json

    folder = hrnet_zoo.save_pretrained(hrnet_zoo.create_model(ARCH), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["model_args"]["pose_meta"]["codec"]["input_size"] = [4096, 4096]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="sides from 4 to 2048"):
        hrnet_zoo.create_model(f"local-dir:{folder}", pretrained=True)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json' is not JSON"):
        hrnet_zoo.create_model(f"local-dir:{folder}")


# ---------------------------------------------------------------------------------------------------- data sets


def coco(tmp_path, **changes):
    import json

    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 120}],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 80], "keypoints": [20.0, 30.0, 2] * 17}
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)]}],
    }
    for key, value in changes.items():
        if key.startswith("ann_"):
            data["annotations"][0][key[4:]] = value
        elif key.startswith("drop_"):
            target = data["annotations"][0] if key[5:] in data["annotations"][0] else data["images"][0]
            target.pop(key[5:], None) if key[5:] in target else data.pop(key[5:])
        else:
            data[key] = value
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"drop_images": None}, "must have an 'images' list"),
        ({"drop_annotations": None}, "must have an 'annotations' list"),
        ({"annotations": {"1": {}}}, "must have an 'annotations' list"),
        ({"drop_bbox": None}, r"annotations\[0\] \(id 7\) must have 'image_id' and 'bbox'"),
        ({"drop_width": None}, r"images\[0\] must have 'id', 'file_name', 'width' and 'height'"),
        ({"ann_image_id": 5}, "refers to image_id 5, which 'images' does not list"),
        ({"ann_keypoints": [1.0, 2.0] * 17}, "keypoints must be finite numbers in \\(x, y, visibility\\) triplets"),
        ({"ann_keypoints": ["1"] * 51}, "keypoints must be finite numbers"),
        ({"ann_keypoints": None}, "keypoints must be finite numbers"),
        ({"ann_bbox": [1, 2, 3]}, "bbox must be 4 finite numbers"),
        ({"ann_bbox": [50, 50, -10, -20]}, "has a negative width or height"),
    ],
)
def test_malformed_annotation_files(tmp_path, changes, match):
    path = coco(tmp_path, **changes)
    with pytest.raises(ValueError, match=match):
        read_coco_keypoints(path)
    from hrnet_zoo.train import CocoKeypointDataset

    with pytest.raises(ValueError, match=match):
        CocoKeypointDataset(path, tmp_path)


def test_malformed_detections(tmp_path):
    with pytest.raises(ValueError, match="detection 1 must have 'image_id', 'bbox' and 'score'"):
        read_detections([{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}, {"image_id": 1, "bbox": [0, 0, 5, 5]}])
    (tmp_path / "d.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="is not JSON"):
        read_detections(tmp_path / "d.json")
    assert np.isclose(read_detections([{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}])[0]["score"], 0.5)
