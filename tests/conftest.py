"""Shared fixtures: golden data from the original implementation and a tiny HRNet in its layout."""

from __future__ import annotations

import json
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import hrnet_zoo
from hrnet_zoo.models import HRNetConfig, HRNetPose

from .stand_in_server import StandInServer

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    return json.loads((DATA / "tiny_original_config.json").read_text())


@pytest.fixture(scope="session")
def tiny_io() -> dict[str, np.ndarray]:
    return dict(np.load(DATA / "tiny_original_io.npz"))


@pytest.fixture
def tiny_model(tiny_config: dict) -> HRNetPose:
    """The golden tiny architecture, freshly initialised (not loaded)."""
    return HRNetPose(HRNetConfig.from_original(tiny_config["extra"]), num_joints=tiny_config["num_joints"])


@pytest.fixture(scope="session")
def tiny_weights_path() -> Path:
    return DATA / "tiny_original.safetensors"


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's downloads away from the user's caches."""
    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("HRNET_ZOO_CACHE", str(root / "hrnet_zoo"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root / "hf" / "hub"))


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub retries unreachable hosts with sleeps of up to 8 s; keep the retries, skip the waiting."""
    import huggingface_hub.utils._http as http

    monkeypatch.setattr(http, "time", types.SimpleNamespace(sleep=lambda s: None, time=time.time))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    """A stand-in Hub and upstream zoo on 127.0.0.1, given to huggingface_hub as its endpoint (as HF_ENDPOINT)."""
    from huggingface_hub import constants

    with StandInServer() as srv:
        monkeypatch.setattr(constants, "ENDPOINT", srv.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", srv.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        yield srv


@pytest.fixture
def source_model() -> HRNetPose:
    """A W18-small pose model with weights other than the initialisation (a silent no-op load would show)."""
    model = hrnet_zoo.create_model("hrnet_w18_small_pose").eval()
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    return model
