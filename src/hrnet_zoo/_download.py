"""Fetching weight files: the Hugging Face Hub through ``huggingface_hub``, upstream URLs checked by SHA-256.

Only files: this module knows nothing of models or key layouts (see :mod:`hrnet_zoo.models.weights`).

Every download is bounded in time. Upstream downloads use a connect and read timeout of
``$HRNET_ZOO_DOWNLOAD_TIMEOUT`` seconds (default 30) for each network operation; the Hub uses
``huggingface_hub``'s ``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT`` (10 s each by default).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from huggingface_hub import hf_hub_download
from tqdm import tqdm

from ._utils import is_partial_of_dead_process, partial_path
from .errors import WeightsUnavailableError

__all__ = [
    "WEIGHTS_FILE",
    "cache_dir",
    "discard_download",
    "download_hub_file",
    "download_timeout",
    "download_verified",
    "file_sha256",
]

WEIGHTS_FILE = "model.safetensors"


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


def download_timeout() -> float:
    """Seconds a connection or a read of an upstream download may take: ``$HRNET_ZOO_DOWNLOAD_TIMEOUT``, or 30."""
    value = os.environ.get("HRNET_ZOO_DOWNLOAD_TIMEOUT", "30")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"HRNET_ZOO_DOWNLOAD_TIMEOUT must be a positive number of seconds, got {value!r}")
    return seconds


def _remove_stale_partials(directory: Path) -> None:
    """Remove what killed downloads left behind (partial files of processes that no longer run)."""
    for partial in directory.glob(".*.partial-*"):
        if is_partial_of_dead_process(partial):
            partial.unlink(missing_ok=True)


def download_verified(url: str, sha256_prefix: str | None, directory: str | os.PathLike) -> Path:
    """Download ``url`` into ``directory`` and check that its SHA-256 starts with ``sha256_prefix``.

    The file is written to a hidden partial file beside it and renamed once complete and verified; partial files of
    killed downloads are removed the next time. A progress bar shows on terminals. Each connection and read is
    bounded by :func:`download_timeout`.

    Raises:
        WeightsUnavailableError: The download failed, stalled or was cut short (nothing is left behind).
        ValueError: The file's hash does not match (the file is removed).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(directory)
    path = directory / Path(url.split("?")[0]).name
    partial = partial_path(path)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=download_timeout()) as response, partial.open("wb") as out:
            expected = response.headers.get("Content-Length")
            received = 0
            progress = tqdm(
                total=int(expected) if expected else None,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=path.name,
                disable=None,
                leave=False,
            )
            with progress:  # shown on terminals only
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.update(len(chunk))
            if expected is not None and received != int(expected):
                raise OSError(f"the transfer was cut short ({received} of {expected} bytes)")
    except Exception as err:  # URLError, HTTPError, timeouts, cut connections: this source failed
        partial.unlink(missing_ok=True)
        raise WeightsUnavailableError(f"could not download {url}: {type(err).__name__}: {err}", url=url) from err
    if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix):
        partial.unlink(missing_ok=True)
        raise ValueError(
            f"the file downloaded from {url} failed verification: its SHA-256 does not start with {sha256_prefix}"
        )
    partial.replace(path)
    return path


def discard_download(path: str | os.PathLike) -> None:
    """Remove a bad downloaded file (and the blob a Hub cache link points to)."""
    path = Path(path)
    for p in {path, path.resolve()}:
        p.unlink(missing_ok=True)
