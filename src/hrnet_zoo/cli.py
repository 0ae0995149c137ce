"""The ``hrnet-zoo`` command: list models, predict poses, evaluate, export, convert and publish checkpoints.

Each subcommand translates its arguments into one library call; :func:`main` turns the facts that the library's
exceptions carry into advice about the flags.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch
from timm.models import split_model_name_tag

from hrnet_zoo_cli import COMMANDS, top_level_parser

from . import __version__
from ._download import WEIGHTS_FILE
from ._factory import create_model, get_pretrained_cfg, list_models, list_pretrained
from ._utils import default_device, read_json, terminate_as_interrupt
from .codec import HeatmapCodec
from .deploy.export import ExportedPoseModel, check_input_size, export_onnx, needs_external_data, save_program
from .deploy.onnx_model import OnnxPoseModel
from .deploy.optimize import optimize_for_inference
from .deploy.quantize import quantize
from .deploy.runtime_model import RuntimePoseModel
from .errors import CheckpointMismatchError, OutputRefusedError, WeightsUnavailableError
from .evaluation import evaluate, find_coco_split, format_stats
from .hub import CARD_FILE, CONFIG_FILE, convert_checkpoint, push_folder
from .io.outputs import check_output_dir, claim_run_folder, plan_outputs, write_json
from .keypoint_formats import KEYPOINT_FORMATS
from .models.pose_hrnet import ARCHITECTURES
from .models.pretrained import TASKS, PosePretrainedCfg
from .pose.bottom_up import BottomUpEstimator
from .pose.detect import DEFAULT_DETECTOR, DETECTORS, PersonDetector
from .pose.predictor import PoseEstimator
from .pose.result import converted_set
from .pose.smooth import OneEuro, Savgol
from .pose.sources import IMAGE_SUFFIXES, GivenBoxes, Source, VideoReader, find_sources
from .pose.track import TrackerConfig
from .pose.video import CPU_VIDEO_DEFAULTS

__all__ = ["build_parser", "main"]

#: Per subcommand that writes files: the flag that allows replacing them, and the ones that name where they go.
_OUTPUT_FLAGS = {
    "predict": ("--exist-ok", ("out_dir",)),
    "evaluate": ("--overwrite", ("results", "out")),
    "export": ("--overwrite", ("output",)),
    "convert": ("--overwrite", ("out_dir",)),
}
#: Python spellings in library messages, and what a user of the command types instead.
_PYTHON_WORDS = {
    "pretrained_cfg_overlay=dict(file=PATH)": "--checkpoint PATH",
    "checkpoint_path=PATH": "--checkpoint PATH",
    "hrnet_zoo.list_pretrained()": "hrnet-zoo list --pretrained",
    "hrnet_zoo.list_models()": "hrnet-zoo list",
    "hrnet_zoo.save_pretrained": "hrnet-zoo convert",
    "; other architectures load with timm.create_model": "",
    "checkpoint=PATH to PersonDetector (or detector_checkpoint=PATH to PoseEstimator)": "--detector-checkpoint PATH",
}
_logger = logging.getLogger("hrnet_zoo")


#: ``--precision`` -> ``PoseEstimator(amp=...)``.
_PRECISIONS: dict[str, torch.dtype | str | None] = {"fp32": None, "bf16": torch.bfloat16, "auto": "auto"}
_TOP_DOWN_SCALES = (
    "--scales sets a bottom-up model's test scales; --model {model} is top-down (it crops each person at its input "
    "size): drop --scales"
)
_KIND_TITLES = {"top_down": "top-down (a person detector's boxes in)", "bottom_up": "bottom-up (every person at once)"}


def _codec_name(cfg: PosePretrainedCfg) -> str:
    """The decoder column: the heatmap decoding of a top-down tag, the method of a bottom-up one."""
    codec = cfg.pose_meta.codec
    if isinstance(codec, HeatmapCodec):
        return codec.decoding
    return "AE" if codec.method == "associative_embedding" else codec.method


def _cmd_list(args: argparse.Namespace) -> int:
    names = list_pretrained(args.pattern) if args.pretrained else list_models(args.pattern)
    names += [] if args.pretrained else [n for n in list_pretrained(args.pattern) if n not in names]
    cfgs = list({cfg.name: cfg for cfg in (get_pretrained_cfg(name) for name in sorted(names))}.values())
    kinds = [args.kind] if args.kind else list(_KIND_TITLES)
    header = f"{'name':50} {'input':>8} {'joints':>6} {'codec':>7} {'params':>7} {'GMACs':>6}  metric (served weights)"
    for task in TASKS:
        for kind in kinds:
            rows = [cfg for cfg in cfgs if cfg.task == task and ARCHITECTURES[cfg.architecture].kind == kind]
            if not rows:
                continue
            print(f"## {task}, {_KIND_TITLES[kind]}\n{header}\n{'-' * len(header)}")
            for cfg in rows:
                metric = "{}={}".format(*cfg.headline_metric) if cfg.has_weights else "no weights"
                params = f"{cfg.params_m:.1f}M" if cfg.params_m else "-"
                gmacs = f"{cfg.gmacs:.2f}" if cfg.gmacs else "-"
                size = f"{cfg.input_size[0]}x{cfg.input_size[1]}"
                columns = f"{size:>8} {cfg.num_joints:>6} {_codec_name(cfg):>7} {params:>7} {gmacs:>6}"
                print(f"{cfg.name:50} {columns}  {metric}")
            print()
    return 0


def _load_boxes(path: str | None) -> dict[str, object] | None:
    """``--boxes``: image paths or file names to their person boxes."""
    if path is None:
        return None
    data = read_json(path, "--boxes file")
    if not isinstance(data, dict):
        example = '{"a.jpg": [[x, y, w, h]]}'
        raise ValueError(f"--boxes file {path!r} must map image paths or file names to lists of boxes, e.g. {example}")
    return data


def _device(name: str | None) -> torch.device:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (default: CUDA when available)."""
    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r}: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r} is not supported; use cpu, cuda or cuda:N")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0...")
    return device


#: Exported files ``--model`` runs, by suffix: ONNX Runtime (fp32 or int8) and ``torch.export`` programs.
_EXPORTED = {".onnx": OnnxPoseModel, ".pt2": ExportedPoseModel}


def _create_model(args: argparse.Namespace) -> torch.nn.Module:
    """``--model`` with the weights of ``--checkpoint``, its pretrained weights, or random ones with
    ``--no-pretrained``; an exported ``.onnx`` or ``.pt2`` file (from ``hrnet-zoo export``) runs as it is."""
    runner = _EXPORTED.get(Path(args.model).suffix)
    if runner is not None:
        if args.checkpoint is not None:
            raise ValueError(f"--model {args.model!r} is an exported file with its weights: drop --checkpoint")
        return runner(args.model)
    if args.checkpoint is not None:
        if not args.pretrained:
            raise ValueError("--no-pretrained asks for random weights, --checkpoint for a file's: drop one")
        if Path(args.checkpoint).is_dir():
            raise FileNotFoundError(f"--checkpoint {args.checkpoint!r} is a folder; give the weights file in it")
        if not Path(args.checkpoint).is_file():
            raise FileNotFoundError(f"--checkpoint {args.checkpoint!r} does not exist")
    elif not args.pretrained:
        _logger.warning("--no-pretrained: %s has random weights; its results are meaningless", args.model)
    pretrained = args.pretrained and args.checkpoint is None
    return create_model(args.model, pretrained=pretrained, checkpoint_path=args.checkpoint)


def _calibration_images(folder: str) -> list[Path]:
    """The image files of ``--calibration``."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"--calibration {folder!r} is not a folder of images")
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"--calibration {folder!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def _smoothing(args: argparse.Namespace) -> OneEuro | Savgol | None:
    """``--smooth`` with ``--one-euro`` / ``--savgol-window``."""
    given = (("--one-euro", args.one_euro, "one_euro"), ("--savgol-window", args.savgol_window, "savgol"))
    for flag, value, needs in given:
        if value is not None and args.smooth != needs:
            raise ValueError(f"{flag} sets the {needs} filter: add --smooth {needs}, or drop {flag}")
    try:  # the filters' own checks decide; the message is worded with the flag
        if args.smooth == "one_euro":
            return OneEuro(*args.one_euro) if args.one_euro else OneEuro()
        if args.smooth == "savgol":
            return Savgol(window=args.savgol_window) if args.savgol_window is not None else Savgol()
    except ValueError as err:
        if args.smooth == "one_euro":
            min_cutoff, beta = args.one_euro
            raise ValueError(
                f"--one-euro {min_cutoff:g} {beta:g}: MIN_CUTOFF must be above 0 (Hz), BETA 0 or more"
            ) from err
        raise ValueError(f"--savgol-window {args.savgol_window}: give an odd number of frames, 3 or more") from err
    return None


@dataclass(frozen=True)
class _Pipeline:
    """What ``predict`` runs: the detector, how often, the flip test, tracking and smoothing."""

    detector: str
    detect_every: int
    flip_test: bool
    track: TrackerConfig | bool
    smooth: OneEuro | Savgol | None


def _registered_kind(name: str) -> str | None:
    """``"top_down"`` or ``"bottom_up"`` for a registered model name; ``None`` for files, folders and Hub
    repositories (their kind is known once they are loaded)."""
    entry = ARCHITECTURES.get(split_model_name_tag(name)[0])
    return entry.kind if entry is not None else None


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _check_bottom_up_flags(args: argparse.Namespace) -> None:
    """Refuse the flags of the top-down pipeline for a bottom-up ``--model``, which finds every person itself."""
    given = {
        "--boxes": getattr(args, "boxes", None) is not None,
        "--detector": getattr(args, "detector", "auto") not in ("auto", "none"),
        "--detector-checkpoint": getattr(args, "detector_checkpoint", None) is not None,
        "--detect-every": getattr(args, "detect_every", None) not in (None, 1),
        "--decoder": args.decoder is not None,
        "--precision": args.precision != "fp32",
    }
    wrong = [flag for flag, set_ in given.items() if set_]
    if wrong:
        raise ValueError(
            f"--model {args.model} is a bottom-up model: it finds every person itself, decodes with its own codec "
            f"and runs in float32, so {', '.join(wrong)} {'do' if len(wrong) > 1 else 'does'} not apply; drop "
            f"{'them' if len(wrong) > 1 else 'it'} (--track and --smooth still follow the persons through a video)"
        )


def _pipeline(
    args: argparse.Namespace, sources: Sequence[Source], device: torch.device, bottom_up: bool = False
) -> _Pipeline:
    """The flags resolved, ``auto`` included: on a CPU, videos and webcams get :data:`CPU_VIDEO_DEFAULTS` where the
    user set nothing else (and are told so); a bottom-up model runs no detector, on every frame."""
    if args.detect_every is not None and args.detect_every < 1:
        raise ValueError(f"--detect-every must be at least 1 (every frame), got {args.detect_every}")
    smooth = _smoothing(args)
    cpu_video = (
        args.detector == "auto"
        and args.detector_checkpoint is None  # a checkpoint given alone is the default detector's, as in 0.3
        and device.type == "cpu"
        and any(s.kind != "image" for s in sources)
    )
    defaults = CPU_VIDEO_DEFAULTS if cpu_video else None
    detector = args.detector if args.detector != "auto" else defaults.detector if defaults else DEFAULT_DETECTOR
    detect_every = args.detect_every or (defaults.detect_every if defaults else 1)
    if bottom_up:
        detector, detect_every = "none", 1
    flip_test = args.flip if args.flip is not None else (defaults.flip_test if defaults else True)
    if defaults and bottom_up:
        _logger.info(
            "videos on a CPU: flip test %s (the fast CPU default; --flip changes it)", "on" if flip_test else "off"
        )
    elif defaults:
        _logger.info(
            "videos on a CPU: person detector %s on every %s frame(s), tracking, flip test %s (the fast CPU "
            "defaults; --detector, --detect-every and --flip change them)",
            detector,
            detect_every,
            _on(flip_test),
        )
    track: TrackerConfig | bool = False
    if args.track or detect_every > 1 or smooth is not None:  # ByteTrack's second association takes low scores
        threshold = args.detection_threshold
        track = TrackerConfig(high_score=threshold, low_score=min(threshold, 0.1), new_track_score=threshold)
    return _Pipeline(detector, detect_every, flip_test, track, smooth)


def _estimator(
    model: torch.nn.Module,
    args: argparse.Namespace,
    device: torch.device,
    flip_test: bool,
    detector: PersonDetector | None = None,
) -> PoseEstimator | BottomUpEstimator:
    """The estimator of ``model``'s kind with the flags: ``--scales`` for bottom-up, ``--decoder`` and
    ``--batch-size`` for top-down models."""
    if model.pose_meta.bottom_up:
        return BottomUpEstimator(model, device=device, flip_test=flip_test, scales=args.scales)
    if args.scales is not None:
        raise ValueError(_TOP_DOWN_SCALES.format(model=args.model))
    batch_size = getattr(args, "batch_size", 32)
    amp = _PRECISIONS[args.precision]
    if amp is not None and isinstance(model, RuntimePoseModel | ExportedPoseModel):
        raise ValueError(
            f"--precision {args.precision}: --model {args.model} runs as it was exported; drop --precision"
        )
    return PoseEstimator(
        model,
        device=device,
        flip_test=flip_test,
        decoder=args.decoder,
        batch_size=batch_size,
        detector=detector,
        amp=amp,
    )


def _cmd_predict(args: argparse.Namespace) -> int:
    kind = _registered_kind(args.model)
    bottom_up = kind == "bottom_up"
    if bottom_up:  # before any input is read or weights load
        _check_bottom_up_flags(args)
    elif kind == "top_down" and args.scales is not None:
        raise ValueError(_TOP_DOWN_SCALES.format(model=args.model))
    sources = find_sources(args.inputs)  # the inputs are checked before any weights load
    for source in sources:  # a video or webcam that cannot be opened is reported before any weights load too
        if source.kind == "webcam" or (source.kind == "video" and not args.skip_bad):
            with VideoReader(source):
                pass
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.detector_checkpoint is not None and args.detector == "none":
        raise ValueError("--detector-checkpoint needs a --detector; drop it or name the detector it belongs to")
    boxes = _load_boxes(args.boxes)
    covered = GivenBoxes(boxes, sources).covers  # keys naming no input are reported before any weights load
    device = _device(args.device)
    pipeline = _pipeline(args, sources, device, bottom_up)
    if isinstance(pipeline.smooth, Savgol) and any(s.kind == "webcam" for s in sources):
        raise ValueError("--smooth savgol filters whole videos, which a webcam never ends: use --smooth one_euro")
    if not args.out_dir:
        raise ValueError("--out-dir is empty: name the run folder")
    with claim_run_folder(args.out_dir, args.exist_ok) as folder:  # before the weights load: two runs never share
        needs_detector = not all(map(covered, sources))  # no detector weights when --boxes covers every input
        return _predict(args, sources, boxes, needs_detector, pipeline, device, folder)


def _predict(
    args: argparse.Namespace,
    sources: list[Source],
    boxes: dict[str, object] | None,
    needs_detector: bool,
    pipeline: _Pipeline,
    device: torch.device,
    folder: Path,
) -> int:
    model = _create_model(args)
    if model.pose_meta.bottom_up:  # also a bottom-up model from a file or folder, known once loaded
        _check_bottom_up_flags(args)
        pipeline = _pipeline(args, sources, device, bottom_up=True)
    if args.keypoint_format is not None:  # before any frame: the model's joints must convert
        try:
            converted_set(model.pose_meta.keypoints, args.keypoint_format)
        except ValueError as err:
            raise ValueError(f"--keypoint-format {args.keypoint_format}: {err}") from err
    detector = None
    if pipeline.detector != "none" and needs_detector:
        tracked = isinstance(pipeline.track, TrackerConfig)
        detector = PersonDetector(
            pipeline.detector,
            checkpoint=args.detector_checkpoint,
            score_threshold=pipeline.track.low_score if tracked else args.detection_threshold,
            device=device,
            amp=torch.bfloat16 if args.detector_bf16 else None,
        )
    estimator = _estimator(model, args, device, pipeline.flip_test, detector)
    info = {
        "model": args.model,
        "detector": pipeline.detector if detector else None,
        "detect_every": pipeline.detect_every,
        "flip_test": pipeline.flip_test,
        "tracked": pipeline.track is not False,
        "smooth": args.smooth,
        "keypoint_format": args.keypoint_format or estimator.keypoints.name,
        "version": __version__,
    }
    try:
        summary = estimator.run(
            args.inputs,
            folder,
            boxes=boxes,
            box_format=args.box_format,
            batch_frames=args.batch_frames,
            draw=args.draw,
            threshold=args.threshold,
            exist_ok=True,  # the folder claimed for this run above (or, with --exist-ok, the one named)
            skip_bad=args.skip_bad,
            info=info,
            progress=True,
            track=pipeline.track,
            detect_every=pipeline.detect_every,
            smooth=pipeline.smooth,
            keypoint_format=args.keypoint_format,
        )
    except OSError as err:
        if err.filename is None and err.errno is not None:  # a write into the run folder failed (full disk): name it
            raise OSError(err.errno, err.strerror, str(folder)) from err
        raise
    if summary.interrupted:
        print(f"stopped: {summary}", file=sys.stderr)
        return 130
    print(summary)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    annotation, images = find_coco_split(args.coco_root, args.split)
    given = [p for p in (args.boxes, args.checkpoint, args.model) if p and Path(p).is_file()]
    inputs = [annotation, *given, *images.iterdir()]
    plan_outputs([Path(p) for p in (args.results, args.out) if p], inputs, args.overwrite)  # before any inference
    device = _device(args.device)
    model = _create_model(args)
    if model.pose_meta.bottom_up:
        _check_bottom_up_flags(args)
    estimator = _estimator(model, args, device, args.flip)
    report = evaluate(
        estimator, annotation, images, detections=args.boxes, output=args.results, overwrite=args.overwrite
    )
    print(format_stats(report["stats"]))
    if args.out:
        write_json(Path(args.out), {"model": args.model, "split": args.split, **report["stats"]})
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    out_dir = check_output_dir(args.out_dir)
    plan_outputs([out_dir / name for name in (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)], [args.src], args.overwrite)
    if not Path(args.src).is_file():
        raise FileNotFoundError(f"checkpoint {args.src!r} does not exist")
    out = convert_checkpoint(args.src, out_dir, args.model)
    print(f"wrote {out}/{WEIGHTS_FILE}, {CONFIG_FILE} and {CARD_FILE}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    try:
        print(push_folder(args.folder, args.repo_id, private=args.private, revision=args.revision))
    except (FileNotFoundError, ValueError):
        raise
    except Exception as err:  # network, authentication, offline mode: the Hub did not take the upload
        raise ValueError(
            f"could not upload {args.folder} to {args.repo_id}: {type(err).__name__}: {str(err).splitlines()[0]}; "
            "check the network, HF_HUB_OFFLINE and your token (huggingface-cli login or HF_TOKEN)"
        ) from err
    return 0


def _input_size(values: list[int] | None) -> tuple[int, int] | None:
    """``--input-size H W``, checked before any weights load."""
    if values is None:
        return None
    try:
        return check_input_size(tuple(values))
    except ValueError as err:
        raise ValueError(f"--input-size {values[0]} {values[1]}: {err}") from err


def _cmd_export(args: argparse.Namespace) -> int:
    if Path(args.model).suffix in _EXPORTED:
        raise ValueError(f"--model {args.model!r} is already exported; export a model name, arch.tag or local-dir:PATH")
    size = _input_size(args.input_size)
    if args.int8 and (args.format != "onnx" or args.calibration is None):
        raise ValueError("--int8 writes an ONNX model and needs --calibration DIR (a folder of person images)")
    suffix = "onnx" if args.format == "onnx" else "pt2"
    output = Path(args.output or f"{args.model}{'_int8' if args.int8 else ''}.{suffix}")
    plan_outputs([output], [args.checkpoint] if args.checkpoint else [], args.overwrite)
    calibration = _calibration_images(args.calibration) if args.int8 else []
    model = _create_model(args).eval()
    if args.int8:
        quantize(model, calibration, output)
        print(f"wrote {output} (int8, calibrated on {len(calibration)} images; run it with --model {output})")
        return 0
    if args.optimize:
        model = optimize_for_inference(model, channels_last=False)
    if args.format == "onnx":
        data = [output.with_name(output.name + ".data")] if needs_external_data(model) else []
        plan_outputs(data, [args.checkpoint] if args.checkpoint else [], args.overwrite)  # the weights beside it
        export_onnx(model, output, size)
    else:
        save_program(model, output, size)
    print(f"wrote {output} (dynamic batch dimension; run it with --model {output})")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _model_options(default: str | None) -> argparse.ArgumentParser:
    """``--model`` (required when it has no default), ``--checkpoint`` and ``--pretrained/--no-pretrained``."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--model",
        default=default,
        required=default is None,
        help="model name, arch.tag, local-dir:PATH or hf-hub:REPO (predict, evaluate: or an exported .onnx/.pt2)",
    )
    options.add_argument("--checkpoint", help="local .safetensors/.pth weights instead of the pretrained ones")
    options.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="load the model's pretrained weights; --no-pretrained builds random ones, for smoke tests only",
    )
    return options


def _inference_options() -> argparse.ArgumentParser:
    """``--device``, ``--flip``, ``--decoder``, ``--precision`` and ``--scales``."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    options.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip test")
    options.add_argument("--decoder", choices=("argmax", "dark"), help="heatmap decoder (default: the model's codec)")
    options.add_argument(
        "--precision",
        choices=tuple(_PRECISIONS),
        default="fp32",
        help="top-down pose network precision: fp32 (exact), bf16 (CUDA, or CPUs with AMX/AVX512-BF16) or auto (bf16 "
        "where the device runs it in hardware, else fp32; says which)",
    )
    options.add_argument(
        "--scales",
        nargs="+",
        type=float,
        metavar="S",
        help="bottom-up models: multi-scale test, 1 among them, e.g. --scales 2 1 0.5 (default: the model's)",
    )
    return options


def _add_predict_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="input",
        help="image or video files, folders, glob patterns ('shots/*.jpg') or a webcam index (0)",
    )
    p.add_argument(
        "--boxes",
        help="JSON mapping inputs (path or file name) to person boxes, which skip detection; for a video one list for "
        "every frame, or {frame index: boxes}",
    )
    p.add_argument("--skip-bad", action="store_true", help="skip damaged images, videos and frames with a warning")
    p.add_argument("--box-format", choices=("xywh", "xyxy"), default="xywh", help="format of --boxes")
    p.add_argument(
        "--detector",
        choices=(*DETECTORS, "none", "auto"),
        default="auto",
        metavar="NAME",
        help=f"torchvision person detector: {', '.join(DETECTORS)}; 'none' takes each image as one person "
        f"(default 'auto': {DEFAULT_DETECTOR}, or {CPU_VIDEO_DEFAULTS.detector} for videos and webcams on a CPU)",
    )
    p.add_argument("--detector-checkpoint", help="local weights of --detector instead of torchvision's download")
    p.add_argument("--detection-threshold", type=float, default=0.5, help="minimum person detection score")
    p.add_argument(
        "--detector-bf16",
        action="store_true",
        help="run the detector in bfloat16: several times faster on CPUs with AMX or AVX512-BF16, and on GPUs",
    )
    p.add_argument(
        "--out-dir",
        default="hrnet_zoo_out",
        help="run folder; when it holds an earlier run, OUT_DIR-2, -3... is used instead",
    )
    p.add_argument("--exist-ok", action="store_true", help="write into an existing --out-dir, replacing its files")
    p.add_argument("--batch-size", type=int, default=32, help="persons per forward pass")
    p.add_argument("--batch-frames", type=int, default=8, help="frames read and detected together")
    p.add_argument("--draw", action=argparse.BooleanOptionalAction, default=True, help="write drawn images/videos")
    p.add_argument("--threshold", type=float, default=0.3, help="minimum joint score drawn")
    video = p.add_argument_group("video")
    video.add_argument("--track", action="store_true", help="give each person a track id (track_id, drawn)")
    video.add_argument(
        "--detect-every",
        type=int,
        metavar="N",
        help="detect persons on every N-th frame, following them by their poses in between (turns on --track; "
        f"default 1, or {CPU_VIDEO_DEFAULTS.detect_every} on a CPU for videos and webcams with --detector auto)",
    )
    video.add_argument(
        "--smooth",
        choices=("one_euro", "savgol"),
        help="smooth keypoints over time: one_euro (online, webcams) or savgol (whole videos); turns on --track",
    )
    video.add_argument(
        "--one-euro",
        nargs=2,
        type=float,
        metavar=("MIN_CUTOFF", "BETA"),
        help=f"One-Euro parameters (default {OneEuro().min_cutoff:g} {OneEuro().beta:g})",
    )
    video.add_argument("--savgol-window", type=int, metavar="FRAMES", help=f"default {Savgol().window}")
    video.add_argument(
        "--keypoint-format",
        choices=KEYPOINT_FORMATS,
        help="write and draw the keypoints in this format (openpose18/body25 for OpenPose and ControlNet, h36m for "
        "3D lifters, halpe26)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hrnet-zoo``."""
    parser, commands = top_level_parser()

    def add(name: str, **kwargs: object) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=COMMANDS[name], formatter_class=_HelpFormatter, **kwargs)

    model, inference = _model_options("hrnet_w32_pose"), _inference_options()
    overwrite = argparse.ArgumentParser(add_help=False)
    overwrite.add_argument("--overwrite", action="store_true", help="replace existing output files")

    p = add("list")
    p.add_argument("pattern", nargs="?", default="", help="wildcard filter, e.g. '*w32*'")
    p.add_argument("--pretrained", action="store_true", help="only configurations with weights")
    p.add_argument("--kind", choices=tuple(_KIND_TITLES), help="only top-down or only bottom-up models")
    p.set_defaults(func=_cmd_list)

    p = add("predict", parents=[model, inference])
    _add_predict_options(p)
    p.set_defaults(func=_cmd_predict, flip=None)  # unset: on by default, off in the CPU video pipeline

    p = add("evaluate", parents=[model, inference, overwrite])
    p.add_argument("--coco-root", required=True, help="folder with annotations/ and the split's images")
    p.add_argument("--split", default="val2017")
    p.add_argument("--boxes", help="person detections (COCO results JSON); ground-truth boxes otherwise")
    p.add_argument("--results", help="write the keypoint results JSON here")
    p.add_argument("--out", help="write the statistics JSON here")
    p.set_defaults(func=_cmd_evaluate)

    p = add("export", parents=[_model_options(None), overwrite])
    p.add_argument("--format", choices=("onnx", "pt2"), default="onnx")
    p.add_argument("--output", help="output file (default: MODEL.onnx / MODEL.pt2)")
    p.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="positive multiples of 32 (default: the tag's input size)",
    )
    p.add_argument("--optimize", action="store_true", help="fold BatchNorm into the convolutions first")
    p.add_argument("--int8", action="store_true", help="post-training int8 quantization (ONNX Runtime)")
    p.add_argument("--calibration", help="with --int8: folder of images, each taken as one person to calibrate on")
    p.set_defaults(func=_cmd_export)

    p = add("convert", parents=[overwrite])
    p.add_argument("src", help="checkpoint file (.pth or .safetensors)")
    p.add_argument("out_dir", help="output folder")
    p.add_argument("--model", required=True, help="architecture or arch.tag the checkpoint belongs to")
    p.set_defaults(func=_cmd_convert)

    p = add("push")
    p.add_argument("folder", help="folder written by 'hrnet-zoo convert'")
    p.add_argument("repo_id", help="Hub repository, e.g. my-org/hrnet_w32_pose.coco_256x192")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", help="branch to push to")
    p.set_defaults(func=_cmd_push)
    return parser


def _flag(args: argparse.Namespace, dest: str) -> str:
    """How the user spelled the argument stored in ``dest``: ``--out-dir``, or ``out_dir`` for a positional one."""
    positional = args.command == "convert" and dest == "out_dir"
    return dest if positional else "--" + dest.replace("_", "-")


def _output_flag(err: OutputRefusedError, args: argparse.Namespace, dests: tuple[str, ...]) -> str:
    """The argument that named the refused path (the first, when none names it exactly)."""
    named = [
        d
        for d in dests
        if getattr(args, d, None) and err.path in (Path(getattr(args, d)), Path(getattr(args, d)).parent)
    ]
    return _flag(args, (named or dests)[0])


def _message(err: Exception, args: argparse.Namespace) -> str:
    """The library's message in the command's words: the facts it carries, advice as flags, never Python."""
    if isinstance(err, OSError) and err.filename:
        return f"{err.strerror}: {err.filename}"
    if isinstance(err, WeightsUnavailableError) and err.kind == "pose" and not (err.hf_hub_id or err.url):
        return f"{err.name} has no pretrained weights"
    if isinstance(err, CheckpointMismatchError) and err.checkpoint_joints is not None:
        return (
            f"the {err.source} predicts {err.checkpoint_joints} joints but the model has {err.model_joints}; "
            "nothing was loaded"
        )
    message = str(err)
    for python, words in _PYTHON_WORDS.items():
        message = message.replace(python, words)
    return message


def _advice(err: Exception, args: argparse.Namespace) -> str | None:
    """The flags that address ``err``, from the facts it carries (library messages name no flags)."""
    if isinstance(err, OutputRefusedError) and args.command in _OUTPUT_FLAGS:
        replace, dests = _OUTPUT_FLAGS[args.command]
        where = _output_flag(err, args, dests)
        if err.reason == "exists":
            return f"pass {replace} to replace it, or choose another {where}"
        if err.reason in ("input", "not_a_folder", "symlink", "not_writable"):
            return f"choose another {where}"
    if isinstance(err, WeightsUnavailableError):
        if err.kind == "detector":
            return "pass the file with --detector-checkpoint PATH, or person boxes with --boxes to skip detection"
        if err.file == "config.json":  # an hf-hub: model's configuration
            return "or pass a folder written by 'hrnet-zoo convert' as --model local-dir:PATH"
        if not (err.hf_hub_id or err.url):
            return "pass weights with --checkpoint PATH, or --no-pretrained for random weights (smoke tests only)"
        return "pass the downloaded file with --checkpoint PATH, or --no-pretrained for random weights"
    if (
        args.command == "predict"
        and isinstance(err, OSError)
        and err.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT)
    ):
        return (
            "free some space there, or choose another --out-dir"
            if err.errno in (errno.ENOSPC, errno.EDQUOT)
            else "choose a folder you may write to with --out-dir"
        )
    if isinstance(err, CheckpointMismatchError) and err.checkpoint_joints is not None:
        return f"these weights predict {err.checkpoint_joints} joints: name the --model they were made for"
    return None


class _StderrHandler(logging.StreamHandler):
    """Log records to whatever ``sys.stderr`` is when each is written (a caller may have redirected it since)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hrnet-zoo``; returns the exit status (2 for a user error, with one message)."""
    args = build_parser().parse_args(argv)
    if not _logger.handlers:  # say which source served the weights, and other notices
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        _logger.addHandler(handler)
        _logger.setLevel(logging.INFO)
    try:
        with terminate_as_interrupt():  # SIGTERM as Ctrl-C: partial files are removed, finished ones kept
            return args.func(args)
    except KeyboardInterrupt:
        print(f"stopped: hrnet-zoo {args.command} was interrupted; nothing half-written is left", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError, WeightsUnavailableError) as err:  # user errors, missing extras
        message, advice = _message(err, args), _advice(err, args)
        separator = "\n  - hrnet-zoo: " if "\n" in message else "; "  # a listed message gets the advice as a list item
        print(f"error: {message}" + (f"{separator}{advice}" if advice else ""), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
