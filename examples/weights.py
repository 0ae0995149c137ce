"""Convert an original / OpenMMLab checkpoint to the Hub layout, reload it, and (optionally) publish it.

python examples/weights.py pose_hrnet_w32_256x192.pth out/hrnet_w32 --model hrnet_w32_pose.coco_256x192
python examples/weights.py ... --push my-org/hrnet_w32_pose.coco_256x192     # needs HF_TOKEN
"""

from __future__ import annotations

import argparse

import torch

import hrnet_zoo
from hrnet_zoo.hub import convert_checkpoint, push_folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("out_dir")
    parser.add_argument("--model", required=True)
    parser.add_argument("--push", metavar="REPO_ID")
    args = parser.parse_args()

    folder = convert_checkpoint(args.checkpoint, args.out_dir, args.model)
    original = hrnet_zoo.create_model(args.model, checkpoint_path=args.checkpoint).eval()
    converted = hrnet_zoo.create_model(args.model, checkpoint_path=folder / "model.safetensors").eval()
    x = torch.randn(1, 3, *original.pose_meta.input_size)
    with torch.no_grad():
        same = torch.equal(original(x), converted(x))
    print(f"converted to {folder}; outputs identical to the source: {same}")
    if args.push:
        print(push_folder(folder, args.push))


if __name__ == "__main__":
    main()
