"""Finding persons for top-down pose estimation: torchvision's COCO detectors, or any callable of yours.

A detector is anything that maps one ``(3, H, W)`` uint8 RGB image tensor to ``(boxes, scores)``: ``(P, 4)`` xyxy
pixel boxes and ``(P,)`` scores. :class:`PersonDetector` is such a callable built from torchvision's detection
models. Their weights are the files torchvision's weights API names, kept where torchvision keeps them
(``torch.hub.get_dir()/checkpoints``, so a cache filled by torchvision serves here and the other way round),
downloaded with the package's bounded and SHA-256-checked downloader, or read from a local file. Every state dict
is checked against the detector (keys, shapes, finite values) before it is loaded; a cached file that fails is
checked against the SHA-256 prefix in its name, and a damaged one is removed and downloaded again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import get_model, get_model_weights
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import Bottleneck
from torchvision.ops import clip_boxes_to_image, nms

from .._download import download_verified, file_sha256
from .._utils import check_amp, default_device, sha256_prefix
from ..deploy.optimize import fold_batch_norms
from ..errors import WeightsUnavailableError
from ..models._checkpoint import check_fits, read_checkpoint

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Detector", "PersonDetector", "detect_persons"]

#: A person detector: image ``(3, H, W)`` uint8 RGB -> (``(P, 4)`` xyxy boxes, ``(P,)`` scores).
Detector = Callable[[Tensor], tuple[object, object]]

#: torchvision COCO detectors offered by name: the original demo's Faster R-CNN, stronger and lighter ones.
DETECTORS = (
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_resnet50_fpn",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "ssdlite320_mobilenet_v3_large",
)
DEFAULT_DETECTOR = "fasterrcnn_resnet50_fpn_v2"

_logger = logging.getLogger(__name__)
#: The detectors' containers in which a convolution registered right before a BatchNorm is applied right before it
#: (ResNet's bottlenecks and stem, MobileNet's and the heads' conv-norm-activation sequences).
_CONTAINERS = (nn.Sequential, Bottleneck, IntermediateLayerGetter)


class PersonDetector(nn.Module):
    """A torchvision COCO detector that keeps only persons: score threshold, NMS, at most ``max_persons``.

    Args:
        name: One of :data:`DETECTORS` (default: ``fasterrcnn_resnet50_fpn_v2``, 46.7 box AP on COCO).
        checkpoint: A local ``.pth``/``.safetensors`` state dict of that detector, instead of torchvision's download.
        score_threshold: Minimum person score kept.
        nms_threshold: Persons overlapping a higher-scoring person by more IoU than this are dropped.
        max_persons: Keep at most this many persons per image, the highest-scoring first (``None``: all).
        device: Where to run (default: CUDA when available).
        batch_size: Images per forward pass of :meth:`detect` (default: 4 on a GPU; 1 on a CPU, where batching
            frames makes the R-CNN detectors slower, as ``benchmarks/video.py`` measured).
        amp: Run the detector under ``torch.autocast`` in this dtype: ``torch.bfloat16`` on a CPU with bf16 units
            (AMX or AVX512-BF16; Faster R-CNN v2 3.9x faster there, ``benchmarks/video.py``), ``torch.float16`` or
            ``torch.bfloat16`` on CUDA. ``None``: float32. Boxes move by float rounding, scores by ~1e-2.

    Raises:
        ValueError: An unknown name, bad thresholds, or an ``amp`` the device cannot run.
        CheckpointMismatchError: A checkpoint that is not this detector's (other keys, another number of classes,
            NaN or infinite values; ``source`` names it).
        WeightsUnavailableError: The weights could not be downloaded (``kind="detector"``; ``url`` is the file to
            fetch, ``cache_path`` where a copy is found).
    """

    def __init__(
        self,
        name: str = DEFAULT_DETECTOR,
        checkpoint: str | os.PathLike | None = None,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.5,
        max_persons: int | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        amp: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if name not in DETECTORS:
            raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
        if not 0.0 <= score_threshold <= 1.0 or not 0.0 < nms_threshold <= 1.0:
            raise ValueError(
                f"detection thresholds must lie in [0, 1], got score {score_threshold}, NMS {nms_threshold}"
            )
        if (max_persons is not None and max_persons < 1) or (batch_size is not None and batch_size < 1):
            raise ValueError(f"max_persons and batch_size must be positive, got {max_persons} and {batch_size}")
        device = torch.device(device) if device is not None else default_device()
        check_amp(amp, device)
        weights = get_model_weights(name).DEFAULT
        self.name = name
        self.amp = amp
        self.person_label = weights.meta["categories"].index("person")
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_persons = max_persons
        self.net = get_model(name, weights=None, weights_backbone=None, num_classes=len(weights.meta["categories"]))
        self.net.load_state_dict(self._load_state(weights.url, checkpoint), strict=False)  # checked: fits
        fold_batch_norms(self.net.eval(), _CONTAINERS)  # same boxes to float rounding, a little faster
        self.net.to(device, memory_format=torch.channels_last)  # what the CPU and GPU convolutions prefer
        self.batch_size = batch_size or (4 if device.type == "cuda" else 1)

    def _checked_state(self, path: Path) -> dict[str, Tensor]:
        """The state dict in ``path``, checked to fit this detector (nothing is loaded otherwise)."""
        state = read_checkpoint(path)
        own = self.net.state_dict()
        counters = {k for k in own if k.endswith("num_batches_tracked")}
        what = f"the {self.name} detector (torchvision's {self.num_classes} COCO categories)"
        check_fits(what, own, state, f"checkpoint {str(path)!r}", counters)
        return state

    @property
    def num_classes(self) -> int:
        """Categories the detector's head predicts (torchvision's COCO categories, person included)."""
        return len(get_model_weights(self.name).DEFAULT.meta["categories"])

    def _load_state(self, url: str, checkpoint: str | os.PathLike | None) -> dict[str, Tensor]:
        """The checked state dict in ``checkpoint``, or in torchvision's file ``url`` (cached or downloaded); a
        cached file that fails and whose SHA-256 does not start with the prefix in its name is damaged: it is
        removed and downloaded again."""
        if checkpoint is not None:
            return self._checked_state(Path(checkpoint))
        path = self._download(url)
        try:
            return self._checked_state(path)
        except ValueError as err:
            prefix = sha256_prefix(path.name)
            if prefix is None or file_sha256(path).startswith(prefix):
                raise  # torchvision's file itself
            _logger.warning("%s is damaged (%s); removed, downloading it again", path, str(err).splitlines()[0])
            path.unlink(missing_ok=True)
            return self._checked_state(self._download(url))

    def _download(self, url: str) -> Path:
        """torchvision's file for this detector, from its cache or downloaded there (checked by the SHA-256 prefix
        in its name, as torch.hub checks it)."""
        directory = Path(torch.hub.get_dir()) / "checkpoints"
        cached = directory / Path(url).name
        if cached.is_file():
            return cached
        try:
            return download_verified(url, sha256_prefix(cached.name), directory)
        except (WeightsUnavailableError, ValueError, OSError) as err:
            raise WeightsUnavailableError(
                f"could not get the {self.name} person detector weights: {err}. Fetch {url} and pass "
                f"checkpoint=PATH to PersonDetector (or detector_checkpoint=PATH to PoseEstimator), or copy it to "
                f"{cached}; or give person boxes to skip detection",
                name=self.name,
                url=url,
                cache_path=cached,
                kind="detector",
            ) from err

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.inference_mode()
    def detect(self, images: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """Persons in each image: per ``(3, H, W)`` uint8 RGB image, ``(P, 4)`` xyxy boxes and ``(P,)`` scores."""
        found = []
        autocast = torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)
        for start in range(0, len(images), self.batch_size):
            batch = [image.to(self.device, torch.float32) / 255.0 for image in images[start : start + self.batch_size]]
            with autocast:
                outputs = self.net(batch)
            for output in outputs:
                person = (output["labels"] == self.person_label) & (output["scores"] >= self.score_threshold)
                boxes, scores = output["boxes"][person].float(), output["scores"][person].float()
                keep = nms(boxes, scores, self.nms_threshold)[: self.max_persons]
                found.append((boxes[keep].cpu(), scores[keep].cpu()))
        return found

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Persons in one ``(3, H, W)`` uint8 RGB image: ``(P, 4)`` xyxy boxes and ``(P,)`` scores."""
        return self.detect([image])[0]


def _checked(output: object, index: int) -> tuple[Tensor, Tensor]:
    """A detector's ``(boxes, scores)`` as float tensors, or a ``ValueError`` saying what is wrong."""
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        raise ValueError(f"the detector must return (boxes, scores) for image {index}, got {type(output).__name__}")
    try:
        boxes = torch.as_tensor(output[0]).detach().to("cpu", torch.float32).reshape(-1, 4)
        scores = torch.as_tensor(output[1]).detach().to("cpu", torch.float32).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"the detector's output for image {index} is not (P, 4) boxes and (P,) scores: {err}") from err
    if len(boxes) != len(scores):
        raise ValueError(f"the detector returned {len(boxes)} boxes but {len(scores)} scores for image {index}")
    return boxes, scores


def detect_persons(detector: Detector, images: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """Run ``detector`` on ``(3, H, W)`` uint8 images (batched for a :class:`PersonDetector`), checking its outputs.

    Boxes smaller than one pixel or entirely outside their image are dropped; the others are clipped to it.
    """
    raw = detector.detect(images) if isinstance(detector, PersonDetector) else [detector(image) for image in images]
    found = []
    for index, (output, image) in enumerate(zip(raw, images)):
        boxes, scores = _checked(output, index)
        height, width = image.shape[-2:]
        boxes = clip_boxes_to_image(boxes, (height, width))
        valid = torch.isfinite(boxes).all(1) & ((boxes[:, 2:] - boxes[:, :2]) >= 1).all(1) & torch.isfinite(scores)
        found.append((boxes[valid], scores[valid]))
    return found
