"""Downloading pretrained weights: the Hugging Face Hub first, then the upstream URL, then a clear error.

Sources, in order, for ``create_model(name, pretrained=True)``:

1. ``pretrained_cfg_overlay=dict(file=PATH)``: a local file (safetensors, original or OpenMMLab ``.pth``).
2. The tag's Hub repository (``hf_hub_id``, ``model.safetensors``) through ``huggingface_hub``: its cache,
   ``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and ``HF_TOKEN`` apply, and the download is pinned to ``hf_hub_revision``.
3. The upstream checkpoint (``url``), verified against the SHA-256 prefix in its name, read with
   ``weights_only=True``, converted in memory and cached as safetensors: later loads are pickle-free.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
from safetensors.torch import save_file
from torch import nn
from torch.hub import download_url_to_file

from ..models.convert import to_package_layout
from ..models.pretrained import PosePretrainedCfg
from .checkpoint import load_checkpoint, read_checkpoint

__all__ = [
    "IMAGENET_HUB_IDS",
    "WeightsUnavailableError",
    "cache_dir",
    "fetch_upstream",
    "load_imagenet_backbone",
    "load_imagenet_state_dict",
    "load_pretrained",
]

_logger = logging.getLogger(__name__)
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class WeightsUnavailableError(RuntimeError):
    """No source could provide the weights; the message says how to supply them locally."""


def cache_dir() -> Path:
    """Where converted upstream checkpoints are kept: ``$HRNET_ZOO_CACHE`` or ``~/.cache/hrnet_zoo``."""
    return Path(os.environ.get("HRNET_ZOO_CACHE") or Path.home() / ".cache" / "hrnet_zoo")


def _discard(path: str | os.PathLike) -> None:
    """Remove a bad downloaded file (and the blob a Hub cache link points to)."""
    path = Path(path)
    target = path.resolve()
    for p in {path, target}:
        p.unlink(missing_ok=True)


def fetch_upstream(url: str, sha256_prefix: str | None, offline: bool = False) -> Path:
    """Path of the upstream checkpoint at ``url`` converted to a cached safetensors file.

    The raw file is downloaded to a temporary directory, its SHA-256 compared with ``sha256_prefix``, read with
    ``weights_only=True`` and converted to the package layout; only the converted file is kept.

    Raises:
        WeightsUnavailableError: Offline with nothing cached, or the download failed.
        ValueError: Hash mismatch, or a file that is not a readable checkpoint (nothing is cached then).
    """
    cached = cache_dir() / "upstream" / (Path(url.split("?")[0]).stem + ".safetensors")
    if cached.is_file():
        return cached
    if offline:
        raise WeightsUnavailableError(f"offline mode: {url} is not in the cache ({cached})")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / Path(url.split("?")[0]).name
        try:
            download_url_to_file(url, str(raw), hash_prefix=sha256_prefix, progress=False)
        except RuntimeError as err:
            raise ValueError(f"the file downloaded from {url} failed verification: {err}") from err
        except OSError as err:
            raise WeightsUnavailableError(f"could not download {url}: {err}") from err
        state_dict = to_package_layout(read_checkpoint(raw))
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(partial), metadata={"source": url})
    partial.replace(cached)
    return cached


def _supply_locally_hint(pose_cfg: PosePretrainedCfg) -> str:
    lines = [f"To supply the weights of {pose_cfg.name} locally:"]
    if pose_cfg.hf_hub_id:
        lines.append(
            f"  - download {WEIGHTS_FILE} of https://huggingface.co/{pose_cfg.hf_hub_id} elsewhere and pass "
            "pretrained_cfg_overlay=dict(file=PATH), or copy a Hugging Face cache here and set HF_HUB_OFFLINE=1"
        )
    if pose_cfg.url:
        lines.append(
            f"  - or download {pose_cfg.url} and pass checkpoint_path=PATH (OpenMMLab .pth files load directly)"
        )
    lines.append("  - or pass checkpoint_path=PATH to an original deep-high-resolution-net .pth or a .safetensors file")
    lines.append("  - CLI: hrnet-zoo predict ... --checkpoint PATH")
    return "\n".join(lines)


def load_pretrained(
    model: nn.Module,
    pose_cfg: PosePretrainedCfg,
    source: bool | str = True,
    reset_head: bool = False,
) -> str:
    """Load the weights of ``pose_cfg`` into ``model``, trying each source in turn.

    Args:
        model: A model built for ``pose_cfg.architecture``.
        pose_cfg: The pretrained configuration (tag) to load.
        source: ``True`` for the tag's weights, ``"imagenet"`` for timm's ImageNet backbone.
        reset_head: The model was asked for another number of joints: keep its new head.

    Returns:
        A description of the source that served the weights (also logged).

    Raises:
        WeightsUnavailableError: No source could be reached (the message lists ways to supply the weights).
        ValueError: A downloaded file is corrupted or fails its hash (it is removed), or does not fit the model.
    """
    if source == "imagenet":
        return load_imagenet_backbone(model)
    if source is not True:
        raise ValueError(f"pretrained must be True, False or 'imagenet', got {source!r}")
    local_file = getattr(model, "pretrained_cfg", {}).get("file")
    if local_file:
        load_checkpoint(model, local_file, reset_head=reset_head)
        return _served(pose_cfg, f"local file {local_file}")
    if not pose_cfg.has_weights:
        raise WeightsUnavailableError(
            f"{pose_cfg.name} has no pretrained weights; use pretrained=False, pretrained='imagenet' or "
            f"checkpoint_path=PATH. Models with weights: hrnet_zoo.list_pretrained()"
        )
    failures = []
    if pose_cfg.hf_hub_id:
        try:
            path = hf_hub_download(pose_cfg.hf_hub_id, WEIGHTS_FILE, revision=pose_cfg.hf_hub_revision)
        except (HfHubHTTPError, EntryNotFoundError, OSError) as err:
            failures.append(f"Hugging Face Hub {pose_cfg.hf_hub_id}/{WEIGHTS_FILE}: {type(err).__name__}: {err}")
        else:
            _load_or_discard(model, path, reset_head)
            return _served(pose_cfg, f"Hugging Face Hub {pose_cfg.hf_hub_id}")
    if pose_cfg.url:
        try:
            path = fetch_upstream(pose_cfg.url, pose_cfg.sha256_prefix, offline=constants.HF_HUB_OFFLINE)
        except WeightsUnavailableError as err:
            failures.append(f"upstream: {err}")
        else:
            _load_or_discard(model, path, reset_head)
            return _served(pose_cfg, f"upstream {pose_cfg.url} (converted copy {path})")
    raise WeightsUnavailableError(
        f"could not get the weights of {pose_cfg.name}:\n  "
        + "\n  ".join(line.splitlines()[0] for line in failures)
        + "\n"
        + _supply_locally_hint(pose_cfg)
    )


def _load_or_discard(model: nn.Module, path: str | os.PathLike, reset_head: bool) -> None:
    """Load a downloaded file; if it cannot be read, remove it from the cache before raising."""
    try:
        state_dict = read_checkpoint(path)
    except ValueError:
        _discard(path)
        raise
    load_checkpoint(model, state_dict, reset_head=reset_head)


def _served(pose_cfg: PosePretrainedCfg, where: str) -> str:
    metrics = ", ".join(f"{k}={v}" for k, v in pose_cfg.metrics.items()) or "no reported metrics"
    _logger.info("Loaded %s weights from %s (%s)", pose_cfg.name, where, metrics)
    return where


#: timm's ImageNet-1k classifiers with the same backbone as each pose architecture.
IMAGENET_HUB_IDS = {
    "hrnet_w18_small_pose": "timm/hrnet_w18_small_v2.ms_in1k",
    "hrnet_w18_pose": "timm/hrnet_w18.ms_in1k",
    "hrnet_w32_pose": "timm/hrnet_w32.ms_in1k",
    "hrnet_w48_pose": "timm/hrnet_w48.ms_in1k",
}


def load_imagenet_backbone(model: nn.Module) -> str:
    """Initialise the backbone from timm's ImageNet-1k HRNet classifier, as the paper's training did.

    The stem, stage 1, transitions and stages load; timm's classification head (``incre_modules``,
    ``downsamp_modules``, ``final_layer``, ``classifier``) is dropped, and the pose head stays initialised.
    """
    arch = model.pretrained_cfg["architecture"]
    if arch not in IMAGENET_HUB_IDS:
        raise ValueError(f"no ImageNet weights are known for {arch}")
    repo = IMAGENET_HUB_IDS[arch]
    try:
        path = hf_hub_download(repo, WEIGHTS_FILE)
    except (HfHubHTTPError, EntryNotFoundError, OSError) as err:
        raise WeightsUnavailableError(
            f"could not get {WEIGHTS_FILE} of {repo} ({type(err).__name__}); download it elsewhere and load it "
            "with hrnet_zoo.hub.load_imagenet_state_dict(model, PATH)"
        ) from err
    return load_imagenet_state_dict(model, path, source=f"Hugging Face Hub {repo}")


_CLASSIFIER_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")


def load_imagenet_state_dict(model: nn.Module, checkpoint: str | os.PathLike, source: str = "") -> str:
    """Load a timm HRNet ImageNet checkpoint file into the backbone of ``model``.

    See :func:`load_imagenet_backbone`; this is the same for a file at hand.
    """
    from ..models.convert import original_to_package
    from .checkpoint import load_state_dict_checked

    state_dict = read_checkpoint(checkpoint)
    backbone = {original_to_package(k): v for k, v in state_dict.items() if not k.startswith(_CLASSIFIER_PREFIXES)}
    own_backbone = [k for k in model.state_dict() if k.startswith("backbone.")]
    # The pose network's last module fuses into one branch: the classifier's extra fusion paths are not needed.
    backbone = {k: v for k, v in backbone.items() if k in set(own_backbone)}
    load_state_dict_checked(
        model, backbone, ignore_missing=lambda k: not k.startswith("backbone."), source=source or str(checkpoint)
    )
    _logger.info(
        "Initialised %d backbone tensors of %s from ImageNet weights (%s)",
        len(backbone),
        type(model).__name__,
        source or checkpoint,
    )
    return source or str(checkpoint)
