"""Live video on a CPU: hrnet_zoo's pipelines against the original repository's demo loop, all in one run.

A clip of ``--frames`` frames at 640x480 with ``--persons`` persons (the astronaut photo, swaying) is written with
PyAV, then processed three ways, each reading the clip, estimating every person's pose, drawing and writing a video:

- **original loop** (``demo/demo.py`` of deep-high-resolution-net.pytorch): per frame an OpenCV read, torchvision's
  Faster R-CNN as it comes, then per person a NumPy crop matrix, ``cv2.warpAffine``, ``ToTensor`` + ``Normalize``,
  one forward pass of the eager W32, ``get_final_preds`` in NumPy, OpenCV drawing and ``cv2.VideoWriter``;
- **same networks, detect-every-1**: ``PoseEstimator.run``'s path with the same two networks (the detector with its
  BatchNorms folded, W32 folded and channels-last, every person of a batch of frames in one forward pass);
- **same networks, detector in bf16** (on CPUs with AMX or AVX512-BF16 only): the same, the detector run under
  ``torch.autocast(bfloat16)`` (``PersonDetector(amp=torch.bfloat16)``, ``--detector-bf16``);
- **recommended CPU pipeline**: :data:`hrnet_zoo.pose.CPU_VIDEO_DEFAULTS`' light detector on every
  ``--detect-every``-th frame, W32 int8 (ONNX Runtime, calibrated on the clip's persons), tracking on.

No flip test (the demo has none) and argmax decoding. The per-stage breakdown comes from the same pass (each
stage's calls timed: read, detect, crop, network, decode, draw, write; "track + other" is the rest).

Weights: ``--checkpoint`` (W32 COCO) and ``--detector-checkpoint`` / ``--light-checkpoint``; without them the
networks keep random weights (the timings are the same) and each detector's classifier is biased towards 'person'
and capped at ``--persons`` boxes, so every pipeline sees as many persons as with real weights. Random pose weights
have no confident joints, so the tracker then counts every joint (``keypoint_threshold=0``) when it takes boxes
from poses: the detector runs exactly every N-th frame, as with trained weights on a clean clip. The table's
"detections" column counts the detector's calls.

    python benchmarks/video.py [--frames 30] [--original-frames 6] [--persons 3] [--detect-every 5]

The last line is ``end-to-end: hrnet_zoo X fps, original loop Y fps, Z.ZZx`` for the recommended pipeline.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision
from decode import reference_affine, reference_decode
from inference import cpu_flags
from torchvision.transforms import functional as TF

import hrnet_zoo
from hrnet_zoo import PoseEstimator, PoseResult
from hrnet_zoo._utils import cpu_has_bf16_units
from hrnet_zoo.codec import box_to_center_scale
from hrnet_zoo.deploy import quantize
from hrnet_zoo.io import load_image
from hrnet_zoo.pose import (
    CPU_VIDEO_DEFAULTS,
    PersonDetector,
    RunWriter,
    TrackerConfig,
    VideoReader,
    VideoWriter,
    find_sources,
)

PHOTO = Path(__file__).parent.parent / "examples" / "images" / "astronaut.jpg"
PERSON_BOX = (100, 20, 330, 490)  # xywh of the astronaut in the 512x512 photo
HEIGHT, WIDTH = 480, 640
STAGES = ("read", "detect", "crop", "network", "decode", "draw", "write", "track + other")


def make_clip(path: Path, frames: int, persons: int) -> list[list[list[float]]]:
    """Write the clip; return each frame's xywh person boxes."""
    x, y, w, h = PERSON_BOX
    person = load_image(PHOTO)[:, y : y + h, x : x + w][None].float()
    tile_w, tile_h = (WIDTH - 40) // persons - 10, HEIGHT - 80
    tile = torch.nn.functional.interpolate(person, size=(tile_h, tile_w), mode="bilinear")[0]
    boxes = []
    with VideoWriter(path, 25, (HEIGHT, WIDTH)) as writer:
        for i in range(frames):
            canvas = torch.full((3, HEIGHT, WIDTH), 90.0)
            frame_boxes = []
            for p in range(persons):
                left = 20 + p * (tile_w + 10) + round(6 * np.sin(0.4 * i + p))
                canvas[:, 40 : 40 + tile_h, left : left + tile_w] = tile
                frame_boxes.append([left, 40, tile_w, tile_h])
            writer.write(canvas.round().clamp(0, 255).to(torch.uint8))
            boxes.append(frame_boxes)
    return boxes


def biased_detector_state(name: str) -> dict[str, torch.Tensor]:
    """Random weights of a Faster R-CNN whose classifier calls every proposal a person, scores apart."""
    net = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=91)
    state = net.state_dict()
    state["roi_heads.box_predictor.cls_score.weight"].mul_(0.01)
    state["roi_heads.box_predictor.cls_score.bias"].zero_()[1] = 8.0
    return state


def detector_checkpoint(name: str, given: str | None, folder: Path) -> Path:
    if given is not None:
        return Path(given)
    path = folder / f"{name}.pth"
    torch.save(biased_detector_state(name), path)
    return path


class Stages:
    """Seconds per named stage (CUDA synchronised at each boundary)."""

    def __init__(self, device: torch.device) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
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

    def timed(
        self, stage: str, fn: Callable, exclude: tuple[str, ...] = (), count: Callable = lambda *a: 1
    ) -> Callable:
        """``fn`` counting its time towards ``stage``, less the time of the ``exclude`` stages spent inside it, and
        ``count(*args)`` calls."""

        def wrapper(*args, **kwargs):
            inner = sum(self.seconds[s] for s in exclude)
            self._sync()
            start = time.perf_counter()
            value = fn(*args, **kwargs)
            self._sync()
            self.seconds[stage] += time.perf_counter() - start - (sum(self.seconds[s] for s in exclude) - inner)
            self.calls[stage] += count(*args)
            return value

        return wrapper


@contextmanager
def instrumented(estimator: PoseEstimator, stages: Stages) -> Iterator[None]:
    """Every stage of ``estimator``'s pipeline timed into ``stages`` while the block runs."""
    patched = [
        (estimator, "crops", stages.timed("crop", estimator.crops, ("detect",))),
        (estimator, "heatmaps", stages.timed("network", estimator.heatmaps)),
        (estimator, "predict", stages.timed("decode", estimator.predict, ("detect", "crop", "network"))),
        (PoseResult, "plot", stages.timed("draw", PoseResult.plot)),
        (VideoWriter, "write", stages.timed("write", VideoWriter.write)),
    ]
    if isinstance(estimator.detector, PersonDetector):
        detect = stages.timed("detect", estimator.detector.detect, count=len)  # images detected
        patched.append((estimator.detector, "detect", detect))
    indexed = VideoReader.indexed

    def timed_frames(reader: VideoReader) -> Iterator[tuple[int, torch.Tensor]]:
        frames = indexed(reader)
        while True:
            start = time.perf_counter()
            item = next(frames, None)
            stages.seconds["read"] += time.perf_counter() - start
            if item is None:
                return
            yield item

    patched.append((VideoReader, "indexed", timed_frames))
    saved = [(owner, name, owner.__dict__.get(name)) for owner, name, _ in patched]
    for owner, name, value in patched:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            if value is None:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


def hrnet_zoo_run(estimator: PoseEstimator, clip: Path, out: Path, **video) -> tuple[float, Stages, list]:
    """The pipeline as a user runs it (``stream`` into a ``RunWriter``): seconds, stages, keypoints per frame."""
    stages = Stages(estimator.device)
    sources = find_sources([clip])
    keypoints = []
    with instrumented(estimator, stages):
        start = time.perf_counter()
        with RunWriter(out, sources, estimator.keypoints) as writer:
            for frame, result in estimator.stream(sources, **video):
                writer.add(frame, result)
                keypoints.append(result.keypoints)
        total = time.perf_counter() - start
    stages.seconds["track + other"] = total - sum(stages.seconds.values())
    return total, stages, keypoints


def original_detector(net: torch.nn.Module, persons: int) -> Callable[[np.ndarray], list[list[float]]]:
    """The demo's ``get_person_detection_boxes``: torchvision's detector as it comes, persons above 0.5."""

    def detect(rgb: np.ndarray) -> list[list[float]]:
        with torch.no_grad():
            output = net([TF.to_tensor(rgb)])[0]
        keep = (output["labels"] == 1) & (output["scores"] > 0.5)
        return [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in output["boxes"][keep][:persons].tolist()]

    return detect


def original_loop(model: torch.nn.Module, detect: Callable, clip: Path, out: Path, frames: int) -> tuple:
    """The original demo's per-frame, per-person loop on the first ``frames`` frames: seconds, stages, keypoints."""
    stages = Stages(torch.device("cpu"))
    capture = cv2.VideoCapture(str(clip))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 25, (WIDTH, HEIGHT))
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    everything = []
    start = time.perf_counter()
    for _ in range(frames):
        stages.start()
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = bgr[:, :, ::-1].copy()
        stages.mark("read")
        boxes = detect(rgb)
        stages.mark("detect")
        frame_points = []
        for box in boxes:
            center, scale = (v.numpy()[0] for v in box_to_center_scale(torch.tensor([box]), (256, 192)))
            trans = reference_affine(center, scale, 0, [192, 256], inv=0)
            crop = cv2.warpAffine(rgb, trans, (192, 256), flags=cv2.INTER_LINEAR)
            x = TF.normalize(TF.to_tensor(crop), mean, std)[None]
            stages.mark("crop")
            with torch.no_grad():
                heatmaps = model(x).numpy()
            stages.mark("network")
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
    total = time.perf_counter() - start
    writer.release()
    capture.release()
    stages.calls["detect"] = len(everything)
    return total, stages, everything


def calibration_crops(estimator: PoseEstimator, clip: Path, boxes: list, frames: int = 8) -> torch.Tensor:
    """The clip's persons, cropped and normalised as the estimator does, to calibrate int8 on."""
    images = [frame.image for frame, _ in zip(hrnet_zoo.pose.read_frames(clip), range(frames))]
    return estimator.crops(images, boxes[: len(images)]).inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--original-frames", type=int, default=6, help="frames of the (slow) original loop")
    parser.add_argument("--persons", type=int, default=3)
    parser.add_argument("--detect-every", type=int, default=CPU_VIDEO_DEFAULTS.detect_every)
    parser.add_argument("--detector", default="fasterrcnn_resnet50_fpn_v2", help="the original's detector")
    parser.add_argument("--detector-checkpoint")
    parser.add_argument("--light-detector", default=CPU_VIDEO_DEFAULTS.detector)
    parser.add_argument("--light-checkpoint")
    parser.add_argument("--checkpoint", help="W32 COCO weights (random weights otherwise)")
    parser.add_argument("--batch-frames", type=int, default=8)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    clip = folder / "clip.mp4"
    boxes = make_clip(clip, args.frames, args.persons)
    cpu = torch.device("cpu")
    model = hrnet_zoo.create_model("hrnet_w32_pose.coco_256x192", checkpoint_path=args.checkpoint).eval()

    heavy_path = detector_checkpoint(args.detector, args.detector_checkpoint, folder)
    light_path = detector_checkpoint(args.light_detector, args.light_checkpoint, folder)
    unfolded = torchvision.models.get_model(args.detector, weights=None, weights_backbone=None, num_classes=91)
    unfolded.load_state_dict(torch.load(heavy_path, weights_only=True))
    heavy = PersonDetector(args.detector, checkpoint=heavy_path, max_persons=args.persons, device=cpu)
    light_threshold = TrackerConfig().low_score  # ByteTrack's second association sees the low-score persons
    light = PersonDetector(
        args.light_detector, checkpoint=light_path, score_threshold=light_threshold, max_persons=args.persons
    )
    same = PoseEstimator(model, device=cpu, flip_test=False, decoder="argmax", detector=heavy)
    bf16 = None
    if cpu_has_bf16_units():  # the detector is 90% of the frame: in bf16 where the CPU has the units for it
        heavy_bf16 = PersonDetector(
            args.detector, checkpoint=heavy_path, max_persons=args.persons, device=cpu, amp=torch.bfloat16
        )
        bf16 = PoseEstimator(model, device=cpu, flip_test=False, decoder="argmax", detector=heavy_bf16)
    fp32 = PoseEstimator(model, device=cpu, flip_test=False, decoder="argmax")
    int8 = quantize(model, calibration_crops(fp32, clip, boxes), folder / "w32_int8.onnx")
    recommended = PoseEstimator(int8, flip_test=False, decoder="argmax", detector=light)
    tracker = TrackerConfig(keypoint_threshold=0.3 if args.checkpoint else 0.0)
    video = {"track": tracker, "detect_every": args.detect_every}

    # Warm up every pipeline once on a short clip (allocator, thread pools, ONNX Runtime's session).
    warm = folder / "warm.mp4"
    make_clip(warm, 2, args.persons)
    hrnet_zoo_run(same, warm, folder / "warm_same")
    if bf16 is not None:
        hrnet_zoo_run(bf16, warm, folder / "warm_bf16")
    hrnet_zoo_run(recommended, warm, folder / "warm_rec", **video)
    original_loop(model, original_detector(unfolded.eval(), args.persons), warm, folder / "warm.avi", 1)

    original = original_loop(
        model, original_detector(unfolded, args.persons), clip, folder / "orig.mp4", args.original_frames
    )
    rows = [
        ("original loop (Faster R-CNN v2 + W32, per person)", original, args.original_frames),
        ("same networks, detect-every-1", hrnet_zoo_run(same, clip, folder / "same", batch_frames=8), args.frames),
        *(
            [("same networks, detector in bf16", hrnet_zoo_run(bf16, clip, folder / "bf16"), args.frames)]
            if bf16 is not None
            else []
        ),
        (
            f"recommended CPU ({args.light_detector} every {args.detect_every}, int8 W32, tracking)",
            hrnet_zoo_run(recommended, clip, folder / "rec", **video),
            args.frames,
        ),
    ]
    print(
        f"hrnet_zoo {hrnet_zoo.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}"
        f" ({torch.get_num_threads()} threads), CPU flags: {cpu_flags()}"
    )
    print(
        f"clip: {args.frames} frames of {WIDTH}x{HEIGHT}, {args.persons} persons per frame (the original loop: the "
        f"first {args.original_frames}); W32 256x192, no flip test, argmax; "
        f"{'trained' if args.checkpoint else 'random'} pose weights\n"
    )
    print("| pipeline | fps | vs original loop | detections | persons/frame |")
    print("|---|---|---|---|---|")
    fps = {label: frames / seconds for label, (seconds, _, _), frames in rows}
    original_fps = fps[rows[0][0]]
    for label, (_, stages, keypoints), _ in rows:
        persons = sum(len(k) for k in keypoints) / len(keypoints)
        print(
            f"| {label} | {fps[label]:.2f} | {fps[label] / original_fps:.2f}x | {stages.calls['detect']} | "
            f"{persons:.1f} |"
        )
    same_kpts, orig_kpts = rows[1][1][2], rows[0][1][2]
    pairs = [(a, b) for a, b in zip(same_kpts, orig_kpts) if a.shape == b.shape and a.size]
    if pairs:
        distance = np.concatenate([np.linalg.norm(a[..., :2] - b[..., :2], axis=-1).ravel() for a, b in pairs])
        print(f"\nsame networks vs original loop: {(distance <= 0.5).mean():.1%} of keypoints within 0.5 px")
    print("\nms per frame, by stage:\n")
    print("| pipeline | " + " | ".join(STAGES) + " |")
    print("|---|" + "---|" * len(STAGES))
    for label, (_, stages, _), frames in rows:
        cells = " | ".join(f"{stages.seconds[name] * 1000 / frames:.1f}" for name in STAGES)
        print(f"| {label} | {cells} |")
    best = fps[rows[-1][0]]
    print(f"\nend-to-end: hrnet_zoo {best:.2f} fps, original loop {original_fps:.2f} fps, {best / original_fps:.2f}x")


if __name__ == "__main__":
    main()
