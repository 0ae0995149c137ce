"""Keypoint metadata: names, skeleton, left/right flip pairs and OKS sigmas.

Besides COCO and MPII (defined here as the original HRNet defines them), every data set of the zoo's checkpoints
has its set, generated from OpenMMLab's data set definitions (``data/keypoint_sets.json``, written by
``tools/import_openmmlab_zoo.py``): whole-body, faces, hands, animals, crowds, fashion.

Pure data at the bottom of the package: this module imports nothing else of hrnet_zoo.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

__all__ = [
    "COCO_KEYPOINTS",
    "MPII_KEYPOINTS",
    "KeypointSet",
    "generic_keypoints",
    "get_keypoint_set",
    "list_keypoint_sets",
]


@dataclass(frozen=True)
class KeypointSet:
    """What a pose model predicts: one heatmap per named keypoint.

    Attributes:
        name: Short name of the keypoint set (``"coco"``, ``"mpii"``, or a custom one).
        names: Keypoint names, in heatmap order.
        skeleton: Pairs of keypoint indices (0-based) joined when drawing.
        flip_pairs: Pairs of indices that swap under a horizontal flip (left/right).
        sigmas: Per-keypoint OKS sigmas (COCO's falloff constants), if known.
    """

    name: str
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_pairs: tuple[tuple[int, int], ...] = ()
    sigmas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        for kind, pairs in (("skeleton", self.skeleton), ("flip_pairs", self.flip_pairs)):
            for a, b in pairs:
                if not (0 <= a < n and 0 <= b < n):
                    raise ValueError(f"{self.name}: {kind} pair {(a, b)} is out of range for {n} keypoints")
        if self.sigmas is not None and len(self.sigmas) != n:
            raise ValueError(f"{self.name}: {len(self.sigmas)} sigmas for {n} keypoints")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def flip_index(self) -> list[int]:
        """Permutation that maps each keypoint to its mirror image (itself when unpaired)."""
        index = list(range(len(self.names)))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return index

    def to_coco_category(self, category_id: int = 1, name: str = "person") -> dict[str, Any]:
        """This set as a COCO annotation file's category (1-based ``skeleton``), the inverse of
        :meth:`from_coco_category`."""
        skeleton = [[a + 1, b + 1] for a, b in self.skeleton]
        category: dict[str, Any] = {
            "id": category_id,
            "name": name,
            "supercategory": name,
            "keypoints": list(self.names),
            "skeleton": skeleton,
        }
        if self.sigmas is not None:
            category["sigmas"] = list(self.sigmas)
        return category

    @classmethod
    def from_coco_category(
        cls, category: Mapping[str, Any], flip_pairs: Sequence[tuple[int, int]] | None = None
    ) -> KeypointSet:
        """Build from a COCO annotation file's category (``keypoints`` names, 1-based ``skeleton``).

        Flip pairs are taken from ``flip_pairs`` or inferred from ``left_*``/``right_*`` name pairs. OKS sigmas
        are read from a ``sigmas`` entry if the category has one (COCO's own categories have none: use
        :data:`COCO_KEYPOINTS` for COCO).
        """
        names = tuple(category["keypoints"])
        skeleton = tuple((int(a) - 1, int(b) - 1) for a, b in category.get("skeleton", []))
        if flip_pairs is None:
            position = {n: i for i, n in enumerate(names)}
            flip_pairs = [
                (i, position["right" + n[4:]])
                for i, n in enumerate(names)
                if n.startswith("left") and "right" + n[4:] in position
            ]
        sigmas = category.get("sigmas")
        return cls(
            str(category.get("name", "custom")),
            names,
            skeleton,
            tuple(tuple(p) for p in flip_pairs),
            None if sigmas is None else tuple(float(s) for s in sigmas),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists instead of tuples)."""
        return {
            "name": self.name,
            "names": list(self.names),
            "skeleton": [list(p) for p in self.skeleton],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "sigmas": None if self.sigmas is None else list(self.sigmas),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeypointSet:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: A missing or malformed field (the message names it).
        """
        try:
            sigmas = data.get("sigmas")
            return cls(
                name=str(data["name"]),
                names=tuple(str(n) for n in data["names"]),
                skeleton=tuple((int(a), int(b)) for a, b in data.get("skeleton") or ()),
                flip_pairs=tuple((int(a), int(b)) for a, b in data.get("flip_pairs") or ()),
                sigmas=None if sigmas is None else tuple(float(s) for s in sigmas),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"malformed keypoint set ({type(err).__name__}: {err}): {data!r:.200}") from err


# fmt: off
COCO_KEYPOINTS = KeypointSet(
    name="coco",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
        (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
)

MPII_KEYPOINTS = KeypointSet(
    name="mpii",
    names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
        "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
        "left_wrist",
    ),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
)

# fmt: on


def _data_sets() -> dict[str, KeypointSet]:
    """The keypoint sets generated from OpenMMLab's data set definitions."""
    records = json.loads(files("hrnet_zoo").joinpath("data", "keypoint_sets.json").read_text())
    return {name: KeypointSet.from_dict(record) for name, record in records.items()}


_KEYPOINT_SETS = {**_data_sets(), COCO_KEYPOINTS.name: COCO_KEYPOINTS, MPII_KEYPOINTS.name: MPII_KEYPOINTS}


def generic_keypoints(num_joints: int) -> KeypointSet:
    """Placeholder metadata for a head without named keypoints: ``joint_0`` ... (no skeleton, no flip pairs)."""
    return KeypointSet("custom", tuple(f"joint_{i}" for i in range(num_joints)))


def get_keypoint_set(name: str) -> KeypointSet:
    """The built-in keypoint set called ``name`` (``"coco"``, ``"coco_wholebody"``, ``"wflw"``... see
    :func:`list_keypoint_sets`)."""
    if name not in _KEYPOINT_SETS:
        raise ValueError(f"unknown keypoint set {name!r}: built-in sets are {', '.join(sorted(_KEYPOINT_SETS))}")
    return _KEYPOINT_SETS[name]


def list_keypoint_sets() -> list[str]:
    """Names of the built-in keypoint sets."""
    return sorted(_KEYPOINT_SETS)
