"""Video throughput: hrnet_zoo's pipeline against the original repository's demo loop, with the same networks.

A clip of ``--frames`` frames with ``--persons`` persons each (the astronaut photo, panning) is written with PyAV,
then processed four ways, each reading the clip, estimating every person's pose, drawing, and writing a video:

- hrnet_zoo, detector + W32: ``PoseEstimator.stream`` (frames decoded and detected in batches, all persons of a
  batch cropped in torch and run through the BN-folded channels-last W32 together) and ``RunWriter``;
- hrnet_zoo, given boxes + W32: the same with the persons' boxes given;
- the original demo's loop (``demo/demo.py`` of deep-high-resolution-net.pytorch), detector + W32: per frame an
  OpenCV read, one detector call, then per person a NumPy crop matrix, ``cv2.warpAffine``, ``ToTensor`` +
  ``Normalize``, one forward pass of the eager network, ``get_final_preds`` in NumPy, OpenCV drawing and
  ``cv2.VideoWriter``;
- the original loop with the given boxes.

No flip test (the demo has none) and argmax decoding, so both compute the same heatmaps up to float rounding and
the crops' sampling (OpenCV's fixed-point bilinear ``warpAffine`` rounds crops to uint8; hrnet_zoo samples in
float): the table gives the largest heatmap difference relative to the heatmaps' range, and the share of
keypoints both place within 0.5 pixel. With random weights (no ``--checkpoint``) heatmaps are nearly flat and
such rounding can move an argmax; with trained weights the keypoints agree. The per-stage breakdown (read,
detect, crop, network, decode, draw, write) is measured in a separate instrumented pass of each pipeline.

Weights: ``--checkpoint`` (W32 COCO) and ``--detector-checkpoint``; without them the networks keep random weights
(timings are the same) and the detector's classifier is biased towards 'person' and capped at ``--persons``
boxes per frame, so both pipelines see the same number of persons as with real weights.

    python benchmarks/video.py [--frames 8] [--persons 3] [--device cpu|cuda] [--detector NAME]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision
from decode import reference_affine, reference_decode
from inference import cpu_flags
from torchvision.transforms import functional as TF

import hrnet_zoo
from hrnet_zoo import PoseEstimator
from hrnet_zoo.codec import box_to_center_scale
from hrnet_zoo.io import load_image
from hrnet_zoo.pose import PersonDetector, RunWriter, VideoWriter, detect_persons, find_sources, read_frames

PHOTO = Path(__file__).parent.parent / "examples" / "images" / "astronaut.jpg"
PERSON_BOX = (100, 20, 330, 490)  # xywh of the astronaut in the 512x512 photo
SIDE = 320  # each person's tile, pixels


def make_clip(path: Path, frames: int, persons: int) -> list[list[float]]:
    """Write the clip; return the persons' xywh boxes (the same in every frame: the tiles pan inside)."""
    tile = torch.nn.functional.interpolate(load_image(PHOTO)[None].float(), size=(SIDE, SIDE), mode="bilinear")[0]
    height, width = SIDE + 40, SIDE * persons + 40
    with VideoWriter(path, 25, (height, width)) as writer:
        for i in range(frames):
            canvas = torch.full((3, height, width), 90.0)
            for p in range(persons):
                shifted = torch.roll(tile, shifts=(i % 5) - 2, dims=2)
                canvas[:, 20 : 20 + SIDE, 20 + p * SIDE : 20 + (p + 1) * SIDE] = shifted
            writer.write(canvas.round().clamp(0, 255).to(torch.uint8))
    s = SIDE / 512
    return [
        [20 + p * SIDE + PERSON_BOX[0] * s, 20 + PERSON_BOX[1] * s, PERSON_BOX[2] * s, PERSON_BOX[3] * s]
        for p in range(persons)
    ]


def make_detector(args: argparse.Namespace, device: torch.device, folder: Path) -> PersonDetector:
    checkpoint = args.detector_checkpoint
    if checkpoint is None:  # random weights, classifier biased to 'person' (see the module docstring)
        net = torchvision.models.get_model(args.detector, weights=None, weights_backbone=None, num_classes=91)
        state = net.state_dict()
        state["roi_heads.box_predictor.cls_score.weight"].mul_(0.01)  # every proposal a person, scores apart
        state["roi_heads.box_predictor.cls_score.bias"].zero_()[1] = 8.0
        checkpoint = folder / "detector.pth"
        torch.save(state, checkpoint)
    return PersonDetector(args.detector, checkpoint=checkpoint, max_persons=args.persons, device=device)


class Stages:
    """Seconds per named stage, with CUDA synchronised at each boundary."""

    def __init__(self, device: torch.device) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.heatmaps: list[np.ndarray] = []
        self.device = device
        self._last = 0.0

    def start(self) -> None:
        self._sync()
        self._last = time.perf_counter()

    def mark(self, stage: str) -> None:
        self._sync()
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def ours_end_to_end(estimator: PoseEstimator, clip: Path, out: Path, boxes: list | None, batch: int) -> list:
    """The whole pipeline as a user runs it; returns each frame's keypoints ``(persons, 17, 3)``."""
    sources = find_sources([clip])
    keypoints = []
    with RunWriter(out, sources, estimator.keypoints) as writer:
        if boxes is None:
            for frame, result in estimator.stream(sources, batch_frames=batch):
                writer.add(frame, result)
                keypoints.append(result.keypoints)
        else:
            frames = list(read_frames(sources))  # a short clip: the given-boxes path batches its frames directly
            for start in range(0, len(frames), batch):
                chunk = frames[start : start + batch]
                for frame, result in zip(chunk, estimator.predict([f.image for f in chunk], [boxes] * len(chunk))):
                    writer.add(frame, result)
                    keypoints.append(result.keypoints)
    return keypoints


def ours_stages(estimator: PoseEstimator, clip: Path, out: Path, boxes: list | None, batch: int) -> Stages:
    """The same work, stage by stage."""
    stages = Stages(estimator.device)
    stages.start()
    frames = list(read_frames(clip))
    stages.mark("read")
    with VideoWriter(out, 25, tuple(frames[0].image.shape[-2:])) as writer:
        for start in range(0, len(frames), batch):
            images = [f.image for f in frames[start : start + batch]]
            stages.start()
            if boxes is None:
                found = detect_persons(estimator.detector, images)
                given = [b for b, _ in found]
                box_format = "xyxy"
            else:
                given, box_format = [boxes] * len(images), "xywh"
            stages.mark("detect")
            crops = estimator.crops(images, given, box_format)
            stages.mark("crop")
            heatmaps = estimator.heatmaps(crops.inputs)
            stages.mark("network")
            stages.heatmaps += list(heatmaps.cpu().numpy())
            coords, scores = estimator.codec.decode(heatmaps)
            points = estimator.codec.to_image(coords, crops.center, crops.scale).cpu().numpy()
            stages.mark("decode")
            drawn, first = [], 0
            for image, count in zip(images, crops.per_image):
                kpts = np.concatenate([points[first : first + count], scores[first : first + count, :, None].cpu()], -1)
                first += count
                drawn.append(hrnet_zoo.pose.draw_poses(image, kpts, estimator.keypoints.skeleton))
            stages.mark("draw")
            for image in drawn:
                writer.write(image)
            stages.mark("write")
    return stages


def original_loop(
    model: torch.nn.Module,
    detector: PersonDetector | None,
    clip: Path,
    out: Path,
    boxes: list | None,
    device: torch.device,
    stages: Stages | None = None,
) -> list:
    """The original demo's per-frame, per-person loop; returns each frame's keypoints ``(persons, 17, 3)``."""
    stages = stages or Stages(device)
    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    everything = []
    while True:
        stages.start()
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = bgr[:, :, ::-1].copy()
        stages.mark("read")
        if boxes is None:
            found, _ = detector(torch.from_numpy(rgb).permute(2, 0, 1))
            xywh = [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in found.tolist()]
        else:
            xywh = boxes
        stages.mark("detect")
        frame_points = []
        for box in xywh:
            center, scale = (v.numpy()[0] for v in box_to_center_scale(torch.tensor([box]), (256, 192)))
            trans = reference_affine(center, scale, 0, [192, 256], inv=0)
            crop = cv2.warpAffine(rgb, trans, (192, 256), flags=cv2.INTER_LINEAR)
            x = TF.normalize(TF.to_tensor(crop), mean, std)[None].to(device)
            stages.mark("crop")
            with torch.no_grad():
                heatmaps = model(x).cpu().numpy()
            stages.mark("network")
            stages.heatmaps.append(heatmaps[0])
            preds, maxvals = reference_decode(heatmaps, center[None], scale[None])
            frame_points.append(np.concatenate([preds[0], maxvals[0][:, None]], -1))
            stages.mark("decode")
        for points in frame_points:
            for x, y, _ in points:
                cv2.circle(bgr, (int(x), int(y)), 4, (255, 0, 0), 2)
        stages.mark("draw")
        writer.write(bgr)
        stages.mark("write")
        everything.append(np.stack(frame_points) if frame_points else np.zeros((0, 17, 3), np.float32))
    writer.release()
    capture.release()
    return everything


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--persons", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--detector", default="fasterrcnn_resnet50_fpn_v2")
    parser.add_argument("--detector-checkpoint")
    parser.add_argument("--checkpoint", help="W32 COCO weights (random weights otherwise)")
    parser.add_argument("--batch-frames", type=int, default=8)
    args = parser.parse_args()
    device = torch.device(args.device)
    folder = Path(tempfile.mkdtemp())
    clip = folder / "clip.mp4"
    boxes = make_clip(clip, args.frames, args.persons)
    model = hrnet_zoo.create_model("hrnet_w32_pose.coco_256x192", checkpoint_path=args.checkpoint).eval().to(device)
    detector = make_detector(args, device, folder)
    with_detector = PoseEstimator(model, device=device, flip_test=False, decoder="argmax", detector=detector)
    given_boxes = PoseEstimator(model, device=device, flip_test=False, decoder="argmax")
    # Warm up both pipelines once (allocator, cuDNN autotuning, thread pools).
    ours_end_to_end(with_detector, clip, folder / "warm", None, args.batch_frames)
    original_loop(model, detector, clip, folder / "warm.mp4", boxes, device)

    rows = []
    for label, estimator, given in (("detector + W32", with_detector, None), ("given boxes + W32", given_boxes, boxes)):
        run = folder / label.split()[0]
        ours_s, ours_kpts = timed(lambda e=estimator, g=given, r=run: ours_end_to_end(e, clip, r, g, args.batch_frames))
        orig_s, orig_kpts = timed(lambda g=given: original_loop(model, detector, clip, folder / "orig.mp4", g, device))
        pairs = [(a, b) for a, b in zip(ours_kpts, orig_kpts) if a.shape == b.shape and a.size]
        distance = np.concatenate([np.linalg.norm(a[..., :2] - b[..., :2], axis=-1).ravel() for a, b in pairs])
        agree = float((distance <= 0.5).mean())
        persons = sum(len(k) for k in ours_kpts) / len(ours_kpts)
        ours_stage = ours_stages(estimator, clip, folder / "stages.mp4", given, args.batch_frames)
        orig_stage = Stages(device)
        original_loop(model, detector, clip, folder / "orig_stages.mp4", given, device, orig_stage)
        ours_hm, orig_hm = np.stack(ours_stage.heatmaps), np.stack(orig_stage.heatmaps)
        same = ours_hm.shape == orig_hm.shape  # batched detection may find a person more or less
        heatmap_difference = float(np.abs(ours_hm - orig_hm).max() / (np.ptp(orig_hm) or 1.0)) if same else np.nan
        rows.append((label, ours_s, orig_s, persons, agree, heatmap_difference, ours_stage, orig_stage))

    print(
        f"hrnet_zoo {hrnet_zoo.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}"
        f" ({torch.get_num_threads()} threads), device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f", CPU flags: {cpu_flags()}")
    )
    print(
        f"clip: {args.frames} frames of {SIDE * args.persons + 40}x{SIDE + 40}, {args.persons} persons per frame; "
        f"detector {args.detector}, W32 256x192, no flip test, argmax decoding\n"
    )
    stage_names = ("read", "detect", "crop", "network", "decode", "draw", "write")
    print(
        "| pipeline | persons/frame | hrnet_zoo fps | original loop fps | speed-up | keypoints within 0.5 px | "
        "max heatmap difference / range |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, ours_s, orig_s, persons, agree, heatmap_difference, _, _ in rows:
        print(
            f"| {label} | {persons:.1f} | {args.frames / ours_s:.2f} | {args.frames / orig_s:.2f} | "
            f"{orig_s / ours_s:.2f}x | {agree:.1%} | {heatmap_difference:.1e} |"
        )
    print("\nms per frame, by stage (instrumented pass):\n")
    print("| pipeline | " + " | ".join(stage_names) + " |")
    print("|---|" + "---|" * len(stage_names))
    for label, *_, ours_stage, orig_stage in rows:
        for who, stage in (("hrnet_zoo", ours_stage), ("original loop", orig_stage)):
            cells = " | ".join(f"{stage.seconds[name] * 1000 / args.frames:.1f}" for name in stage_names)
            print(f"| {label}, {who} | {cells} |")


if __name__ == "__main__":
    main()
