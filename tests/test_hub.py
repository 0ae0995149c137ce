"""Pretrained weights through the real huggingface_hub / urllib code paths, against stand-in servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest
import timm
import torch
from huggingface_hub import constants
from safetensors.torch import save, save_file

import hrnet_zoo
from hrnet_zoo._download import cache_dir
from hrnet_zoo.errors import CheckpointMismatchError, WeightsUnavailableError
from hrnet_zoo.hub import save_pretrained
from hrnet_zoo.models import load_pretrained
from hrnet_zoo.models.pretrained import PRETRAINED_CFGS

from .layouts import to_openmmlab_layout
from .stand_in_server import StandInServer

ARCH = "hrnet_w18_small_pose"
REPO_ID = "hrnet-zoo/test-w18-small"


def openmmlab_bytes(model) -> bytes:
    """The model's weights as an OpenMMLab checkpoint (original names under backbone. / keypoint_head.)."""
    state_dict = to_openmmlab_layout(model.state_dict())
    buffer = io.BytesIO()
    torch.save({"meta": {"epoch": 210}, "state_dict": state_dict}, buffer)
    return buffer.getvalue()


def register(monkeypatch, server, data: bytes | None = None, name: str = "hrnet_w18_small_coco_256x192"):
    """Give the test architecture a Hub repo and an upstream URL on the stand-in server."""
    sha = hashlib.sha256(data).hexdigest()[:8] if data is not None else "00000000"
    file_name = f"{name}-{sha}_20200708.pth"
    if data is not None:
        server.files[f"/mmpose/{file_name}"] = data
    cfg = replace(
        PRETRAINED_CFGS[ARCH], tag="", hf_hub_id=REPO_ID, url=f"{server.url}/mmpose/{file_name}", sha256_prefix=sha
    )
    monkeypatch.setitem(PRETRAINED_CFGS, ARCH, cfg)
    return cfg


def same_weights(a, b) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


def test_hub_download_then_cached_load_with_the_server_stopped(server, monkeypatch, source_model, caplog):
    register(monkeypatch, server)
    server.files[f"/{REPO_ID}/model.safetensors"] = save(source_model.state_dict())
    with caplog.at_level(logging.INFO, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model)
    assert f"from Hugging Face Hub {REPO_ID}" in caplog.text
    assert ("GET", f"/{REPO_ID}/resolve/main/model.safetensors") in server.requests
    server.stop()
    again = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(again, source_model)


def test_offline_mode(server, monkeypatch, source_model):
    cfg = register(monkeypatch, server)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailableError) as info:
        hrnet_zoo.create_model(ARCH, pretrained=True)
    message = str(info.value)
    assert f"{REPO_ID}/model.safetensors" in message and "offline mode" in message
    assert "pretrained_cfg_overlay=dict(file=PATH)" in message and cfg.url in message
    assert server.requests == []
    # With the file in the cache, offline mode loads it without asking the server.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    server.files[f"/{REPO_ID}/model.safetensors"] = save(source_model.state_dict())
    hrnet_zoo.create_model(ARCH, pretrained=True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    server.requests.clear()
    assert same_weights(hrnet_zoo.create_model(ARCH, pretrained=True), source_model) and server.requests == []


def test_corrupted_hub_file_is_not_kept(server, monkeypatch, source_model):
    register(monkeypatch, server)
    server.files[f"/{REPO_ID}/model.safetensors"] = save(source_model.state_dict())[:-1000]
    model = hrnet_zoo.create_model(ARCH)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsUnavailableError, match="truncated or corrupted"):
        load_pretrained(model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    cached = list(Path(constants.HF_HUB_CACHE).rglob("model.safetensors"))
    assert cached == [] or not any(p.exists() for p in cached)
    blobs = [p for p in Path(constants.HF_HUB_CACHE).rglob("blobs/*") if p.is_file()]
    assert blobs == []


def test_hub_404_falls_back_to_the_upstream_checkpoint(server, monkeypatch, source_model, caplog):
    cfg = register(monkeypatch, server, openmmlab_bytes(source_model))
    with caplog.at_level(logging.INFO, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained=True)
    assert same_weights(model, source_model)
    assert f"from upstream {cfg.url}" in caplog.text
    converted = cache_dir() / "upstream" / (Path(cfg.url).stem + ".safetensors")
    assert converted.is_file()
    server.stop()  # the converted safetensors copy serves the next load, pickle-free
    assert same_weights(hrnet_zoo.create_model(ARCH, pretrained=True), source_model)


def test_upstream_hash_mismatch(server, monkeypatch, source_model):
    data = openmmlab_bytes(source_model)
    cfg = register(monkeypatch, server, data)
    server.files[f"/mmpose/{Path(cfg.url).name}"] = data[:-10] + b"0123456789"  # same size, other content
    with pytest.raises(WeightsUnavailableError, match="failed verification"):
        hrnet_zoo.create_model(ARCH, pretrained=True)
    assert not (cache_dir() / "upstream").exists() or list((cache_dir() / "upstream").iterdir()) == []


def test_upstream_checkpoint_of_another_architecture(server, monkeypatch):
    """A file that does not fit is removed from the cache, the next source is tried; with none left, the error
    names each source's reason (and a mismatch when every source's file was readable but unfit)."""
    other = hrnet_zoo.create_model("hrnet_w18_pose")
    cfg = register(monkeypatch, server, openmmlab_bytes(other))
    with pytest.raises(WeightsUnavailableError, match=r"upstream .*: CheckpointMismatchError: .* nothing was loaded"):
        hrnet_zoo.create_model(ARCH, pretrained=True)
    assert not list((cache_dir() / "upstream").glob("*.safetensors"))
    monkeypatch.setitem(PRETRAINED_CFGS, ARCH, replace(cfg, hf_hub_id=None))
    with pytest.raises(CheckpointMismatchError, match="no weights of hrnet_w18_small_pose fit the model"):
        hrnet_zoo.create_model(ARCH, pretrained=True)


def test_everything_unreachable(server, monkeypatch):
    register(monkeypatch, server)  # nothing served: Hub 404, upstream 404
    with pytest.raises(WeightsUnavailableError, match="could not get the weights"):
        hrnet_zoo.create_model(ARCH, pretrained=True)


def test_pretrained_cfg_overlay_file(tmp_path, source_model):
    for name, writer in {
        "w.safetensors": lambda p: save_file(source_model.state_dict(), str(p)),
        "openmmlab.pth": lambda p: p.write_bytes(openmmlab_bytes(source_model)),
    }.items():
        path = tmp_path / name
        writer(path)
        model = hrnet_zoo.create_model(ARCH, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
        assert same_weights(model, source_model), name


def test_hf_hub_model_in_the_package_layout(server, source_model, tmp_path):
    """A published model reloads identically, flip pairs and codec included, through hrnet_zoo and timm."""
    hand = hrnet_zoo.KeypointSet("hand", ("wrist", "left_tip", "right_tip"), ((0, 1), (0, 2)), ((1, 2),))
    source_model.reset_head(3, keypoints=hand)
    folder = save_pretrained(source_model, tmp_path / "repo")
    for f in folder.iterdir():
        server.files[f"/someone/hand-pose/{f.name}"] = f.read_bytes()
    model = hrnet_zoo.create_model("hf-hub:someone/hand-pose", pretrained=True)
    assert model.keypoints == hand and model.num_joints == 3 and same_weights(model, source_model)
    assert json.loads((folder / "config.json").read_text())["model_args"]["pose_meta"]["keypoints"]["name"] == "hand"
    timm_model = timm.create_model("hf-hub:someone/hand-pose", pretrained=True)
    assert same_weights(timm_model, source_model) and timm_model.pose_meta == model.pose_meta
    assert timm_model.keypoints.flip_index == [0, 2, 1] and timm_model.pretrained_cfg == model.pretrained_cfg
    untrained = hrnet_zoo.create_model("hf-hub:someone/hand-pose")
    assert untrained.pose_meta.origin is None and not same_weights(untrained, source_model)


def test_cache_dir_is_honoured(server, monkeypatch, source_model, tmp_path):
    cfg = register(monkeypatch, server, openmmlab_bytes(source_model))
    hub_file = save(source_model.state_dict())
    monkeypatch.setitem(PRETRAINED_CFGS, ARCH, replace(cfg, hf_hub_sha256=hashlib.sha256(hub_file).hexdigest()))
    server.files[f"/{REPO_ID}/model.safetensors"] = hub_file
    model = hrnet_zoo.create_model(ARCH, pretrained=True, cache_dir=tmp_path / "mine")
    assert same_weights(model, source_model)
    assert list((tmp_path / "mine").rglob("model.safetensors"))
    assert not list(Path(constants.HF_HUB_CACHE).rglob("model.safetensors"))
    del server.files[f"/{REPO_ID}/model.safetensors"]  # the upstream fallback caches there too
    hrnet_zoo.create_model(ARCH, pretrained=True, cache_dir=tmp_path / "other")
    assert list((tmp_path / "other" / "hrnet_zoo" / "upstream").glob("*.safetensors"))


def test_imagenet_backbone(server, monkeypatch, caplog):
    classifier = timm.create_model("hrnet_w18_small_v2")
    server.files["/timm/hrnet_w18_small_v2.ms_in1k/model.safetensors"] = save(classifier.state_dict())
    with caplog.at_level(logging.INFO, logger="hrnet_zoo"):
        model = hrnet_zoo.create_model(ARCH, pretrained="imagenet")
    assert torch.equal(model.backbone.stem.conv1.weight, classifier.conv1.weight)
    assert torch.equal(
        model.backbone.stage4[1].branches[3][0].conv2.weight, classifier.stage4[1].branches[3][0].conv2.weight
    )
    assert "backbone tensors" in caplog.text and "timm/hrnet_w18_small_v2.ms_in1k" in caplog.text


def test_hf_endpoint_environment_variable(tmp_path, source_model):
    """The real configuration path: HF_ENDPOINT set before huggingface_hub is imported, in a fresh process."""
    with StandInServer() as srv:
        srv.files[f"/{REPO_ID}/model.safetensors"] = save(source_model.state_dict())
        code = (
            "import hrnet_zoo; from dataclasses import replace;"
            "from hrnet_zoo.models.pretrained import PRETRAINED_CFGS as C;"
            f"C['{ARCH}'] = replace(C['{ARCH}'], hf_hub_id='{REPO_ID}');"
            f"m = hrnet_zoo.create_model('{ARCH}', pretrained=True);"
            "print(float(m.backbone.stem.conv1.weight.sum()))"
        )
        env = dict(os.environ, HF_ENDPOINT=srv.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) == pytest.approx(float(source_model.backbone.stem.conv1.weight.sum()), rel=1e-6)


class RecordingHfApi:
    """Stands in for huggingface_hub.HfApi: records what would be published."""

    calls: ClassVar[list] = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, private=False, exist_ok=False):
        self.calls.append(("create_repo", repo_id, private))

    def upload_folder(self, repo_id, folder_path, revision=None, commit_message=""):
        files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        self.calls.append(("upload_folder", repo_id, files, commit_message))
        return f"https://huggingface.co/{repo_id}/commit/0"


def test_push_to_hub_publishes_the_hub_layout(monkeypatch, source_model, tmp_path, capsys):
    import hrnet_zoo.hub as publish

    RecordingHfApi.calls = []
    monkeypatch.setattr(publish, "HfApi", RecordingHfApi)
    url = hrnet_zoo.push_to_hub(source_model, "me/w18-small", private=True)
    assert url.endswith("/commit/0")
    (_, repo, private), (_, _, files, message) = RecordingHfApi.calls
    assert repo == "me/w18-small" and private and message == f"Upload {ARCH}"
    assert set(files) == {"model.safetensors", "config.json", "README.md"}
    assert b"hf-hub:me/w18-small" in files["README.md"]
    assert json.loads(files["config.json"])["architecture"] == ARCH
    # The CLI uploads a converted folder, and refuses one that is not in the Hub layout.
    folder = save_pretrained(source_model, tmp_path / "ok")
    from hrnet_zoo.cli import main

    assert main(["push", str(folder), "me/other"]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["push", str(tmp_path / "empty"), "me/other"]) == 2
    assert "not in the Hub layout: model.safetensors, config.json missing" in capsys.readouterr().err
