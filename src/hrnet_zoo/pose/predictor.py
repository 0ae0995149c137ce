"""Top-down pose estimation in one call: images and person boxes in, keypoints in image coordinates out."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from .._factory import create_model
from .._utils import check_amp, default_device, fastest_amp
from ..codec import HeatmapCodec, TopDownTransform, flip_back, region_area, shift_flipped
from ..codec.heatmap_codec import Decoding
from ..deploy.runtime_model import RuntimePoseModel
from ..io.images import Channels, ImageLike, load_image
from ..keypoints import KeypointSet
from .detect import Detector, PersonDetector, detect_persons
from .estimator_base import EstimatorBase
from .result import PoseResult

__all__ = ["Crops", "PoseEstimator"]

_logger = logging.getLogger(__name__)


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


class PoseEstimator(EstimatorBase):
    """Top-down pose estimation with the original test protocol: crop, network (+ flipped copy), decode, map back.

    Keypoints, input size, normalisation and the heatmap codec (crop geometry, decoding, flip shift) come from the
    model's :attr:`pose_meta`, whose :class:`~hrnet_zoo.codec.TopDownTransform` makes every crop and maps every
    peak back, so weights trained with DARK or UDP are decoded as they were trained. The model is left in its mode
    (a model still training keeps training) and always run with its current weights: a change is seen through the
    tensors' in-place version counters and storage (optimizer steps, ``load_state_dict``, BatchNorm statistics);
    writes through ``.data`` bypass the counters, so after such an update (some EMA code) call
    ``estimator.refresh()``.

    Args:
        model: An hrnet_zoo pose model (moved to ``device``), an :class:`~hrnet_zoo.deploy.OnnxPoseModel` (e.g.
            int8 from :func:`hrnet_zoo.deploy.quantize`), or a model name for :func:`hrnet_zoo.create_model`.
        device: Where to run (default: the model's device, or CUDA when available for a name).
        flip_test: Average with the flipped input's heatmaps.
        decoder: Override the codec's decoding: ``"argmax"`` (original) or ``"dark"``; the model's by default.
        batch_size: Persons per forward pass.
        checkpoint_path: With a model name: load this checkpoint instead of downloading the pretrained weights.
        input_size: Network input ``(height, width)``; the model's by default.
        optimize: Run a copy with BatchNorm folded and channels-last weights
            (:func:`hrnet_zoo.deploy.optimize_for_inference`): same outputs to float rounding, faster. The copy is
            remade whenever the model's weights change, so an estimator built once validates every training step.
        amp: Reduced precision: on CUDA, autocast in ``torch.float16`` or ``torch.bfloat16``; on a CPU with bf16
            units (AMX or AVX512-BF16), ``torch.bfloat16``: a bfloat16 copy of the folded model (autocast without
            ``optimize``), refused on CPUs without them, where it would be slower. ``"auto"``: bfloat16 where the
            device runs it in hardware, else float32 (``estimator.amp`` says which, and it is logged). ``None``
            (the default) runs in float32, exact.
        detector: Finds the persons of images given without boxes: a name from
            :data:`~hrnet_zoo.pose.DETECTORS` (a torchvision detector on the estimator's device), a
            :class:`~hrnet_zoo.pose.PersonDetector`, or any callable ``image -> (boxes, scores)`` taking a
            ``(3, H, W)`` uint8 RGB tensor and returning ``(P, 4)`` xyxy boxes. ``None``: an image without boxes
            is one person filling the image.
        detector_checkpoint: With a detector name: a local checkpoint of it instead of torchvision's download.

    Attributes:
        transform: The top-down transform every crop is made and mapped back with (the model's, at
            ``input_size``, decoding with ``decoder``).
        keypoints: The model's keypoint set.

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
        amp: torch.dtype | Literal["auto"] | None = None,
        detector: Detector | str | None = None,
        detector_checkpoint: str | os.PathLike | None = None,
    ) -> None:
        if isinstance(model, str):
            model = create_model(model, pretrained=checkpoint_path is None, checkpoint_path=checkpoint_path)
            device = device or default_device()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        meta = model.pose_meta
        if meta.bottom_up:
            raise ValueError(
                f"{type(model).__name__} is a bottom-up model (it finds every person itself, without boxes): "
                "run it with hrnet_zoo.BottomUpEstimator"
            )
        if meta.num_joints == 0:
            raise ValueError("the model has no heatmap head (num_joints=0); create it with a head to estimate poses")
        if input_size is not None:
            meta = meta.at_input_size(input_size)
        if decoder is not None:
            if decoder not in ("argmax", "dark"):
                raise ValueError(f"decoder must be 'argmax' or 'dark', got {decoder!r}")
            meta = replace(meta, codec=replace(meta.codec, decoding=decoder))
        if device is None:  # the model's device; a runtime's model (ONNX Runtime, OpenVINO) on the CPU
            device = "cpu" if isinstance(model, RuntimePoseModel) else next(model.parameters()).device
        if amp == "auto":
            amp = fastest_amp(torch.device(device))
            _logger.info("amp='auto': %s on %s", "bfloat16" if amp else "float32 (no bf16 units)", device)
        check_amp(amp, torch.device(device))
        if amp is not None and isinstance(model, RuntimePoseModel):
            raise ValueError(f"amp={amp}: an ONNX Runtime or OpenVINO model runs in its exported precision; drop amp")
        self.amp = amp
        # on a CPU, a bfloat16 copy of the folded model (faster than autocast there, which casts at every layer)
        cpu_copy = amp is not None and torch.device(device).type == "cpu" and optimize
        self._input_dtype = amp if cpu_copy else torch.float32
        super().__init__(model, device, optimize, dtype=amp if cpu_copy else None)
        self.transform: TopDownTransform = meta.transform
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

    @property
    def codec(self) -> HeatmapCodec:
        """The heatmap codec the estimator decodes with (``transform.codec``)."""
        return self.transform.codec

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(height, width)``."""
        return self.transform.input_size

    @torch.inference_mode()
    def heatmaps(self, crops: Tensor) -> Tensor:
        """Run the network (and its flip test) on normalised crops: ``(N, 3, h, w) -> (N, K, h / 4, w / 4)``."""
        outputs = []
        autocast_on = self.amp is not None and self._input_dtype == torch.float32  # the CPU copy is bf16 itself
        autocast = torch.autocast(self.device.type, dtype=self.amp, enabled=autocast_on)
        with self._running() as model, autocast:
            for batch in crops.to(self._input_dtype).split(self.batch_size):
                heatmaps = model(batch).float()
                if self.flip_test:
                    flipped = flip_back(model(batch.flip(-1)).float(), self.keypoints.flip_index)
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
        sizes = [(rgb.shape[1], rgb.shape[2]) for rgb in rgbs]
        xyxys = [
            None if b is None else self.transform.boxes(b, box_format, size, image_index=i)
            for i, (size, b) in enumerate(zip(sizes, box_list))
        ]
        box_scores = [None if b is None else torch.ones(len(b)) for b in xyxys]
        undetected = [i for i, b in enumerate(xyxys) if b is None]
        if self.detector is not None and undetected:
            for i, (found, score) in zip(undetected, detect_persons(self.detector, [rgbs[i] for i in undetected])):
                xyxys[i], box_scores[i] = found, score
        for index, size in enumerate(sizes):
            if xyxys[index] is None:  # no boxes and no detector: the whole image is one person
                xyxys[index], box_scores[index] = self.transform.boxes(None, image_size=size), torch.ones(1)
        per_image = [len(xyxy) for xyxy in xyxys]
        center, scale = self.transform.center_scale(torch.cat(xyxys) if xyxys else torch.zeros(0, 4))
        per_crop = zip(rgbs, center.split(per_image), scale.split(per_image))
        crops = [self.transform.crop(rgb, c, s, device=self.device) for rgb, c, s in per_crop]
        inputs = torch.cat(crops) if crops else torch.zeros(0, 3, *self.input_size, device=self.device)
        return Crops(inputs, center, scale, per_image, xyxys, box_scores, sizes)

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
        points = self.transform.to_image(coords, crops.center, crops.scale)
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

    def _stream_boxes(self, boxes: object, box_format: str, detect_every: int) -> Callable[[object], Tensor]:
        return lambda b: self.transform.boxes(b, box_format)
