"""Bottom-up pose estimation in one call: whole images in, every person's keypoints in image coordinates out.

DEKR and HigherHRNet find the persons themselves, so no detector and no boxes are involved. Each image is resized
as the test protocol of the code that measured the checkpoint does it (``pose_meta.codec.protocol``), run at every
test scale with the flip test, and decoded by :mod:`hrnet_zoo.codec`'s transcriptions of the reference loops:

- DEKR, reference protocol (the original ``tools/valid.py``): per scale the flip test on the shifted mirror
  (:func:`~hrnet_zoo.codec.flip_input`, :func:`~hrnet_zoo.codec.flip_test_outputs`), centre NMS and the poses at the
  centres (:func:`~hrnet_zoo.codec.scale_proposals`); the scales together
  (:func:`~hrnet_zoo.codec.aggregate_dekr_scales`), pose NMS (:func:`~hrnet_zoo.codec.pose_nms`), the way back to
  the image, and the rescoring net where the checkpoint ships one (:func:`~hrnet_zoo.codec.dekr_rescore`).
- DEKR, mmpose 1.x protocol: :func:`~hrnet_zoo.codec.dekr_openmmlab.decode_dekr_openmmlab` on its own resize.
- Associative embedding (HigherHRNet's ``tools/valid.py``): per scale the outputs and the plain mirror's
  (:func:`~hrnet_zoo.codec.multi_stage_outputs`, brought to the scale-1 size with ``PROJECT2IMAGE``), the scales
  together (:func:`~hrnet_zoo.codec.aggregate_ae_scales`), then tag grouping, adjustment and refinement
  (:func:`~hrnet_zoo.codec.decode_associative_embedding`).

The network input is the image warped in float (the references warp the uint8 image, a rounding of under 1/255).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.transforms import functional as TF

from .._factory import create_model
from .._utils import default_device
from ..codec import (
    BottomUpCodec,
    BottomUpResize,
    aggregate_ae_scales,
    aggregate_dekr_scales,
    decode_associative_embedding,
    dekr_rescore,
    flip_input,
    flip_test_outputs,
    multi_stage_outputs,
    pose_nms,
    scale_proposals,
)
from ..codec.dekr_openmmlab import decode_dekr_openmmlab
from ..deploy.export import ExportedPoseModel
from ..deploy.runtime_model import RuntimePoseModel
from ..io.images import Channels, ImageLike, load_image
from ..keypoints import KeypointSet
from ..models.dekr import rescore_links
from .estimator_base import EstimatorBase
from .result import PoseResult

__all__ = ["BottomUpEstimator", "poses_to_result"]


def poses_to_result(
    keypoints: Tensor, scores: Tensor, keypoints_set: KeypointSet, image_size: tuple[int, int]
) -> PoseResult:
    """A :class:`PoseResult` of one image's bottom-up poses, each person's box the extent of its found joints.

    Args:
        keypoints: ``(P, K, 3)`` ``(x, y, score)`` in image pixels.
        scores: ``(P,)`` person scores (they are the box scores too).
        image_size: ``(height, width)``.
    """
    kpts = keypoints[..., :3].detach().float().cpu().numpy().reshape(-1, len(keypoints_set), 3)
    found = kpts[..., 2] > 0
    found[~found.any(axis=1)] = True  # a person without a scored joint: the extent of all its joints
    xs = np.where(found, kpts[..., 0], np.nan)
    ys = np.where(found, kpts[..., 1], np.nan)
    if len(kpts):
        boxes = np.stack([np.nanmin(xs, 1), np.nanmin(ys, 1), np.nanmax(xs, 1), np.nanmax(ys, 1)], 1)
    else:
        boxes = np.zeros((0, 4))
    person_scores = scores.detach().float().cpu().numpy().reshape(-1)
    return PoseResult(
        keypoints=kpts,
        boxes=boxes.astype(np.float32),
        scores=person_scores,
        box_scores=person_scores.copy(),
        areas=((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).astype(np.float32),
        keypoint_names=keypoints_set.names,
        skeleton=keypoints_set.skeleton,
        image_size=image_size,
    )


def _floats(outputs: tuple[Tensor | None, Tensor | None]) -> tuple[Tensor | None, Tensor | None]:
    return tuple(None if o is None else o.float() for o in outputs)  # type: ignore[return-value]


class BottomUpEstimator(EstimatorBase):
    """Bottom-up pose estimation (DEKR, HigherHRNet) with the test protocol that measured the model's weights.

    The same surface as :class:`~hrnet_zoo.PoseEstimator`: :meth:`predict`, :meth:`stream` (with tracking and
    smoothing), ``run`` and :func:`hrnet_zoo.evaluation.evaluate`, but no detector and no boxes: every person of
    the image is found at once. Test sizes, scales and decoder settings come from the model's
    ``pose_meta.codec`` (a :class:`~hrnet_zoo.codec.BottomUpCodec`); the model is left in its mode and always run
    with its current weights (see :class:`~hrnet_zoo.pose.estimator_base.EstimatorBase`).

    Args:
        model: An hrnet_zoo bottom-up model (moved to ``device``), or a model name for :func:`hrnet_zoo.create_model`.
        device: Where to run (default: the model's device, or CUDA when available for a name).
        flip_test: Average with the mirrored image's outputs, as the reference's ``TEST.FLIP_TEST``.
        scales: Test scales (``TEST.SCALE_FACTOR``, 1 among them); the codec's by default. mmpose 1.x's protocol
            tests at scale 1 only.
        checkpoint_path: With a model name: load this checkpoint instead of downloading the pretrained weights.
        input_size: The size the image's short side is resized to, ``(height, width)`` of the square training
            input (512 or 640); the model's by default.
        optimize: Run a BatchNorm-folded, channels-last copy (:func:`hrnet_zoo.deploy.optimize_for_inference`),
            remade whenever the model's weights change.

    Attributes:
        codec: The :class:`~hrnet_zoo.codec.BottomUpCodec` the estimator resizes and decodes with.
        keypoints: The model's keypoint set.

    Example:
        >>> estimator = BottomUpEstimator("dekr_hrnet_w32.coco_512x512")
        >>> result = estimator.predict("crowd.jpg")[0]  # every person, no detector
        >>> result.keypoints.shape  # (persons, 17, 3): x, y, score
    """

    def __init__(
        self,
        model: nn.Module | str,
        device: str | torch.device | None = None,
        flip_test: bool = True,
        scales: Sequence[float] | None = None,
        checkpoint_path: str | os.PathLike | None = None,
        input_size: tuple[int, int] | None = None,
        optimize: bool = True,
    ) -> None:
        if isinstance(model, str):
            model = create_model(model, pretrained=checkpoint_path is None, checkpoint_path=checkpoint_path)
            device = device or default_device()
        if isinstance(model, (RuntimePoseModel, ExportedPoseModel)):
            raise ValueError(
                f"{type(model).__name__}: exported bottom-up models do not run in BottomUpEstimator yet; run the "
                "PyTorch model (create_model with its checkpoint)"
            )
        meta = getattr(model, "pose_meta", None)
        if meta is None or not meta.bottom_up:
            raise ValueError(
                f"{type(model).__name__} is not a bottom-up model: run top-down models (which need person boxes) "
                "with hrnet_zoo.PoseEstimator"
            )
        if input_size is not None:
            meta = meta.at_input_size(input_size)
        codec: BottomUpCodec = meta.codec
        if scales is not None:
            codec = replace(codec, scales=tuple(scales))
        super().__init__(model, device if device is not None else next(model.parameters()).device, optimize)
        self.codec = codec
        self.keypoints: KeypointSet = meta.keypoints
        self.mean, self.std = meta.mean, meta.std
        self.flip_test = flip_test

    def _refuse_boxes(self, boxes: object) -> None:
        if boxes is not None:
            raise ValueError(
                "a bottom-up model finds every person itself and takes no boxes; drop the boxes, or give them to a "
                "top-down model's hrnet_zoo.PoseEstimator"
            )

    def _stream_boxes(self, boxes: object, box_format: str, detect_every: int) -> None:
        self._refuse_boxes(boxes)
        if detect_every != 1:
            raise ValueError(
                f"detect_every={detect_every}: a bottom-up model finds the persons of every frame it runs on; drop "
                "detect_every (track=True still follows them)"
            )

    def _input(self, image: Tensor, resize: BottomUpResize) -> Tensor:
        """``(3, H, W)`` uint8 image -> ``(1, 3, h, w)`` normalised network input at ``resize``."""
        pixels = resize.warp(image.to(self.device, torch.float32) / 255.0)
        return TF.normalize(pixels, list(self.mean), list(self.std))[None]

    def _rescore_net(self, model: nn.Module) -> nn.Module | None:
        return getattr(model, "rescore_net", None) if self.codec.rescore else None

    def _rescore_skeleton(self) -> Sequence[tuple[int, int]]:
        if self.codec.rescore_skeleton == "keypoints":
            return self.keypoints.skeleton
        return rescore_links(len(self.keypoints))

    def _dekr(self, model: nn.Module, image: Tensor) -> tuple[Tensor, Tensor]:
        """One image's DEKR poses ``(P, K, 3)`` in image pixels and scores ``(P,)``, reference protocol."""
        codec, flip_index = self.codec, self.keypoints.flip_index
        resizes = codec.resizes(tuple(image.shape[-2:]))
        stride = codec.input_size[0] / codec.heatmap_size[0]
        heatmaps, proposals = [], []
        for scale, resize in zip(codec.scales, resizes):
            x = self._input(image, resize)
            heat, offsets = model(x)
            flipped = model(flip_input(x, int(stride) - 1)) if self.flip_test else (None, None)
            heat, poses = flip_test_outputs(heat.float(), offsets.float(), *_floats(flipped), flip_index)
            resized, found = scale_proposals(heat, poses, scale, stride, None, codec.max_persons, codec.threshold)
            heatmaps.append(resized)
            proposals.append(found)
        average, merged = aggregate_dekr_scales(heatmaps, proposals, codec.scales, codec.decrease)
        keypoints, scores = pose_nms(merged[0], average[0], codec.nms_threshold, codec.nms_joints, codec.max_persons)
        keypoints = resizes[-1].to_image(keypoints)  # the reference maps back with the last (smallest) scale's
        net = self._rescore_net(model)
        if net is not None:
            scores = dekr_rescore(keypoints, scores, net, self._rescore_skeleton(), codec.rescore_norm_links)
        return keypoints, scores

    def _dekr_openmmlab(self, model: nn.Module, image: Tensor) -> tuple[Tensor, Tensor]:
        """One image's DEKR poses and scores, mmpose 1.x protocol."""
        (resize,) = self.codec.resizes(tuple(image.shape[-2:]))
        x = self._input(image, resize)
        heat, offsets = model(x)
        flipped = model(x.flip(-1)) if self.flip_test else (None, None)
        ((keypoints, scores),) = decode_dekr_openmmlab(
            heat.float(),
            offsets.float(),
            *_floats(flipped),
            self.keypoints.flip_index,
            codec=self.codec,
            resize=resize,
            rescore_net=self._rescore_net(model),
            skeleton=self._rescore_skeleton(),
        )
        return keypoints, scores

    def _associative_embedding(self, model: nn.Module, image: Tensor) -> tuple[Tensor, Tensor]:
        """One image's associative-embedding poses and scores, reference protocol."""
        codec, k = self.codec, len(self.keypoints)
        resizes = codec.resizes(tuple(image.shape[-2:]))
        per_scale = []
        for scale, resize in zip(codec.scales, resizes):
            x = self._input(image, resize)
            outputs = [o.float() for o in model(x)]
            tag_per_joint = max(o.shape[1] for o in outputs) == 2 * k  # else one tag map shared by the joints
            flipped = [o.float() for o in model(x.flip(-1))] if self.flip_test else None
            heatmaps, tags = multi_stage_outputs(
                outputs,
                k,
                flipped,
                self.keypoints.flip_index,
                tag_per_joint,
                codec.heatmap_stages,
                codec.tag_stages,
                resize.base_size if codec.project_to_image else None,
            )
            per_scale.append((scale, heatmaps, tags))
        heatmaps, tags = aggregate_ae_scales(per_scale, codec.project_to_image)
        ((people, scores),) = decode_associative_embedding(
            heatmaps,
            tags,
            max_num_people=codec.max_persons,
            nms_kernel=codec.nms_kernel,
            detection_threshold=codec.threshold,
            tag_threshold=codec.tag_threshold,
            adjust=codec.adjust,
            refine=codec.refine,
            resize=resizes[-1],  # the reference maps back with the last (smallest) scale's region
        )
        return torch.from_numpy(people[..., :3]), torch.from_numpy(scores)

    @torch.inference_mode()
    def predict(
        self,
        images: ImageLike | Sequence[ImageLike],
        boxes: None = None,
        box_format: str = "xywh",
        channels: Channels = "rgb",
    ) -> list[PoseResult]:
        """Find every person of each image and estimate their poses.

        Args:
            images: One image or a list (paths, PIL images, NumPy HWC uint8 arrays, or ``(C, H, W)`` tensors).
            boxes: Must be ``None``: a bottom-up model takes no boxes (the argument is there so that code written
                for :class:`~hrnet_zoo.PoseEstimator` fails with a clear message).
            box_format: Unused, as ``boxes``.
            channels: Channel order of NumPy images: ``"rgb"`` or ``"bgr"`` (OpenCV's ``cv2.imread``).

        Returns:
            One :class:`PoseResult` per image (an empty list for no images): keypoints ``(P, K, 3)`` in image
            pixels, each person's box the extent of its found joints, its score the protocol's person score.

        Raises:
            ValueError: ``boxes`` given, or an image that cannot be read.
        """
        self._refuse_boxes(boxes)
        image_list = list(images) if isinstance(images, (list, tuple)) else [images]
        decode = {
            ("dekr", "reference"): self._dekr,
            ("dekr", "openmmlab1"): self._dekr_openmmlab,
            ("associative_embedding", "reference"): self._associative_embedding,
        }[self.codec.method, self.codec.protocol]
        results = []
        with self._running() as model:
            for image in image_list:
                rgb = load_image(image, channels)
                keypoints, scores = decode(model, rgb)
                results.append(poses_to_result(keypoints, scores, self.keypoints, (rgb.shape[1], rgb.shape[2])))
        return results
