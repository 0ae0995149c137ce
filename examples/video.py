"""From a video, a webcam or a folder of photos to every person's pose: detection, streaming, COCO results.

python examples/video.py clip.mp4                               # pretrained W32 + Faster R-CNN (downloads)
python examples/video.py 0                                       # the first webcam; Ctrl-C stops
python examples/video.py --demo-clip                             # a short clip made from the bundled photo
python examples/video.py clip.mp4 --checkpoint W --detector-checkpoint D   # local weights, no download
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from pycocotools.coco import COCO

import hrnet_zoo
from hrnet_zoo.output_files import run_folder
from hrnet_zoo.pose import PersonDetector, PoseEstimator, RunWriter, VideoWriter, find_sources, load_image

PHOTO = Path(__file__).parent / "images" / "astronaut.jpg"


def demo_clip(path: Path, frames: int = 12) -> Path:
    """A short clip panning over the bundled photo, written with the package's video writer."""
    photo = load_image(PHOTO)
    with VideoWriter(path, 12, (384, 384)) as writer:
        for i in range(frames):
            writer.write(photo[:, 64:448, 8 * i : 8 * i + 384])
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs", nargs="*", help="videos, images, folders, glob patterns or a webcam index")
    parser.add_argument("--demo-clip", action="store_true", help="add a clip made from examples/images/")
    parser.add_argument("--model", default="hrnet_w32_pose.coco_256x192")
    parser.add_argument("--checkpoint", help="local pose weights instead of downloading")
    parser.add_argument("--detector", default="fasterrcnn_resnet50_fpn_v2")
    parser.add_argument("--detector-checkpoint", help="local detector weights instead of downloading")
    parser.add_argument("--max-persons", type=int, help="at most this many persons per frame, best first")
    parser.add_argument("--out", default="video_out", help="run folder (a fresh one if it holds a run)")
    args = parser.parse_args()

    out = run_folder(args.out)
    inputs = [*args.inputs, *([demo_clip(Path(f"{out}-clip.mp4"))] if args.demo_clip else [])]
    model = hrnet_zoo.create_model(args.model, pretrained=args.checkpoint is None, checkpoint_path=args.checkpoint)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    detector = PersonDetector(args.detector, checkpoint=args.detector_checkpoint, max_persons=args.max_persons,
                              device=device)  # fmt: skip
    estimator = PoseEstimator(model, device=device, detector=detector)
    sources = find_sources(inputs)
    with RunWriter(out, sources, estimator.keypoints, info={"model": args.model}) as writer:
        for frame, result in estimator.stream(sources, batch_frames=4):  # results arrive as frames are done
            writer.add(frame, result)
            print(f"{Path(frame.source.location).name} frame {frame.index}: {len(result)} person(s)")
    if json.loads((out / "results.json").read_text()):  # pycocotools' loadRes needs at least one result
        predictions = COCO(str(out / "images.json")).loadRes(str(out / "results.json"))
        print(f"{len(predictions.anns)} poses in {out / 'results.json'}")
    print("drawn:", ", ".join(str(path) for path in writer.drawn.values()))


if __name__ == "__main__":
    main()
