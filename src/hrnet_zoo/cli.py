"""The ``hrnet-zoo`` command: list models, predict poses, convert and publish checkpoints."""

from __future__ import annotations

import argparse
import glob
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
from .onnx_model import OnnxPoseModel
from .optimize import optimize_for_inference
from .output_files import check_output_dir, finite_records, plan_outputs, write_json
from .pose import PoseEstimator, save_image
from .quantize import quantize

__all__ = ["main"]

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _cmd_list(args: argparse.Namespace) -> int:
    names = list_pretrained(args.pattern) if args.pretrained else list_models(args.pattern)
    names += [] if args.pretrained else [n for n in list_pretrained(args.pattern) if n not in names]
    header = f"{'name':34} {'input':>8} {'joints':>6} {'params':>7} {'GMACs':>6}  {'served weights':38} {'paper'}"
    print(header)
    print("-" * len(header))
    for name in sorted(names):
        cfg = get_pretrained_cfg(name)
        served = ", ".join(f"{k}={v}" for k, v in cfg.metrics.items() if "val" in k) or "-"
        paper = ", ".join(f"{k}={v}" for k, v in cfg.paper_metrics.items() if "val" in k) or "-"
        size = f"{cfg.input_size[0]}x{cfg.input_size[1]}"
        print(f"{name:34} {size:>8} {cfg.num_joints:>6} {cfg.params_m:>6.1f}M {cfg.gmacs:>6.2f}  {served:38} {paper}")
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
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"--calibration {folder!r} holds no images ({', '.join(sorted(_IMAGE_SUFFIXES))})")
    return images


def _expand_images(arguments: list[str]) -> list[str]:
    """Image files, folders (their images, sorted) and glob patterns, in the order given."""
    images = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"folder {argument!r} holds no images ({', '.join(sorted(_IMAGE_SUFFIXES))})")
        elif not path.exists() and glob.has_magic(argument):
            found = sorted(glob.glob(argument, recursive=True))
            if not found:
                raise FileNotFoundError(f"the pattern {argument!r} matches no file")
        else:
            found = [argument]
        images += found
    missing = [p for p in images if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"image file(s) not found: {', '.join(missing)}")
    return images


def _output_stems(images: list[str]) -> list[str]:
    """One output name per input: its file stem, with ``_2``, ``_3``... for later inputs of the same stem."""
    seen: dict[str, int] = {}
    stems = []
    for image in images:
        stem = Path(image).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return stems


def _cmd_predict(args: argparse.Namespace) -> int:
    images = _expand_images(args.images)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    boxes = _load_boxes(args.boxes)
    device = _device(args.device)
    out_dir = check_output_dir(args.out_dir)
    stems = _output_stems(images)
    outputs = plan_outputs([out_dir / f"{s}{suffix}" for s in stems for suffix in (".json", "_pose.png")],
                           images, args.overwrite)  # fmt: skip
    model = _create_model(args)
    estimator = PoseEstimator(
        model, device=device, flip_test=args.flip, decoder=args.decoder, batch_size=args.batch_size
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(tqdm(images, desc="images", unit="img", disable=len(images) < 2)):
        json_path, png_path = outputs[2 * index], outputs[2 * index + 1]
        image_boxes = boxes.get(path, boxes.get(Path(path).name))
        result = estimator.predict(path, boxes=image_boxes, box_format=args.box_format)[0]
        records, dropped = finite_records(result.to_coco(stems[index]))
        if dropped:
            logging.getLogger("hrnet_zoo").warning(
                "%s: %d person(s) with non-finite keypoints left out of %s", path, dropped, json_path.name
            )
        write_json(json_path, records)
        save_image(result.plot(path, args.threshold), png_path)
        tqdm.write(f"{path}: {len(records)} person(s) -> {json_path}, {png_path.name}")
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
        help="list registered models and pretrained tags with their metrics",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("pattern", nargs="?", default="", help="wildcard filter, e.g. '*w32*'")
    p.add_argument("--pretrained", action="store_true", help="only configurations with weights")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("predict", help="estimate poses in images; writes COCO-format JSON and a drawn PNG per image",
                       formatter_class=_HelpFormatter)  # fmt: skip
    p.add_argument("images", nargs="+", help="image files, folders of images or glob patterns ('shots/*.jpg')")
    p.add_argument("--boxes", help="JSON mapping image paths or file names to person boxes; whole image otherwise")
    p.add_argument("--box-format", choices=("xywh", "xyxy"), default="xywh", help="format of --boxes")
    model_help = "model name, arch.tag, local-dir:PATH, hf-hub:REPO or an exported .onnx file"
    p.add_argument("--model", default="hrnet_w32_pose", help=model_help)
    p.add_argument("--checkpoint", help="local .safetensors/.pth weights instead of downloading")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out-dir", default="hrnet_zoo_out", help="output folder")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip test")
    p.add_argument("--decoder", choices=("argmax", "dark"), help="heatmap decoder (default: the model's codec)")
    p.add_argument("--batch-size", type=int, default=32, help="persons per forward pass")
    p.add_argument("--threshold", type=float, default=0.3, help="minimum joint score drawn")
    p.add_argument("--overwrite", action="store_true", help="replace existing result files in --out-dir")
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
