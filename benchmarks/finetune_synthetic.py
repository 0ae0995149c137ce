"""Fine-tune a small HRNet on the synthetic kite data set on this CPU and report COCO AP on its held-out split.

    python benchmarks/finetune_synthetic.py [--epochs 12] [--train 600] [--val 100] [--int8] [--bf16]

Generates the data set (hrnet_zoo.train.make_synthetic_dataset), trains hrnet_w18_small_pose from scratch with
the original recipe (Adam 1e-3, MSE with target weights, the original augmentation) and evaluates with the
original protocol (ground-truth boxes, flip test, OKS-NMS, pycocotools). Goal: AP >= 0.8 within minutes.
With ``--int8`` the same trained model is also quantized (``hrnet_zoo.deploy.quantize``, calibrated on 64 training
crops) and evaluated the same way, with the heatmap-peak agreement of int8 and fp32; ``--bf16`` does the same with
the estimator's ``amp=torch.bfloat16`` (CPUs with AMX or AVX512-BF16). Goal: a drop <= 0.01 AP.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import hrnet_zoo
from hrnet_zoo import PoseEstimator
from hrnet_zoo.codec import get_max_preds
from hrnet_zoo.evaluation import evaluate, format_stats
from hrnet_zoo.train import Augmentation, CocoKeypointDataset, JointsMSELoss, make_synthetic_dataset, train_one_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--input-size", type=int, nargs=2, default=(128, 128))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--model", default="hrnet_w18_small_pose")
    parser.add_argument("--int8", action="store_true", help="also evaluate the int8 model (hrnet_zoo.deploy.quantize)")
    parser.add_argument("--bf16", action="store_true", help="also evaluate in bfloat16 (CPUs with bf16 units)")
    args = parser.parse_args()
    torch.manual_seed(0)
    size = tuple(args.input_size)
    root = tempfile.mkdtemp(prefix="kites_")
    paths = make_synthetic_dataset(root, args.train, args.val, image_size=(160, 160))
    augmentation = Augmentation(rotation_factor=30.0, half_body_prob=0.0)
    transform = hrnet_zoo.get_pretrained_cfg(args.model).pose_meta.at_input_size(size).transform
    train_set = CocoKeypointDataset(
        paths["train_annotations"], paths["train_images"], transform, augmentation=augmentation
    )
    model = hrnet_zoo.create_model(args.model, keypoints=train_set.keypoints, input_size=size)
    train_set.check_model(model)
    loader = DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, num_workers=1, drop_last=True, persistent_workers=True
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * len(loader), pct_start=0.15
    )

    start = time.time()
    loss_fn = JointsMSELoss()
    for epoch in range(args.epochs):
        model.train()
        loss = train_one_epoch(model, loader, optimizer, loss_fn, torch.device("cpu"), scheduler=scheduler)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss:.6f} ({time.time() - start:.0f} s)", flush=True)
    train_seconds = time.time() - start
    estimator = PoseEstimator(model, device="cpu")
    stats = evaluate(estimator, paths["val_annotations"], paths["val_images"])["stats"]
    print(
        f"\n{args.model}, input {size[0]}x{size[1]}, {args.train} training images, {args.epochs} epochs, "
        f"{train_seconds / 60:.1f} min of training on {torch.get_num_threads()} CPU threads"
    )
    print(format_stats(stats))
    print(f"\nheld-out AP {stats['AP']:.3f} (goal >= 0.8): {'met' if stats['AP'] >= 0.8 else 'NOT met'}")
    if args.int8:
        label = "int8 (ONNX Runtime, static, calibrated on 64 training crops)"
        precision_report(label, int8_estimator(model, estimator, paths), estimator, stats, paths)
    if args.bf16:
        bf16 = PoseEstimator(model, device="cpu", amp=torch.bfloat16)
        precision_report("bf16 (a bfloat16 copy of the fused model)", bf16, estimator, stats, paths)


def int8_estimator(model: torch.nn.Module, fp32: PoseEstimator, paths: dict) -> PoseEstimator:
    """The same trained model in int8 (ONNX Runtime, static), calibrated on 64 training crops."""
    calibration_set = CocoKeypointDataset(
        paths["train_annotations"], paths["train_images"], fp32.transform, train=False
    )
    calibration = torch.stack([calibration_set[i][0] for i in range(min(64, len(calibration_set)))])
    return PoseEstimator(hrnet_zoo.deploy.quantize(model, calibration))


def precision_report(label: str, other: PoseEstimator, fp32: PoseEstimator, stats: dict, paths: dict) -> None:
    """The same trained model at another precision: held-out AP, and heatmap-peak agreement with fp32."""
    other_stats = evaluate(other, paths["val_annotations"], paths["val_images"])["stats"]
    print(f"\n{label}:")
    print(format_stats(other_stats))
    drop = stats["AP"] - other_stats["AP"]
    print(
        f"held-out AP fp32 {stats['AP']:.3f}, {label.split()[0]} {other_stats['AP']:.3f}: drop {drop:.3f} "
        f"(goal <= 0.01): {'met' if drop <= 0.01 else 'NOT met'}"
    )
    val_set = CocoKeypointDataset(paths["val_annotations"], paths["val_images"], fp32.transform, train=False)
    crops = torch.stack([val_set[i][0] for i in range(len(val_set))])
    photo = fp32.crops(str(Path(__file__).parent.parent / "examples" / "images" / "astronaut.jpg")).inputs
    for name, inputs in (("held-out crops", crops), ("examples/images/astronaut.jpg", photo)):
        with torch.inference_mode():
            reference, changed = fp32.heatmaps(inputs), other.heatmaps(inputs)
        a, _ = get_max_preds(reference)
        b, _ = get_max_preds(changed)
        within = ((a - b).abs().amax(-1) <= 1).float().mean()
        print(f"heatmap peaks within 1 px of fp32 ({name}, {a.shape[0] * a.shape[1]} joints): {100 * within:.1f}%")


if __name__ == "__main__":
    main()
