"""Keypoint format conversions, checked against tables written here from the published definitions.

The tables give, for each joint of a format, the COCO / COCO-WholeBody index it copies, a tuple of indices it is the
mean of, or ``None`` when it cannot be filled. They follow OpenPose's ``doc/02_output.md`` and ``poseParameters.cpp``
(COCO-18 and BODY_25 orders), mmpose's ``convert_keypoint_definition`` (COCO -> H36M) and the Halpe-FullBody README
/ mmpose's ``halpe26.py``, independently of the module's own tables.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrnet_zoo.keypoint_formats import KEYPOINT_FORMATS, convert_keypoints, keypoint_format
from hrnet_zoo.keypoints import COCO_KEYPOINTS, get_keypoint_set

# COCO indices: 0 nose, 1/2 left/right eye, 3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips,
# 13/14 knees, 15/16 ankles. COCO-WholeBody adds 17-19 left big toe, small toe, heel and 20-22 the right ones.
SHOULDERS, HIPS = (5, 6), (11, 12)

OPENPOSE18_NAMES = (
    "Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist RHip RKnee RAnkle LHip LKnee LAnkle REye LEye REar LEar"
).split()
OPENPOSE18_FROM_COCO = [0, SHOULDERS, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]

BODY25_NAMES = (
    "Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist MidHip RHip RKnee RAnkle LHip LKnee LAnkle "
    "REye LEye REar LEar LBigToe LSmallToe LHeel RBigToe RSmallToe RHeel"
).split()
BODY25_FROM_WHOLEBODY = [0, SHOULDERS, 6, 8, 10, 5, 7, 9, HIPS, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
BODY25_FROM_WHOLEBODY += [17, 18, 19, 20, 21, 22]
BODY25_FROM_COCO = BODY25_FROM_WHOLEBODY[:19] + [None] * 6

H36M_NAMES = (
    "root right_hip right_knee right_foot left_hip left_knee left_foot spine thorax neck_base head "
    "left_shoulder left_elbow left_wrist right_shoulder right_elbow right_wrist"
).split()
H36M_FROM_COCO = [HIPS, 12, 14, 16, 11, 13, 15, SHOULDERS + HIPS, SHOULDERS, 0, (1, 2), 5, 7, 9, 6, 8, 10]

HALPE26_FEET = "left_big_toe right_big_toe left_small_toe right_small_toe left_heel right_heel".split()
HALPE26_NAMES = [*COCO_KEYPOINTS.names, "head", "neck", "hip", *HALPE26_FEET]
HALPE26_FROM_WHOLEBODY = [*range(17), None, SHOULDERS, HIPS, 17, 20, 18, 21, 19, 22]
HALPE26_FROM_COCO = HALPE26_FROM_WHOLEBODY[:20] + [None] * 6

TABLES = [
    ("coco", "openpose18", OPENPOSE18_FROM_COCO),
    ("coco", "body25", BODY25_FROM_COCO),
    ("coco_wholebody", "body25", BODY25_FROM_WHOLEBODY),
    ("coco", "h36m", H36M_FROM_COCO),
    ("coco", "halpe26", HALPE26_FROM_COCO),
    ("coco_wholebody", "halpe26", HALPE26_FROM_WHOLEBODY),
    ("coco", "coco_wholebody", [*range(17)] + [None] * 116),
]

# OpenPose's drawn limbs (POSE_COCO_PAIRS_RENDER_GPU, POSE_BODY_25_PAIRS_RENDER_GPU) and left/right pairs.
OPENPOSE18_LIMBS = [(1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12)]
OPENPOSE18_LIMBS += [(12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17)]
BODY25_LIMBS = [(1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12)]
BODY25_LIMBS += [(12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21)]
BODY25_LIMBS += [(11, 22), (22, 23), (11, 24)]
OPENPOSE18_FLIPS = [(2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)]
BODY25_FLIPS = [(2, 5), (3, 6), (4, 7), (9, 12), (10, 13), (11, 14), (15, 16), (17, 18), (19, 22), (20, 23), (21, 24)]
HALPE26_FLIPS = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (20, 21), (22, 23), (24, 25)]


def random_pose(count: int, *batch: int, columns: int = 3, seed: int = 0) -> np.ndarray:
    """Positions in [0, 100) and scores in (0.05, 1), all distinct, as float64."""
    rng = np.random.default_rng(seed)
    pose = rng.uniform(0, 100, (*batch, count, columns))
    if columns == 3:
        pose[..., 2] = rng.uniform(0.05, 1, (*batch, count))
    return pose


def expected_from_table(pose: np.ndarray, table: list) -> np.ndarray:
    """The conversion the table describes, joint by joint."""
    expected = np.zeros((*pose.shape[:-2], len(table), pose.shape[-1]))
    for index, entry in enumerate(table):
        if entry is None:
            continue
        ends = [entry] if isinstance(entry, int) else list(entry)
        expected[..., index, :2] = pose[..., ends, :2].mean(axis=-2)
        if pose.shape[-1] == 3:
            expected[..., index, 2] = pose[..., ends, 2].min(axis=-1)
    return expected


def as_sets(pairs) -> set[frozenset[int]]:
    return {frozenset(pair) for pair in pairs}


def test_the_formats():
    assert KEYPOINT_FORMATS == ("coco", "coco_wholebody", "openpose18", "body25", "h36m", "halpe26")
    for name in KEYPOINT_FORMATS:
        assert keypoint_format(name).name == name


@pytest.mark.parametrize(
    ("name", "count", "names"),
    [
        ("coco", 17, list(COCO_KEYPOINTS.names)),
        ("coco_wholebody", 133, list(get_keypoint_set("coco_wholebody").names)),
        ("openpose18", 18, OPENPOSE18_NAMES),
        ("body25", 25, BODY25_NAMES),
        ("h36m", 17, H36M_NAMES),
        ("halpe26", 26, HALPE26_NAMES),
    ],
)
def test_names_and_lengths(name: str, count: int, names: list[str]):
    keypoint_set = keypoint_format(name)
    assert len(keypoint_set) == count
    assert list(keypoint_set.names) == names


def test_openpose_skeletons_and_flip_pairs():
    assert as_sets(keypoint_format("openpose18").skeleton) == as_sets(OPENPOSE18_LIMBS)
    assert len(keypoint_format("openpose18").skeleton) == len(OPENPOSE18_LIMBS)
    assert as_sets(keypoint_format("body25").skeleton) == as_sets(BODY25_LIMBS)
    assert len(keypoint_format("body25").skeleton) == len(BODY25_LIMBS)
    assert as_sets(keypoint_format("openpose18").flip_pairs) == as_sets(OPENPOSE18_FLIPS)
    assert as_sets(keypoint_format("body25").flip_pairs) == as_sets(BODY25_FLIPS)


def test_halpe26_is_the_body_of_halpe():
    halpe26, halpe = keypoint_format("halpe26"), get_keypoint_set("halpe")
    assert as_sets(halpe26.flip_pairs) == as_sets(HALPE26_FLIPS)
    assert halpe26.skeleton == tuple((a, b) for a, b in halpe.skeleton if a < 26 and b < 26)
    assert len(halpe26.skeleton) == 27  # mmpose's halpe26.py links
    assert halpe26.sigmas == halpe.sigmas[:26]


@pytest.mark.parametrize(("source", "target", "table"), TABLES, ids=[f"{s}-{t}" for s, t, _ in TABLES])
@pytest.mark.parametrize("columns", [2, 3])
def test_conversions_follow_the_published_definitions(source: str, target: str, table: list, columns: int):
    pose = random_pose(len(keypoint_format(source)), 2, columns=columns)
    converted = convert_keypoints(pose, source, target)
    assert converted.shape == (2, len(table), columns)
    np.testing.assert_allclose(converted, expected_from_table(pose, table), rtol=0, atol=1e-12)


def test_synthesised_joints_are_midpoints_with_the_weaker_score():
    pose = np.zeros((17, 3))
    pose[5], pose[6] = (10, 20, 0.9), (30, 40, 0.4)  # shoulders
    pose[11], pose[12] = (12, 60, 0.7), (28, 64, 0.8)  # hips
    openpose = convert_keypoints(pose, "coco", "body25")
    np.testing.assert_allclose(openpose[1], (20, 30, 0.4))  # Neck
    np.testing.assert_allclose(openpose[8], (20, 62, 0.7))  # MidHip
    h36m = convert_keypoints(pose, "coco", "h36m")
    np.testing.assert_allclose(h36m[0], (20, 62, 0.7))  # root
    np.testing.assert_allclose(h36m[8], (20, 30, 0.4))  # thorax
    np.testing.assert_allclose(h36m[7], (20, 46, 0.4))  # spine: midway between root and thorax


def test_missing_joints_are_zeros():
    pose = random_pose(17, 3)
    body25 = convert_keypoints(pose, "coco", "body25")
    assert np.all(body25[:, 19:] == 0)  # no feet in COCO
    halpe = convert_keypoints(pose, "coco", "halpe26")
    assert np.all(halpe[:, 17] == 0)  # no head top anywhere
    assert np.all(halpe[:, 20:] == 0)
    wholebody = convert_keypoints(pose, "coco", "coco_wholebody")
    assert np.all(wholebody[:, 17:] == 0)
    assert np.all(wholebody[:, :17] == pose)


@pytest.mark.parametrize("middle", ["openpose18", "body25", "halpe26", "coco_wholebody", "coco"])
def test_round_trips_through_formats_that_hold_all_of_coco_are_exact(middle: str):
    pose = random_pose(17, 4, 2).astype(np.float32)
    back = convert_keypoints(convert_keypoints(pose, "coco", middle), middle, "coco")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, pose)


def test_round_trip_through_h36m_loses_the_eyes_and_ears():
    pose = random_pose(17, 5)
    back = convert_keypoints(convert_keypoints(pose, "coco", "h36m"), "h36m", "coco")
    kept = [0, *range(5, 17)]  # nose (as neck_base), arms, legs
    np.testing.assert_array_equal(back[:, kept], pose[:, kept])
    assert np.all(back[:, 1:5] == 0)


def test_synthesised_source_joints_are_not_read_back():
    pose = random_pose(25, 2)
    pose[:, 1] = pose[:, 8] = 1e6  # Neck and MidHip disagreeing with the joints they stand for
    openpose18 = convert_keypoints(pose, "body25", "openpose18")
    np.testing.assert_allclose(openpose18[:, 1, :2], pose[:, [2, 5], :2].mean(axis=1))
    h36m = convert_keypoints(pose, "body25", "h36m")
    np.testing.assert_allclose(h36m[:, 0, :2], pose[:, [9, 12], :2].mean(axis=1))


def test_wholebody_fills_the_feet_of_body25():
    pose = random_pose(133)
    body25 = convert_keypoints(pose, "coco_wholebody", "body25")
    np.testing.assert_array_equal(body25[19:], pose[[17, 18, 19, 20, 21, 22]])
    assert np.all(body25[:, 2] > 0)  # every joint filled


@pytest.mark.parametrize("batch", [(), (3,), (2, 4), (0,)])
@pytest.mark.parametrize("columns", [2, 3])
def test_batch_dimensions(batch: tuple[int, ...], columns: int):
    pose = random_pose(17, *batch, columns=columns)
    converted = convert_keypoints(pose, "coco", "body25")
    assert converted.shape == (*batch, 25, columns)
    np.testing.assert_allclose(converted, expected_from_table(pose, BODY25_FROM_COCO), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_dtype_is_kept(dtype):
    pose = random_pose(17, 2).astype(dtype)
    converted = convert_keypoints(pose, "coco", "h36m")
    assert isinstance(converted, np.ndarray)
    assert converted.dtype == dtype
    expected = expected_from_table(pose.astype(np.float64), H36M_FROM_COCO)
    np.testing.assert_allclose(converted.astype(np.float64), expected, rtol=2e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_torch_type_and_dtype_are_kept(dtype: torch.dtype):
    pose = torch.from_numpy(random_pose(17, 2)).to(dtype)
    converted = convert_keypoints(pose, "coco", "openpose18")
    assert isinstance(converted, torch.Tensor)
    assert converted.dtype == dtype
    assert converted.device == pose.device
    expected = expected_from_table(pose.double().numpy(), OPENPOSE18_FROM_COCO)
    np.testing.assert_allclose(converted.double().numpy(), expected, rtol=1e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_device_is_kept():
    pose = torch.from_numpy(random_pose(17, 2)).float()
    converted = convert_keypoints(pose.cuda(), "coco", "body25")
    assert converted.device == pose.cuda().device
    torch.testing.assert_close(converted.cpu(), convert_keypoints(pose, "coco", "body25"))


def test_numpy_and_torch_agree():
    pose = random_pose(133, 3)
    for target in KEYPOINT_FORMATS:
        from_numpy = convert_keypoints(pose, "coco_wholebody", target)
        from_torch = convert_keypoints(torch.from_numpy(pose), "coco_wholebody", target)
        np.testing.assert_array_equal(from_torch.numpy(), from_numpy)


def test_the_input_is_not_modified():
    pose = random_pose(17, 2)
    original = pose.copy()
    converted = convert_keypoints(pose, "coco", "coco")
    converted += 1
    np.testing.assert_array_equal(pose, original)
    tensor = torch.from_numpy(original.copy())
    convert_keypoints(tensor, "coco", "h36m").add_(1)
    np.testing.assert_array_equal(tensor.numpy(), original)


def test_unknown_formats():
    pose = random_pose(17)
    with pytest.raises(ValueError, match=r"unknown keypoint format 'openpose'.*coco, coco_wholebody, openpose18"):
        convert_keypoints(pose, "coco", "openpose")
    with pytest.raises(ValueError, match="unknown keypoint format 'mpii'"):
        convert_keypoints(pose, "mpii", "coco")
    with pytest.raises(ValueError, match=r"known formats are .*halpe26"):
        keypoint_format("halpe")


def test_wrong_joint_counts():
    with pytest.raises(ValueError, match="keypoints have 16 joints; a 'coco' pose has 17"):
        convert_keypoints(random_pose(16, 2), "coco", "body25")
    with pytest.raises(ValueError, match="keypoints have 17 joints; a 'body25' pose has 25"):
        convert_keypoints(torch.zeros(17, 3), "body25", "coco")


@pytest.mark.parametrize("shape", [(17, 4), (17, 1), (17,), (2, 17, 5)])
def test_wrong_shapes(shape: tuple[int, ...]):
    with pytest.raises(ValueError, match=r"must have shape \(\.\.\., K, 2\) \(x, y\) or \(\.\.\., K, 3\)"):
        convert_keypoints(np.zeros(shape), "coco", "h36m")
    with pytest.raises(ValueError, match=r"must have shape"):
        convert_keypoints(torch.zeros(shape), "coco", "h36m")


def test_wrong_types():
    with pytest.raises(TypeError, match="numpy array or a torch tensor, not list"):
        convert_keypoints(random_pose(17).tolist(), "coco", "h36m")
    with pytest.raises(TypeError, match="floating point, not int64"):
        convert_keypoints(np.zeros((17, 3), dtype=np.int64), "coco", "h36m")
    with pytest.raises(TypeError, match=r"floating point, not torch\.int64"):
        convert_keypoints(torch.zeros(17, 3, dtype=torch.int64), "coco", "h36m")
