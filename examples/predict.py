"""From an image and a person box to keypoints and a drawn pose, in a run folder.

python examples/predict.py examples/images/astronaut.jpg                  # pretrained W32 (downloads)
python examples/predict.py examples/images/astronaut.jpg --checkpoint W   # local weights
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import hrnet_zoo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("--model", default="hrnet_w32_pose.coco_256x192")
    parser.add_argument("--checkpoint", help="local .safetensors/.pth instead of downloading")
    parser.add_argument(
        "--box",
        type=float,
        nargs=4,
        default=[100, 20, 330, 490],
        metavar=("X", "Y", "W", "H"),
        help="the person's box, COCO xywh",
    )
    parser.add_argument("--out", default="predict_out", help="run folder (a fresh one if it holds a run)")
    args = parser.parse_args()

    estimator = hrnet_zoo.PoseEstimator(args.model, checkpoint_path=args.checkpoint)  # decoding follows the codec
    # Boxes by file name skip detection; without them (and without a detector) the image is one person.
    summary = estimator.run(args.image, args.out, boxes={Path(args.image).name: [args.box]})
    # COCO files: pycocotools' COCO(images.json).loadRes(results.json) reads them too.
    names = json.loads(summary.images_file.read_text())["categories"][0]["keypoints"]
    person = json.loads(summary.results_file.read_text())[0]["keypoints"]  # x, y, score per joint
    for name, x, y, score in zip(names, person[0::3], person[1::3], person[2::3]):
        print(f"{name:15} x={x:6.1f} y={y:6.1f} score={score:.2f}")
    print(summary)


if __name__ == "__main__":
    main()
