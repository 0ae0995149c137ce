"""Fine-tune HRNet on a COCO-format keypoint data set, in one process or under torchrun (DDP).

    python examples/finetune.py --data ROOT --model hrnet_w18_small_pose --epochs 20
    torchrun --nproc-per-node 2 examples/finetune.py --data ROOT ...        # gloo on CPU, nccl on GPU

ROOT holds annotations/person_keypoints_{train,val}.json and the images in {train,val}/ (or images/{split}/).
The keypoints (names, skeleton, flip pairs) come from the annotation's category; the model gets a new head for
them. Options: --pretrained coco|imagenet|none, --checkpoint PATH, --freeze-stages N, --amp (GPU),
--sync-bn, --grad-checkpointing. Each epoch is followed by COCO AP on the val split (rank 0).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

import hrnet_zoo
from hrnet_zoo.evaluation import evaluate, find_coco_split
from hrnet_zoo.train import CocoKeypointDataset, JointsMSELoss, freeze_stages, train_one_epoch


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="data set root (COCO layout)")
    p.add_argument("--model", default="hrnet_w32_pose")
    p.add_argument("--pretrained", choices=("coco", "imagenet", "none"), default="none")
    p.add_argument("--checkpoint", help="weights to start from (any supported layout)")
    p.add_argument("--input-size", type=int, nargs=2, default=(256, 192), metavar=("H", "W"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--freeze-stages", type=int, default=0)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast on GPU")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across processes")
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--max-steps", type=int, help="stop each epoch after this many steps (smoke tests)")
    p.add_argument("--no-eval", action="store_true")
    p.add_argument("--save-replica", action="store_true", help="every rank writes its weights (DDP checks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="finetune_out")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cuda = torch.cuda.is_available()
    if args.sync_bn and not cuda:
        raise SystemExit("--sync-bn needs GPUs: PyTorch's SyncBatchNorm only runs on CUDA")
    if distributed:
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if distributed else 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(args.seed + rank)  # different augmentation per rank; DDP syncs the initial weights
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    input_size = tuple(args.input_size)
    train_ann, train_images = find_coco_split(args.data, "train")
    # Crops as the model will take them: the architecture's codec at the input size, and its normalisation.
    transform = hrnet_zoo.get_pretrained_cfg(args.model).pose_meta.at_input_size(input_size).transform
    train_set = CocoKeypointDataset(train_ann, train_images, transform, train=True)
    pretrained = {"coco": True, "imagenet": "imagenet", "none": False}[args.pretrained]
    model = hrnet_zoo.create_model(  # the model carries the keypoints and the codec: saved with it, reloaded as is
        args.model,
        pretrained=pretrained,
        checkpoint_path=args.checkpoint,
        keypoints=train_set.keypoints,
        input_size=input_size,
    )
    train_set.check_model(model)  # the same transform and joints, or a clear error
    frozen = freeze_stages(model, args.freeze_stages)
    model.set_grad_checkpointing(args.grad_checkpointing)
    model.to(device)
    if distributed and args.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = DistributedDataParallel(model, device_ids=[local_rank] if cuda else None) if distributed else model

    sampler = DistributedSampler(train_set, seed=args.seed) if distributed else None
    loader = DataLoader(
        train_set,
        batch_size=args.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=args.workers,
        drop_last=True,
        pin_memory=cuda,
        persistent_workers=args.workers > 0,
    )
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=args.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, [int(args.epochs * 0.7), int(args.epochs * 0.9)], gamma=0.1
    )
    amp_dtype = torch.bfloat16 if args.amp and cuda else None
    loss_fn = JointsMSELoss(use_target_weight=True)
    history = []
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()  # frozen stages stay frozen
        start = time.time()
        loss = train_one_epoch(net, loader, optimizer, loss_fn, device, amp_dtype, max_steps=args.max_steps)
        scheduler.step()
        record = {"epoch": epoch, "loss": loss, "seconds": round(time.time() - start, 1)}
        if rank == 0 and not args.no_eval:
            val_ann, val_images = find_coco_split(args.data, "val")
            estimator = hrnet_zoo.PoseEstimator(model, device=device)
            record["val"] = evaluate(estimator, val_ann, val_images)["stats"]
        if rank == 0:
            print(json.dumps(record), flush=True)
            history.append(record)
    if args.save_replica:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(out / f"replica_{rank}.safetensors"))
    if rank == 0:
        hrnet_zoo.save_pretrained(model.eval(), out / "model")
        (out / "history.json").write_text(json.dumps({"frozen": frozen, "epochs": history}, indent=1))
        print(f"saved {out / 'model'}")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
