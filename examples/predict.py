"""From an image and person boxes to keypoints and a drawn pose.

python examples/predict.py examples/images/astronaut.jpg                  # pretrained W32 (downloads)
python examples/predict.py examples/images/astronaut.jpg --checkpoint W   # local weights
"""

from __future__ import annotations

import argparse

import hrnet_zoo
from hrnet_zoo.pose import PoseEstimator, draw_poses, load_image, save_image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("--model", default="hrnet_w32_pose.coco_256x192")
    parser.add_argument("--checkpoint", help="local .safetensors/.pth instead of downloading")
    parser.add_argument("--out", default="pose.png")
    args = parser.parse_args()

    model = hrnet_zoo.create_model(args.model, pretrained=args.checkpoint is None, checkpoint_path=args.checkpoint)
    estimator = PoseEstimator(model, flip_test=True)  # decoding follows the model's codec
    # One person box per image in COCO's xywh format; boxes=None would take the whole image as one person.
    result = estimator.predict(args.image, boxes=[[100, 20, 330, 490]])[0]
    for name, (x, y, score) in zip(result.keypoint_names, result.keypoints[0]):
        print(f"{name:15} x={x:6.1f} y={y:6.1f} score={score:.2f}")
    save_image(draw_poses(load_image(args.image), result.keypoints, result.skeleton, result.boxes), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
