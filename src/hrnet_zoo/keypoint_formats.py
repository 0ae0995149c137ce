"""Pose keypoints converted between skeleton formats, for the tool that comes next (ControlNet and other OpenPose
consumers, 3D lifters trained on Human3.6M, Halpe users).

Formats (:data:`KEYPOINT_FORMATS`), each a :class:`~hrnet_zoo.keypoints.KeypointSet` (:func:`keypoint_format`):

- ``coco``: COCO's 17 body joints (:data:`~hrnet_zoo.keypoints.COCO_KEYPOINTS`).
- ``coco_wholebody``: COCO-WholeBody's 133 joints: COCO's 17, six foot joints, 68 face and 2 x 21 hand joints
  (``get_keypoint_set("coco_wholebody")``).
- ``openpose18``: OpenPose's COCO-18 output (``POSE_COCO_BODY_PARTS``), the format ControlNet's OpenPose
  conditioning draws: Nose, Neck, RShoulder, ..., LEar.
- ``body25``: OpenPose's BODY_25 output (``POSE_BODY_25_BODY_PARTS``): COCO-18 with MidHip at index 8 and the six
  foot joints at the end.
- ``h36m``: the 17 Human3.6M joints 3D pose lifters take (``get_keypoint_set("h36m")``).
- ``halpe26``: the 26 body joints of Halpe (the first 26 of ``get_keypoint_set("halpe")``): COCO's 17, head (top),
  neck, hip, then the foot joints.

Sources followed:

- OpenPose (orders, joint names and limbs): ``doc/02_output.md`` and ``src/openpose/pose/poseParameters.cpp``
  (``POSE_COCO_BODY_PARTS``, ``POSE_BODY_25_BODY_PARTS``) of https://github.com/CMU-Perceptual-Computing-Lab/openpose;
  the skeletons are the drawn limbs, ``POSE_COCO_PAIRS_RENDER_GPU`` and ``POSE_BODY_25_PAIRS_RENDER_GPU`` of
  ``include/openpose/pose/poseParametersRender.hpp`` (the part-affinity pairs without the two ear-shoulder ones).
  Neck is the midpoint of the shoulders and MidHip that of the hips.
- Human3.6M from COCO: mmpose's ``convert_keypoint_definition`` (0.x ``demo/body3d_two_stage_video_demo.py``, 1.x
  ``demo/body3d_pose_lifter_demo.py``, https://github.com/open-mmlab/mmpose): root = midpoint of the hips,
  thorax = midpoint of the shoulders, spine = midpoint of root and thorax (so the mean of those four joints),
  head = midpoint of the eyes, neck_base = the nose; "right_foot" / "left_foot" are the ankles.
- Halpe: the keypoint list of https://github.com/Fang-Haoshu/Halpe-FullBody (README) and mmpose's
  ``configs/_base_/datasets/halpe26.py``. Its neck is taken as the midpoint of the shoulders and its hip as that of
  the hips; its head (the top of the head) has no counterpart in the other formats and is never filled.

How a conversion works: COCO-WholeBody's joint names are the common vocabulary ("canonical joints"). Each joint of a
format is either a copy of one canonical joint or synthesised as the mean of several (two, four for spine), or has
no source at all (Halpe's head). Converting reads which canonical joints the source format holds as copies
(synthesised joints are never read back), then fills each target joint: a copy where the source holds it, a mean
where the source holds all its ends, otherwise missing.

Conventions:

- Missing joints are ``x = y = 0`` and score 0, as OpenPose writes them.
- A synthesised joint's position is the mean of its ends' positions and its score the minimum of their scores: it
  is only as reliable as its weakest end (so an end with score 0 gives it score 0). 2-column input has no scores.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from hrnet_zoo.keypoints import COCO_KEYPOINTS, KeypointSet, get_keypoint_set

__all__ = ["KEYPOINT_FORMATS", "convert_keypoints", "keypoint_format"]

KeypointArray = TypeVar("KeypointArray", np.ndarray, torch.Tensor)

KEYPOINT_FORMATS: tuple[str, ...] = ("coco", "coco_wholebody", "openpose18", "body25", "h36m", "halpe26")

_SHOULDERS = ("left_shoulder", "right_shoulder")
_HIPS = ("left_hip", "right_hip")
_EYES = ("left_eye", "right_eye")

# Per joint of a format, the canonical joints it is made of: one (a copy), several (their mean) or none (missing).
_JointSources = tuple[tuple[str, ...], ...]


def _openpose_joints(with_feet: bool) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """OpenPose's body joints as ``(OpenPose name, canonical joints)``: COCO-18 order, or BODY_25's (MidHip after
    LWrist, the foot joints at the end)."""
    arms = (
        ("Nose", ("nose",)),
        ("Neck", _SHOULDERS),
        ("RShoulder", ("right_shoulder",)),
        ("RElbow", ("right_elbow",)),
        ("RWrist", ("right_wrist",)),
        ("LShoulder", ("left_shoulder",)),
        ("LElbow", ("left_elbow",)),
        ("LWrist", ("left_wrist",)),
    )
    legs_and_face = (
        ("RHip", ("right_hip",)),
        ("RKnee", ("right_knee",)),
        ("RAnkle", ("right_ankle",)),
        ("LHip", ("left_hip",)),
        ("LKnee", ("left_knee",)),
        ("LAnkle", ("left_ankle",)),
        ("REye", ("right_eye",)),
        ("LEye", ("left_eye",)),
        ("REar", ("right_ear",)),
        ("LEar", ("left_ear",)),
    )
    if not with_feet:
        return arms + legs_and_face
    feet = (
        ("LBigToe", ("left_big_toe",)),
        ("LSmallToe", ("left_small_toe",)),
        ("LHeel", ("left_heel",)),
        ("RBigToe", ("right_big_toe",)),
        ("RSmallToe", ("right_small_toe",)),
        ("RHeel", ("right_heel",)),
    )
    return (*arms, ("MidHip", _HIPS), *legs_and_face, *feet)


# OpenPose's drawn limbs (poseParametersRender.hpp), by joint name.
_OPENPOSE_BODY_LIMBS = (
    ("Neck", "RShoulder"),
    ("Neck", "LShoulder"),
    ("RShoulder", "RElbow"),
    ("RElbow", "RWrist"),
    ("LShoulder", "LElbow"),
    ("LElbow", "LWrist"),
)
_OPENPOSE_HEAD_LIMBS = (("Neck", "Nose"), ("Nose", "REye"), ("REye", "REar"), ("Nose", "LEye"), ("LEye", "LEar"))
_OPENPOSE18_LIMBS = (
    *_OPENPOSE_BODY_LIMBS,
    ("Neck", "RHip"),
    ("RHip", "RKnee"),
    ("RKnee", "RAnkle"),
    ("Neck", "LHip"),
    ("LHip", "LKnee"),
    ("LKnee", "LAnkle"),
    *_OPENPOSE_HEAD_LIMBS,
)
_BODY25_LIMBS = (
    ("Neck", "MidHip"),
    *_OPENPOSE_BODY_LIMBS,
    ("MidHip", "RHip"),
    ("RHip", "RKnee"),
    ("RKnee", "RAnkle"),
    ("MidHip", "LHip"),
    ("LHip", "LKnee"),
    ("LKnee", "LAnkle"),
    *_OPENPOSE_HEAD_LIMBS,
    ("LAnkle", "LBigToe"),
    ("LBigToe", "LSmallToe"),
    ("LAnkle", "LHeel"),
    ("RAnkle", "RBigToe"),
    ("RBigToe", "RSmallToe"),
    ("RAnkle", "RHeel"),
)

# H36M joint -> canonical joints (mmpose's COCO -> H36M conversion).
_H36M_SOURCES = {
    "root": _HIPS,
    "right_hip": ("right_hip",),
    "right_knee": ("right_knee",),
    "right_foot": ("right_ankle",),
    "left_hip": ("left_hip",),
    "left_knee": ("left_knee",),
    "left_foot": ("left_ankle",),
    "spine": _HIPS + _SHOULDERS,
    "thorax": _SHOULDERS,
    "neck_base": ("nose",),
    "head": _EYES,
    "left_shoulder": ("left_shoulder",),
    "left_elbow": ("left_elbow",),
    "left_wrist": ("left_wrist",),
    "right_shoulder": ("right_shoulder",),
    "right_elbow": ("right_elbow",),
    "right_wrist": ("right_wrist",),
}

# Halpe's joints that are not COCO-WholeBody joints of the same name -> canonical joints (none: never filled).
_HALPE_SYNTHESISED = {"head": (), "neck": _SHOULDERS, "hip": _HIPS}


def _openpose_set(
    name: str, joints: tuple[tuple[str, tuple[str, ...]], ...], limbs: tuple[tuple[str, str], ...]
) -> KeypointSet:
    """An OpenPose format's keypoint set: limbs given by joint name, flip pairs from the L*/R* names."""
    names = tuple(joint_name for joint_name, _ in joints)
    position = {joint_name: i for i, joint_name in enumerate(names)}
    flip_pairs = tuple(
        (i, position["R" + joint_name[1:]]) for i, joint_name in enumerate(names) if joint_name.startswith("L")
    )
    skeleton = tuple((position[a], position[b]) for a, b in limbs)
    return KeypointSet(name, names, skeleton, flip_pairs)


def _first_joints(keypoint_set: KeypointSet, count: int, name: str) -> KeypointSet:
    """The first ``count`` joints of a set, its skeleton and flip pairs restricted to them."""
    return KeypointSet(
        name,
        keypoint_set.names[:count],
        tuple((a, b) for a, b in keypoint_set.skeleton if a < count and b < count),
        tuple((a, b) for a, b in keypoint_set.flip_pairs if a < count and b < count),
        None if keypoint_set.sigmas is None else keypoint_set.sigmas[:count],
    )


def _build_formats() -> dict[str, tuple[KeypointSet, _JointSources]]:
    """Each format's keypoint set and, per joint, the canonical joints it is made of."""
    wholebody = get_keypoint_set("coco_wholebody")
    h36m = get_keypoint_set("h36m")
    halpe26 = _first_joints(get_keypoint_set("halpe"), 26, "halpe26")
    openpose18_joints = _openpose_joints(with_feet=False)
    body25_joints = _openpose_joints(with_feet=True)
    return {
        "coco": (COCO_KEYPOINTS, tuple((n,) for n in COCO_KEYPOINTS.names)),
        "coco_wholebody": (wholebody, tuple((n,) for n in wholebody.names)),
        "openpose18": (
            _openpose_set("openpose18", openpose18_joints, _OPENPOSE18_LIMBS),
            tuple(sources for _, sources in openpose18_joints),
        ),
        "body25": (
            _openpose_set("body25", body25_joints, _BODY25_LIMBS),
            tuple(sources for _, sources in body25_joints),
        ),
        "h36m": (h36m, tuple(_H36M_SOURCES[n] for n in h36m.names)),
        "halpe26": (halpe26, tuple(_HALPE_SYNTHESISED.get(n, (n,)) for n in halpe26.names)),
    }


_FORMATS = _build_formats()


def _format(name: str) -> tuple[KeypointSet, _JointSources]:
    if name not in _FORMATS:
        raise ValueError(f"unknown keypoint format {name!r}: known formats are {', '.join(KEYPOINT_FORMATS)}")
    return _FORMATS[name]


def keypoint_format(name: str) -> KeypointSet:
    """The keypoint set (names, skeleton, flip pairs) of a format of :data:`KEYPOINT_FORMATS`.

    Raises:
        ValueError: ``name`` is not a known format.
    """
    return _format(name)[0]


def _conversion_groups(source: str, target: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """How to fill the target joints: ``(target indices (T,), source indices (T, n))`` per number ``n`` of ends;
    target joints in no group are missing."""
    source_joints = _format(source)[1]
    held = {joints[0]: i for i, joints in enumerate(source_joints) if len(joints) == 1}
    groups: dict[int, tuple[list[int], list[list[int]]]] = {}
    for target_index, joints in enumerate(_format(target)[1]):
        if joints and all(joint in held for joint in joints):
            target_indices, source_indices = groups.setdefault(len(joints), ([], []))
            target_indices.append(target_index)
            source_indices.append([held[joint] for joint in joints])
    return [(np.array(t, dtype=np.int64), np.array(s, dtype=np.int64)) for t, s in groups.values()]


def _check_keypoints(keypoints: np.ndarray | torch.Tensor, source: str) -> None:
    if not isinstance(keypoints, (np.ndarray, torch.Tensor)):
        raise TypeError(f"keypoints must be a numpy array or a torch tensor, not {type(keypoints).__name__}")
    floating = keypoints.is_floating_point() if isinstance(keypoints, torch.Tensor) else keypoints.dtype.kind == "f"
    if not floating:
        raise TypeError(f"keypoints must be floating point, not {keypoints.dtype}")
    shape = tuple(keypoints.shape)
    if len(shape) < 2 or shape[-1] not in (2, 3):
        raise ValueError(f"keypoints must have shape (..., K, 2) (x, y) or (..., K, 3) (x, y, score), not {shape}")
    expected = len(_format(source)[0])
    if shape[-2] != expected:
        raise ValueError(f"keypoints have {shape[-2]} joints; a {source!r} pose has {expected}")


def convert_keypoints(keypoints: KeypointArray, source: str, target: str) -> KeypointArray:
    """Keypoints of the ``source`` format in the ``target`` format (see the module's documentation).

    Args:
        keypoints: ``(..., K_source, 2)`` (x, y) or ``(..., K_source, 3)`` (x, y, score), a floating-point numpy
            array or torch tensor; it is not modified.
        source: Format of ``keypoints``, one of :data:`KEYPOINT_FORMATS`.
        target: Format to convert to.

    Returns:
        ``(..., K_target, same last dimension)``, of the input's type, dtype and device. Joints the source cannot
        provide are zeros (score 0); synthesised joints are the mean of their ends, with the minimum of their scores.

    Raises:
        ValueError: An unknown format, or a shape that is not ``(..., K_source, 2 or 3)``.
        TypeError: Neither a numpy array nor a torch tensor, or not floating point.
    """
    target_set = _format(target)[0]
    _check_keypoints(keypoints, source)
    xp = torch if isinstance(keypoints, torch.Tensor) else np
    shape = (*keypoints.shape[:-2], len(target_set), keypoints.shape[-1])
    converted = keypoints.new_zeros(shape) if xp is torch else np.zeros(shape, dtype=keypoints.dtype)
    for target_indices, source_indices in _conversion_groups(source, target):
        ends = keypoints[..., source_indices, :]  # (..., T, n, 2 or 3)
        converted[..., target_indices, :2] = xp.mean(ends[..., :2], axis=-2)
        if shape[-1] == 3:
            converted[..., target_indices, 2] = xp.amin(ends[..., 2], axis=-1)
    return converted
