"""Fetching weight files: the Hugging Face Hub through ``huggingface_hub``, upstream URLs checked by SHA-256.

Only files: this module knows nothing of models or key layouts (see :mod:`hrnet_zoo.models.weights`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from huggingface_hub import hf_hub_download
from torch.hub import download_url_to_file

__all__ = [
    "WEIGHTS_FILE",
    "WeightsUnavailableError",
    "cache_dir",
    "discard_download",
    "download_hub_file",
    "download_verified",
    "file_sha256",
]

WEIGHTS_FILE = "model.safetensors"


class WeightsUnavailableError(RuntimeError):
    """No source could provide the weights; the message says how to supply them locally."""


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where converted upstream checkpoints are kept: ``override``, ``$HRNET_ZOO_CACHE`` or ``~/.cache/hrnet_zoo``."""
    if override is not None:
        return Path(override) / "hrnet_zoo"
    return Path(os.environ.get("HRNET_ZOO_CACHE") or Path.home() / ".cache" / "hrnet_zoo")


def download_hub_file(
    repo_id: str, filename: str = WEIGHTS_FILE, revision: str | None = None, cache: str | os.PathLike | None = None
) -> Path:
    """Path of ``filename`` of the Hub repository ``repo_id`` (``org/name[@revision]``), downloaded or cached.

    ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and ``HF_HOME`` apply; ``cache`` replaces the Hub cache folder.
    """
    if "@" in repo_id:
        repo_id, revision = repo_id.split("@", 1)
    return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_verified(url: str, sha256_prefix: str | None, directory: str | os.PathLike) -> Path:
    """Download ``url`` into ``directory`` and check that its SHA-256 starts with ``sha256_prefix``.

    Raises:
        WeightsUnavailableError: The download failed.
        ValueError: The file's hash does not match (the file is removed).
    """
    path = Path(directory) / Path(url.split("?")[0]).name
    try:
        download_url_to_file(url, str(path), progress=False)
    except OSError as err:
        raise WeightsUnavailableError(f"could not download {url}: {err}") from err
    if sha256_prefix and not file_sha256(path).startswith(sha256_prefix):
        path.unlink(missing_ok=True)
        raise ValueError(f"the file downloaded from {url} failed verification: its SHA-256 does not start with "
                         f"{sha256_prefix}")  # fmt: skip
    return path


def discard_download(path: str | os.PathLike) -> None:
    """Remove a bad downloaded file (and the blob a Hub cache link points to)."""
    path = Path(path)
    for p in {path, path.resolve()}:
        p.unlink(missing_ok=True)
