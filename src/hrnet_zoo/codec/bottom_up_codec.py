"""What a bottom-up model's outputs mean and how they are decoded: one record per model, like :class:`HeatmapCodec`
for the top-down ones.

:class:`BottomUpCodec` holds the test protocol of the code that measured a checkpoint's metrics: the input size the
image's short side is resized to, the test scales, and the decoder's settings (DEKR's centre and pose NMS,
associative embedding's grouping). Its defaults are the reference repositories' COCO test settings
(``experiments/coco/*.yaml`` of https://github.com/HRNet/DEKR and
https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .bottom_up import BottomUpResize, bottom_up_resize
from .dekr_openmmlab import openmmlab_bottom_up_resize
from .heatmap_codec import HEATMAP_STRIDE

__all__ = ["BOTTOM_UP_METHODS", "BottomUpCodec", "BottomUpMethod"]

BottomUpMethod = Literal["dekr", "associative_embedding"]
#: The bottom-up decoders: DEKR's disentangled keypoint regression and associative embedding's tag grouping.
BOTTOM_UP_METHODS: tuple[str, ...] = ("dekr", "associative_embedding")


@dataclass(frozen=True)
class BottomUpCodec:
    """A bottom-up model's test geometry and decoder settings.

    Attributes:
        method: ``"dekr"`` (centre heatmap and offsets, :func:`~hrnet_zoo.codec.decode_dekr`) or
            ``"associative_embedding"`` (heatmaps and tags, :func:`~hrnet_zoo.codec.decode_associative_embedding`).
        protocol: Whose test protocol (resize, flip test, decoding) measured the weights' metrics: ``"reference"``
            (the DEKR and HigherHRNet repositories, which mmpose 0.x follows) or ``"openmmlab1"`` (mmpose 1.x's
            DEKR: its ``BottomupResize`` and ``SPR`` decoder, :mod:`hrnet_zoo.codec.dekr_openmmlab`).
        input_size: ``(height, width)`` of the square training input; at test time the image's short side is
            resized to ``input_size[0]`` (rounded up to a multiple of 64) and the long side keeps the aspect
            (:func:`~hrnet_zoo.codec.bottom_up_resize`).
        scales: Test scales (``TEST.SCALE_FACTOR``); 1 must be among them.
        max_persons: Persons kept per image (``DATASET.MAX_NUM_PEOPLE``).
        detection_threshold: DEKR: a centre's minimum score (``TEST.KEYPOINT_THRESHOLD``, 0.01); associative
            embedding: a joint candidate's (``TEST.DETECTION_THRESHOLD``, 0.1).
        nms_threshold: DEKR's pose NMS distance, relative to the pose's size (``TEST.NMS_THRE``).
        nms_joints: DEKR's pose NMS: joints that must be close for two poses to be one (``TEST.NMS_NUM_THRE``).
        decrease: DEKR's multi-scale test: the scale of other scales' centre scores (``TEST.DECREASE``).
        rescore: DEKR: multiply the scores by the model's rescoring net (where the checkpoint ships one).
        rescore_skeleton: DEKR: the links the rescoring net's features are made of: ``"original"`` (the original
            DEKR's order, :data:`~hrnet_zoo.codec.DEKR_COCO_LINKS`) or ``"keypoints"`` (the keypoint set's skeleton,
            as mmpose 1.x feeds the same net).
        rescore_norm_links: DEKR: the two links (indices into ``rescore_skeleton``) whose mean length normalises
            the features: the torso sides, ``(9, 11)`` in the original's order, ``(5, 6)`` in mmpose's COCO skeleton.
        tag_threshold: Associative embedding: the largest tag distance within a person (``TEST.TAG_THRESHOLD``).
        nms_kernel: The heatmap NMS window: associative embedding's (``TEST.NMS_KERNEL``), and mmpose 1.x DEKR's
            centre NMS (``decode_nms_kernel``; the reference DEKR picks its window from the map size).
        adjust: Associative embedding: the quarter-pixel shift towards the higher neighbour (``TEST.ADJUST``).
        refine: Associative embedding: fill missing joints from the heatmaps near the person's tag
            (``TEST.REFINE``).
        heatmap_stages: Associative embedding: which outputs give heatmaps (``TEST.WITH_HEATMAPS``).
        tag_stages: Associative embedding: which outputs give tags (``TEST.WITH_AE``).
        project_to_image: Associative embedding: bring every output to the scale-1 input size before decoding
            (``TEST.PROJECT2IMAGE``).
    """

    method: BottomUpMethod = "dekr"
    protocol: Literal["reference", "openmmlab1"] = "reference"
    input_size: tuple[int, int] = (512, 512)
    scales: tuple[float, ...] = (1.0,)
    max_persons: int = 30
    detection_threshold: float | None = None
    nms_threshold: float = 0.05
    nms_joints: int = 8
    decrease: float = 0.9
    rescore: bool = False
    rescore_skeleton: Literal["original", "keypoints"] = "original"
    rescore_norm_links: tuple[int, int] = (9, 11)
    tag_threshold: float = 1.0
    nms_kernel: int = 5
    adjust: bool = True
    refine: bool = True
    heatmap_stages: tuple[bool, ...] = (True, True)
    tag_stages: tuple[bool, ...] = (True, False)
    project_to_image: bool = True

    def __post_init__(self) -> None:
        if self.method not in BOTTOM_UP_METHODS:
            raise ValueError(f"unknown bottom-up method {self.method!r}: expected one of {list(BOTTOM_UP_METHODS)}")
        if self.protocol not in ("reference", "openmmlab1"):
            raise ValueError(f"protocol must be 'reference' or 'openmmlab1', got {self.protocol!r}")
        if self.protocol == "openmmlab1" and (self.method != "dekr" or self.scales != (1.0,)):
            raise ValueError("the openmmlab1 protocol is mmpose 1.x's DEKR test: method 'dekr' at the single scale 1")
        size = tuple(int(s) for s in self.input_size)
        if len(size) != 2 or min(size) < 64:
            raise ValueError(f"input_size must be (height, width) of at least 64 pixels, got {self.input_size}")
        object.__setattr__(self, "input_size", size)
        scales = tuple(float(s) for s in self.scales)
        if not scales or 1.0 not in scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive and include 1, got {list(self.scales)}")
        object.__setattr__(self, "scales", tuple(sorted(scales, reverse=True)))
        if self.max_persons < 1 or self.nms_joints < 1 or self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ValueError(
                f"max_persons and nms_joints must be positive and nms_kernel odd, got max_persons={self.max_persons}, "
                f"nms_joints={self.nms_joints}, nms_kernel={self.nms_kernel}"
            )
        if self.rescore_skeleton not in ("original", "keypoints"):
            raise ValueError(f"rescore_skeleton must be 'original' or 'keypoints', got {self.rescore_skeleton!r}")
        object.__setattr__(self, "rescore_norm_links", tuple(int(i) for i in self.rescore_norm_links))
        object.__setattr__(self, "heatmap_stages", tuple(bool(s) for s in self.heatmap_stages))
        object.__setattr__(self, "tag_stages", tuple(bool(s) for s in self.tag_stages))

    @property
    def threshold(self) -> float:
        """The detection threshold in use: the given one, or the method's reference default."""
        if self.detection_threshold is not None:
            return self.detection_threshold
        return 0.01 if self.method == "dekr" else 0.1

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """``(height, width)`` of the stride-4 output for an ``input_size`` input."""
        return (self.input_size[0] // HEATMAP_STRIDE, self.input_size[1] // HEATMAP_STRIDE)

    def resizes(self, image_size: tuple[int, int]) -> list[BottomUpResize]:
        """The network inputs of an ``image_size`` ``(height, width)`` image, one per test scale, largest first.

        The reference DEKR sizes every scale from scale 1 (``resize_align_multi_scale(..., 1.0)``), HigherHRNet
        from the smallest test scale; mmpose 1.x resizes with its own ``BottomupResize``
        (:func:`~hrnet_zoo.codec.dekr_openmmlab.openmmlab_bottom_up_resize`).
        """
        if self.protocol == "openmmlab1":
            return [openmmlab_bottom_up_resize(image_size, self.input_size)]
        low = 1.0 if self.method == "dekr" else min(self.scales)
        return [bottom_up_resize(image_size, self.input_size[0], scale, low) for scale in self.scales]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        for key in ("input_size", "scales", "rescore_norm_links", "heatmap_stages", "tag_stages"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BottomUpCodec:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown bottom-up codec fields {sorted(unknown)}")
        values = dict(data)
        for key in ("input_size", "scales", "rescore_norm_links", "heatmap_stages", "tag_stages"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)
