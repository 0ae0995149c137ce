"""The package's Hub layout: ``config.json`` + ``model.safetensors`` + a model card; converting and publishing."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, hf_hub_download
from safetensors.torch import save_file
from torch import nn

from ..models.pretrained import PosePretrainedCfg
from ..pose.keypoints import KeypointSet
from .checkpoint import load_checkpoint
from .download import CONFIG_FILE, WEIGHTS_FILE, load_pretrained

__all__ = [
    "convert_checkpoint",
    "create_from_folder",
    "create_from_hub",
    "push_folder",
    "push_to_hub",
    "save_pretrained",
]

_package = "hrnet_zoo"
_CITATION = """@inproceedings{sun2019deep,
  title={Deep High-Resolution Representation Learning for Human Pose Estimation},
  author={Sun, Ke and Xiao, Bin and Liu, Dong and Wang, Jingdong},
  booktitle={CVPR},
  year={2019}
}"""


def _hub_config(model: nn.Module) -> dict[str, Any]:
    pose_cfg: PosePretrainedCfg = model.pose_cfg
    timm_cfg = {k: v for k, v in model.pretrained_cfg.items() if k in pose_cfg.to_timm() and k != "hf_hub_id"}
    timm_cfg.update(num_classes=model.num_joints, label_names=list(model.keypoints.names))
    return {
        "architecture": pose_cfg.architecture,
        "num_classes": model.num_joints,
        "num_features": model.num_features,
        "pretrained_cfg": timm_cfg,
        "library": _package,
        "num_joints": model.num_joints,
        "keypoints": model.keypoints.to_dict(),
        "input_size": list(pose_cfg.input_size),
        "metrics": dict(pose_cfg.metrics),
        "metrics_source": pose_cfg.metrics_source,
        "paper_metrics": dict(pose_cfg.paper_metrics),
        "source_url": pose_cfg.url or pose_cfg.origin_url,
        "license": pose_cfg.license,
    }


def _model_card(config: dict[str, Any]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in config["metrics"].items()) or "| (none reported) | |"
    paper = "\n".join(f"| {k} | {v} |" for k, v in config["paper_metrics"].items()) or "| (none reported) | |"
    names = ", ".join(config["keypoints"]["names"])
    h, w = config["input_size"]
    mean, std = config["pretrained_cfg"]["mean"], config["pretrained_cfg"]["std"]
    return f"""---
library_name: {config["library"]}
license: {config["license"]}
tags: [pose-estimation, keypoint-detection, hrnet]
---
# {config["architecture"]} ({config["keypoints"]["name"]} keypoints, {h}x{w})

HRNet top-down pose estimation model in the `{config["library"]}` layout.

```python
import hrnet_zoo
model = hrnet_zoo.create_model("hf-hub:REPO_ID", pretrained=True).eval()
```

- Input: RGB crop of one person, {h}x{w} (height x width), normalised with mean {mean} and std {std}
- Output: {config["num_joints"]} heatmaps at 1/4 of the input size
- Keypoints: {names}
- Weights from: {config["source_url"]}
- License: {config["license"]}

## Metrics of these weights ([source]({config["metrics_source"] or config["source_url"]}))

| metric | value |
|---|---|
{rows}

## The original release (paper, Table 1)

| metric | value |
|---|---|
{paper}

## Citation

```bibtex
{_CITATION}
```
"""


def save_pretrained(model: nn.Module, out_dir: str | os.PathLike) -> Path:
    """Write ``model`` in the Hub layout: ``model.safetensors``, ``config.json`` and ``README.md`` (model card)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = _hub_config(model)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS_FILE))
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (out / "README.md").write_text(_model_card(config))
    return out


def convert_checkpoint(src: str | os.PathLike, out_dir: str | os.PathLike, model_name: str) -> Path:
    """Convert an original or OpenMMLab checkpoint for ``model_name`` (``arch.tag``) into the Hub layout."""
    from ..factory import create_model

    model = create_model(model_name)
    load_checkpoint(model, src)
    return save_pretrained(model, out_dir)


def push_to_hub(
    model: nn.Module, repo_id: str, *, private: bool = False, revision: str | None = None, token: str | None = None
) -> str:
    """Publish ``model`` to the Hugging Face Hub repository ``repo_id`` (created if needed); returns the commit URL."""
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        return push_folder(tmp, repo_id, private=private, revision=revision, token=token)


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
) -> str:
    """Upload a folder written by :func:`save_pretrained` or :func:`convert_checkpoint` to ``repo_id``."""
    folder = Path(folder)
    missing = [f for f in (WEIGHTS_FILE, CONFIG_FILE) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not in the Hub layout: {', '.join(missing)} missing (see hrnet-zoo convert)"
        )
    card = folder / "README.md"
    if card.is_file():
        card.write_text(card.read_text().replace("REPO_ID", repo_id))
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    config = json.loads((folder / CONFIG_FILE).read_text())
    info = api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), revision=revision, commit_message=f"Upload {config['architecture']}"
    )
    return str(info)


def _model_from_config(config: dict[str, Any], where: str, **kwargs: Any) -> nn.Module:
    """The untrained model a ``config.json`` of the package's layout describes (``kwargs`` to ``create_model``)."""
    from ..factory import create_model

    if "architecture" not in config:
        raise ValueError(f"{where}/{CONFIG_FILE} names no architecture: not a model in the {_package} layout")
    keypoints = KeypointSet.from_dict(config["keypoints"]) if "keypoints" in config else None
    model = create_model(config["architecture"], keypoints=keypoints, **kwargs)
    model.pose_cfg = replace(
        model.pose_cfg,
        tag="",
        keypoints=model.keypoints if keypoints is None else keypoints,
        input_size=tuple(config.get("input_size", model.pose_cfg.input_size)),
        metrics=config.get("metrics", {}),
        metrics_source=config.get("metrics_source", ""),
        paper_metrics=config.get("paper_metrics", {}),
        hf_hub_id=None,
        url=None,
        sha256_prefix=None,
    )
    return model


def create_from_hub(
    repo_id: str, pretrained: bool | str = True, *, revision: str | None = None, **kwargs: Any
) -> nn.Module:
    """Build the model described by a Hub repository's ``config.json`` and load its ``model.safetensors``.

    Architecture, number of joints and keypoint metadata come from the config; ``kwargs`` go to
    :func:`hrnet_zoo.create_model` (``checkpoint_path`` is loaded after the Hub weights).
    """
    config_path = hf_hub_download(repo_id, CONFIG_FILE, revision=revision)
    checkpoint_path = kwargs.pop("checkpoint_path", None)
    model = _model_from_config(json.loads(Path(config_path).read_text()), repo_id, **kwargs)
    model.pose_cfg = replace(model.pose_cfg, hf_hub_id=repo_id, hf_hub_revision=revision)
    if pretrained:
        load_pretrained(model, model.pose_cfg, source=pretrained)
    if checkpoint_path is not None:
        load_checkpoint(model, checkpoint_path)
    return model


def create_from_folder(folder: str | os.PathLike, pretrained: bool | str = True, **kwargs: Any) -> nn.Module:
    """Build and load a model saved by :func:`save_pretrained` (``config.json`` + ``model.safetensors``).

    The local counterpart of :func:`create_from_hub`, reached as ``create_model("local-dir:PATH")``; fine-tuned
    models saved by ``examples/finetune.py`` load this way with their keypoints.
    """
    folder = Path(folder)
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} does not exist: expected a folder written by save_pretrained")
    checkpoint_path = kwargs.pop("checkpoint_path", None)
    model = _model_from_config(json.loads(config_file.read_text()), str(folder), **kwargs)
    if pretrained:
        load_checkpoint(model, folder / WEIGHTS_FILE)
    if checkpoint_path is not None:
        load_checkpoint(model, checkpoint_path)
    return model
