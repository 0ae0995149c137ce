"""Shared fixtures: golden data from the original implementation and a tiny HRNet in its layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hrnet_zoo import HRNetConfig, HRNetPose

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
