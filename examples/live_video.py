"""Live video: every person keeps an id, the detector runs every N frames, keypoints are smoothed, and the poses
go out in the next tool's format.

python examples/live_video.py clip.mp4                      # the CPU defaults: light detector every 5 frames
python examples/live_video.py 0 --smooth one_euro           # the first webcam, smoothed online; Ctrl-C stops
python examples/live_video.py clip.mp4 --smooth savgol --keypoint-format body25   # offline, OpenPose BODY_25
python examples/live_video.py --demo-clip --checkpoint W --detector-checkpoint D  # local weights, no download
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import hrnet_zoo
from hrnet_zoo.io import claim_run_folder, load_image, save_image
from hrnet_zoo.keypoint_formats import KEYPOINT_FORMATS
from hrnet_zoo.pose import CPU_VIDEO_DEFAULTS, PersonDetector, TrackerConfig, VideoWriter

PHOTO = Path(__file__).parent / "images" / "astronaut.jpg"


def demo_clip(path: Path, frames: int = 16) -> Path:
    """Two copies of the bundled photo's astronaut walking past each other."""
    person = torch.nn.functional.interpolate(load_image(PHOTO)[None, :, 20:490, 100:330].float(), size=(240, 120))[0]
    with VideoWriter(path, 12, (288, 384)) as writer:
        for i in range(frames):
            canvas = torch.full((3, 288, 384), 90.0)
            for left in (20 + 14 * i, 244 - 14 * i):
                canvas[:, 24:264, left : left + 120] = torch.maximum(canvas[:, 24:264, left : left + 120], person)
            writer.write(canvas.round().clamp(0, 255).to(torch.uint8))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs", nargs="*", help="videos or a webcam index")
    parser.add_argument("--demo-clip", action="store_true", help="add a clip made from examples/images/")
    parser.add_argument("--model", default="hrnet_w32_pose.coco_256x192")
    parser.add_argument("--checkpoint", help="local pose weights instead of downloading")
    parser.add_argument("--detector", default=CPU_VIDEO_DEFAULTS.detector)
    parser.add_argument("--detector-checkpoint", help="local detector weights instead of downloading")
    parser.add_argument("--max-persons", type=int, help="at most this many persons per frame, best first")
    parser.add_argument("--detect-every", type=int, default=CPU_VIDEO_DEFAULTS.detect_every)
    parser.add_argument("--smooth", choices=("one_euro", "savgol"))
    parser.add_argument("--keypoint-format", choices=KEYPOINT_FORMATS, default="coco")
    parser.add_argument("--out", default="live_out", help="folder for poses.jsonl and the first drawn frame")
    args = parser.parse_args()

    inputs = [*args.inputs, *([demo_clip(Path(f"{args.out}-clip.mp4"))] if args.demo_clip else [])]
    # ByteTrack's second association matches low-score persons to existing tracks: the detector keeps them.
    tracker = TrackerConfig()
    detector = PersonDetector(
        args.detector,
        checkpoint=args.detector_checkpoint,
        score_threshold=tracker.low_score,
        max_persons=args.max_persons,
    )
    estimator = hrnet_zoo.PoseEstimator(
        args.model, checkpoint_path=args.checkpoint, detector=detector, flip_test=CPU_VIDEO_DEFAULTS.flip_test
    )
    frames = estimator.stream(inputs, track=tracker, detect_every=args.detect_every, smooth=args.smooth)
    seen: set[int] = set()
    with claim_run_folder(args.out) as out, (out / "poses.jsonl").open("w") as lines:  # a fresh folder
        for frame, result in frames:
            converted = result.convert(args.keypoint_format)
            if frame.index == 0:
                save_image(converted.plot(frame.image), out / f"{frame.source.stem}_first.png")
            record = {"frame": frame.index, "ids": converted.track_ids.tolist(), "keypoints": converted.keypoints}
            lines.write(json.dumps({**record, "keypoints": record["keypoints"].round(2).tolist()}) + "\n")
            seen.update(record["ids"])
            print(f"{Path(frame.source.location).name} frame {frame.index}: track ids {record['ids']}")
    print(f"{len(seen)} track id(s) in {out / 'poses.jsonl'}")


if __name__ == "__main__":
    main()
