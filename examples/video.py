"""From a video, a webcam or a folder of photos to every person's pose: detection, streaming, COCO results.

python examples/video.py clip.mp4                               # pretrained W32 + Faster R-CNN (downloads)
python examples/video.py 0                                       # the first webcam; Ctrl-C stops
python examples/video.py --demo-clip                             # a short clip made from the bundled photo
python examples/video.py clip.mp4 --checkpoint W --detector-checkpoint D   # local weights, no download
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pycocotools.coco import COCO

import hrnet_zoo
from hrnet_zoo.io.images import load_image
from hrnet_zoo.pose import PersonDetector, VideoWriter

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

    inputs = [*args.inputs, *([demo_clip(Path(f"{args.out}-clip.mp4"))] if args.demo_clip else [])]
    detector = PersonDetector(args.detector, checkpoint=args.detector_checkpoint, max_persons=args.max_persons)
    # A model name runs on CUDA when available; the detector picks the same device.
    estimator = hrnet_zoo.PoseEstimator(args.model, checkpoint_path=args.checkpoint, detector=detector)
    # The whole run: a fresh folder, outputs checked (no input is ever replaced), frames streamed in batches.
    summary = estimator.run(inputs, args.out, batch_frames=4, info={"model": args.model}, progress=True)
    print(summary)
    if summary.persons:  # pycocotools' loadRes needs at least one result
        coco = COCO(str(summary.images_file))
        predictions = coco.loadRes(str(summary.results_file))
        for image in coco.dataset["images"]:
            persons = len(predictions.getAnnIds(imgIds=[image["id"]]))
            print(f"{Path(image['file_name']).name} frame {image['frame']}: {persons} person(s)")
        print(f"{len(predictions.anns)} poses in {summary.results_file}")
    print("drawn:", ", ".join(str(path) for path in summary.drawn))


if __name__ == "__main__":
    main()
