"""Faults and bad input: network failures bounded and survived, weights refused before anything is copied,
clear errors for bad boxes, images, names and data sets. The CLI's own table is in test_cli_errors.py."""

from __future__ import annotations

import copy
import errno
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import signal
import socket
import threading
import time
import types
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from huggingface_hub import constants
from PIL import Image
from pycocotools.coco import COCO
from safetensors.torch import save, save_file
from torchvision.models import get_model

import hrnet_zoo
from hrnet_zoo import PoseEstimator
from hrnet_zoo._download import cache_dir
from hrnet_zoo.codec import HeatmapCodec, TopDownTransform
from hrnet_zoo.errors import CheckpointMismatchError, ModelConfigError, WeightsUnavailableError
from hrnet_zoo.io.coco_files import read_coco_keypoints, read_detections
from hrnet_zoo.io.images import load_image
from hrnet_zoo.models import PRETRAINED_CFGS, load_checkpoint
from hrnet_zoo.pose import PersonDetector, Source, VideoReader, VideoWriter, find_sources, read_frames
from hrnet_zoo.train import CocoKeypointDataset

from .conftest import REPO
from .stand_in_server import COMMIT
from .test_detect import LIGHT, person_biased_ssdlite, served_weights
from .test_hub import ARCH, REPO_ID, openmmlab_bytes, register, same_weights

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and ".partial" in p.name]


# ---------------------------------------------------------------------------------------------------- network


@pytest.mark.parametrize("fault", ["cut", "stall", "500"])
def test_a_failing_hub_falls_through_to_upstream(server, monkeypatch, source_model, fault, caplog):
    """Any failure of the Hub (cut body, stall past the timeout, server error) falls through to the next source."""
    cfg = register(monkeypatch, server, openmmlab_bytes(source_model))
    hub_file = save(source_model.state_dict())
    monkeypatch.setitem(PRETRAINED_CFGS, ARCH, replace(cfg, hf_hub_sha256=hashlib.sha256(hub_file).hexdigest()))
    server.files[f"/{REPO_ID}/model.safetensors"] = hub_file
    server.faults[f"/{REPO_ID}"] = fault
    server.stall_seconds = 3.0
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    start = time.monotonic()
    with caplog.at_level(logging.INFO, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model) and f"from upstream {cfg.url}" in caplog.text
    assert any(REPO_ID in path for _, path in server.requests), "the checked Hub is tried first"
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


class FullDisk(io.RawIOBase):
    """A file on a full disk: every write fails with ENOSPC."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_cache_still_loads_verified_weights(server, monkeypatch, source_model, caplog):
    """ENOSPC (simulated: writes under the cache fail, and so does safetensors' own write of the converted file)
    while downloading and while caching: the download moves to a temporary folder, the weights load from memory."""
    register(monkeypatch, server, openmmlab_bytes(source_model))
    import hrnet_zoo.models._weights as weights

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    real_open = Path.open

    def open_on_full_cache(self, mode="r", *args, **kwargs):
        return FullDisk() if "w" in mode and cache_dir() in self.parents else real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_on_full_cache)
    monkeypatch.setattr(weights, "save_file", disk_full)
    with caplog.at_level(logging.WARNING, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model) and "No space left on device" in caplog.text
    assert "could not download into" in caplog.text and "loading them from memory" in caplog.text
    assert model.pose_meta.origin.name == ARCH
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

    with pytest.raises(ValueError, match=match):
        CocoKeypointDataset(path, tmp_path)


def test_malformed_detections(tmp_path):
    with pytest.raises(ValueError, match="detection 1 must have 'image_id', 'bbox' and 'score'"):
        read_detections([{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}, {"image_id": 1, "bbox": [0, 0, 5, 5]}])
    (tmp_path / "d.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="is not JSON"):
        read_detections(tmp_path / "d.json")
    assert np.isclose(read_detections([{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}])[0]["score"], 0.5)


# ---------------------------------------------------------------------------------------------------- sources


def upstream_and_other_hub(monkeypatch, server, source_model, **changes):
    """The test tag served upstream (``source_model``, with a metric) and on the Hub (other valid weights)."""
    cfg = register(monkeypatch, server, openmmlab_bytes(source_model))
    cfg = replace(cfg, metrics={"coco_val_ap": 0.5}, **changes)
    monkeypatch.setitem(PRETRAINED_CFGS, ARCH, cfg)
    other = hrnet_zoo.create_model(ARCH)
    for p in other.parameters():
        p.data.normal_(0, 0.05)
    server.files[f"/{REPO_ID}/model.safetensors"] = save(other.state_dict())
    return cfg, other


def test_an_unchecked_hub_comes_last_and_claims_nothing(server, monkeypatch, source_model, caplog, tmp_path):
    cfg, other = upstream_and_other_hub(monkeypatch, server, source_model)
    assert not cfg.hub_checked
    model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model) and model.pose_meta.origin.metrics == {"coco_val_ap": 0.5}
    assert not [path for _, path in server.requests if REPO_ID in path], "the checked upstream file serves first"
    del server.files["/mmpose/" + Path(cfg.url).name]
    shutil.rmtree(cache_dir() / "upstream")
    with caplog.at_level(logging.WARNING, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained=True)
    origin = model.pose_meta.origin
    assert same_weights(model, other) and "claims no metrics" in caplog.text
    assert (origin.name, origin.metrics, origin.license) == (f"file from hf-hub:{REPO_ID}", {}, None)
    folder = hrnet_zoo.save_pretrained(model, tmp_path / "saved")
    assert "coco_val_ap" not in (folder / "README.md").read_text()


def test_only_a_hash_or_a_commit_checks_the_hub(server, monkeypatch, source_model):
    cfg, _ = upstream_and_other_hub(monkeypatch, server, source_model)
    for revision, checked in (("main", False), ("v1.0", False), (COMMIT[:12], False), (COMMIT, True)):
        assert replace(cfg, hf_hub_revision=revision).hub_checked is checked, revision
    assert replace(cfg, hf_hub_sha256="ab" * 32).hub_checked
    monkeypatch.setitem(PRETRAINED_CFGS, ARCH, replace(cfg, hf_hub_revision=COMMIT))
    hrnet_zoo.create_model(ARCH, pretrained=True)  # a valid file of the right shapes: it serves (pinned commit)
    assert server.requests[0] == ("HEAD", f"/{REPO_ID}/resolve/{COMMIT}/model.safetensors")


def nan_weights(model) -> dict:
    state = dict(model.state_dict())
    state["head.weight"] = torch.full_like(state["head.weight"], float("nan"))
    return state


@pytest.mark.parametrize("damage", ["NaN values", "another architecture"])
def test_a_damaged_hub_file_is_removed_and_the_upstream_file_serves(server, monkeypatch, source_model, damage):
    upstream_and_other_hub(monkeypatch, server, source_model, hf_hub_revision=COMMIT)
    bad = nan_weights(source_model) if damage == "NaN values" else hrnet_zoo.create_model("hrnet_w18_pose").state_dict()
    server.files[f"/{REPO_ID}/model.safetensors"] = save(bad)
    model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model) and model.pose_meta.origin.name == ARCH
    assert not [p for p in Path(constants.HF_HUB_CACHE).rglob("*") if p.is_file() and p.stat().st_size > 10_000]
    server.stop()  # a later offline load does not meet the bad file again
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert same_weights(hrnet_zoo.create_model(ARCH, pretrained=True), source_model)


# ---------------------------------------------------------------------------------------------------- offline


def closed_port_endpoint(monkeypatch) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    return endpoint


def recorded_backoff(monkeypatch) -> list[float]:
    """The sleeps huggingface_hub's retries would take (not taken)."""
    import huggingface_hub.utils._http as http

    sleeps: list[float] = []
    monkeypatch.setattr(http, "time", types.SimpleNamespace(sleep=sleeps.append, time=time.time))
    return sleeps


def test_an_unreachable_hub_fails_within_seconds(monkeypatch):
    endpoint = closed_port_endpoint(monkeypatch)
    sleeps = recorded_backoff(monkeypatch)
    cfg = replace(PRETRAINED_CFGS[ARCH], hf_hub_id=REPO_ID, url=f"{endpoint}/mmpose/w-00000000_20200708.pth")
    monkeypatch.setitem(PRETRAINED_CFGS, ARCH, replace(cfg, sha256_prefix="00000000"))
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        hrnet_zoo.create_model(ARCH, pretrained=True)
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE=1") as hub_info:
        hrnet_zoo.create_model("hf-hub:someone/hand-pose")
    assert time.monotonic() - start < 10 and sleeps == [], "no retries of a host that accepts no connection"
    assert f"{REPO_ID}/model.safetensors is not in its cache" in str(info.value) and "cannot be reached" in str(
        info.value
    )
    assert "someone/hand-pose/config.json" in str(hub_info.value) and hub_info.value.hf_hub_id == "someone/hand-pose"


def test_a_hub_answering_server_errors_keeps_its_retries(server, monkeypatch):
    sleeps = recorded_backoff(monkeypatch)
    server.faults["/someone/hand-pose"] = "500"
    with pytest.raises(WeightsUnavailableError, match=r"someone/hand-pose/config\.json on the Hugging Face Hub"):
        hrnet_zoo.create_model("hf-hub:someone/hand-pose")
    assert len(sleeps) >= 3 and len([r for r in server.requests if "config.json" in r[1]]) > 3


def test_hf_hub_failures_name_the_repo_and_offline_mode(server, monkeypatch):
    with pytest.raises(WeightsUnavailableError, match=r"someone/missing/config\.json on the Hugging Face Hub"):
        hrnet_zoo.create_model("hf-hub:someone/missing")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailableError, match=r"offline mode \(HF_HUB_OFFLINE=1\): someone/missing/config"):
        hrnet_zoo.create_model("hf-hub:someone/missing")


# ---------------------------------------------------------------------------------------------------- configs


def keypoints_of(names: list[str]) -> dict:
    return {"name": "two", "names": names, "skeleton": [], "flip_pairs": []}


@pytest.mark.parametrize(
    ("change", "field", "match"),
    [
        (lambda c: c.update(architecture="resnet18"), "architecture", "'resnet18', which is not an hrnet_zoo model"),
        (lambda c: c.update(architecture="no_such_net"), "architecture", "'no_such_net', which is not an hrnet_zoo"),
        (lambda c: c.update(keypoints=["a", "b"]), "keypoints", "a 'keypoints' field outside model_args.pose_meta"),
        (lambda c: c["model_args"].update(keypoints=["a"]), "keypoints", "outside model_args.pose_meta"),
        (
            lambda c: c["model_args"]["pose_meta"].update(mean=[float("nan"), 0.5, 0.5]),
            "model_args.pose_meta",
            "model_args.pose_meta: mean .* need one finite entry per channel",
        ),
        (
            lambda c: c["model_args"]["pose_meta"].update(keypoints=keypoints_of(["a", "b"])),
            "num_classes",
            "declares 2 keypoints in model_args.pose_meta but num_classes=17",
        ),
    ],
)
def test_configs_that_describe_no_hrnet_zoo_model_are_refused(tmp_path, change, field, match):
    folder = hrnet_zoo.save_pretrained(hrnet_zoo.create_model(ARCH), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelConfigError, match=match) as info:
        hrnet_zoo.create_model(f"local-dir:{folder}", pretrained=True)
    assert (info.value.config, info.value.field) == (str(folder / "config.json"), field)
    assert str(folder / "config.json") in str(info.value)


def test_an_hf_hub_config_of_another_architecture_is_refused(server):
    server.files["/someone/resnet/config.json"] = json.dumps({"architecture": "resnet18", "num_classes": 2}).encode()
    with pytest.raises(ModelConfigError, match=r"hf-hub:someone/resnet/config\.json names the architecture 'resnet18'"):
        hrnet_zoo.create_model("hf-hub:someone/resnet", pretrained=True)


def test_a_transposed_head_gets_no_joint_advice(source_model):
    state = dict(source_model.state_dict())
    state["head.weight"] = state["head.weight"].transpose(0, 1).contiguous()  # (17, 18, 1, 1) -> (18, 17, 1, 1)
    with pytest.raises(CheckpointMismatchError, match=r"head\.weight \(checkpoint \(18, 17, 1, 1\)") as info:
        load_checkpoint(hrnet_zoo.create_model(ARCH), state)
    assert "num_joints" not in str(info.value) and info.value.checkpoint_joints is None


# ---------------------------------------------------------------------------------------------------- metadata


def test_random_weights_claim_nothing_in_their_config(tmp_path):
    model = hrnet_zoo.create_model("hrnet_w32_pose")  # the tag coco_256x192: OpenMMLab's, apache-2.0
    assert model.pose_meta.origin is None
    folder = hrnet_zoo.save_pretrained(model, tmp_path / "random")
    saved = json.loads((folder / "config.json").read_text())
    claims = {"tag", "license", "origin_url", "hf_hub_id", "url"} & set(saved["pretrained_cfg"])
    assert claims == set() and saved["model_args"]["pose_meta"]["origin"]["name"] == ""
    card = (folder / "README.md").read_text()
    assert "Of unknown origin" in card and "license:" not in card and "openmmlab" not in card.lower()
    reloaded = hrnet_zoo.create_model(f"local-dir:{folder}", pretrained=True)
    assert same_weights(reloaded, model) and not reloaded.pose_meta.origin.metrics


# ---------------------------------------------------------------------------------------------------- detectors


def saved_detector(tmp_path, state, name: str = "det.pth") -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_detector_weights_get_the_value_checks(tmp_path, value):
    state = person_biased_ssdlite()
    key = next(k for k in state if k.endswith("classification_head.module_list.0.1.weight"))
    state[key] = torch.full_like(state[key], value)
    with pytest.raises(CheckpointMismatchError, match=f"{key} \\(holds NaN or infinite values\\)"):
        PersonDetector(LIGHT, checkpoint=saved_detector(tmp_path, state), device="cpu")


def test_a_detector_for_other_classes_is_one_clear_error(tmp_path):
    two = get_model(LIGHT, weights=None, weights_backbone=None, num_classes=2).state_dict()
    with pytest.raises(CheckpointMismatchError, match=r"torchvision's 91 COCO categories.*\n  shape mismatch") as info:
        PersonDetector(LIGHT, checkpoint=saved_detector(tmp_path, two), device="cpu")
    assert "det.pth" in info.value.source


def test_detector_files_are_read_by_content_and_never_unpickled(tmp_path):
    state = person_biased_ssdlite()
    named_pth = tmp_path / "safetensors.pth"
    save_file(state, str(named_pth))
    pickled = tmp_path / "pickled.pth"
    torch.save(state, pickled)
    image = torch.randint(0, 256, (3, 240, 320), dtype=torch.uint8)
    from_content, from_pickle = (PersonDetector(LIGHT, checkpoint=p, device="cpu")(image) for p in (named_pth, pickled))
    assert len(from_content[0]) > 0
    for a, b in zip(from_content, from_pickle):  # the same weights, whatever the file's name says
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as f:
        pickle.dump({"model": Exploit()}, f)
    noise = tmp_path / "noise.pth"
    noise.write_bytes(os.urandom(4096))
    for path in (evil, noise):
        with pytest.raises(ValueError, match=f"could not read checkpoint .*{path.name}") as info:
            PersonDetector(LIGHT, checkpoint=path, device="cpu")
        assert "weights_only" not in str(info.value), "never advise loading with weights_only=False"


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_detector_file_in_torchs_cache_is_replaced(server, monkeypatch, tmp_path, damage):
    buffer = io.BytesIO()
    torch.save(person_biased_ssdlite(), buffer)
    body = buffer.getvalue()
    url_path = served_weights(server, monkeypatch, tmp_path, body)
    cached = tmp_path / "torch_hub" / "checkpoints" / url_path.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(os.urandom(5000) if damage == "garbage" else body[: len(body) // 2])
    PersonDetector(LIGHT, device="cpu")
    assert cached.read_bytes() == body and ("GET", url_path) in server.requests
    cached.write_bytes(body[:1000])  # damaged again, and the server fails: reported, the bad file gone
    server.faults[url_path] = "500"
    with pytest.raises(WeightsUnavailableError, match="could not get the ssdlite320_mobilenet_v3_large person"):
        PersonDetector(LIGHT, device="cpu")
    assert not cached.exists()


# ------------------------------------------------------------------- media, boxes and the estimator

SIZE = (64, 80)
BOX = [10, 10, 40, 50]


def noise_video(path, frames: int = 30) -> bytes:
    """A small H.264 MP4 of noise frames (large packets, so damage hits a frame) with its index first
    (``faststart``, as streamed files have it, so a truncated copy still opens); returns its bytes."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = SIZE
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path.read_bytes()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 30-frame noise clip and its bytes."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return path, noise_video(path)


@pytest.fixture
def damaged(clip, tmp_path):
    """The clip with 2,000 bytes in its middle overwritten: one frame cannot be decoded."""
    data = clip[1]
    middle = len(data) // 2
    noise = np.random.default_rng(1).integers(0, 255, 2000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[:middle] + noise + data[middle + 2000 :])
    return damaged


def counting_detector(calls: list, fail_on_call: int | None = None, action=None):
    """One person per image; on its ``fail_on_call``-th call, ``action`` happens first: an exception is raised, a
    callable called (say, to send a signal)."""

    def detect(image):
        calls.append(image.shape)
        if len(calls) == fail_on_call:
            if isinstance(action, BaseException):
                raise action
            action()
        return [[5, 5, 50, 60]], [0.7]

    return detect


def make_estimator(tiny_model, detector=None, **kwargs) -> PoseEstimator:
    return PoseEstimator(tiny_model, device="cpu", flip_test=False, input_size=(64, 64), detector=detector, **kwargs)


def hidden_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- boxes for videos ---------------------------------------------------------------------------------------------


def test_one_box_list_serves_every_frame_of_a_video(tiny_model, clip, tmp_path):
    calls = []
    estimator = make_estimator(tiny_model, counting_detector(calls))
    summary = estimator.run(clip[0], tmp_path / "out", boxes={"clip.mp4": [BOX]}, draw=False)
    results = json.loads(summary.results_file.read_text())
    assert summary.frames == 30 and calls == []  # no frame went to the detector
    assert {tuple(r["bbox"]) for r in results} == {tuple(BOX)} and all(r["box_score"] == 1 for r in results)


def test_boxes_by_frame_index_and_the_detector_for_the_rest(tiny_model, clip, tmp_path):
    calls = []
    estimator = make_estimator(tiny_model, counting_detector(calls))
    boxes = {str(clip[0]): {"0": [BOX, BOX], 12: [], "29": [BOX]}}  # JSON's string keys or integers
    frames = list(estimator.stream(clip[0], boxes, batch_frames=7))
    persons = {frame.index: len(result) for frame, result in frames}
    assert persons[0] == 2 and persons[12] == 0 and persons[29] == 1 and len(calls) == 27
    assert all(persons[i] == 1 and frames[i][1].box_scores.tolist() == [pytest.approx(0.7)] for i in (1, 13, 28))
    assert frames[0][1].box_scores.tolist() == [1.0, 1.0]


def test_boxes_for_frames_past_the_end_are_reported(tiny_model, clip, caplog):
    estimator = make_estimator(tiny_model)
    with caplog.at_level(logging.WARNING, logger="hrnet_zoo"):
        frames = list(estimator.stream(clip[0], {"clip.mp4": {"3": [BOX], "30": [BOX], "99": [BOX]}}))
    assert len(frames) == 30 and len(frames[3][1]) == 1
    assert "name frames 30, 99, which" in caplog.text and "were not used" in caplog.text


def test_boxes_naming_no_input_are_refused_by_name(tiny_model, clip, tmp_path):
    estimator = make_estimator(tiny_model)
    boxes = {"clp.mp4": [BOX], "clip.mp4": [BOX], "astronat.jpg": [BOX]}
    with pytest.raises(ValueError, match=r"'clp\.mp4', 'astronat\.jpg', which match\(es\) none of the inputs"):
        estimator.run([clip[0], PHOTO], tmp_path / "out", boxes=boxes)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="not a table of frames"):
        next(estimator.stream(PHOTO, {"astronaut.jpg": {"0": [BOX]}}))
    with pytest.raises(ValueError, match=r"frame keys must be frame indices .* got 'first'"):
        next(estimator.stream(clip[0], {"clip.mp4": {"first": [BOX]}}))
    with pytest.raises(ValueError, match=r"boxes of 'clip\.mp4' frame 3: box 0 is empty"):
        next(estimator.stream(clip[0], {"clip.mp4": {"3": [[1, 1, 0, 5]]}}))
    same_file = {os.path.relpath(PHOTO): [BOX]}  # another path to the same file names it too
    assert len(next(estimator.stream(str(PHOTO), same_file))[1]) == 1


# --- the estimator leaves the caller's model alone and follows its weights -----------------------------------------


@pytest.mark.parametrize("optimize", [True, False])
def test_an_estimator_built_in_training_follows_every_step(tiny_model, optimize):
    model = tiny_model.train()
    model.backbone.stem.eval()  # a mixed mode (frozen BatchNorms, say) is kept too
    estimator = make_estimator(model, optimize=optimize)
    crops = estimator.crops(PHOTO, [[100, 20, 330, 490]]).inputs

    def matches_a_fresh_estimator(heatmaps: torch.Tensor) -> bool:
        fresh = make_estimator(copy.deepcopy(model)).heatmaps(crops)
        return torch.allclose(heatmaps, fresh, rtol=1e-4, atol=1e-4 * float(fresh.abs().max()))

    before = estimator.heatmaps(crops)
    assert model.training and not model.backbone.stem.training and model.head.training
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.randn(2, 3, 64, 64)).square().mean().backward()
    optimizer.step()  # one training step: new weights and BatchNorm statistics
    after = estimator.heatmaps(crops)
    assert not torch.allclose(before, after, rtol=1e-2, atol=0) and matches_a_fresh_estimator(after)
    assert model.training and not model.backbone.stem.training and model.head.training
    model.load_state_dict({k: v * 1.5 if v.is_floating_point() else v for k, v in model.state_dict().items()})
    assert matches_a_fresh_estimator(estimator.heatmaps(crops))
    assert model.training and not model.backbone.stem.training


# --- video and folders --------------------------------------------------------------------------------------------


def test_a_truncated_video_says_it_ended_early(tiny_model, clip, tmp_path, caplog):
    data = clip[1]
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: int(len(data) * 0.4)])
    with caplog.at_level(logging.WARNING, logger="hrnet_zoo"):
        summary = make_estimator(tiny_model).run(truncated, tmp_path / "out", draw=False)
    assert 0 < summary.frames < 30
    assert f"truncated.mp4 ended after {summary.frames} of the 30 frames its header announces" in caplog.text


def test_a_damaged_frame_stops_the_run_and_keeps_the_frames_done(tiny_model, damaged, tmp_path):
    estimator = make_estimator(tiny_model)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"could not decode video .*damaged\.mp4.* frame \d+: ") as stopped:
        estimator.run(damaged, out, batch_frames=4)
    assert sorted(p.name for p in out.iterdir()) == ["damaged_pose.mp4", "images.json", "results.json"]
    coco = COCO(str(out / "images.json"))
    kept = len(coco.imgs)  # every frame before the damaged one, though it came in the middle of a batch
    assert f"frame {kept}: " in str(stopped.value) and f"the {kept} frame(s) done are kept" in str(stopped.value)
    assert 0 < kept < 29 and kept % 4 and len(coco.loadRes(str(out / "results.json")).anns) == kept
    with VideoReader(Source(str(out / "damaged_pose.mp4"), "video")) as reader:
        assert len(list(reader)) == kept


def test_skip_bad_skips_a_damaged_frame_with_a_warning(tiny_model, damaged, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hrnet_zoo"):
        summary = make_estimator(tiny_model).run(damaged, tmp_path / "out", draw=False, skip_bad=True)
    assert summary.frames == 29 and "damaged.mp4' frame" in caplog.text and "skipping the frame" in caplog.text
    indices = [image["frame"] for image in json.loads(summary.images_file.read_text())["images"]]
    assert len(set(indices)) == 29 and max(indices) == 29  # the skipped frame keeps its index: the others theirs


def test_a_corrupt_image_in_a_folder(tiny_model, tmp_path, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "c.jpg"):
        shutil.copy(PHOTO, folder / name)
    (folder / "b.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    estimator = make_estimator(tiny_model)
    for batch_frames in (1, 8):  # a.jpg is done before b.jpg stops the run, in its batch or before it
        with pytest.raises(ValueError, match=r"b\.jpg.*the 1 frame\(s\) done are kept"):
            estimator.run(folder, tmp_path / f"stopped{batch_frames}", batch_frames=batch_frames)
        kept = sorted(p.name for p in (tmp_path / f"stopped{batch_frames}").iterdir())
        assert kept == ["a_pose.png", "images.json", "results.json"]
    with pytest.raises(ValueError, match=r"b\.jpg'"):  # nothing finished before it: nothing is kept
        estimator.run([folder / "b.jpg", folder / "a.jpg"], tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    with caplog.at_level(logging.WARNING, logger="hrnet_zoo"):
        summary = estimator.run(folder, tmp_path / "skipped", skip_bad=True)
    assert summary.frames == 2 and "skipping image" in caplog.text and "b.jpg" in caplog.text
    assert [p.name for p in summary.drawn] == ["a_pose.png", "c_pose.png"]


def test_a_failed_run_leaves_no_drawing(tiny_model, tmp_path):
    shutil.copy(PHOTO, tmp_path / "b.jpg")
    estimator = make_estimator(tiny_model, counting_detector([], 2, RuntimeError("broke")))
    with pytest.raises(RuntimeError, match="broke"):
        estimator.run([PHOTO, tmp_path / "b.jpg"], tmp_path / "out", batch_frames=1)
    assert not (tmp_path / "out").exists()  # the first image's drawing went with the results


def test_sigterm_is_handled_like_ctrl_c(tiny_model, clip, tmp_path):
    received = []

    def outer(*_: object) -> None:  # the caller's own handler: not called during the run, back after it
        received.append("outer")

    previous = signal.signal(signal.SIGTERM, outer)
    try:
        estimator = make_estimator(tiny_model, counting_detector([], 3, lambda: os.kill(os.getpid(), signal.SIGTERM)))
        summary = estimator.run(clip[0], tmp_path / "out", batch_frames=1)
        assert signal.getsignal(signal.SIGTERM) is outer and received == []
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert summary.interrupted and summary.frames == 2 and hidden_files(summary.folder) == []
    assert sorted(p.name for p in summary.folder.iterdir()) == ["clip_pose.mp4", "images.json", "results.json"]
    assert len(COCO(str(summary.images_file)).imgs) == 2


def test_a_run_outside_the_main_thread_leaves_signals_alone(tiny_model, tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    done = []
    thread = threading.Thread(target=lambda: done.append(make_estimator(tiny_model).run(PHOTO, tmp_path / "out")))
    thread.start()
    thread.join()
    assert done and done[0].frames == 1 and signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("suffix", [".ts", ".m2ts", ".mts", ".mpg", ".wmv", ".flv", ".3gp"])
def test_video_suffixes_open_as_videos(suffix, tmp_path):
    (tmp_path / f"clip{suffix}").write_bytes(b"")
    assert find_sources([tmp_path / f"clip{suffix}"])[0].kind == "video"


def test_a_transport_stream_is_read_as_a_video(tiny_model, tmp_path):
    path = tmp_path / "clip.ts"
    with VideoWriter(path, 25, SIZE) as writer:  # MPEG-TS, as its suffix says
        for _ in range(5):
            writer.write(torch.randint(0, 255, (3, *SIZE), dtype=torch.uint8))
    summary = make_estimator(tiny_model).run(path, tmp_path / "out", draw=False)
    assert summary.frames == 5 and [f.index for f in read_frames(path)] == [0, 1, 2, 3, 4]


def test_a_fifo_and_a_folder_are_named_as_such(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"input .*pipe\.jpg.* is a FIFO \(named pipe\), not a regular file"):
        find_sources([fifo])
    with pytest.raises(ValueError, match="is a FIFO"):  # checked before opening: opening a FIFO would hang
        load_image(fifo)
    with pytest.raises(FileNotFoundError, match="is a folder, not a file"):
        load_image(tmp_path)


# --- wrong words --------------------------------------------------------------------------------------------------


def test_a_sub_pixel_box_and_an_empty_image_are_clear_errors(tiny_model):
    estimator = make_estimator(tiny_model)
    with pytest.raises(ValueError, match=r"box 0 of image 0 is too small: 1e-06x1e-06 pixels"):
        estimator.predict(PHOTO, boxes=[[10, 10, 1e-6, 1e-6]])
    transform = TopDownTransform(HeatmapCodec(), (0.5, 0.5, 0.5), (0.2, 0.2, 0.2))
    with pytest.raises(ValueError, match="at least 1 pixel"):
        transform.boxes([[0, 0, 0.5, 30]])
    assert transform.boxes([[0, 0, 1, 1]]).tolist() == [[0, 0, 1, 1]]
    for empty in (np.zeros((0, 0, 3), np.uint8), torch.zeros(3, 0, 5, dtype=torch.uint8)):
        with pytest.raises(ValueError, match=r"the image is empty \(\dx0 pixels\)"):
            estimator.predict(empty)


def coco_file(tmp_path, images: list) -> str:
    data = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "person", "keypoints": ["a"]}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_coco_files_with_repeated_ids_or_no_file_name_are_refused(tmp_path):
    image = {"id": 7, "file_name": "a.jpg", "width": 10, "height": 10}
    with pytest.raises(ValueError, match=r"images\[1\] repeats image id 7"):
        read_coco_keypoints(coco_file(tmp_path, [image, {**image, "file_name": "b.jpg"}]))
    for bad in (None, 3, ""):
        with pytest.raises(ValueError, match=r"images\[0\] must have a file_name that is a non-empty string"):
            read_coco_keypoints(coco_file(tmp_path, [{**image, "file_name": bad}]))
        with pytest.raises(ValueError, match="file_name"):
            CocoKeypointDataset(coco_file(tmp_path, [{**image, "file_name": bad}]), tmp_path)
    with pytest.raises(ValueError, match=r"integer id, got \[1\]"):
        read_coco_keypoints(coco_file(tmp_path, [{**image, "id": [1]}]))


def test_refresh_follows_writes_the_version_counters_miss():
    """``.data`` writes bypass the version counters: the estimator keeps its folded copy until ``refresh()``."""
    model = hrnet_zoo.create_model("hrnet_w18_small_pose")
    estimator = PoseEstimator(model, device="cpu")
    image = torch.rand(3, 128, 96)
    before = estimator.predict(image)[0].keypoints
    for p in model.parameters():
        p.data.mul_(1.5)
    estimator.refresh()
    after = estimator.predict(image)[0].keypoints
    fresh = PoseEstimator(model, device="cpu").predict(image)[0].keypoints
    assert not np.array_equal(before, after) and np.array_equal(after, fresh)
