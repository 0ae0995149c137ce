"""One call per task of the zoo: whole-body, face, hand and animal keypoints, drawn with the task's skeleton.

Each task has its tags (``hrnet-zoo list``); the codec each checkpoint was trained with (DARK, UDP) comes with
its tag. Faces, hands and animals need their own boxes (the person detector finds persons only):

python examples/zoo_tasks.py wholebody photo.jpg                       # persons detected, 133 keypoints each
python examples/zoo_tasks.py face selfie.jpg --box 120 80 200 220      # a face box, x y w h: 98 WFLW landmarks
python examples/zoo_tasks.py hand hand.jpg --box 40 60 180 180         # 21 hand keypoints
python examples/zoo_tasks.py animal dog.jpg --box 10 30 400 300        # 17 AP-10K keypoints
python examples/zoo_tasks.py face selfie.jpg --box ... --checkpoint hrnetv2_w18_wflw_256x256-2bf032a6_20210125.pth
"""

from __future__ import annotations

import argparse

import hrnet_zoo
from hrnet_zoo import PoseEstimator
from hrnet_zoo.io import save_image

#: The tag each task uses here (any tag of the task works: see ``hrnet-zoo list``).
TASK_TAGS = {
    "wholebody": "hrnet_w32_pose.coco_wholebody_dark_256x192",
    "face": "hrnetv2_w18_pose.wflw_256x256",
    "hand": "hrnetv2_w18_pose.onehand10k_256x256",
    "animal": "hrnet_w32_pose.ap10k_256x256",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=sorted(TASK_TAGS))
    parser.add_argument("image")
    parser.add_argument("--box", type=float, nargs=4, metavar=("X", "Y", "W", "H"), help="the subject's box")
    parser.add_argument("--checkpoint", help="the tag's upstream .pth (or converted .safetensors), no download")
    parser.add_argument("--detector-checkpoint", help="whole-body without --box: local person detector weights")
    parser.add_argument("--out", default="task.png")
    args = parser.parse_args()

    tag = TASK_TAGS[args.task]
    model = hrnet_zoo.create_model(tag, pretrained=args.checkpoint is None, checkpoint_path=args.checkpoint)
    detector = "fasterrcnn_resnet50_fpn_v2" if args.task == "wholebody" and args.box is None else None
    estimator = PoseEstimator(model, device="cpu", detector=detector, detector_checkpoint=args.detector_checkpoint)
    result = estimator.predict(args.image, boxes=None if args.box is None else [args.box])[0]
    codec = model.pose_meta.codec
    print(
        f"{tag}: {len(result)} subject(s) x {len(result.keypoint_names)} keypoints, "
        f"{codec.decoding} decoding at {codec.input_size[0]}x{codec.input_size[1]}"
    )
    save_image(result.plot(args.image, score_threshold=0.0), args.out)
    print(f"wrote {args.out} ({len(result.skeleton)} skeleton links)")


if __name__ == "__main__":
    main()
