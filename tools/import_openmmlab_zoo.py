"""Regenerate the zoo's data files from OpenMMLab's model zoo tables and data set definitions.

Reads, from a git checkout of https://github.com/open-mmlab/mmpose (its ``main`` branch, mmpose 1.x, and its
``0.x`` branch for the tables only 0.x has):

- every ``configs/*/topdown_heatmap/**/hrnet*.yml`` and ``litehrnet*.yml`` model-zoo table (names, metrics, weight
  URLs) and each listed config (input size, codec, backbone, head, test-time flip settings, data set);
- ``configs/_base_/datasets/*.py``: each data set's keypoint names, flip pairs (``swap``), skeleton and OKS
  sigmas;

and writes ``src/hrnet_zoo/data/openmmlab_zoo.json`` and ``src/hrnet_zoo/data/keypoint_sets.json``. Nothing is
typed by hand: rerun it when the tables change. Checkpoints the package cannot serve as they were trained are
listed with the reason under ``"skipped"``.

    python tools/import_openmmlab_zoo.py /path/to/mmpose [--ref main]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from hrnet_zoo.models import ARCHITECTURES, LiteHRNetConfig

ROOT = Path(__file__).parent.parent
DATA = ROOT / "src" / "hrnet_zoo" / "data"
TABLE_URL = "https://github.com/open-mmlab/mmpose/blob/{commit}/{path}"
TASKS = {
    "body_2d_keypoint": "body",
    "wholebody_2d_keypoint": "wholebody",
    "face_2d_keypoint": "face",
    "hand_2d_keypoint": "hand",
    "animal_2d_keypoint": "animal",
    "fashion_2d_keypoint": "fashion",
}
HASH = re.compile(r"-([0-9a-f]{8})_\d{8}\.pth$")
#: Where each backbone family's networks were published, when not the HRNet paper's (the records' default).
FAMILY_SOURCES = {"LiteHRNet": {"origin_url": "https://github.com/HRNet/Lite-HRNet", "paper": "arxiv:2104.06403"}}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def literal(node: ast.AST, env: dict[str, Any]) -> Any:
    """A config expression as data: ``dict(...)`` calls, literals, earlier names and ``name['key']`` lookups;
    anything else (arithmetic, templates) is None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {kw.arg: literal(kw.value, env) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {literal(k, env): literal(v, env) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.Tuple, ast.List)):
        return [literal(e, env) for e in node.elts]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        container = literal(node.value, env)
        return container.get(node.slice.value) if isinstance(container, dict) else None
    return None


def assignments(source: str) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            value = literal(node.value, env)
            env.update({t.id: value for t in node.targets if isinstance(t, ast.Name)})
    return env


def merge(base: Any, child: Any) -> Any:
    """mmengine's config inheritance: dicts merge key by key (unless ``_delete_``), anything else is replaced."""
    if isinstance(base, dict) and isinstance(child, dict) and not child.get("_delete_"):
        return {**base, **{k: merge(base.get(k), v) for k, v in child.items()}}
    return child


def load_config(repo: Path, ref: str, path: str) -> dict[str, Any]:
    """A config file's assignments with its ``_base_`` files merged in."""
    own = assignments(git(repo, "show", f"{ref}:{path}"))
    bases = own.pop("_base_", None) or []
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged = merge(merged, load_config(repo, ref, _join(path, base)))
    return merge(merged, own)


def _join(path: str, relative: str) -> str:
    parts = Path(path).parent.parts
    for piece in Path(relative).parts:
        parts = parts[:-1] if piece == ".." else parts if piece == "." else (*parts, piece)
    return "/".join(parts)


def keypoint_set(info: dict[str, Any]) -> dict[str, Any]:
    """Our keypoint-set record from an mmpose ``dataset_info``."""
    points = [info["keypoint_info"][i] for i in sorted(info["keypoint_info"])]
    index = {p["name"]: i for i, p in enumerate(points)}
    flips = sorted({tuple(sorted((index[p["name"]], index[p["swap"]]))) for p in points if p.get("swap")})
    skeleton = [[index[a], index[b]] for a, b in (link["link"] for link in info.get("skeleton_info", {}).values())]
    sigmas = info.get("sigmas") or None
    paper = info.get("paper_info")
    return {
        "name": info["dataset_name"],
        "names": [p["name"] for p in points],
        "skeleton": skeleton,
        "flip_pairs": [list(f) for f in flips],
        "sigmas": sigmas,
        "source": paper.get("homepage", "") if isinstance(paper, dict) else "",
    }


def dataset_files(repo: Path, ref: str) -> dict[str, str]:
    """Data set class name -> its ``configs/_base_/datasets`` file, from mmpose's ``METAINFO`` declarations."""
    found = {}
    for path in git(repo, "ls-tree", "-r", "--name-only", ref, "mmpose/datasets/datasets").split():
        if path.endswith(".py"):
            source = git(repo, "show", f"{ref}:{path}")
            for cls, meta in re.findall(r"class (\w+)\(.*?METAINFO: dict = dict\(\s*from_file='([^']+)'", source, re.S):
                found[cls] = meta
    return found


def tag_of(name: str, size: tuple[int, int]) -> tuple[str, str]:
    """``td-hm_hrnet-w32_dark-8xb64-210e_coco-256x192`` -> (``hrnet_w32_pose``, ``coco_dark_256x192``);
    ``td-hm_litehrnet-18_8xb64-210e_coco-256x192`` (or ``litehrnet-w18``) -> (``litehrnet_18_pose``, ...)."""
    match = re.fullmatch(
        r"td-hm_(hrnet(?:v2)?|litehrnet)-(w?\d+)(?:[_-]([a-z0-9-]+?))?[_-]\d+xb\d+-\d+e_(.+?)-(\d+x\d+)(?:-(.+))?",
        name,
    )
    if match is None:
        raise ValueError(f"unexpected model name {name!r}")
    family, width, variant, data, _, suffix = match.groups()
    parts = [data, *(p for p in (suffix, variant) if p)]
    tag = "_".join(parts).lower().replace("-", "_") + f"_{size[0]}x{size[1]}"
    if family == "litehrnet":  # Lite-HRNet-18 is named by its depth; the hand table writes it w18
        return f"litehrnet_{width.removeprefix('w')}_pose", tag
    return f"{family}_{width}_pose", tag


def check_backbone(arch: str, model: dict[str, Any]) -> None:
    """Check that a Lite-HRNet config builds exactly the registered architecture with a plain heatmap head (HRNet's
    are told by their names).

    Raises:
        ValueError: The config's backbone or head is not what ``arch`` builds.
    """
    backbone, head = model["backbone"], model["head"]
    if backbone["type"] != "LiteHRNet":
        return
    if arch not in ARCHITECTURES or LiteHRNetConfig.from_reference(backbone["extra"]) != ARCHITECTURES[arch].config:
        raise ValueError(f"its backbone is not the registered {arch}")
    if head["type"] != "HeatmapHead" or head.get("deconv_out_channels") or model.get("neck"):
        raise ValueError("its head is not a single heatmap convolution")


def codec_of(codec: dict[str, Any], test_cfg: dict[str, Any]) -> dict[str, Any]:
    width, height = codec["input_size"]
    kind = codec["type"]
    if kind == "MSRAHeatmap":
        encoding = "unbiased" if codec.get("unbiased") else "msra"
        decoding = "dark" if codec.get("unbiased") else "argmax"
    elif kind == "UDPHeatmap" and codec.get("heatmap_type", "gaussian") == "gaussian":
        encoding = decoding = "udp"
    else:
        raise ValueError(f"codec {kind} {codec.get('heatmap_type', '')} is not served")
    return codec_record(
        (height, width),
        codec["heatmap_size"],
        codec.get("sigma", 2.0),
        encoding,
        decoding,
        test_cfg.get("shift_heatmap", False),
        codec.get("blur_kernel_size", 11),
    )


def codec_record(
    input_size: tuple[int, int],
    heatmap_wh: list[int],
    sigma: float,
    encoding: str,
    decoding: str,
    shift: bool,
    blur: int,
    blur_padding: str = "zeros",
) -> dict[str, Any]:
    """The codec as the zoo's JSON records it (sizes as height, width; the blur kernel for DARK only; for UDP, the
    blur's border of the mmpose version whose tables give the metrics: 1.x zero-pads, 0.x reflects)."""
    out = {
        "input_size": list(input_size),
        "heatmap_size": list(reversed(heatmap_wh)),
        "sigma": sigma,
        "encoding": encoding,
        "decoding": decoding,
        "shift_flipped": bool(shift),
    }
    if decoding == "dark":
        out["blur_kernel_size"] = blur
    if decoding == "udp" and blur_padding != "zeros":
        out["blur_padding"] = blur_padding
    return out


def size_of(arch: str, joints: int, input_size: list[int]) -> tuple[float, float]:
    """Parameters (millions) and convolution GMACs of the architecture with ``joints`` heatmaps at ``input_size``."""
    architecture = ARCHITECTURES[arch]
    with torch.device("meta"):
        model = architecture.model_cls(architecture.config, num_joints=joints)
        x = torch.empty(1, 3, *input_size)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 3), round(counter.get_total_flops() / 2e9, 2)


V0_TASKS = {"body": "body", "wholebody": "wholebody", "face": "face", "hand": "hand", "animal": "animal"}


def codec_of_v0(config: dict[str, Any]) -> dict[str, Any]:
    """The codec of an mmpose 0.x config: ``data_cfg`` sizes, the target generator and the test-time decoding."""
    data, test = config["data_cfg"], config["model"]["test_cfg"]
    target = next((t for t in config["train_pipeline"] if t["type"] == "TopDownGenerateTarget"), None)
    if target is None or target.get("target_type", "GaussianHeatmap") != "GaussianHeatmap":
        raise ValueError("its training target is not a Gaussian heatmap")
    width, height = data["image_size"]
    if test.get("use_udp"):
        encoding = decoding = "udp"
    else:
        encoding = "unbiased" if target.get("unbiased_encoding") else "msra"
        decoding = "dark" if test.get("post_process") == "unbiased" else "argmax"
    return codec_record(
        (height, width),
        data["heatmap_size"],
        target.get("sigma", 2.0),
        encoding,
        decoding,
        test.get("shift_heatmap", False),
        test.get("modulate_kernel", 11),
        "reflect",  # 0.x's post_dark_udp, for the metrics of 0.x's tables
    )


def dataset_base(repo: Path, path: str) -> str:
    """The ``_base_/datasets`` file an mmpose 0.x config inherits, directly or through other configs."""
    bases = assignments(git(repo, "show", f"0.x:{path}")).get("_base_") or []
    for base in [bases] if isinstance(bases, str) else bases:
        found = base if "/datasets/" in base else dataset_base(repo, _join(path, base))
        if found:
            return found
    return ""


def import_v0(repo: Path, sets: dict, entries: dict, skipped: list, seen_urls: set[str]) -> None:
    """Checkpoints that only mmpose 0.x's tables list (Horse-10, MacaquePose, ATRW, Halpe, CMU Panoptic hands,
    Human3.6M), read from the ``0.x`` branch; files the 1.x tables already list are not repeated."""
    commit = git(repo, "rev-parse", "0.x").strip()
    tables = [
        p
        for p in git(repo, "ls-tree", "-r", "--name-only", "0.x", "configs").split()
        if re.search(r"/topdown_heatmap/.+/hrnet[^/]*\.yml$", p)
    ]
    for table in sorted(tables):
        task = V0_TASKS[table.split("/")[1]]
        for model in yaml.safe_load(git(repo, "show", f"0.x:{table}"))["Models"]:
            name, url = model["Name"], model["Weights"]
            if url in seen_urls:
                continue
            seen_urls.add(url)
            try:
                config = load_config(repo, "0.x", model["Config"])
            except subprocess.CalledProcessError:
                skipped.append(
                    {
                        "name": name,
                        "url": url,
                        "reason": f"its table names {model['Config']}, which "
                        "the 0.x branch does not hold: its codec cannot be read",
                    }
                )
                continue
            dataset_file = dataset_base(repo, model["Config"]).rsplit("/", 1)[1]
            info = assignments(git(repo, "show", f"HEAD:configs/_base_/datasets/{dataset_file}"))["dataset_info"]
            keypoints = re.sub(r"\W+", "_", info["dataset_name"].lower()).strip("_")
            sets[keypoints] = {**keypoint_set(info), "name": keypoints}
            try:
                codec = codec_of_v0(config)
            except ValueError as err:
                skipped.append({"name": name, "url": url, "reason": str(err)})
                continue
            pattern = r"topdown_heatmap_(hrnet(?:v2)?)_(w\d+)_(.+?)_(\d+x\d+)(?:_([a-z_]+))?(?:-(.+))?"
            match = re.fullmatch(pattern, name)
            if match is None:
                skipped.append({"name": name, "url": url, "reason": "its name does not follow the zoo's pattern"})
                continue
            family, width, data, size, variant, suffix = match.groups()
            tag = "_".join(p for p in (data, suffix, variant) if p).lower().replace("-", "_") + f"_{size}"
            arch = f"{family}_{width}_pose"
            file_name = url.rsplit("/", 1)[1]
            if f"_{data}_" not in file_name:  # e.g. OCHuman's rows: the COCO checkpoints evaluated on it
                skipped.append(
                    {
                        "name": name,
                        "url": url,
                        "reason": f"the {file_name.split('-')[0]} checkpoint "
                        f"evaluated on {data}, not a checkpoint of its own",
                    }
                )
                continue
            if f"{arch}.{tag}" in entries:
                skipped.append(
                    {"name": name, "url": url, "reason": f"{arch}.{tag} already serves a checkpoint of the same recipe"}
                )
                continue
            head = config["model"]["keypoint_head"]
            params_m, gmacs = size_of(arch, head["out_channels"], codec["input_size"])
            metrics = {k: v for result in model["Results"] for k, v in result["Metrics"].items()}
            entries[f"{arch}.{tag}"] = {
                "architecture": arch,
                "tag": tag,
                "task": task,
                "keypoints": keypoints,
                "codec": codec,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
                "head": "concat" if head.get("input_transform") == "resize_concat" else "simple",
                "url": url,
                "sha256_prefix": HASH.search(url).group(1),
                "metrics": metrics,
                "metrics_dataset": ", ".join(sorted({str(r["Dataset"]) for r in model["Results"]})),
                "metrics_source": TABLE_URL.format(commit=commit, path=table.replace(".yml", ".md")),
                "mmpose_name": name,
                "license": "apache-2.0",
                "params_m": params_m,
                "gmacs": gmacs,
            }


def paper_tags() -> list[str]:
    """``arch.tag`` of the hand-written records in ``paper_zoo.json``."""
    records = json.loads((DATA / "paper_zoo.json").read_text())["checkpoints"]
    return [f"{r['architecture']}.{r['tag']}" for r in records if r.get("tag")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mmpose", type=Path)
    parser.add_argument("--ref", default="HEAD")
    args = parser.parse_args()
    repo, ref = args.mmpose, args.ref
    commit = git(repo, "rev-parse", ref).strip()
    classes = dataset_files(repo, ref)
    tables = [
        p
        for p in git(repo, "ls-tree", "-r", "--name-only", ref, "configs").split()
        if re.search(r"/topdown_heatmap/.+/(?:lite)?hrnet[^/]*\.yml$", p)
    ]
    entries, skipped, sets = {}, [], {}
    for table in sorted(tables):
        task = TASKS[table.split("/")[1]]
        for model in yaml.safe_load(git(repo, "show", f"{ref}:{table}"))["Models"]:
            name, url = model["Name"], model["Weights"]
            config = load_config(repo, ref, model["Config"])
            try:
                codec = codec_of(config["codec"], config["model"].get("test_cfg") or {})
                sha = HASH.search(url)
                if sha is None:
                    raise ValueError("its file name carries no SHA-256 prefix to check the download against")
            except ValueError as err:
                skipped.append({"name": name, "url": url, "reason": str(err)})
                continue
            arch, tag = tag_of(name, tuple(codec["input_size"]))
            try:
                check_backbone(arch, config["model"])
            except ValueError as err:
                skipped.append({"name": name, "url": url, "reason": str(err)})
                continue
            head = config["model"]["head"]
            dataset = config["dataset_type"]
            train_set = (config.get("train_dataloader") or {}).get("dataset") or {}
            meta_file = (train_set.get("metainfo") or {}).get("from_file") or classes.get(dataset)
            if train_set.get("subset"):  # DeepFashion picks its keypoints by subset
                meta_file = f"configs/_base_/datasets/deepfashion_{train_set['subset']}.py"
            if meta_file is None:  # combined data sets (e.g. COCO + AIC) name their keypoints in the pipeline
                meta_file = "configs/_base_/datasets/coco.py"
            info = assignments(git(repo, "show", f"{ref}:{meta_file}"))["dataset_info"]
            keypoints = re.sub(r"\W+", "_", info["dataset_name"].lower()).strip("_")
            sets[keypoints] = {**keypoint_set(info), "name": keypoints}
            if len(info["keypoint_info"]) != head["out_channels"]:
                reason = (
                    f"its head predicts {head['out_channels']} keypoints, its data set has {len(info['keypoint_info'])}"
                )
                skipped.append({"name": name, "url": url, "reason": reason})
                continue
            results = model["Results"]
            metrics = {}
            for result in results:  # some tables list the same checkpoint on several data sets / box sources
                prefix = "" if len(results) == 1 else f"{result['Dataset']} "
                metrics.update({prefix + k: v for k, v in result["Metrics"].items()})
            key = f"{arch}.{tag}"
            if key in entries:  # the same checkpoint listed twice (e.g. with and without ground-truth boxes)
                entries[key]["metrics"].update({f"{k} (2)": v for k, v in metrics.items()})
                continue
            params_m, gmacs = size_of(arch, head["out_channels"], codec["input_size"])
            entries[key] = {
                "architecture": arch,
                "tag": tag,
                "task": task,
                "keypoints": keypoints,
                "codec": codec,
                "mean": [m / 255 for m in config["model"]["data_preprocessor"]["mean"]],
                "std": [s / 255 for s in config["model"]["data_preprocessor"]["std"]],
                "head": "concat" if config["model"].get("neck") else "simple",
                "url": url,
                "sha256_prefix": sha.group(1),
                "metrics": metrics,
                "metrics_dataset": ", ".join(sorted({str(r["Dataset"]) for r in results})),
                "metrics_source": TABLE_URL.format(commit=commit, path=table.replace(".yml", ".md")),
                "mmpose_name": name,
                "license": "apache-2.0",
                "params_m": params_m,
                "gmacs": gmacs,
                **FAMILY_SOURCES.get(config["model"]["backbone"]["type"], {}),
            }
    seen_urls = {e["url"] for e in entries.values()} | {s["url"] for s in skipped}
    import_v0(repo, sets, entries, skipped, seen_urls)
    for key in paper_tags():  # the hand-written records serve these tags: one record per tag
        if key in entries:
            entry = entries.pop(key)
            reason = f"{key} is served by its record in paper_zoo.json (the original recipe's 0.x file)"
            skipped.append({"name": entry["mmpose_name"], "url": entry["url"], "reason": reason})
    DATA.mkdir(exist_ok=True)
    zoo = {
        "source": f"https://github.com/open-mmlab/mmpose/tree/{commit}",
        "checkpoints": list(entries.values()),
        "skipped": skipped,
    }
    (DATA / "openmmlab_zoo.json").write_text(json.dumps(zoo, indent=1) + "\n")
    (DATA / "keypoint_sets.json").write_text(json.dumps(dict(sorted(sets.items())), indent=1) + "\n")
    print(f"{len(entries)} checkpoints, {len(skipped)} skipped, {len(sets)} keypoint sets")


if __name__ == "__main__":
    main()
