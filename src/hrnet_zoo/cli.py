"""The ``hrnet-zoo`` command: list models, predict poses, convert and publish checkpoints."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from . import __version__
from .evaluation import evaluate, find_coco_split, format_stats
from .export import export_onnx, export_program
from .factory import create_model, get_pretrained_cfg, list_models, list_pretrained
from .hub.download import WEIGHTS_FILE, WeightsUnavailableError
from .hub.publish import CARD_FILE, CONFIG_FILE, convert_checkpoint, push_folder
from .models.pretrained import TASKS
from .onnx_model import OnnxPoseModel
from .optimize import optimize_for_inference
from .output_files import check_output_dir, plan_outputs, run_folder, write_json
from .pose import PoseEstimator
from .pose.detect import DEFAULT_DETECTOR, DETECTORS, PersonDetector
from .pose.predictor import given_boxes
from .pose.run_writer import IMAGES_FILE, RESULTS_FILE, RunWriter, run_outputs
from .pose.sources import IMAGE_SUFFIXES, Source, VideoReader, find_sources
from .quantize import quantize

__all__ = ["main"]


def _cmd_list(args: argparse.Namespace) -> int:
    names = list_pretrained(args.pattern) if args.pretrained else list_models(args.pattern)
    names += [] if args.pretrained else [n for n in list_pretrained(args.pattern) if n not in names]
    cfgs = list({cfg.name: cfg for cfg in (get_pretrained_cfg(name) for name in sorted(names))}.values())
    header = f"{'name':50} {'input':>8} {'joints':>6} {'codec':>7} {'params':>7} {'GMACs':>6}  metric (served weights)"
    for task in TASKS:
        rows = [cfg for cfg in cfgs if cfg.task == task]
        if not rows:
            continue
        print(f"## {task}\n{header}\n{'-' * len(header)}")
        for cfg in rows:
            metric = "{}={}".format(*cfg.headline_metric) if cfg.has_weights else "no weights"
            params = f"{cfg.params_m:.1f}M" if cfg.params_m else "-"
            gmacs = f"{cfg.gmacs:.2f}" if cfg.gmacs else "-"
            size = f"{cfg.input_size[0]}x{cfg.input_size[1]}"
            print(f"{cfg.name:50} {size:>8} {cfg.num_joints:>6} {cfg.pose_meta.codec.decoding:>7} {params:>7} "
                  f"{gmacs:>6}  {metric}")  # fmt: skip
        print()
    return 0


def _load_boxes(path: str | None) -> dict[str, list]:
    if path is None:
        return {}
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--boxes file {path!r} does not exist")
    try:
        data = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"--boxes file {path!r} is not JSON ({err})") from err
    if not isinstance(data, dict):
        example = '{"a.jpg": [[x, y, w, h]]}'
        raise ValueError(f"--boxes file {path!r} must map image paths or file names to lists of boxes, e.g. {example}")
    return data


def _device(name: str | None) -> torch.device:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (default: CUDA when available)."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r}: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r} is not supported; use cpu, cuda or cuda:N")
    return device


def _create_model(args: argparse.Namespace) -> torch.nn.Module:
    """``--model`` with the weights of ``--checkpoint``, or its pretrained weights when none is given; an ``.onnx``
    file (fp32 or int8, from ``hrnet-zoo export``) runs with ONNX Runtime."""
    if args.model.endswith(".onnx"):
        if args.checkpoint is not None:
            raise ValueError(f"--model {args.model!r} is an ONNX file with its weights: drop --checkpoint")
        return OnnxPoseModel(args.model)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint!r} does not exist")
    return create_model(args.model, pretrained=args.checkpoint is None, checkpoint_path=args.checkpoint)


def _calibration_images(folder: str) -> list[Path]:
    """The image files of ``--calibration``."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"--calibration {folder!r} is not a folder of images")
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"--calibration {folder!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def _frame_total(sources: list[Source]) -> int | None:
    """Frames the run will read (for the progress bar); opening each video also checks it early."""
    total = 0
    for source in sources:
        if source.kind == "webcam":
            return None
        if source.kind == "video":
            with VideoReader(source) as reader:
                if reader.frame_count is None:
                    return None
                total += reader.frame_count
        else:
            total += 1
    return total


def _cmd_predict(args: argparse.Namespace) -> int:
    sources = find_sources(args.inputs)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    boxes = _load_boxes(args.boxes)
    device = _device(args.device)
    folder = run_folder(args.out_dir, args.exist_ok)
    if folder != Path(args.out_dir):
        logging.getLogger("hrnet_zoo").info("%s holds an earlier run; writing to %s (--exist-ok reuses it)",
                                            args.out_dir, folder)  # fmt: skip
    planned = run_outputs(folder, sources, args.draw)
    plan_outputs(planned, [s.location for s in sources if s.kind != "webcam"], args.exist_ok)
    total = _frame_total(sources)
    needs_detector = any(given_boxes(boxes, s) is None for s in sources)
    if args.detector_checkpoint is not None and args.detector == "none":
        raise ValueError("--detector-checkpoint needs a --detector; drop it or name the detector it belongs to")
    model = _create_model(args)
    detector = None
    if needs_detector and args.detector != "none":
        detector = PersonDetector(args.detector, checkpoint=args.detector_checkpoint,
                                  score_threshold=args.detection_threshold, device=device)  # fmt: skip
    estimator = PoseEstimator(model, device=device, flip_test=args.flip, decoder=args.decoder,
                              batch_size=args.batch_size, detector=detector)  # fmt: skip
    info = {"model": args.model, "detector": args.detector if detector else None, "version": __version__}
    writer = RunWriter(folder, sources, estimator.keypoints, draw=args.draw, threshold=args.threshold, info=info)
    persons = 0
    progress = tqdm(total=total, desc="frames", unit="frame", disable=total is not None and total < 2)
    try:
        with writer, progress:
            for frame, result in estimator.stream(sources, boxes, args.box_format, args.batch_frames):
                writer.add(frame, result)
                persons += len(result)
                progress.update()
    except KeyboardInterrupt:
        print(f"stopped: {writer.frames} frames written to {folder}", file=sys.stderr)
        return 130
    drawn = f" and {len(writer.drawn)} drawn file(s)" if writer.drawn else ""
    print(f"{writer.frames} frame(s), {persons} person(s) -> {folder / RESULTS_FILE}, {IMAGES_FILE}{drawn}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    annotation, images = find_coco_split(args.coco_root, args.split)
    device = _device(args.device)
    estimator = PoseEstimator(_create_model(args), device=device, flip_test=args.flip, decoder=args.decoder)
    report = evaluate(estimator, annotation, images, detections=args.boxes, output=args.results)
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


def _cmd_export(args: argparse.Namespace) -> int:
    size = tuple(args.input_size) if args.input_size else None
    if args.int8 and (args.format != "onnx" or args.calibration is None):
        raise ValueError("--int8 writes an ONNX model and needs --calibration DIR (a folder of person images)")
    suffix = "onnx" if args.format == "onnx" else "pt2"
    output = Path(args.output or f"{args.model}{'_int8' if args.int8 else ''}.{suffix}")
    inputs = [args.checkpoint] if args.checkpoint else []
    plan_outputs([output], inputs, args.overwrite)
    calibration = _calibration_images(args.calibration) if args.int8 else []
    model = _create_model(args).eval()
    if args.int8:
        quantize(model, calibration, output)
        print(f"wrote {output} (int8, calibrated on {len(calibration)} images; run it with --model {output})")
        return 0
    if args.optimize:
        model = optimize_for_inference(model, channels_last=False)
    if args.format == "onnx":
        export_onnx(model, output, size)
    else:
        torch.export.save(export_program(model, size), str(output))
    print(f"wrote {output} (dynamic batch dimension)")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hrnet-zoo``."""
    parser = argparse.ArgumentParser(prog="hrnet-zoo", description="HRNet human pose estimation models.")
    parser.add_argument("--version", action="version", version=f"hrnet-zoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "list",
        help="list the zoo grouped by task (body, wholebody, face, hand, animal, fashion) with each tag's metric",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("pattern", nargs="?", default="", help="wildcard filter, e.g. '*w32*'")
    p.add_argument("--pretrained", action="store_true", help="only configurations with weights")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("predict", formatter_class=_HelpFormatter,
                       help="estimate every person's pose in images, videos or a webcam; writes COCO results "
                       "(results.json, images.json) and drawn images/videos into a new run folder")  # fmt: skip
    inputs_help = "image or video files, folders, glob patterns ('shots/*.jpg') or a webcam index (0)"
    p.add_argument("inputs", nargs="+", metavar="input", help=inputs_help)
    p.add_argument("--boxes", help="JSON mapping image paths or file names to person boxes (skips detection)")
    p.add_argument("--box-format", choices=("xywh", "xyxy"), default="xywh", help="format of --boxes")
    p.add_argument("--detector", choices=(*DETECTORS, "none"), default=DEFAULT_DETECTOR, metavar="NAME",
                   help=f"torchvision person detector: {', '.join(DETECTORS)}; 'none' takes each image as one person "
                   f"(default: {DEFAULT_DETECTOR})")  # fmt: skip
    p.add_argument("--detector-checkpoint", help="local weights of --detector instead of torchvision's download")
    p.add_argument("--detection-threshold", type=float, default=0.5, help="minimum person detection score")
    model_help = "model name, arch.tag, local-dir:PATH, hf-hub:REPO or an exported .onnx file"
    p.add_argument("--model", default="hrnet_w32_pose", help=model_help)
    p.add_argument("--checkpoint", help="local .safetensors/.pth weights instead of downloading")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out-dir", default="hrnet_zoo_out",
                   help="run folder; when it holds an earlier run, OUT_DIR-2, -3... is used instead")  # fmt: skip
    p.add_argument("--exist-ok", action="store_true", help="write into an existing --out-dir, replacing its files")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip test")
    p.add_argument("--decoder", choices=("argmax", "dark"), help="heatmap decoder (default: the model's codec)")
    p.add_argument("--batch-size", type=int, default=32, help="persons per forward pass")
    p.add_argument("--batch-frames", type=int, default=8, help="frames read and detected together")
    p.add_argument("--draw", action=argparse.BooleanOptionalAction, default=True, help="write drawn images/videos")
    p.add_argument("--threshold", type=float, default=0.3, help="minimum joint score drawn")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("evaluate", help="COCO keypoint AP with the original test protocol",
                       formatter_class=_HelpFormatter)  # fmt: skip
    p.add_argument("--coco-root", required=True, help="folder with annotations/ and the split's images")
    p.add_argument("--model", default="hrnet_w32_pose", help=model_help)
    p.add_argument("--checkpoint", help="local weights instead of downloading")
    p.add_argument("--split", default="val2017")
    p.add_argument("--boxes", help="person detections (COCO results JSON); ground-truth boxes otherwise")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip test")
    p.add_argument("--decoder", choices=("argmax", "dark"), help="heatmap decoder (default: the model's codec)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--results", help="write the keypoint results JSON here")
    p.add_argument("--out", help="write the statistics JSON here")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "export",
        help="export a model to ONNX or a torch.export program (.pt2)",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--model", required=True, help="model name or arch.tag")
    p.add_argument("--format", choices=("onnx", "pt2"), default="onnx")
    p.add_argument("--checkpoint", help="weights to export (default: the model's pretrained weights)")
    p.add_argument("--output", help="output file (default: MODEL.onnx / MODEL.pt2)")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), help="default: the tag's input size")
    p.add_argument("--optimize", action="store_true", help="fold BatchNorm into the convolutions first")
    p.add_argument("--int8", action="store_true", help="post-training int8 quantization (ONNX Runtime)")
    p.add_argument("--calibration", help="with --int8: folder of images, each taken as one person to calibrate on")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "convert",
        help="convert an original or OpenMMLab checkpoint to the Hub layout",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("src", help="checkpoint file (.pth or .safetensors)")
    p.add_argument("out_dir", help="output folder")
    p.add_argument("--model", required=True, help="architecture or arch.tag the checkpoint belongs to")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier conversion in out_dir")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser(
        "push",
        help="upload a converted folder to the Hugging Face Hub",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("folder", help="folder written by 'hrnet-zoo convert'")
    p.add_argument("repo_id", help="Hub repository, e.g. my-org/hrnet_w32_pose.coco_256x192")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", help="branch to push to")
    p.set_defaults(func=_cmd_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hrnet-zoo``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logger = logging.getLogger("hrnet_zoo")  # say which source served the weights, and other notices
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        return args.func(args)
    except (ValueError, OSError, WeightsUnavailableError) as err:  # user errors: bad files, arguments, weights
        message = str(err) if not isinstance(err, OSError) or not err.filename else f"{err.strerror}: {err.filename}"
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
