"""Fetching weight files: the Hugging Face Hub through ``huggingface_hub``, upstream URLs checked by SHA-256.

Only files: this module knows nothing of models or key layouts (see :mod:`hrnet_zoo.models._weights`).

Every download is bounded in time. Upstream downloads use a connect and read timeout of
``$HRNET_ZOO_DOWNLOAD_TIMEOUT`` seconds (default 30) for each network operation; the Hub uses
``huggingface_hub``'s ``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT`` (10 s each by default). A Hub
that cannot be reached at all is found out by one connection attempt (within ``HF_HUB_ETAG_TIMEOUT``) and then
only the cache is read, instead of ``huggingface_hub`` retrying for about 20 seconds; a Hub that answers (even
with server errors) keeps its retries.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.utils import HFValidationError
from tqdm import tqdm

from ._utils import is_partial_of_dead_process, writing
from .errors import WeightsUnavailableError

__all__ = [
    "WEIGHTS_FILE",
    "cache_dir",
    "discard_download",
    "download_hub_file",
    "download_timeout",
    "download_verified",
    "file_sha256",
    "hub_unreachable",
]

WEIGHTS_FILE = "model.safetensors"
#: Errors of the local disk while a download is written (not of the network): another folder may still work.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
#: Seconds an unreachable Hub is not asked again.
_UNREACHABLE_FOR = 60.0
_unreachable: dict[tuple[str, int], tuple[float, str]] = {}


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where converted upstream checkpoints are kept: ``override``, ``$HRNET_ZOO_CACHE`` or ``~/.cache/hrnet_zoo``."""
    if override is not None:
        return Path(override) / "hrnet_zoo"
    return Path(os.environ.get("HRNET_ZOO_CACHE") or Path.home() / ".cache" / "hrnet_zoo")


def _hub_address() -> tuple[str, int]:
    """Host and port a Hub request connects to first: the proxy that serves the endpoint, or the endpoint itself."""
    endpoint = urlsplit(constants.ENDPOINT)
    proxy = urllib.request.getproxies().get(endpoint.scheme)
    target = endpoint
    if proxy and not urllib.request.proxy_bypass(endpoint.hostname or ""):
        target = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return target.hostname or "", target.port or (443 if target.scheme == "https" else 80)


def hub_unreachable() -> str | None:
    """Why the Hub's endpoint (or its proxy) accepts no connection, or ``None`` when it does.

    One connection attempt, bounded by ``HF_HUB_ETAG_TIMEOUT``; an unreachable host is remembered for a minute.
    """
    address = _hub_address()
    known = _unreachable.get(address)
    if known is not None and time.monotonic() - known[0] < _UNREACHABLE_FOR:
        return known[1]
    try:
        socket.create_connection(address, timeout=constants.HF_HUB_ETAG_TIMEOUT).close()
    except OSError as err:  # no DNS, refused, no route, timed out
        reason = f"{address[0]}:{address[1]}: {type(err).__name__}: {err}"
        _unreachable[address] = (time.monotonic(), reason)
        return reason
    _unreachable.pop(address, None)
    return None


def download_hub_file(
    repo_id: str, filename: str = WEIGHTS_FILE, revision: str | None = None, cache: str | os.PathLike | None = None
) -> Path:
    """Path of ``filename`` of the Hub repository ``repo_id`` (``org/name[@revision]``), downloaded or cached.

    ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and ``HF_HOME`` apply; ``cache`` replaces the Hub cache folder.
    When the Hub cannot be reached (:func:`hub_unreachable`) only the cache is read, at once.

    Raises:
        WeightsUnavailableError: Neither the Hub nor the cache has the file; the message names the repository,
            and offline mode when it applies.
        ValueError: ``repo_id`` is not a repository name.
    """
    if "@" in repo_id:
        repo_id, revision = repo_id.split("@", 1)
    where = f"{repo_id}/{filename}" + (f"@{revision}" if revision else "")
    unreachable = None if constants.HF_HUB_OFFLINE else hub_unreachable()
    try:
        found = hf_hub_download(
            repo_id, filename, revision=revision, cache_dir=cache, local_files_only=unreachable is not None
        )
    except HFValidationError:  # not a repository name: the caller's mistake, said by huggingface_hub
        raise
    except Exception as err:  # huggingface_hub's HTTP, cache and offline errors
        if constants.HF_HUB_OFFLINE:
            reason = f"offline mode (HF_HUB_OFFLINE=1): {where} is not in the Hugging Face cache"
        elif unreachable is not None:
            reason = (
                f"the Hugging Face Hub ({constants.ENDPOINT}) cannot be reached ({unreachable}) and {where} is not in "
                "its cache; with HF_HUB_OFFLINE=1 cached files load without trying the network"
            )
        else:
            first_line = next(iter(str(err).splitlines()), "")
            reason = f"{where} on the Hugging Face Hub: {type(err).__name__}: {first_line}"
        raise WeightsUnavailableError(reason, name=repo_id, hf_hub_id=repo_id, file=filename) from err
    return Path(found)


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
        OSError: ``directory`` could not take the file (full, read-only; errno in :data:`STORAGE_ERRNOS`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(directory)
    path = directory / Path(url.split("?")[0]).name
    digest = hashlib.sha256()
    with writing(path) as partial:  # renamed once complete and verified; removed when anything fails
        try:
            _fetch(url, partial, digest)
        except Exception as err:  # URLError, HTTPError, timeouts, cut connections: this source failed
            if isinstance(err, OSError) and err.errno in STORAGE_ERRNOS:
                raise  # the disk, not the network: the caller may write elsewhere
            raise WeightsUnavailableError(f"could not download {url}: {type(err).__name__}: {err}", url=url) from err
        if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix):
            raise ValueError(
                f"the file downloaded from {url} failed verification: its SHA-256 does not start with {sha256_prefix}"
            )
    return path


def _fetch(url: str, target: Path, digest: Any) -> None:
    """Stream ``url`` into ``target``, feeding ``digest``, with a progress bar on terminals; a short body raises."""
    with urllib.request.urlopen(url, timeout=download_timeout()) as response, target.open("wb") as out:
        expected = response.headers.get("Content-Length")
        received = 0
        progress = tqdm(
            total=int(expected) if expected else None,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=Path(url.split("?")[0]).name,
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


def discard_download(path: str | os.PathLike) -> None:
    """Remove a bad downloaded file (and the blob a Hub cache link points to)."""
    path = Path(path)
    for p in {path, path.resolve()}:
        p.unlink(missing_ok=True)
