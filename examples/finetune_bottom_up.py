"""Fine-tune a bottom-up model (DEKR or HigherHRNet) on a COCO-format keypoint data set.

    python examples/finetune_bottom_up.py --data ROOT --model dekr_hrnet_w32 --pretrained coco --epochs 20
    python examples/finetune_bottom_up.py --synthetic --model higherhrnet_w32 --input-size 128 --max-steps 3

ROOT holds annotations/person_keypoints_train.json and the images in train/ (or images/train/); --synthetic writes
drawn kites (4 keypoints) to OUT/kites instead, a run of seconds on a CPU. Whole images with every person are
augmented as in the reference repositories (random scale, rotation, shift and mirror of the square input) and
encoded as the model's targets (DEKR: heatmaps with the centre, offsets; HigherHRNet: heatmaps at 1/4 and 1/2, tags);
the loss is the references' (DEKRLoss, HigherHRNetLoss). The keypoints come from the annotation's category: a model
whose keypoints differ gets a new head for them. The fine-tuned model is saved with save_pretrained.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import hrnet_zoo
from hrnet_zoo.evaluation import find_coco_split
from hrnet_zoo.io import read_coco_keypoints
from hrnet_zoo.train import CocoBottomUpDataset, freeze_stages, make_synthetic_dataset, train_bottom_up_epoch


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="data set root (COCO layout)")
    source.add_argument("--synthetic", action="store_true", help="train on drawn kites written to OUT/kites")
    p.add_argument("--model", default="dekr_hrnet_w32", help="dekr_hrnet_w32, higherhrnet_w32, ...")
    p.add_argument("--pretrained", choices=("coco", "imagenet", "none"), default="none")
    p.add_argument("--checkpoint", help="weights to start from (any supported layout)")
    p.add_argument("--input-size", type=int, help="side of the square input, a multiple of 32 (default: the model's)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam, as the references")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--freeze-stages", type=int, default=0)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast on GPU")
    p.add_argument("--max-steps", type=int, help="stop each epoch after this many steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="finetune_bottom_up_out")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.out)
    if args.synthetic:
        kites = make_synthetic_dataset(out / "kites", num_train=8, num_val=1, image_size=(128, 128))
        annotations, images = kites["train_annotations"], kites["train_images"]
    else:
        annotations, images = find_coco_split(args.data, "train")

    # The keypoints of the annotation file: the architecture's own keep its head (and pretrained weights).
    category = next(c for c in read_coco_keypoints(annotations)["categories"] if c.get("keypoints"))
    keypoints = hrnet_zoo.KeypointSet.from_coco_category(category)
    own = hrnet_zoo.get_pretrained_cfg(args.model).pose_meta.keypoints
    model = hrnet_zoo.create_model(
        args.model,
        pretrained={"coco": True, "imagenet": "imagenet", "none": False}[args.pretrained],
        checkpoint_path=args.checkpoint,
        keypoints=None if keypoints.names == own.names else keypoints,
        **({} if args.input_size is None else {"input_size": (args.input_size, args.input_size)}),
    )
    # The data set reads the input size, normalisation, keypoints and outputs from the model: they cannot disagree.
    train_set = CocoBottomUpDataset(annotations, images, model, train=True)
    frozen = freeze_stages(model, args.freeze_stages)
    model.to(device)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers, drop_last=True)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    amp_dtype = torch.bfloat16 if args.amp and device.type == "cuda" else None
    size = train_set.codec.input_size[0]
    print(f"{args.model}: {train_set.codec.method} targets, input {size}, {len(train_set)} images, frozen {frozen}")
    history = []
    for epoch in range(args.epochs):
        model.train()  # frozen stages stay frozen
        start = time.time()
        loss = train_bottom_up_epoch(model, loader, optimizer, amp_dtype=amp_dtype, max_steps=args.max_steps)
        record = {"epoch": epoch, "loss": loss, "seconds": round(time.time() - start, 1)}
        print(json.dumps(record), flush=True)
        history.append(record)
    hrnet_zoo.save_pretrained(model.eval(), out / "model")
    (out / "history.json").write_text(json.dumps(history, indent=1))
    print(f"saved {out / 'model'}")


if __name__ == "__main__":
    main()
