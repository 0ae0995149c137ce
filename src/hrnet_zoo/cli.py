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

from .evaluation import evaluate, find_coco_split, format_stats
from .export import export_onnx, export_program
from .factory import create_model, get_pretrained_cfg, list_models, list_pretrained
from .hub.download import WeightsUnavailableError
from .hub.publish import convert_checkpoint, push_folder
from .optimize import optimize_for_inference
from .pose import PoseEstimator, draw_poses, load_image, save_image

__all__ = ["main"]


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
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(
            f'{path} must map image paths or file names to lists of boxes, e.g. {{"a.jpg": [[x, y, w, h]]}}'
        )
    return data


def _create_model(args: argparse.Namespace) -> torch.nn.Module:
    """``--model`` with the weights of ``--checkpoint``, or its pretrained weights when none is given."""
    return create_model(args.model, pretrained=args.checkpoint is None, checkpoint_path=args.checkpoint)


def _cmd_predict(args: argparse.Namespace) -> int:
    boxes = _load_boxes(args.boxes)
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        print(f"error: image file(s) not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    model = _create_model(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    estimator = PoseEstimator(
        model, device=device, flip_test=args.flip, decoder=args.decoder, batch_size=args.batch_size
    )
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in tqdm(args.images, desc="images", unit="img", disable=len(args.images) < 2):
        image_boxes = boxes.get(path, boxes.get(Path(path).name))
        result = estimator.predict(path, boxes=image_boxes, box_format=args.box_format)[0]
        stem = Path(path).stem
        (out_dir / f"{stem}.json").write_text(json.dumps(result.to_coco(stem), indent=1) + "\n")
        drawn = draw_poses(load_image(path), result.keypoints, result.skeleton, result.boxes, args.threshold)
        save_image(drawn, out_dir / f"{stem}_pose.png")
        tqdm.write(f"{path}: {len(result.keypoints)} person(s) -> {out_dir / (stem + '.json')}, {stem}_pose.png")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    annotation, images = find_coco_split(args.coco_root, args.split)
    estimator = PoseEstimator(_create_model(args), device=args.device, flip_test=args.flip, decoder=args.decoder)
    report = evaluate(estimator, annotation, images, detections=args.boxes, output=args.results)
    print(format_stats(report["stats"]))
    if args.out:
        Path(args.out).write_text(json.dumps({"model": args.model, "split": args.split, **report["stats"]}, indent=1))
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    out = convert_checkpoint(args.src, args.out_dir, args.model)
    print(f"wrote {out}/model.safetensors, config.json and README.md")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    print(push_folder(args.folder, args.repo_id, private=args.private, revision=args.revision))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    model = _create_model(args).eval()
    if args.optimize:
        model = optimize_for_inference(model, channels_last=False)
    size = tuple(args.input_size) if args.input_size else None
    output = Path(args.output or f"{args.model}.{'onnx' if args.format == 'onnx' else 'pt2'}")
    if args.format == "onnx":
        export_onnx(model, output, size)
    else:
        torch.export.save(export_program(model, size), str(output))
    print(f"wrote {output} (dynamic batch dimension)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hrnet-zoo``."""
    parser = argparse.ArgumentParser(prog="hrnet-zoo", description="HRNet human pose estimation models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered models and pretrained tags with their metrics")
    p.add_argument("pattern", nargs="?", default="", help="wildcard filter, e.g. '*w32*'")
    p.add_argument("--pretrained", action="store_true", help="only configurations with weights")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("predict", help="estimate poses in images; writes COCO-format JSON and a drawn PNG per image")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--boxes", help="JSON mapping image paths or file names to person boxes; whole image otherwise")
    p.add_argument("--box-format", choices=("xywh", "xyxy"), default="xywh", help="format of --boxes (default xywh)")
    p.add_argument("--model", default="hrnet_w32_pose", help="model name or arch.tag (default hrnet_w32_pose)")
    p.add_argument("--checkpoint", help="local .safetensors/.pth weights instead of downloading")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out-dir", default="hrnet_zoo_out", help="output folder (default hrnet_zoo_out)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="disable the flip test")
    p.add_argument("--decoder", choices=("argmax", "dark"), help="heatmap decoder (default: the model's codec)")
    p.add_argument("--batch-size", type=int, default=32, help="persons per forward pass")
    p.add_argument("--threshold", type=float, default=0.3, help="minimum joint score drawn")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("evaluate", help="COCO keypoint AP with the original test protocol")
    p.add_argument("--coco-root", required=True, help="folder with annotations/ and the split's images")
    p.add_argument("--model", default="hrnet_w32_pose", help="model name or arch.tag")
    p.add_argument("--checkpoint", help="local weights instead of downloading")
    p.add_argument("--split", default="val2017")
    p.add_argument("--boxes", help="person detections (COCO results JSON); ground-truth boxes otherwise")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip test (default on)")
    p.add_argument("--decoder", choices=("argmax", "dark"), help="heatmap decoder (default: the model's codec)")
    p.add_argument("--device", help="cpu or cuda (default: the model's)")
    p.add_argument("--results", help="write the keypoint results JSON here")
    p.add_argument("--out", help="write the statistics JSON here")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("export", help="export a model to ONNX or a torch.export program (.pt2)")
    p.add_argument("--model", required=True, help="model name or arch.tag")
    p.add_argument("--format", choices=("onnx", "pt2"), default="onnx")
    p.add_argument("--checkpoint", help="weights to export (default: the model's pretrained weights)")
    p.add_argument("--output", help="output file (default: MODEL.onnx / MODEL.pt2)")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), help="default: the tag's input size")
    p.add_argument("--optimize", action="store_true", help="fold BatchNorm into the convolutions first")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("convert", help="convert an original or OpenMMLab checkpoint to the Hub layout")
    p.add_argument("src", help="checkpoint file (.pth or .safetensors)")
    p.add_argument("out_dir", help="output folder")
    p.add_argument("--model", required=True, help="architecture or arch.tag the checkpoint belongs to")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("push", help="upload a converted folder to the Hugging Face Hub")
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
    except (ValueError, FileNotFoundError, WeightsUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
