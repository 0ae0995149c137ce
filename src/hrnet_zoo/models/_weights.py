"""Pretrained weights for a model: a local file, the Hugging Face Hub, then the upstream URL, then a clear error.

Sources, in order, for ``create_model(name, pretrained=True)``:

1. ``pretrained_cfg["file"]``: ``pretrained_cfg_overlay=dict(file=PATH)``, or the folder of a ``local-dir:`` model.
2. The Hub repository of an ``hf-hub:`` model, or of a tag whose Hub file is content-checked (``hf_hub_sha256``, or
   ``hf_hub_revision`` pinned to a commit), through ``huggingface_hub``: its cache, ``HF_HUB_OFFLINE``,
   ``HF_ENDPOINT`` and ``HF_TOKEN`` apply.
3. The tag's upstream checkpoint (``url``), verified against the SHA-256 prefix in its name, read with
   ``weights_only=True``, converted once and cached as safetensors: later loads are pickle-free.
4. A tag's Hub repository that is not content-checked: its weights load with a warning and claim nothing.

Every file goes through :func:`hrnet_zoo.models.load_checkpoint`, and the model's
``pose_meta.origin`` records what was loaded.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from huggingface_hub import constants
from safetensors.torch import save_file
from torch import Tensor, nn

from .._download import (
    WEIGHTS_FILE,
    cache_dir,
    discard_download,
    download_hub_file,
    download_verified,
    file_sha256,
)
from .._utils import writing
from ..errors import CheckpointMismatchError, WeightsUnavailableError
from ._checkpoint import load_checkpoint, read_checkpoint
from ._layouts import to_package_layout
from .meta import WeightsOrigin, weights_fingerprint
from .pretrained import PosePretrainedCfg, registered_cfg

__all__ = ["load_imagenet_backbone", "load_pretrained", "load_weights_file"]

_logger = logging.getLogger(__name__)


def _writable_folder(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _download_raw(url: str, sha256_prefix: str | None, folders: list[Path]) -> Path:
    """Download ``url`` into the first of ``folders`` with room for it (a full cache leaves the temporary folder)."""
    for folder in folders[:-1]:
        try:
            return download_verified(url, sha256_prefix, folder)
        except OSError as err:  # a storage error of that folder (network errors are WeightsUnavailableError)
            _logger.warning("could not download into %s (%s); using %s instead", folder, err, folders[-1])
    return download_verified(url, sha256_prefix, folders[-1])


def fetch_upstream(
    url: str, sha256_prefix: str | None, cache: str | os.PathLike | None = None
) -> Path | dict[str, Tensor]:
    """The upstream checkpoint at ``url``, converted to the package layout: the cached safetensors file, or the
    converted tensors themselves when the cache cannot be written (read-only, full; a warning says so).

    The raw file is downloaded (bounded in time) into the cache folder, or a temporary folder when the cache has
    no room, checked against ``sha256_prefix``, read with ``weights_only=True`` and converted; only the converted
    file is kept.

    Raises:
        WeightsUnavailableError: Offline with nothing cached, or the download failed.
        ValueError: Hash mismatch, or a file that is not a readable checkpoint (nothing is cached then).
    """
    cached = cache_dir(cache) / "upstream" / (Path(url.split("?")[0]).stem + ".safetensors")
    if cached.is_file():
        return cached
    if constants.HF_HUB_OFFLINE:
        raise WeightsUnavailableError(f"offline mode (HF_HUB_OFFLINE=1): {url} is not in the cache ({cached})")
    with tempfile.TemporaryDirectory(prefix="hrnet_zoo-") as tmp:
        folders = [cached.parent, Path(tmp)] if _writable_folder(cached.parent) else [Path(tmp)]
        raw = _download_raw(url, sha256_prefix, folders)
        try:
            state_dict, _ = to_package_layout(read_checkpoint(raw))
        finally:
            raw.unlink(missing_ok=True)
    try:
        with writing(cached) as partial:
            save_file({k: v.contiguous() for k, v in state_dict.items()}, str(partial), metadata={"source": url})
    except Exception as err:  # read-only or full cache: the verified weights are still good
        _logger.warning(
            "could not cache the converted weights at %s (%s: %s); loading them from memory",
            cached,
            type(err).__name__,
            err,
        )
        return state_dict
    return cached


def _check_hub_file(path: Path, registered: PosePretrainedCfg | None) -> None:
    """Compare a tag's Hub file with the SHA-256 the tag records; a mismatch is removed from the cache."""
    expected = registered.hf_hub_sha256 if registered else None
    if expected and file_sha256(path) != expected:
        discard_download(path)
        raise ValueError(
            f"the downloaded file's SHA-256 differs from the one recorded for {registered.name}; "
            "it was removed from the cache"
        )


def _supply_locally_hint(name: str, hf_hub_id: str | None, url: str | None) -> str:
    lines = [f"To supply the weights of {name} locally:"]
    if hf_hub_id:
        lines.append(
            f"  - download {WEIGHTS_FILE} of https://huggingface.co/{hf_hub_id} elsewhere and pass "
            "pretrained_cfg_overlay=dict(file=PATH), or copy a Hugging Face cache here and set HF_HUB_OFFLINE=1"
        )
    if url:
        lines.append(f"  - or download {url} and pass checkpoint_path=PATH (OpenMMLab .pth files load directly)")
    lines.append("  - or pass checkpoint_path=PATH to an original deep-high-resolution-net .pth or a .safetensors file")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Source:
    """One place a model's weights may come from, tried in turn by :func:`load_pretrained`."""

    label: str  # names it in the log and in errors
    fetch: Callable[[], Path | dict[str, Tensor]]
    from_tag: bool = False  # content checked against the tag: it may claim the tag's origin
    origin_name: str | None = None  # the origin an unchecked source's weights get instead


def _sources(
    model: nn.Module, registered: PosePretrainedCfg | None, cache: str | os.PathLike | None
) -> tuple[str | None, str | None, list[_Source]]:
    """The Hub repository, the upstream URL, and the sources in the order they are tried: content-checked ones
    first (the Hub by its recorded hash or commit, the upstream file by its SHA-256 prefix), then an unchecked Hub
    repository, whose weights claim nothing of the tag."""
    hf_hub_id = registered.hf_hub_id if registered else model.pretrained_cfg.get("hf_hub_id")
    url = registered.url if registered else None
    revision = registered.hf_hub_revision if registered else None

    def hub() -> Path:
        path = download_hub_file(hf_hub_id, WEIGHTS_FILE, revision, cache)
        _check_hub_file(path, registered)
        return path

    checked, unchecked = [], []
    if hf_hub_id:
        label, unchecked_origin = f"Hugging Face Hub {hf_hub_id}/{WEIGHTS_FILE}", f"file from hf-hub:{hf_hub_id}"
        if registered is None:  # an hf-hub: model: the repository asked for, described by its own config.json
            checked.append(_Source(label, hub))
        elif registered.hub_checked:
            checked.append(_Source(label, hub, from_tag=True))
        else:
            unchecked.append(_Source(f"{label} (not content-checked)", hub, origin_name=unchecked_origin))
    if url:
        checked.append(_Source(f"upstream {url}", lambda: fetch_upstream(url, registered.sha256_prefix, cache), True))
    return hf_hub_id, url, checked + unchecked


def _none_served(name: str, hf_hub_id: str | None, url: str | None, failures: list[tuple[str, Exception]]) -> Exception:
    """The error when no source served: a mismatch when every file was readable but did not fit, else unavailable."""
    reasons = "\n  ".join(f"{label}: {type(err).__name__}: {str(err).splitlines()[0]}" for label, err in failures)
    if all(isinstance(err, CheckpointMismatchError) for _, err in failures):
        first = failures[0][1]
        return CheckpointMismatchError(
            f"no weights of {name} fit the model; nothing was loaded:\n  {reasons}\n{first}",
            source=first.source,
            checkpoint_joints=first.checkpoint_joints,
            model_joints=first.model_joints,
        )
    return WeightsUnavailableError(
        f"could not get the weights of {name}:\n  {reasons}\n" + _supply_locally_hint(name, hf_hub_id, url),
        name=name,
        hf_hub_id=hf_hub_id,
        url=url,
    )


def load_pretrained(
    model: nn.Module,
    source: bool | str = True,
    *,
    reset_head: bool = False,
    cache: str | os.PathLike | None = None,
    imagenet_hub_id: str | None = None,
) -> str:
    """Load the pretrained weights ``model.pretrained_cfg`` names into ``model``, trying each source in turn.

    Content-checked sources come first; a file that fails (unreachable, damaged, NaN values, another
    architecture) is removed from its cache and the next source is tried. An unchecked source (a tag's Hub
    repository without a recorded hash or pinned commit) comes last, with a warning, and claims none of the tag's
    metrics.

    Args:
        model: A pose or feature model built by the factory.
        source: ``True`` for the configuration's weights, ``"imagenet"`` for timm's ImageNet backbone.
        reset_head: The model was asked for another number of joints: keep its new head.
        cache: Cache folder replacing the Hugging Face and hrnet_zoo defaults (``create_model(cache_dir=...)``).
        imagenet_hub_id: With ``source="imagenet"``: timm's classifier sharing the backbone (the architecture's
            ``ARCHITECTURES`` entry names it).

    Returns:
        A description of the source that served the weights (also logged).

    Raises:
        WeightsUnavailableError: No source served (the message lists each one's reason and ways to supply the
            weights).
        CheckpointMismatchError: Every source's file was readable but none fits the model.
    """
    if source == "imagenet":
        return load_imagenet_backbone(model, hub_id=imagenet_hub_id, cache=cache)
    if source is not True:
        raise ValueError(f"pretrained must be True, False or 'imagenet', got {source!r}")
    timm_cfg = model.pretrained_cfg
    registered = registered_cfg(model.pretrained_cfg)
    name = registered.name if registered else str(timm_cfg.get("hf_hub_id") or timm_cfg.get("file") or "model")
    local = timm_cfg.get("file")
    if local:
        path = Path(local) / WEIGHTS_FILE if Path(local).is_dir() else Path(local)
        load_weights_file(model, path, reset_head=reset_head, adapt_input=True)
        return _served(model, f"local file {path}")
    hf_hub_id, url, sources = _sources(model, registered, cache)
    if not sources:
        raise WeightsUnavailableError(
            f"{name} has no pretrained weights; use pretrained=False, pretrained='imagenet' or "
            f"checkpoint_path=PATH. Models with weights: hrnet_zoo.list_pretrained()",
            name=name,
        )
    failures: list[tuple[str, Exception]] = []
    for candidate in sources:
        try:
            fetched = candidate.fetch()
            if candidate.origin_name:
                _logger.warning(
                    "%s records no SHA-256 or pinned commit of its Hub file: loading %s, which claims no metrics",
                    name,
                    candidate.label,
                )
            load_weights_file(
                model,
                fetched,
                reset_head=reset_head,
                adapt_input=True,
                from_tag=candidate.from_tag,
                discard_bad=True,
                origin_name=candidate.origin_name,
            )
        except Exception as err:  # any failure of this source falls through to the next
            failures.append((candidate.label, err))
        else:
            return _served(model, f"{candidate.label} ({fetched if isinstance(fetched, Path) else 'not cached'})")
    raise _none_served(name, hf_hub_id, url, failures)


def load_weights_file(
    model: nn.Module,
    path: str | os.PathLike | Mapping[str, Tensor],
    *,
    reset_head: bool = False,
    adapt_input: bool = False,
    from_tag: bool = False,
    discard_bad: bool = False,
    origin_name: str | None = None,
) -> list[str]:
    """Load one weights file (:func:`~hrnet_zoo.models.load_checkpoint`) and record its origin.

    ``model.pose_meta.origin`` becomes the tag's (provenance, metrics, license) when the file is the tag's: served
    for it (``from_tag``), or the upstream file itself (its SHA-256 starts with the tag's prefix). An ``hf-hub:`` or
    ``local-dir:`` model keeps the origin its ``config.json`` recorded when the weights match its fingerprint.
    Otherwise the origin is ``origin_name`` or the file, claiming nothing. A new head (``reset_head``) makes the
    weights derived. With ``discard_bad``, a downloaded file that cannot be read or does not fit (NaN values,
    another architecture) is removed from its cache.

    Returns:
        The model keys left as initialised.
    """
    if isinstance(path, Mapping):  # tensors already in memory (an upstream file that could not be cached)
        left = load_checkpoint(model, path, reset_head=reset_head, adapt_input=adapt_input)
        _record_origin(model, None, reset_head, from_tag, origin_name)
        return left
    path = Path(path)
    try:
        left = load_checkpoint(model, path, reset_head=reset_head, adapt_input=adapt_input)
    except ValueError:  # unreadable or unfit (CheckpointMismatchError): a damaged download is not kept
        if discard_bad:
            discard_download(path)
        raise
    _record_origin(model, path, reset_head, from_tag, origin_name)
    return left


def _record_origin(
    model: nn.Module, path: Path | None, reset_head: bool, from_tag: bool, origin_name: str | None = None
) -> None:
    """Set ``model.pose_meta.origin`` after weights were loaded from ``path`` (``None``: from memory)."""
    fingerprint = weights_fingerprint(model)
    meta, registered = model.pose_meta, registered_cfg(model.pretrained_cfg)
    if registered is not None and not from_tag and registered.sha256_prefix and path is not None:
        from_tag = file_sha256(path).startswith(registered.sha256_prefix)
    if registered is not None and from_tag:
        origin = registered.weights_origin(fingerprint)
    elif meta.origin is not None and meta.origin.fingerprint == fingerprint:
        origin = meta.origin
    else:
        fallback = f"file {path.name}" if path else "weights in memory"
        origin = WeightsOrigin(name=origin_name or fallback, fingerprint=fingerprint)
    model.pose_meta = replace(meta, origin=origin.derived(None) if reset_head else origin)


def _served(model: nn.Module, where: str) -> str:
    origin = model.pose_meta.origin
    metrics = ", ".join(f"{k}={v}" for k, v in (origin.metrics if origin else {}).items()) or "no reported metrics"
    _logger.info("Loaded %s weights from %s (%s)", origin.name if origin and origin.name else "the", where, metrics)
    return where


def load_imagenet_backbone(
    model: nn.Module,
    path: str | os.PathLike | None = None,
    *,
    hub_id: str | None = None,
    cache: str | os.PathLike | None = None,
) -> str:
    """Initialise the backbone from timm's ImageNet-1k HRNet classifier, as the paper's training did.

    The stem, stage 1, transitions and stages load; timm's classification head (``incre_modules``,
    ``downsamp_modules``, ``final_layer``, ``classifier``) is dropped, and the pose head stays initialised.

    Args:
        model: A pose or feature model.
        path: A timm HRNet ImageNet checkpoint at hand; downloaded from ``hub_id`` when not given.
        hub_id: timm's Hub repository of the classifier (``ARCHITECTURES[arch].imagenet_hub_id``).
        cache: Cache folder for the download.
    """
    if path is None:
        if hub_id is None:
            arch = model.pretrained_cfg.get("architecture", type(model).__name__)
            raise ValueError(f"no ImageNet weights are known for {arch}; pass the path of a timm HRNet checkpoint")
        try:
            path = download_hub_file(hub_id, WEIGHTS_FILE, cache=cache)
        except Exception as err:
            raise WeightsUnavailableError(
                f"could not get {WEIGHTS_FILE} of {hub_id} ({err}); download it elsewhere and load it "
                "with hrnet_zoo.models.load_imagenet_backbone(model, PATH)",
                name=f"{hub_id} (ImageNet backbone)",
                hf_hub_id=hub_id,
            ) from err
    left = load_checkpoint(model, path)
    source = hub_id or Path(path).name
    origin = WeightsOrigin(name=f"{source} (ImageNet backbone)", license="apache-2.0")
    model.pose_meta = replace(model.pose_meta, origin=origin.derived(None))
    loaded = sum(1 for k in model.state_dict() if k not in left)
    _logger.info(
        "Initialised %d backbone tensors of %s from ImageNet weights (%s); the head stays initialised",
        loaded,
        type(model).__name__,
        source,
    )
    return f"ImageNet {source}"
