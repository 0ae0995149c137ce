"""What the bottom-up models (DEKR, HigherHRNet) share: metadata with a :class:`~hrnet_zoo.codec.BottomUpCodec`, a
head rebuilt for other keypoints, and the part of timm's model API that applies to a network of several outputs.

Their :meth:`forward` returns the head's outputs (a tuple or list of maps, see each model), so timm's classifier
conventions that assume one tensor (``reset_classifier(0)`` giving pooled features) do not apply:
:meth:`~BottomUpModel.forward_features` gives the features the head reads, and a head always has keypoints.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..codec import BottomUpCodec, BottomUpMethod
from ..keypoints import KeypointSet, generic_keypoints, get_keypoint_set
from .meta import PoseMeta, head_meta
from .top_down import _PoseHeadAPI, _PoseModelBase

__all__ = ["BottomUpModel", "bottom_up_meta"]


def bottom_up_meta(
    method: BottomUpMethod,
    num_joints: int,
    input_size: tuple[int, int],
    pose_meta: PoseMeta | None = None,
    keypoints: KeypointSet | None = None,
    joints_asked: int | None = None,
) -> PoseMeta:
    """The metadata of a bottom-up model: ``pose_meta`` when given, else COCO's keypoints for 17 joints (generic
    names otherwise) with ``method``'s codec at ``input_size``; then the head asked for (``joints_asked``,
    ``keypoints``, see :func:`~hrnet_zoo.models.meta.head_meta`).

    Raises:
        ValueError: ``pose_meta`` with a top-down codec, or a head without keypoints.
    """
    if pose_meta is not None and not pose_meta.bottom_up:
        raise ValueError(
            f"a {method} model needs a bottom-up codec (BottomUpCodec), got pose metadata with "
            f"{type(pose_meta.codec).__name__}"
        )
    base = pose_meta or PoseMeta(
        get_keypoint_set("coco") if num_joints == 17 else generic_keypoints(num_joints),
        BottomUpCodec(method, input_size=input_size),
    )
    meta = head_meta(base, num_joints=joints_asked, keypoints=keypoints)
    if meta.num_joints < 1:
        raise ValueError(f"a bottom-up model predicts at least one keypoint, got num_joints={meta.num_joints}")
    return meta


class BottomUpModel(_PoseHeadAPI, _PoseModelBase):
    """Base of the bottom-up pose models: the HRNet backbone, a head of several outputs, metadata in one place.

    Subclasses build ``backbone`` and ``head`` (:meth:`_make_head`), set :attr:`num_features` and implement
    :meth:`forward_features`; ``pose_meta.codec`` is a :class:`~hrnet_zoo.codec.BottomUpCodec`.
    """

    kind = "bottom_up"
    #: The checkpoint prefix of the whole head, dropped when a checkpoint of other keypoints is loaded with a new
    #: head (``reset_head``).
    head_module = "head"

    @property
    def num_joints(self) -> int:
        """Keypoints the head predicts (``pose_meta.num_joints``)."""
        return self.pose_meta.num_joints

    def _check_num_joints(self, num_joints: int) -> None:
        if num_joints < 1:
            raise ValueError(f"a bottom-up model predicts at least one keypoint, got num_joints={num_joints}")

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, num_features, H / 4, W / 4)``: what the head reads."""
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Any:
        """The head's outputs for features ``x`` (the features themselves when ``pre_logits``)."""
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Any:
        return self.forward_head(self.forward_features(x))
