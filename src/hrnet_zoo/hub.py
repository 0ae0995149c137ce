"""Publishing models in the Hub layout: timm's ``save_for_hf`` (``model.safetensors`` + ``config.json`` with the
model's arguments) and a model card from ``huggingface_hub.ModelCard`` that states what the weights are.

The folder loads back with ``hrnet_zoo.create_model("local-dir:PATH")`` or ``timm.create_model`` (after
``import hrnet_zoo``), and from the Hub with ``"hf-hub:org/name"``: ``config.json``'s ``model_args.pose_meta``
restores keypoints, codec, normalisation and the weights' origin.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, ModelCard, ModelCardData
from timm.models import save_for_hf
from torch import nn

from ._download import WEIGHTS_FILE
from ._factory import create_model
from ._utils import read_json
from .codec import BottomUpCodec
from .models.meta import PoseMeta, WeightsOrigin, weights_fingerprint

__all__ = ["CONFIG_FILE", "convert_checkpoint", "model_card", "push_folder", "push_to_hub", "save_pretrained"]

CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
_LIBRARY = "hrnet_zoo"
# Factory arguments that pose_meta replaces in config.json (they are not JSON, or pose_meta holds them).
_META_ARGS = ("keypoints", "num_joints", "input_size", "pose_meta")
_CITATION = """@inproceedings{sun2019deep,
  title={Deep High-Resolution Representation Learning for Human Pose Estimation},
  author={Sun, Ke and Xiao, Bin and Liu, Dong and Wang, Jingdong},
  booktitle={CVPR},
  year={2019}
}"""


def _meta_to_publish(model: nn.Module) -> PoseMeta:
    """The model's metadata, with an origin that is true of the weights as they are now."""
    meta: PoseMeta = model.pose_meta
    fingerprint = weights_fingerprint(model)
    origin = meta.origin
    if origin is not None and origin.fingerprint == fingerprint:
        return meta
    return replace(meta, origin=origin.derived(fingerprint) if origin else WeightsOrigin(fingerprint=fingerprint))


def _cfg_to_publish(model: nn.Module, origin: WeightsOrigin | None) -> dict[str, Any]:
    """timm's configuration of ``model`` claiming only what is true of its weights: the tag and its origin page
    when they are the tag's unchanged weights, and the license of the weights (or of the weights they came from)."""
    cfg = dict(model.pretrained_cfg)
    tag_name = f"{cfg.get('architecture')}.{cfg.get('tag') or ''}".rstrip(".")
    if origin is None or origin.name != tag_name:
        for key in ("tag", "origin_url", "hf_hub_id", "url"):
            cfg.pop(key, None)
    cfg.pop("license", None)
    if origin is not None and origin.license:
        cfg["license"] = origin.license
    return cfg


def _weights_section(origin: WeightsOrigin | None) -> str:
    if origin is not None and origin.name:
        lines = [f"These are the weights of `{origin.name}`, unchanged" + (f" ({origin.url})." if origin.url else ".")]
        if origin.metrics:
            source = f" ([source]({origin.metrics_source}))" if origin.metrics_source else ""
            rows = "\n".join(f"| {k} | {v} |" for k, v in origin.metrics.items())
            lines += ["", f"Reported metrics of these weights{source}:", "", "| metric | value |", "|---|---|", rows]
        else:
            lines.append("No metrics were reported for them, so none are claimed here.")
        return "\n".join(lines)
    if origin is not None and origin.base:
        license_note = f" The license of the starting weights ({origin.license}) applies." if origin.license else ""
        return (
            f"Fine-tuned or otherwise changed from `{origin.base}`. These weights differ from it, so its published "
            "metrics do not apply and none are claimed here; evaluate them on your data (`hrnet-zoo evaluate`)."
            + license_note
        )
    return (
        "Of unknown origin (trained from scratch, or converted from a file without provenance): no metrics are claimed."
    )


def _model_summary(model: nn.Module, meta: PoseMeta) -> str:
    family = getattr(model, "family", "HRNet")
    if meta.bottom_up:
        return f"{family} bottom-up pose estimation model (every person of a whole image) in the `{_LIBRARY}` layout."
    return f"{family} top-down pose estimation model (Sun et al., CVPR 2019) in the `{_LIBRARY}` layout."


def _input_output(meta: PoseMeta) -> str:
    h, w = meta.input_size
    norm = f"in [0, 1] normalised with mean {list(meta.mean)} and\n  std {list(meta.std)}"
    codec = meta.codec
    if isinstance(codec, BottomUpCodec):
        return (
            f"- Input: the whole RGB image, its short side resized to {h} (test scales {list(codec.scales)}), {norm}\n"
            f"- Output: decoded with {codec.method} ({codec.protocol} test protocol) into every person's keypoints"
        )
    return (
        f"- Input: RGB crop of one person, {h}x{w} (height x width), {norm}\n"
        f"- Output: {len(meta.keypoints)} heatmaps of {codec.heatmap_size[0]}x{codec.heatmap_size[1]}\n"
        f"  (codec: {codec.encoding} encoding, {codec.decoding} decoding)"
    )


def model_card(model: nn.Module, meta: PoseMeta | None = None, repo_id: str = "REPO_ID") -> ModelCard:
    """The model card of ``model``: what it predicts, how to load it, and what its weights are (and claim)."""
    meta = meta or _meta_to_publish(model)
    origin = meta.origin
    arch = model.pretrained_cfg["architecture"]
    h, w = meta.input_size
    data = ModelCardData(
        library_name=_LIBRARY,
        license=origin.license if origin and origin.license else None,
        tags=["pose-estimation", "keypoint-detection", "hrnet", "timm"],
        pipeline_tag="keypoint-detection",
    )
    names = ", ".join(meta.keypoints.names) or "(no head: the model returns its stride-4 features)"
    body = f"""
# {arch} ({meta.keypoints.name} keypoints, {h}x{w})

{_model_summary(model, meta)}

```python
import hrnet_zoo, timm
model = hrnet_zoo.create_model("hf-hub:{repo_id}", pretrained=True).eval()
model = timm.create_model("hf-hub:{repo_id}", pretrained=True).eval()  # the same, after `import hrnet_zoo`
```

{_input_output(meta)}
- Keypoints: {names}

## Weights

{_weights_section(origin)}

## Citation

```bibtex
{_CITATION}
```
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def save_pretrained(model: nn.Module, out_dir: str | os.PathLike) -> Path:
    """Write ``model`` in the Hub layout: ``model.safetensors``, ``config.json`` and ``README.md`` (model card).

    Uses timm's ``save_for_hf``; ``config.json`` holds ``model_args.pose_meta`` (keypoints, codec, normalisation,
    weights origin), so the folder rebuilds the same model through ``create_model("local-dir:PATH")``. Its
    ``pretrained_cfg`` names a tag, origin and license only when they are true of the weights saved (untrained
    weights claim none).
    """
    out = Path(out_dir)
    meta = _meta_to_publish(model)
    recorded = getattr(model, "_model_args", {})
    model._model_args = {k: v for k, v in recorded.items() if k not in _META_ARGS}
    loaded_cfg = model.pretrained_cfg
    model.pretrained_cfg = _cfg_to_publish(model, meta.origin)  # what save_for_hf writes as pretrained_cfg
    try:
        save_for_hf(
            model,
            str(out),
            model_config={"library": _LIBRARY},
            model_args={"pose_meta": meta.to_dict()},
            safe_serialization=True,
        )
    finally:
        model.pretrained_cfg = loaded_cfg
    model_card(model, meta).save(out / CARD_FILE)
    return out


def convert_checkpoint(src: str | os.PathLike, out_dir: str | os.PathLike, model_name: str) -> Path:
    """Convert an original or OpenMMLab checkpoint for ``model_name`` (``arch`` or ``arch.tag``) to the Hub layout.

    The card claims the tag's provenance, metrics and license only when ``src`` is the tag's upstream file (its
    SHA-256 starts with the prefix the tag records); any other file is described as of unknown origin.
    """
    return save_pretrained(create_model(model_name, checkpoint_path=src), out_dir)


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
    """Upload a folder written by :func:`save_pretrained` or :func:`convert_checkpoint` to ``repo_id``, in one
    commit (the card's ``REPO_ID`` placeholders become ``repo_id`` in the upload; the folder is not modified)."""
    folder = Path(folder)
    missing = [f for f in (WEIGHTS_FILE, CONFIG_FILE) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not in the Hub layout: {', '.join(missing)} missing (see hrnet-zoo convert)"
        )
    config: dict[str, Any] = read_json(folder / CONFIG_FILE, "model config")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        for f in folder.iterdir():
            if f.is_file():
                target = staged / f.name
                if f.name == CARD_FILE:
                    target.write_text(f.read_text().replace("REPO_ID", repo_id))
                else:
                    target.symlink_to(f.resolve())
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(staged),
            revision=revision,
            commit_message=f"Upload {config.get('architecture', 'model')}",
        )
    return str(info)
