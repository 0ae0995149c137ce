"""Every person of an image at once with a bottom-up model (DEKR, HigherHRNet): no detector, no boxes.

python examples/predict_bottom_up.py examples/images/astronaut.jpg                   # DEKR-W32, COCO (downloads)
python examples/predict_bottom_up.py photo.jpg --model higherhrnet_w32.coco_512x512 --scales 2 1 0.5
python examples/predict_bottom_up.py photo.jpg --checkpoint W                         # local weights
"""

from __future__ import annotations

import argparse

import hrnet_zoo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("--model", default="dekr_hrnet_w32.coco_512x512")
    parser.add_argument("--checkpoint", help="local .safetensors/.pth instead of downloading")
    parser.add_argument("--scales", type=float, nargs="+", help="multi-scale test, 1 among them")
    parser.add_argument("--input-size", type=int, help="the size the short side is resized to (default: the model's)")
    parser.add_argument("--out", default="predict_bottom_up_out", help="run folder (a fresh one if it holds a run)")
    args = parser.parse_args()

    size = None if args.input_size is None else (args.input_size, args.input_size)
    estimator = hrnet_zoo.BottomUpEstimator(
        args.model, checkpoint_path=args.checkpoint, scales=args.scales, input_size=size
    )  # resize, flip test and decoding follow the protocol that measured the weights (pose_meta.codec)
    result = estimator.predict(args.image)[0]
    print(f"{len(result)} person(s); keypoints {result.keypoints.shape} (x, y, score in image pixels)")
    for box, score in zip(result.boxes, result.scores):
        print(f"  box {box.round(1).tolist()} score {score:.3f}")
    print(estimator.run(args.image, args.out))  # the same as a run folder: results.json, images.json, the drawing


if __name__ == "__main__":
    main()
