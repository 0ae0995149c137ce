"""Top-down pose estimation in one call: images and person boxes in, keypoints in image coordinates out."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..codec import HeatmapCodec, box_to_center_scale, crop_affine, flip_back, region_area, shift_flipped
from ..codec.heatmap_codec import Decoding
from ..factory import create_model
from ..keypoints import KeypointSet
from ..onnx_model import OnnxPoseModel
from ..optimize import optimize_for_inference
from .detect import Detector, PersonDetector, detect_persons
from .draw import draw_poses
from .images import Channels, ImageLike, load_image
from .sources import Frame, Inputs, Source, read_frames

__all__ = ["Crops", "PoseEstimator", "PoseResult", "given_boxes"]


@dataclass
class PoseResult:
    """Poses found in one image.

    Attributes:
        keypoints: ``(P, K, 3)`` float32: x, y in image pixels and the heatmap peak score of each joint.
        boxes: ``(P, 4)`` float32 person boxes in ``xyxy`` pixels (given, detected, or the whole image).
        scores: ``(P,)`` mean joint score per person.
        box_scores: ``(P,)`` the detector's score of each box (1 for given boxes and the whole image).
        areas: ``(P,)`` area in pixels of each person's crop region (box fitted to the input's aspect ratio,
            padded 1.25x), the person area the original's OKS-NMS uses.
        keypoint_names: Names of the ``K`` joints.
        skeleton: Joint pairs for drawing.
        image_size: ``(height, width)`` of the image.
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    box_scores: np.ndarray
    areas: np.ndarray
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        """Number of persons."""
        return len(self.keypoints)

    def __getitem__(self, index: int | slice) -> PoseResult:
        """The result restricted to person ``index`` (or a slice of persons)."""
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"person {index} out of range for {len(self)} persons")
            index = slice(index % len(self), index % len(self) + 1)
        persons = {name: getattr(self, name)[index] for name in ("keypoints", "boxes", "scores", "box_scores", "areas")}
        return replace(self, **persons)

    def __repr__(self) -> str:
        height, width = self.image_size
        return f"PoseResult({len(self)} persons x {len(self.keypoint_names)} keypoints, image {width}x{height})"

    def plot(self, image: ImageLike, score_threshold: float = 0.3, channels: Channels = "rgb") -> Tensor:
        """The poses drawn on ``image`` (the image they were estimated on): a ``(3, H, W)`` uint8 tensor."""
        rgb = load_image(image, channels)
        if tuple(rgb.shape[-2:]) != tuple(self.image_size):
            raise ValueError(f"the image is {tuple(rgb.shape[-2:])}, the poses were found on {self.image_size}")
        return draw_poses(rgb, self.keypoints, self.skeleton, self.boxes, score_threshold,
                          keypoint_names=self.keypoint_names)  # fmt: skip

    def to_coco(self, image_id: int, category_id: int = 1) -> list[dict]:
        """The poses in COCO keypoint results format, as pycocotools ``loadRes`` reads them (``bbox`` as ``xywh``,
        ``score`` the mean joint score, and the detector's ``box_score``)."""
        results = []
        for kpts, box, score, box_score in zip(self.keypoints, self.boxes, self.scores, self.box_scores):
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": category_id,
                    "keypoints": [round(float(v), 3) for v in kpts.reshape(-1)],
                    "score": round(float(score), 5),
                    "box_score": round(float(box_score), 5),
                    "bbox": [round(v, 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                }
            )
        return results


def given_boxes(boxes: Mapping[str, object] | None, source: Source) -> object | None:
    """The boxes ``boxes`` gives a still image, by its path as found or its file name; ``None`` for video frames
    and images it does not name (their persons come from the detector)."""
    if boxes is None or source.kind != "image":
        return None
    return boxes.get(source.location, boxes.get(Path(source.location).name))


#: Largest box side accepted, in pixels: far beyond any photograph, small enough to keep the crop arithmetic exact.
MAX_BOX_SIDE = 1e6


def _as_boxes(boxes: object, box_format: str, image_size: tuple[int, int], index: int) -> Tensor:
    """Validate one image's boxes and return them as ``(P, 4)`` xyxy float32."""
    height, width = image_size
    if boxes is None:
        return torch.tensor([[0.0, 0.0, float(width), float(height)]])
    if isinstance(boxes, (dict, set, frozenset, str, bytes)):
        kind = type(boxes).__name__
        raise ValueError(f"boxes of image {index} must be a (P, 4) array or a list of boxes, got a {kind}")
    try:
        array = torch.as_tensor(np.asarray(boxes, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise ValueError(f"boxes of image {index} must be numbers in a (P, 4) array, got {boxes!r:.100}") from err
    if array.numel() == 0:
        return torch.zeros(0, 4)
    if array.dim() == 1:
        array = array[None]
    if array.dim() != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes of image {index} must have shape (P, 4), got {tuple(array.shape)}")
    bad = ~torch.isfinite(array).all(1) | (array.abs() > MAX_BOX_SIDE).any(1)
    if bool(bad.any()):
        raise ValueError(f"box {int(bad.nonzero()[0])} of image {index} must hold finite pixel values below "
                         f"{MAX_BOX_SIDE:.0e}, got {array[bad][0].tolist()}")  # fmt: skip
    if box_format == "xywh":
        array = torch.cat([array[:, :2], array[:, :2] + array[:, 2:]], dim=1)
    elif box_format != "xyxy":
        raise ValueError(f"box_format must be 'xywh' or 'xyxy', got {box_format!r}")
    for p, (x0, y0, x1, y1) in enumerate(array.tolist()):
        if not (x1 > x0 and y1 > y0):
            raise ValueError(
                f"box {p} of image {index} is empty: {[x0, y0, x1, y1]} (xyxy); width and height must be > 0"
            )
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise ValueError(
                f"box {p} of image {index} ({[x0, y0, x1, y1]} xyxy) lies entirely outside the {width}x{height} image"
            )
    return array.float()


@dataclass
class Crops:
    """Person crops ready for the network, and what maps their heatmaps back to the images.

    Attributes:
        inputs: ``(N, 3, h, w)`` normalised crops of all persons of all images.
        center: ``(N, 2)`` crop centres in image pixels.
        scale: ``(N, 2)`` crop sizes in units of 200 pixels.
        per_image: Persons per image.
        boxes: Per image, the ``(P, 4)`` xyxy boxes.
        box_scores: Per image, the ``(P,)`` detector scores (ones for given boxes).
        image_sizes: Per image, ``(height, width)``.
    """

    inputs: Tensor
    center: Tensor
    scale: Tensor
    per_image: list[int]
    boxes: list[Tensor]
    box_scores: list[Tensor]
    image_sizes: list[tuple[int, int]]


class PoseEstimator:
    """Top-down pose estimation with the original test protocol: crop, network (+ flipped copy), decode, map back.

    Keypoints, input size, normalisation and the heatmap codec (crop geometry, decoding, flip shift) come from the
    model's :attr:`pose_meta`, so weights trained with DARK or UDP are decoded as they were trained.

    Args:
        model: An hrnet_zoo pose model, an :class:`~hrnet_zoo.OnnxPoseModel` (e.g. int8 from
            :func:`hrnet_zoo.quantize`), or a model name for :func:`hrnet_zoo.create_model`.
        device: Where to run (default: the model's device, or CUDA when available for a name).
        flip_test: Average with the flipped input's heatmaps.
        decoder: Override the codec's decoding: ``"argmax"`` (original) or ``"dark"``; the model's by default.
        batch_size: Persons per forward pass.
        checkpoint_path: With a model name: load this checkpoint instead of downloading the pretrained weights.
        input_size: Network input ``(height, width)``; the model's by default.
        optimize: Run a copy with BatchNorm folded and channels-last weights
            (:func:`hrnet_zoo.optimize_for_inference`): same outputs to float rounding, faster.
        amp: Autocast dtype on CUDA (``torch.float16`` or ``torch.bfloat16``); ``None`` runs in float32.
        detector: Finds the persons of images given without boxes: a name from
            :data:`~hrnet_zoo.pose.detect.DETECTORS` (a torchvision detector on the estimator's device), a
            :class:`~hrnet_zoo.pose.PersonDetector`, or any callable ``image -> (boxes, scores)`` taking a
            ``(3, H, W)`` uint8 RGB tensor and returning ``(P, 4)`` xyxy boxes. ``None``: an image without boxes
            is one person filling the image.
        detector_checkpoint: With a detector name: a local checkpoint of it instead of torchvision's download.

    Example:
        >>> estimator = PoseEstimator("hrnet_w32_pose", detector="fasterrcnn_resnet50_fpn_v2")
        >>> result = estimator.predict("group.jpg")[0]  # every person found by the detector
        >>> result.keypoints.shape  # (persons, 17, 3): x, y, score
        >>> estimator.predict("people.jpg", boxes=[[100, 40, 120, 300]])  # given boxes (xywh) skip detection
    """

    def __init__(
        self,
        model: nn.Module | str,
        device: str | torch.device | None = None,
        flip_test: bool = True,
        decoder: Decoding | None = None,
        batch_size: int = 32,
        checkpoint_path: str | os.PathLike | None = None,
        input_size: tuple[int, int] | None = None,
        optimize: bool = True,
        amp: torch.dtype | None = None,
        detector: Detector | str | None = None,
        detector_checkpoint: str | os.PathLike | None = None,
    ) -> None:
        if isinstance(model, str):
            model = create_model(model, pretrained=checkpoint_path is None, checkpoint_path=checkpoint_path)
            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        meta = model.pose_meta
        if meta.num_joints == 0:
            raise ValueError("the model has no heatmap head (num_joints=0); create it with a head to estimate poses")
        codec: HeatmapCodec = meta.codec
        if input_size is not None:
            codec = replace(codec, input_size=tuple(input_size), heatmap_size=None, blur_kernel_size=None)
        if decoder is not None:
            if decoder not in ("argmax", "dark"):
                raise ValueError(f"decoder must be 'argmax' or 'dark', got {decoder!r}")
            codec = replace(codec, decoding=decoder)
        if device is None:  # the model's device; an ONNX Runtime model runs on the CPU
            device = "cpu" if isinstance(model, OnnxPoseModel) else next(model.parameters()).device
        self.device = torch.device(device)
        if amp is not None and self.device.type != "cuda":
            raise ValueError(f"amp={amp} needs a CUDA device; the CPU path runs in float32 (device={self.device})")
        self.amp = amp
        model = model.eval().to(self.device)
        in_torch = not isinstance(model, OnnxPoseModel)  # an ONNX Runtime model is already what it will run as
        self.model = optimize_for_inference(model) if optimize and in_torch else model
        self.codec = codec
        self.input_size = codec.input_size
        self.mean = torch.tensor(meta.mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(meta.std, device=self.device).view(1, -1, 1, 1)
        self.keypoints: KeypointSet = meta.keypoints
        self.flip_test = flip_test
        self.batch_size = batch_size
        if isinstance(detector, str):
            detector = PersonDetector(detector, checkpoint=detector_checkpoint, device=self.device)
        elif detector_checkpoint is not None:
            raise ValueError("detector_checkpoint needs a detector name, e.g. detector='fasterrcnn_resnet50_fpn_v2'")
        if detector is not None and not callable(detector):
            raise ValueError(f"detector must be a name, a PersonDetector or a callable, got {type(detector).__name__}")
        self.detector = detector

    @torch.inference_mode()
    def heatmaps(self, crops: Tensor) -> Tensor:
        """Run the network (and its flip test) on normalised crops: ``(N, 3, h, w) -> (N, K, h / 4, w / 4)``."""
        outputs = []
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            for batch in crops.split(self.batch_size):
                heatmaps = self.model(batch).float()
                if self.flip_test:
                    flipped = flip_back(self.model(batch.flip(-1)).float(), self.keypoints.flip_index)
                    heatmaps = (heatmaps + (shift_flipped(flipped) if self.codec.shift_flipped else flipped)) * 0.5
                outputs.append(heatmaps)
        return torch.cat(outputs) if outputs else crops.new_zeros(0, len(self.keypoints), *self.codec.heatmap_size)

    @torch.inference_mode()
    def crops(
        self,
        images: ImageLike | Sequence[ImageLike],
        boxes: Sequence[object] | None = None,
        box_format: str = "xywh",
        channels: Channels = "rgb",
    ) -> Crops:
        """The normalised network inputs of every person in ``images`` (see :meth:`predict` for the arguments).

        Returns:
            :class:`Crops` with ``inputs`` ``(N, 3, h, w)`` on the estimator's device and what maps them back.
        """
        single = not isinstance(images, (list, tuple))
        image_list = [images] if single else list(images)
        if boxes is None:
            box_list: list[object] = [None] * len(image_list)
        elif single:
            box_list = [boxes]
        else:
            box_list = list(boxes)
            if len(box_list) != len(image_list):
                raise ValueError(f"got boxes for {len(box_list)} images but {len(image_list)} images")
        rgbs = [load_image(image, channels) for image in image_list]
        xyxys = [None if b is None else _as_boxes(b, box_format, tuple(rgb.shape[1:]), i)
                 for i, (rgb, b) in enumerate(zip(rgbs, box_list))]  # fmt: skip
        box_scores = [None if b is None else torch.ones(len(b)) for b in xyxys]
        undetected = [i for i, b in enumerate(xyxys) if b is None]
        if self.detector is not None and undetected:
            for i, (found, score) in zip(undetected, detect_persons(self.detector, [rgbs[i] for i in undetected])):
                xyxys[i], box_scores[i] = found, score
        centers, scales, crops, per_image, all_boxes, sizes = [], [], [], [], [], []
        for index, (rgb, xyxy) in enumerate(zip(rgbs, xyxys)):
            size = (rgb.shape[1], rgb.shape[2])
            if xyxy is None:  # no boxes and no detector: the whole image is one person
                xyxy = _as_boxes(None, box_format, size, index)
                box_scores[index] = torch.ones(1)
            center, scale = box_to_center_scale(xyxy, self.input_size, box_format="xyxy")
            if len(xyxy):
                matrices = self.codec.crop_transform(center, scale)
                crops.append(crop_affine(rgb.to(self.device, torch.float32) / 255.0, matrices, self.input_size))
            centers.append(center)
            scales.append(scale)
            per_image.append(len(xyxy))
            all_boxes.append(xyxy)
            sizes.append(size)
        if crops:
            inputs = (torch.cat(crops) - self.mean) / self.std
        else:
            inputs = torch.zeros(0, 3, *self.input_size, device=self.device)
        center = torch.cat(centers) if centers else torch.zeros(0, 2)
        scale = torch.cat(scales) if scales else torch.zeros(0, 2)
        return Crops(inputs, center, scale, per_image, all_boxes, box_scores, sizes)

    @torch.inference_mode()
    def predict(
        self,
        images: ImageLike | Sequence[ImageLike],
        boxes: Sequence[object] | None = None,
        box_format: str = "xywh",
        channels: Channels = "rgb",
    ) -> list[PoseResult]:
        """Estimate the poses of the persons in ``boxes`` of each image.

        Args:
            images: One image or a list (paths, PIL images, NumPy HWC uint8 arrays, or ``(C, H, W)`` tensors).
            boxes: Per image, an array ``(P, 4)`` of person boxes (``P`` may be 0), or ``None``: the detector's
                persons, or without a detector the whole image as one person. With a single image, a single
                ``(P, 4)`` array is accepted.
            box_format: ``"xywh"`` (COCO, default) or ``"xyxy"``.
            channels: Channel order of NumPy images: ``"rgb"`` or ``"bgr"`` (OpenCV's ``cv2.imread``).

        Returns:
            One :class:`PoseResult` per image (an empty list for no images).

        Raises:
            ValueError: An empty, non-finite or malformed box, a box entirely outside its image, or boxes not
                matching the images.
        """
        if isinstance(images, (list, tuple)) and not images:
            return []
        crops = self.crops(images, boxes, box_format, channels)
        heatmaps = self.heatmaps(crops.inputs)
        coords, scores = self.codec.decode(heatmaps)
        points = self.codec.to_image(coords, crops.center, crops.scale)
        keypoints = torch.cat([points, scores.unsqueeze(-1)], dim=-1).float().cpu().numpy()
        areas = region_area(crops.scale).numpy()
        results, start = [], 0
        for count, xyxy, box_scores, size in zip(crops.per_image, crops.boxes, crops.box_scores, crops.image_sizes):
            kpts, image_areas = keypoints[start : start + count], areas[start : start + count]
            start += count
            results.append(
                PoseResult(
                    keypoints=kpts,
                    boxes=xyxy.numpy(),
                    scores=kpts[..., 2].mean(axis=1) if count else np.zeros(0, np.float32),
                    box_scores=box_scores.float().numpy(),
                    areas=image_areas,
                    keypoint_names=self.keypoints.names,
                    skeleton=self.keypoints.skeleton,
                    image_size=size,
                )
            )
        return results

    def stream(
        self,
        inputs: Inputs,
        boxes: Mapping[str, object] | None = None,
        box_format: str = "xywh",
        batch_frames: int = 8,
    ) -> Iterator[tuple[Frame, PoseResult]]:
        """Estimate poses frame by frame: images, folders, glob patterns, video files and webcam indices.

        Frames are decoded, detected and estimated ``batch_frames`` at a time and yielded as they are done, so
        memory stays flat however long a video is. Frames without boxes go through the detector (or are one
        person filling the frame when the estimator has none).

        Args:
            inputs: A path, a glob pattern, a webcam index (``0``), a :class:`~hrnet_zoo.pose.sources.Source`, or a
                list of them (see :func:`~hrnet_zoo.pose.sources.find_sources`).
            boxes: Person boxes of still images, by the image's path (as found) or file name.
            box_format: ``"xywh"`` (COCO, default) or ``"xyxy"``.
            batch_frames: Frames per batch.

        Yields:
            ``(frame, result)``: the :class:`~hrnet_zoo.pose.sources.Frame` (its ``(3, H, W)`` image, source and
            frame index) and its :class:`PoseResult`.
        """
        if batch_frames < 1:
            raise ValueError(f"batch_frames must be positive, got {batch_frames}")
        frames = read_frames(inputs)
        while batch := list(islice(frames, batch_frames)):
            given = [given_boxes(boxes, frame.source) for frame in batch]
            yield from zip(batch, self.predict([frame.image for frame in batch], given, box_format))
