"""Fine-tune a small HRNet on the synthetic kite data set on this CPU and report COCO AP on its held-out split.

    python benchmarks/finetune_synthetic.py [--epochs 12] [--train 600] [--val 100]

Generates the data set (hrnet_zoo.train.make_synthetic_dataset), trains hrnet_w18_small_pose from scratch with
the original recipe (Adam 1e-3, MSE with target weights, the original augmentation) and evaluates with the
original protocol (ground-truth boxes, flip test, OKS-NMS, pycocotools). Goal: AP >= 0.8 within minutes.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.utils.data import DataLoader

import hrnet_zoo
from hrnet_zoo.codec import HeatmapCodec
from hrnet_zoo.evaluation import evaluate, format_stats
from hrnet_zoo.pose import PoseEstimator
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
    args = parser.parse_args()
    torch.manual_seed(0)
    size = tuple(args.input_size)
    root = tempfile.mkdtemp(prefix="kites_")
    paths = make_synthetic_dataset(root, args.train, args.val, image_size=(160, 160))
    augmentation = Augmentation(rotation_factor=30.0, half_body_prob=0.0)
    train_set = CocoKeypointDataset(paths["train_annotations"], paths["train_images"], HeatmapCodec(size),
                                    augmentation=augmentation)  # fmt: skip
    model = hrnet_zoo.create_model(args.model, keypoints=train_set.keypoints, input_size=size)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=1, drop_last=True,
                        persistent_workers=True)  # fmt: skip
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
    print(f"\n{args.model}, input {size[0]}x{size[1]}, {args.train} training images, {args.epochs} epochs, "
          f"{train_seconds / 60:.1f} min of training on {torch.get_num_threads()} CPU threads")  # fmt: skip
    print(format_stats(stats))
    print(f"\nheld-out AP {stats['AP']:.3f} (goal >= 0.8): {'met' if stats['AP'] >= 0.8 else 'NOT met'}")


if __name__ == "__main__":
    main()
