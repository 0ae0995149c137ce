"""hrnet_zoo models as timm models: metadata that travels, feature wrappers, intermediates, layer-wise LR decay.

python examples/timm_citizen.py --out my-model     # runs offline: untrained weights, a custom keypoint set
"""

from __future__ import annotations

import argparse

import timm
import torch
from timm.optim import create_optimizer_v2

import hrnet_zoo
from hrnet_zoo import KeypointSet
from hrnet_zoo.codec import HeatmapCodec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="hrnet_w18_small_pose")
    parser.add_argument("--out", default="my-model", help="folder to save the model in (Hub layout)")
    args = parser.parse_args()

    # A model for your own keypoints at your own input size; the metadata lives in model.pose_meta.
    hand = KeypointSet("hand", ("wrist", "thumb", "index", "little"), ((0, 1), (0, 2), (0, 3)))
    model = hrnet_zoo.create_model(args.model, keypoints=hand, input_size=(128, 128))
    meta = model.pose_meta
    print("keypoints:", meta.keypoints.names, "| codec:", meta.codec.input_size, "->", meta.codec.heatmap_size)
    print("timm data config:", timm.data.resolve_data_config({}, model=model)["input_size"])

    # Saved with timm's save_for_hf; reloaded identically by timm's factory (after import hrnet_zoo).
    folder = hrnet_zoo.save_pretrained(model, args.out)
    again = timm.create_model(f"local-dir:{folder}", pretrained=True)
    same = (again.pose_meta.keypoints, again.pose_meta.codec) == (meta.keypoints, meta.codec)
    print(
        "reloaded through timm with the same metadata:",
        same,
        "| weights origin:",
        again.pose_meta.origin.name or "unknown",
    )

    # timm's feature wrappers and forward_intermediates.
    x = torch.randn(1, 3, 128, 128)
    features = hrnet_zoo.create_model(args.model, features_only=True, feature_cls="getter", out_indices=(1, 3))
    print("features (getter):", [tuple(f.shape) for f in features(x)])
    _, intermediates = model.forward_intermediates(x)
    print("intermediates:", [tuple(t.shape) for t in intermediates])

    # Layer-wise learning-rate decay from the model's group_matcher; UDP codec for training targets.
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, layer_decay=0.75)
    print("learning-rate scales from stem to head:", sorted({round(g["lr_scale"], 3) for g in optimizer.param_groups}))
    targets, _ = HeatmapCodec.udp((128, 128)).encode(torch.tensor([[[64.0, 40.0]] * 4]), torch.ones(1, 4))
    print("UDP targets:", tuple(targets.shape))


if __name__ == "__main__":
    main()
