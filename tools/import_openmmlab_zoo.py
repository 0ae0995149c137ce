"""Regenerate the zoo's data files from OpenMMLab's model zoo tables and data set definitions.

Reads, from a git checkout of https://github.com/open-mmlab/mmpose (its ``main`` branch, mmpose 1.x, and its
``0.x`` branch for the tables only 0.x has):

- every ``configs/*/topdown_heatmap/**/hrnet*.yml`` and ``litehrnet*.yml`` model-zoo table (names, metrics, weight
  URLs) and each listed config (input size, codec, backbone, head, test-time flip settings, data set);
- the bottom-up tables: DEKR's (``configs/*/dekr/**/hrnet*.yml``, mmpose 1.x's test protocol) and HigherHRNet's
  (``configs/*/associative_embedding/**/higherhrnet*.yml`` of the ``0.x`` branch), with each config's test settings;
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
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from hrnet_zoo.codec import BottomUpCodec
from hrnet_zoo.keypoints import generic_keypoints
from hrnet_zoo.models import ARCHITECTURES, HigherHeadSpec, HRNetConfig, LiteHRNetConfig, PoseMeta
from hrnet_zoo.models.dekr import rescore_input_size

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
HASH = re.compile(r"[-_]([0-9a-f]{8})[-_]\d{8}\.pth$")
#: Where each backbone family's networks were published, when not the HRNet paper's (the records' default).
FAMILY_SOURCES = {"LiteHRNet": {"origin_url": "https://github.com/HRNet/Lite-HRNet", "paper": "arxiv:2104.06403"}}
#: The same for the bottom-up models, by model family (``model_cls.family``).
BOTTOM_UP_SOURCES = {
    "DEKR": {"origin_url": "https://github.com/HRNet/DEKR", "paper": "arxiv:2104.02300"},
    "HigherHRNet": {
        "origin_url": "https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation",
        "paper": "arxiv:1908.10357",
    },
}
#: mmpose 1.x's DEKR test, which the ``openmmlab1`` protocol reproduces: its ``test_cfg`` and ``BottomupResize``.
OPENMMLAB1_DEKR_TEST = {"multiscale_test": False, "flip_test": True, "shift_heatmap": True, "align_corners": False}
OPENMMLAB1_RESIZE = {"size_factor": 32, "resize_mode": "expand"}
#: mmpose 0.x's associative-embedding test settings that the codec does not carry, as the decoder fixes them.
AE_FIXED_TEST = {"flip_test": True, "align_corners": False, "use_detection_val": True, "ignore_too_much": False}


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


def register_keypoints(sets: dict[str, Any], info: dict[str, Any]) -> str:
    """Add an mmpose ``dataset_info``'s keypoint set to ``sets`` under its name (``CrowdPose`` -> ``crowdpose``)."""
    keypoints = re.sub(r"\W+", "_", info["dataset_name"].lower()).strip("_")
    sets[keypoints] = {**keypoint_set(info), "name": keypoints}
    return keypoints


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


def size_of(
    arch: str, joints: int, input_size: list[int], bottom_up_codec: dict[str, Any] | None = None
) -> tuple[float, float]:
    """Parameters (millions) and convolution GMACs of the architecture with ``joints`` heatmaps at ``input_size``; a
    bottom-up model is built with its record's codec, which decides its parts (DEKR's rescoring net)."""
    architecture = ARCHITECTURES[arch]
    kwargs = {}
    if bottom_up_codec is not None:
        kwargs["pose_meta"] = PoseMeta(generic_keypoints(joints), BottomUpCodec.from_dict(bottom_up_codec))
    with torch.device("meta"):
        model = architecture.model_cls(architecture.config, num_joints=joints, **kwargs)
        x = torch.empty(1, 3, *input_size)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 3), round(counter.get_total_flops() / 2e9, 2)


def check_hash(url: str) -> None:
    """Check that ``url``'s file name carries the SHA-256 prefix its download is checked against.

    Raises:
        ValueError: It carries none.
    """
    if HASH.search(url) is None:
        raise ValueError("its file name carries no SHA-256 prefix to check the download against")


def table_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    """A table row's metrics; prefixed by the data set when the row gives several (data sets, box sources)."""
    metrics = {}
    for result in results:
        prefix = "" if len(results) == 1 else f"{result['Dataset']} "
        metrics.update({prefix + k: v for k, v in result["Metrics"].items()})
    return metrics


def normalisation(preprocessor: dict[str, Any]) -> dict[str, list[float]]:
    """``mean`` and ``std`` of an mmpose 1.x ``data_preprocessor`` (0-255) on the 0-1 scale the package uses."""
    return {"mean": [m / 255 for m in preprocessor["mean"]], "std": [s / 255 for s in preprocessor["std"]]}


def zoo_record(
    front: dict[str, Any],
    row: dict[str, Any],
    commit: str,
    table: str,
    size: tuple[float, float],
    sources: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A zoo record: ``front`` (architecture, tag, task, keypoints, codec, mean, std, head kind), then the table
    ``row``'s checkpoint, metrics and name, the table's page at ``commit``, ``size`` (:func:`size_of`) and where the
    weights were first published (``sources``, when not the HRNet paper's)."""
    url = row["Weights"]
    return {
        **front,
        "url": url,
        "sha256_prefix": HASH.search(url).group(1),
        "metrics": table_metrics(row["Results"]),
        "metrics_dataset": ", ".join(sorted({str(r["Dataset"]) for r in row["Results"]})),
        "metrics_source": TABLE_URL.format(commit=commit, path=table.replace(".yml", ".md")),
        "mmpose_name": row["Name"],
        "license": "apache-2.0",
        "params_m": size[0],
        "gmacs": size[1],
        **(sources or {}),
    }


def dataset_info(repo: Path, ref: str, config: dict[str, Any], classes: dict[str, str]) -> dict[str, Any]:
    """The ``dataset_info`` of the keypoints an mmpose 1.x config trains on."""
    train_set = (config.get("train_dataloader") or {}).get("dataset") or {}
    meta_file = (train_set.get("metainfo") or {}).get("from_file") or classes.get(config["dataset_type"])
    if train_set.get("subset"):  # DeepFashion picks its keypoints by subset
        meta_file = f"configs/_base_/datasets/deepfashion_{train_set['subset']}.py"
    if meta_file is None:  # combined data sets (e.g. COCO + AIC) name their keypoints in the pipeline
        meta_file = "configs/_base_/datasets/coco.py"
    return assignments(git(repo, "show", f"{ref}:{meta_file}"))["dataset_info"]


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
            keypoints = register_keypoints(sets, info)
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
            front = {
                "architecture": arch,
                "tag": tag,
                "task": task,
                "keypoints": keypoints,
                "codec": codec,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
                "head": "concat" if head.get("input_transform") == "resize_concat" else "simple",
            }
            size = size_of(arch, head["out_channels"], codec["input_size"])
            entries[f"{arch}.{tag}"] = zoo_record(front, model, commit, table, size)


def init_defaults(repo: Path, ref: str, path: str, cls: str) -> dict[str, Any]:
    """The keyword defaults of class ``cls``'s ``__init__`` in mmpose's ``path``: what a config leaves out."""
    tree = ast.parse(git(repo, "show", f"{ref}:{path}"))
    body = next(n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    init = next(n.args for n in body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    named = init.args[len(init.args) - len(init.defaults) :]
    return {a.arg: literal(d, {}) for a, d in zip(named, init.defaults)}


def hrnet_backbone(backbone: dict[str, Any]) -> HRNetConfig:
    """The network an OpenMMLab ``HRNet`` backbone config builds (its ``stage1``..``stage4``).

    Raises:
        ValueError: Not an ``HRNet`` backbone.
    """
    if backbone["type"] != "HRNet":
        raise ValueError(f"its backbone is {backbone['type']}, not HRNet")
    extra = {k.upper(): {f.upper(): v for f, v in spec.items()} for k, spec in backbone["extra"].items()}
    return HRNetConfig.from_original(extra)


def bottom_up_tag(arch: str, data: str, variant: str | None, size: str, input_size: tuple[int, int]) -> str:
    """``coco``, ``udp``, ``512x512`` -> ``coco_udp_512x512`` (the top-down tags' order: data set, variant, size).

    Raises:
        ValueError: The name's size is not the config's input size.
    """
    if size != f"{input_size[0]}x{input_size[1]}":
        raise ValueError(f"its name says {size}, its config trains {arch} at {input_size[0]}x{input_size[1]}")
    return "_".join(p for p in (data, variant) if p).lower().replace("-", "_") + f"_{size}"


def check_dekr(arch: str, model: dict[str, Any], head: dict[str, Any], joints: int) -> None:
    """Check that an mmpose 1.x DEKR config builds the registered ``arch`` for ``joints`` keypoints, with a rescoring
    net of the features the package gives it (``head``: the config's head over ``DEKRHead``'s defaults).

    Raises:
        ValueError: The config builds another network.
    """
    config = ARCHITECTURES[arch].config
    if hrnet_backbone(model["backbone"]) != config.backbone:
        raise ValueError(f"its backbone is not the registered {arch}'s")
    if model.get("neck") != {"type": "FeatureMapProcessor", "concat": True}:
        raise ValueError("its neck does not concatenate every branch")
    widths = (head["num_heatmap_filters"], head["num_displacement_filters_per_keypoint"])
    if head["type"] != "DEKRHead" or widths != (config.heatmap_channels, config.offset_channels):
        raise ValueError(f"its head is not {arch}'s: heatmap and per-keypoint offset widths {widths}")
    if head["num_keypoints"] != joints or head["in_channels"] != sum(config.backbone.out_channels):
        raise ValueError(f"its head reads {head['in_channels']} channels for {head['num_keypoints']} keypoints")
    rescore = head.get("rescore_cfg")
    if rescore is not None and rescore["in_channels"] != rescore_input_size(joints):
        raise ValueError(
            f"its rescoring net reads {rescore['in_channels']} features, the package's {rescore_input_size(joints)}"
        )


def dekr_codec(config: dict[str, Any], spr: dict[str, Any], skeleton: list[list[int]]) -> dict[str, Any]:
    """The codec of an mmpose 1.x DEKR config (``spr``: its ``SPR`` codec over the class defaults), tested with
    mmpose 1.x's protocol; ``skeleton``: the keypoint set's links, which mmpose makes the rescoring features of.

    Raises:
        ValueError: A test setting the ``openmmlab1`` protocol does not reproduce.
    """
    head, test = config["model"]["head"], config["model"]["test_cfg"]
    resize = next(t for t in config["val_pipeline"] if t["type"] == "BottomupResize")
    wanted = {**OPENMMLAB1_DEKR_TEST, **OPENMMLAB1_RESIZE}
    given = {k: {**test, **resize}.get(k) for k in wanted}
    if given != wanted or resize["input_size"] != spr["input_size"]:
        raise ValueError(f"its test settings {given} are not mmpose 1.x's DEKR protocol {wanted}")
    width, height = spr["input_size"]
    joints = head["num_keypoints"]
    fields = {
        "method": "dekr",
        "protocol": "openmmlab1",
        "input_size": [height, width],
        "max_persons": spr["decode_max_instances"],
        "detection_threshold": spr["decode_thr"],
        "nms_threshold": test["nms_dist_thr"],
        # mmpose's nearby_joints_nms: more than half the joints close, unless the config says how many
        "nms_joints": test.get("nms_joints_thr") or joints // 2,
        "nms_kernel": spr["decode_nms_kernel"],
        "rescore": head.get("rescore_cfg") is not None,
    }
    if fields["rescore"]:
        rescore = head["rescore_cfg"]
        if rescore["in_channels"] != 3 * len(skeleton) + joints:
            raise ValueError(f"its rescoring net reads {rescore['in_channels']} features, not its skeleton's")
        fields.update(rescore_skeleton="keypoints", rescore_norm_links=list(rescore["norm_indexes"]))
    codec = BottomUpCodec.from_dict(fields).to_dict()
    return {k: codec[k] for k in fields}


def import_dekr(repo: Path, ref: str, classes: dict[str, str], sets: dict, entries: dict, skipped: list) -> None:
    """mmpose 1.x's DEKR checkpoints (COCO, CrowdPose), read with their configs' test settings."""
    commit = git(repo, "rev-parse", ref).strip()
    tables = [
        p
        for p in git(repo, "ls-tree", "-r", "--name-only", ref, "configs").split()
        if re.search(r"/dekr/.+/hrnet[^/]*\.yml$", p)
    ]
    spr_defaults = init_defaults(repo, ref, "mmpose/codecs/spr.py", "SPR")
    head_defaults = init_defaults(repo, ref, "mmpose/models/heads/hybrid_heads/dekr_head.py", "DEKRHead")
    for table in sorted(tables):
        task = TASKS[table.split("/")[1]]
        for model in yaml.safe_load(git(repo, "show", f"{ref}:{table}"))["Models"]:
            name, url = model["Name"], model["Weights"]
            config = load_config(repo, ref, model["Config"])
            info = dataset_info(repo, ref, config, classes)
            keypoints = register_keypoints(sets, info)
            head = {**head_defaults, **config["model"]["head"]}
            spr = {**spr_defaults, **config["codec"]}
            try:
                match = re.fullmatch(r"dekr_hrnet-(w\d+)_\d+xb\d+-\d+e_(.+?)-(\d+x\d+)", name)
                if match is None:
                    raise ValueError("its name does not follow the zoo's pattern")
                width, data, named_size = match.groups()
                arch = f"dekr_hrnet_{width}"
                check_dekr(arch, config["model"], head, len(info["keypoint_info"]))
                codec = dekr_codec(config, spr, keypoint_set(info)["skeleton"])
                tag = bottom_up_tag(arch, data, None, named_size, tuple(codec["input_size"]))
                check_hash(url)
            except ValueError as err:
                skipped.append({"name": name, "url": url, "reason": str(err)})
                continue
            front = bottom_up_front(
                arch, tag, task, keypoints, codec, normalisation(config["model"]["data_preprocessor"])
            )
            size = size_of(arch, head["num_keypoints"], codec["input_size"], codec)
            entries[f"{arch}.{tag}"] = zoo_record(front, model, commit, table, size, BOTTOM_UP_SOURCES["DEKR"])


def bottom_up_front(
    arch: str, tag: str, task: str, keypoints: str, codec: dict[str, Any], norm: dict[str, Any]
) -> dict[str, Any]:
    """The first fields of a bottom-up record, in the zoo file's order (:func:`zoo_record` adds the rest)."""
    return {"architecture": arch, "tag": tag, "task": task, "keypoints": keypoints, "codec": codec, **norm}


def check_higherhrnet(arch: str, model: dict[str, Any], head: dict[str, Any], joints: int) -> None:
    """Check that an mmpose 0.x associative-embedding config builds the registered HigherHRNet ``arch`` for
    ``joints`` keypoints (``head``: the config's ``keypoint_head`` over ``AEHigherResolutionHead``'s defaults).

    Raises:
        ValueError: The config builds another network.
    """
    config = ARCHITECTURES[arch].config
    if hrnet_backbone(model["backbone"]) != config.backbone:
        raise ValueError(f"its backbone is not the registered {arch}'s")
    if head["type"] != "AEHigherResolutionHead" or head["in_channels"] != config.backbone.out_channels[0]:
        raise ValueError(f"its head is not a HigherHRNet head on the stride-4 branch ({head['type']})")
    n = head["num_deconv_layers"]
    spec = HigherHeadSpec(
        num_joints=head["num_joints"],
        tag_per_joint=head["tag_per_joint"],
        final_conv_kernel=(head["extra"] or {}).get("final_conv_kernel", 1),
        deconv_channels=tuple(head["num_deconv_filters"][:n]),
        deconv_kernels=tuple(head["num_deconv_kernels"][:n]),
        num_basic_blocks=head["num_basic_blocks"],
        cat_output=tuple(head["cat_output"][:n]),
        with_tags=tuple(head["with_ae_loss"][: n + 1]),
    )
    if spec != replace(config.head, num_joints=joints):
        raise ValueError(f"its head {spec} is not {arch}'s for {joints} keypoints")


def ae_codec(config: dict[str, Any], tag_per_joint: bool) -> dict[str, Any]:
    """The codec of an mmpose 0.x associative-embedding config: ``data_cfg``'s input size and ``test_cfg``.

    Raises:
        ValueError: UDP, or a test setting the decoder does not reproduce.
    """
    test = config["model"]["test_cfg"]
    if test.get("use_udp"):
        raise ValueError("it decodes with UDP (use_udp), which the associative-embedding decoder does not")
    fixed = {**AE_FIXED_TEST, "nms_padding": (test["nms_kernel"] - 1) // 2, "tag_per_joint": tag_per_joint}
    given = {k: test.get(k) for k in fixed}
    if given != fixed:
        raise ValueError(f"its test settings {given} are not the decoder's {fixed}")
    size = config["data_cfg"]["image_size"]
    height, width = (size, size) if isinstance(size, int) else reversed(size)
    fields = {
        "method": "associative_embedding",
        "protocol": "reference",
        "input_size": [height, width],
        "scales": test["scale_factor"],
        "max_persons": test["max_num_people"],
        "detection_threshold": test["detection_threshold"],
        "tag_threshold": test["tag_threshold"],
        "nms_kernel": test["nms_kernel"],
        "adjust": test["adjust"],
        "refine": test["refine"],
        "heatmap_stages": test["with_heatmaps"],
        "tag_stages": test["with_ae"],
        "project_to_image": test["project2image"],
    }
    codec = BottomUpCodec.from_dict(fields).to_dict()
    return {k: codec[k] for k in fields}


def normalisation_v0(pipeline: list[dict[str, Any]]) -> dict[str, list[float]]:
    """``mean`` and ``std`` of the ``NormalizeTensor`` in an mmpose 0.x test pipeline (nested transforms too).

    Raises:
        ValueError: The pipeline does not normalise.
    """
    steps = list(pipeline)
    while steps:
        step = steps.pop(0)
        if step["type"] == "NormalizeTensor":
            return {"mean": step["mean"], "std": step["std"]}
        steps[:0] = step.get("transforms") or []
    raise ValueError("its test pipeline has no NormalizeTensor")


def import_higherhrnet(repo: Path, sets: dict, entries: dict, skipped: list) -> None:
    """mmpose 0.x's HigherHRNet checkpoints, read from the ``0.x`` branch. A table lists some checkpoints again with
    other metrics (a multi-scale test, which their config does not run): those rows are skipped with ``repeat_of``,
    the key of the record that serves the checkpoint with its first row."""
    commit = git(repo, "rev-parse", "0.x").strip()
    tables = [
        p
        for p in git(repo, "ls-tree", "-r", "--name-only", "0.x", "configs").split()
        if re.search(r"/associative_embedding/.+/higherhrnet[^/]*\.yml$", p)
    ]
    head_file = "mmpose/models/heads/ae_higher_resolution_head.py"
    head_defaults = init_defaults(repo, "0.x", head_file, "AEHigherResolutionHead")
    served: dict[str, str] = {}
    for table in sorted(tables):
        task = V0_TASKS[table.split("/")[1]]
        for model in yaml.safe_load(git(repo, "show", f"0.x:{table}"))["Models"]:
            name, url = model["Name"], model["Weights"]
            if url in served:
                reason = (
                    f"{served[url]} serves this checkpoint with the table's first row, tested as its config says; "
                    "this row gives other metrics (the table's multi-scale test)"
                )
                skipped.append({"name": name, "url": url, "reason": reason, "repeat_of": served[url]})
                continue
            config = load_config(repo, "0.x", model["Config"])
            dataset_file = dataset_base(repo, model["Config"]).rsplit("/", 1)[1]
            info = assignments(git(repo, "show", f"HEAD:configs/_base_/datasets/{dataset_file}"))["dataset_info"]
            keypoints = register_keypoints(sets, info)
            head = {**head_defaults, **config["model"]["keypoint_head"]}
            try:
                pattern = r"associative_embedding_higherhrnet_(w\d+)_(.+?)_(\d+x\d+)(?:_([a-z_]+))?"
                match = re.fullmatch(pattern, name)
                if match is None:
                    raise ValueError("its name does not follow the zoo's pattern")
                width, data, named_size, variant = match.groups()
                arch = f"higherhrnet_{width}"
                codec = ae_codec(config, head["tag_per_joint"])
                check_higherhrnet(arch, config["model"], head, len(info["keypoint_info"]))
                tag = bottom_up_tag(arch, data, variant, named_size, tuple(codec["input_size"]))
                norm = normalisation_v0(config["val_pipeline"])
                check_hash(url)
            except ValueError as err:
                skipped.append({"name": name, "url": url, "reason": str(err)})
                continue
            front = bottom_up_front(arch, tag, task, keypoints, codec, norm)
            size = size_of(arch, head["num_joints"], codec["input_size"], codec)
            served[url] = f"{arch}.{tag}"
            entries[served[url]] = zoo_record(front, model, commit, table, size, BOTTOM_UP_SOURCES["HigherHRNet"])


def defaults_first(entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The records by architecture, each one's COCO record at its training size first (its DEKR config's; else the
    table's first): ``create_model(arch, pretrained=True)`` takes an architecture's first record."""

    def rank(record: dict[str, Any]) -> tuple[str, bool, bool]:
        own = getattr(ARCHITECTURES[record["architecture"]].config, "input_size", None)
        other_size = own is not None and tuple(record["codec"]["input_size"]) != tuple(own)
        return record["architecture"], record["keypoints"] != "coco", other_size

    return {f"{r['architecture']}.{r['tag']}": r for r in sorted(entries.values(), key=rank)}


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
                check_hash(url)
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
            info = dataset_info(repo, ref, config, classes)
            keypoints = register_keypoints(sets, info)
            if len(info["keypoint_info"]) != head["out_channels"]:
                reason = (
                    f"its head predicts {head['out_channels']} keypoints, its data set has {len(info['keypoint_info'])}"
                )
                skipped.append({"name": name, "url": url, "reason": reason})
                continue
            key = f"{arch}.{tag}"
            if key in entries:  # the same checkpoint listed twice (e.g. with and without ground-truth boxes)
                entries[key]["metrics"].update({f"{k} (2)": v for k, v in table_metrics(model["Results"]).items()})
                continue
            front = {
                "architecture": arch,
                "tag": tag,
                "task": task,
                "keypoints": keypoints,
                "codec": codec,
                **normalisation(config["model"]["data_preprocessor"]),
                "head": "concat" if config["model"].get("neck") else "simple",
            }
            size = size_of(arch, head["out_channels"], codec["input_size"])
            sources = FAMILY_SOURCES.get(config["model"]["backbone"]["type"], {})
            entries[key] = zoo_record(front, model, commit, table, size, sources)
    seen_urls = {e["url"] for e in entries.values()} | {s["url"] for s in skipped}
    import_v0(repo, sets, entries, skipped, seen_urls)
    bottom_up: dict[str, dict[str, Any]] = {}
    import_dekr(repo, ref, classes, sets, bottom_up, skipped)
    import_higherhrnet(repo, sets, bottom_up, skipped)
    entries.update(defaults_first(bottom_up))
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
