"""hrnet_zoo.pose.track: ByteTrack-style pose tracking, its Kalman filter and boxes from poses, on synthetic clips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hrnet_zoo.keypoints import COCO_KEYPOINTS
from hrnet_zoo.pose.track import KalmanBoxFilter, PoseTracker, TrackerConfig, boxes_from_poses

# COCO joints of a standing person in box coordinates (0: left or top edge, 1: right or bottom edge)
HEAD = [(0.5, 0.08), (0.45, 0.06), (0.55, 0.06), (0.4, 0.08), (0.6, 0.08)]
ARMS_LOWERED = [(0.3, 0.2), (0.7, 0.2), (0.25, 0.35), (0.75, 0.35), (0.2, 0.5), (0.8, 0.5)]
ARMS_RAISED = [(0.3, 0.2), (0.7, 0.2), (0.2, 0.12), (0.8, 0.12), (0.15, 0.0), (0.85, 0.0)]
LEGS = [(0.4, 0.55), (0.6, 0.55), (0.4, 0.75), (0.6, 0.75), (0.4, 0.95), (0.6, 0.95)]
ARMS_DOWN = np.array(HEAD + ARMS_LOWERED + LEGS)
ARMS_UP = np.array(HEAD + ARMS_RAISED + LEGS)


def person_box(x: float, y: float, width: float = 60, height: float = 160) -> np.ndarray:
    return np.array([x, y, x + width, y + height], dtype=np.float64)


def pose_in(box: np.ndarray, template: np.ndarray, score: float = 0.9) -> np.ndarray:
    """``(K, 3)`` pose: the template placed in ``box``, every joint scoring ``score``."""
    xy = box[:2] + template * (box[2:] - box[:2])
    return np.concatenate([xy, np.full((len(template), 1), score)], axis=1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    intersection = max(width, 0) * max(height, 0)
    return intersection / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection)


# A frame: (person name, box, pose) of each person the detector found.
Frame = list[tuple[str, np.ndarray, np.ndarray]]


def crossing_boxes(t: int) -> tuple[np.ndarray, np.ndarray]:
    return person_box(100 + 4 * t, 100), person_box(216 - 4 * t, 110)


def crossing_clip(num_frames: int = 30, b_missed: tuple[int, ...] = (14, 15)) -> list[Frame]:
    """Person a walks right and b left at 4 px per frame, 10 px apart vertically; they cross between frames 14 and
    15 (boxes overlapping by IoU > 0.4 in frames 12-17); the detector misses b in ``b_missed``."""
    frames = []
    for t in range(num_frames):
        a, b = crossing_boxes(t)
        frame = [("a", a, pose_in(a, ARMS_DOWN))]
        if t not in b_missed:
            frame.append(("b", b, pose_in(b, ARMS_UP)))
        frames.append(frame)
    return frames


def track_clip(tracker: PoseTracker, clip: list[Frame], seed: int = 0) -> dict[str, list[int]]:
    """Each person's ids, frame by frame, the detections given to the tracker in a shuffled order."""
    rng = np.random.default_rng(seed)
    ids: dict[str, list[int]] = {}
    for frame in clip:
        shuffled = [frame[i] for i in rng.permutation(len(frame))]
        boxes = np.stack([box for _, box, _ in shuffled])
        keypoints = np.stack([pose for _, _, pose in shuffled])
        assigned = tracker.update(boxes, np.full(len(shuffled), 0.9), keypoints)
        assert assigned.dtype == np.int64 and assigned.shape == (len(shuffled),)
        for (name, _, _), track_id in zip(shuffled, assigned):
            ids.setdefault(name, []).append(int(track_id))
    return ids


def greedy_last_box_ids(clip: list[Frame], min_iou: float = 0.3) -> dict[str, list[int]]:
    """Reference tracker without a motion model: detections matched greedily, the highest IoU first, to each
    track's last box."""
    last_boxes: dict[int, np.ndarray] = {}
    ids: dict[str, list[int]] = {}
    for frame in clip:
        pairs = sorted(
            ((iou(box, last), d, track) for d, (_, box, _) in enumerate(frame) for track, last in last_boxes.items()),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        for overlap, d, track in pairs:
            if overlap >= min_iou and d not in assigned and track not in assigned.values():
                assigned[d] = track
        for d, (name, box, _) in enumerate(frame):
            track = assigned.get(d, max(last_boxes, default=0) + 1)
            last_boxes[track] = box
            ids.setdefault(name, []).append(track)
    return ids


def test_crossing_clip_overlaps_heavily():
    overlaps = [iou(*crossing_boxes(t)) for t in range(30)]
    assert [t for t, overlap in enumerate(overlaps) if overlap > 0.4] == [12, 13, 14, 15, 16, 17]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("oks_weight", [0.0, 0.5])
def test_crossing_persons_keep_their_ids(oks_weight, seed):
    tracker = PoseTracker(TrackerConfig(oks_weight=oks_weight), sigmas=COCO_KEYPOINTS.sigmas)
    ids = track_clip(tracker, crossing_clip(), seed)
    assert len(ids["a"]) == 30 and len(ids["b"]) == 28  # b missed in frames 14 and 15, found again after
    assert len(set(ids["a"])) == 1 and len(set(ids["b"])) == 1
    assert {ids["a"][0], ids["b"][0]} == {1, 2}
    assert tracker.active_poses()[0].tolist() == [1, 2]


def test_matching_to_the_last_box_swaps_crossing_persons():
    """Without the Kalman motion model the crossing clip swaps identities: the motion model is what keeps them."""
    ids = greedy_last_box_ids(crossing_clip())
    assert len(set(ids["a"])) > 1


def test_lost_in_last_update_reports_the_frame_a_track_is_lost():
    tracker = PoseTracker()
    lost = []
    for frame in crossing_clip():
        boxes = np.stack([box for _, box, _ in frame])
        tracker.update(boxes, np.full(len(frame), 0.9), np.stack([pose for _, _, pose in frame]))
        lost.append(tracker.lost_in_last_update)
    assert [t for t, flag in enumerate(lost) if flag] == [14]  # b lost in 14; still lost, not newly, in 15


def jittered_standing_pair(frames: int = 8, jitter_frame: int = 4) -> list[Frame]:
    """Persons a and b stand 10 px apart (boxes at IoU 0.71); in ``jitter_frame`` the detector's boxes of the two
    land 2 px from the other's (the poses stay on the persons)."""
    a, b = person_box(100, 100), person_box(110, 100)
    clip = []
    for t in range(frames):
        box_a, box_b = (person_box(108, 100), person_box(102, 100)) if t == jitter_frame else (a, b)
        clip.append([("a", box_a, pose_in(a, ARMS_DOWN)), ("b", box_b, pose_in(b, ARMS_UP))])
    return clip


def test_oks_keeps_ids_where_iou_alone_swaps():
    with_oks = track_clip(PoseTracker(TrackerConfig(oks_weight=0.5)), jittered_standing_pair())
    assert len(set(with_oks["a"])) == 1 and len(set(with_oks["b"])) == 1 and with_oks["a"] != with_oks["b"]
    iou_only = track_clip(PoseTracker(TrackerConfig(oks_weight=0.0)), jittered_standing_pair())
    assert iou_only["a"][4] == iou_only["b"][0]  # a took b's id


def standing(tracker: PoseTracker, box: np.ndarray | None, score: float = 0.9) -> int | None:
    """One frame with one person at ``box`` (or nobody): the id the tracker gave."""
    if box is None:
        tracker.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3)))
        return None
    return int(tracker.update(box[None], np.array([score]), pose_in(box, ARMS_DOWN)[None])[0])


@pytest.mark.parametrize(("missing", "same_id"), [(5, True), (6, False)])
def test_a_track_waits_track_buffer_frames(missing, same_id):
    tracker = PoseTracker(TrackerConfig(track_buffer=5))
    box = person_box(100, 100)
    assert [standing(tracker, box) for _ in range(3)] == [1, 1, 1]
    for _ in range(missing):
        standing(tracker, None)
    assert standing(tracker, box) == (1 if same_id else 2)


def test_ids_are_never_reused():
    tracker = PoseTracker(TrackerConfig(track_buffer=0))
    box = person_box(100, 100)
    assert standing(tracker, box) == 1
    standing(tracker, None)  # removed at once
    assert standing(tracker, box) == 2
    tracker.reset()
    assert tracker.active_poses()[0].size == 0
    assert standing(tracker, box) == 3
    tracker.reset()
    two = np.stack([person_box(100, 100), person_box(300, 100)])
    assert tracker.update(two, np.array([0.9, 0.8])).tolist() == [4, 5]


def test_low_score_detection_continues_a_tracked_track():
    tracker = PoseTracker()
    assert [standing(tracker, person_box(100 + 4 * t, 100)) for t in range(3)] == [1, 1, 1]
    assert standing(tracker, person_box(112, 100), score=0.3) == 1  # second association
    ids, _, scores = tracker.active_poses()
    assert ids.tolist() == [1] and scores.tolist() == [pytest.approx(0.3)]
    assert standing(tracker, person_box(116, 100), score=0.05) == -1  # below low_score: ignored
    assert tracker.lost_in_last_update
    assert standing(tracker, person_box(120, 100), score=0.3) == -1  # a lost track is not found by low scores
    assert standing(tracker, person_box(124, 100)) == 1  # but by a high score


def test_low_score_detection_alone_starts_no_track():
    tracker = PoseTracker(TrackerConfig(new_track_score=0.7))
    assert standing(tracker, person_box(100, 100), score=0.3) == -1
    assert standing(tracker, person_box(100, 100), score=0.6) == -1  # high, but below new_track_score
    assert tracker.active_poses()[0].size == 0
    assert standing(tracker, person_box(100, 100), score=0.7) == 1


def test_track_ids_given_by_the_caller_are_honoured():
    tracker = PoseTracker()
    left, right = person_box(100, 100), person_box(300, 100)
    poses = np.stack([pose_in(left, ARMS_DOWN), pose_in(right, ARMS_UP)])
    assert tracker.update(np.stack([left, right]), np.array([0.9, 0.9]), poses).tolist() == [1, 2]
    # the caller says the box on the left is track 2's (a low score, which would start or take nothing by itself)
    moved = pose_in(left, ARMS_UP)
    ids = tracker.update(left[None], np.array([0.2]), moved[None], track_ids=np.array([2]))
    assert ids.tolist() == [2]
    active_ids, active_poses, active_scores = tracker.active_poses()
    assert active_ids.tolist() == [2] and active_scores.tolist() == [pytest.approx(0.2)]
    np.testing.assert_allclose(active_poses[0], moved, rtol=1e-6)
    assert tracker.lost_in_last_update  # track 1 got nothing
    # a given id takes its track out of the associations: the -1 detection on the left cannot take track 2
    ids = tracker.update(np.stack([left, right]), np.array([0.9, 0.9]), poses, track_ids=np.array([-1, 2]))
    assert ids.tolist() == [1, 2]  # track 1 (lost) found again on the left


def test_track_ids_must_be_held_tracks():
    tracker = PoseTracker()
    box = person_box(100, 100)
    assert standing(tracker, box) == 1
    with pytest.raises(ValueError, match="ids of tracks this tracker holds"):
        tracker.update(box[None], np.array([0.9]), track_ids=np.array([7]))
    with pytest.raises(ValueError, match="more than one detection"):
        tracker.update(np.stack([box, box]), np.array([0.9, 0.9]), track_ids=np.array([1, 1]))
    with pytest.raises(ValueError, match="integers"):
        tracker.update(box[None], np.array([0.9]), track_ids=np.array([1.0]))
    tracker.reset()
    with pytest.raises(ValueError, match="ids of tracks this tracker holds"):
        tracker.update(box[None], np.array([0.9]), track_ids=np.array([1]))


def test_active_poses_are_the_last_matched_poses_in_id_order():
    tracker = PoseTracker()
    boxes = np.stack([person_box(100, 100), person_box(300, 100), person_box(500, 100)])
    poses = np.stack([pose_in(box, ARMS_DOWN) for box in boxes])
    tracker.update(boxes, np.array([0.9, 0.8, 0.7]), poses)
    order = [2, 0]  # the second person missed, the others given in another order
    assert tracker.update(boxes[order], np.array([0.6, 0.9]), poses[order]).tolist() == [3, 1]
    ids, active, scores = tracker.active_poses()
    assert ids.tolist() == [1, 3]
    assert active.dtype == np.float32 and scores.dtype == np.float32
    np.testing.assert_allclose(active, poses[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(scores, [0.9, 0.6], rtol=1e-6)


def test_updates_without_keypoints_track_by_iou():
    tracker = PoseTracker()
    box = person_box(100, 100)
    assert [int(tracker.update(box[None] + 3 * t, np.array([0.9]))[0]) for t in range(3)] == [1, 1, 1]
    assert tracker.active_poses()[1].shape == (1, 0, 3)  # no keypoints seen yet
    assert standing(tracker, box + 9) == 1  # keypoints from now on
    assert tracker.active_poses()[1].shape == (1, 17, 3)


def kalman_reference_step(mean: np.ndarray, covariance: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, ...]:
    """One predict and update of DeepSORT's filter for one track, written out with explicit matrices."""
    motion = np.eye(8)
    for i in range(4):
        motion[i, i + 4] = 1.0
    observation = np.eye(4, 8)
    position, velocity = mean[3] / 20, mean[3] / 160
    process_noise = np.diag(np.square([position, position, 1e-2, position, velocity, velocity, 1e-5, velocity]))
    mean = motion @ mean
    covariance = motion @ covariance @ motion.T + process_noise
    height = mean[3]
    observation_noise = np.diag(np.square([height / 20, height / 20, 1e-1, height / 20]))
    innovation_covariance = observation @ covariance @ observation.T + observation_noise
    gain = covariance @ observation.T @ np.linalg.inv(innovation_covariance)
    width, box_height = box[2] - box[0], box[3] - box[1]
    measured = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, width / box_height, box_height])
    mean = mean + gain @ (measured - observation @ mean)
    covariance = (np.eye(8) - gain @ observation) @ covariance
    return mean, covariance


def test_kalman_step_matches_the_explicit_matrices():
    rng = np.random.default_rng(1)
    starts = np.stack([person_box(*rng.uniform(0, 500, 2), *rng.uniform(20, 200, 2)) for _ in range(3)])
    observed = starts + rng.normal(0, 5, starts.shape)
    kalman = KalmanBoxFilter()
    mean, covariance = kalman.initiate(starts)
    assert mean.shape == (3, 8) and covariance.shape == (3, 8, 8)
    np.testing.assert_allclose(kalman.to_boxes(mean), starts, rtol=1e-12)
    np.testing.assert_array_equal(mean[:, 4:], 0)
    heights = starts[:, 3] - starts[:, 1]
    np.testing.assert_allclose(covariance[:, 0, 0], (heights / 10) ** 2)  # twice the position deviation
    np.testing.assert_allclose(covariance[:, 4, 4], (heights / 16) ** 2)  # ten times the velocity deviation
    kept = mean.copy(), covariance.copy(), observed.copy()
    step_mean, step_covariance = kalman.update(*kalman.predict(mean, covariance), observed)
    for i in range(3):
        reference_mean, reference_covariance = kalman_reference_step(mean[i], covariance[i], observed[i])
        np.testing.assert_allclose(step_mean[i], reference_mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(step_covariance[i], reference_covariance, rtol=1e-7, atol=1e-9)
    for before, after in zip(kept, (mean, covariance, observed)):
        np.testing.assert_array_equal(before, after)


def test_kalman_prediction_converges_on_constant_velocity():
    def true_box(t: int) -> np.ndarray:
        return person_box(50 + 5 * t, 80 - 3 * t, 50, 120)[None]

    kalman = KalmanBoxFilter()
    mean, covariance = kalman.initiate(true_box(0))
    errors = []
    for t in range(1, 41):
        mean, covariance = kalman.predict(mean, covariance)
        errors.append(np.abs(kalman.to_boxes(mean) - true_box(t)).max())
        mean, covariance = kalman.update(mean, covariance, true_box(t))
    assert errors[0] == pytest.approx(5.0)  # no velocity known yet
    assert errors[-1] < 0.05
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(errors[1:]))
    np.testing.assert_allclose(mean[0, 4:6], [5, -3], atol=0.01)


def test_boxes_from_poses_extent_padding_and_validity():
    keypoints = np.zeros((4, 5, 3))
    keypoints[0, :, :2] = [(10, 20), (30, 60), (20, 40), (100, 100), (0, 0)]
    keypoints[0, :, 2] = [0.9, 0.5, 0.3, 0.1, 0.29]  # the last two below the threshold
    keypoints[1, :2] = [(10, 20, 0.9), (30, 60, 0.9)]  # two confident joints only
    keypoints[2, :3] = [(10, 20, 0.9), (10, 20, 0.9), (10.5, 20.5, 0.9)]  # a box under 1 px
    keypoints[3, :3] = [(10, 20, 0.9), (30, 60, 0.9), (20, 40, 0.9)]
    kept = keypoints.copy()
    boxes, valid = boxes_from_poses(keypoints)
    assert boxes.dtype == np.float32 and boxes.shape == (4, 4) and valid.dtype == bool
    # extent x 10..30, y 20..60: centre (20, 40), size 20 x 40 grown to 24 x 48
    np.testing.assert_allclose(boxes[0], [8, 16, 32, 64])
    np.testing.assert_allclose(boxes[3], [8, 16, 32, 64])
    assert valid.tolist() == [True, False, False, True]
    np.testing.assert_array_equal(boxes[1:3], 0)
    assert boxes_from_poses(keypoints, min_keypoints=2)[1].tolist() == [True, True, False, True]
    np.testing.assert_allclose(boxes_from_poses(keypoints, padding=1.0)[0][0], [10, 20, 30, 60])
    np.testing.assert_array_equal(keypoints, kept)


def test_boxes_from_poses_clips_to_the_image():
    keypoints = np.array([[(10, 20, 0.9), (30, 60, 0.9), (20, 40, 0.9)], [(5, 60, 0.9), (25, 80, 0.9), (15, 70, 0.9)]])
    boxes, valid = boxes_from_poses(keypoints, image_size=(50, 30))  # height 50, width 30
    np.testing.assert_allclose(boxes[0], [8, 16, 30, 50])
    assert valid.tolist() == [True, False]  # the second lies below the image: clipped to a line
    np.testing.assert_array_equal(boxes[1], 0)
    boxes, valid = boxes_from_poses(keypoints, image_size=(100, 100))
    np.testing.assert_allclose(boxes[1], [3, 58, 27, 82])
    assert boxes_from_poses(np.zeros((0, 17, 3)))[0].shape == (0, 4)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"keypoints": np.zeros((2, 17))}, "keypoints must be"),
        ({"padding": 0}, "padding"),
        ({"min_keypoints": 0}, "min_keypoints"),
        ({"image_size": (0, 10)}, "image_size"),
    ],
)
def test_boxes_from_poses_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        boxes_from_poses(**{"keypoints": np.zeros((2, 17, 3)), **arguments})


@pytest.mark.parametrize(
    "field",
    [
        {"high_score": 1.5},
        {"low_score": 0.6},
        {"new_track_score": 0.4},
        {"match_threshold": 0.0},
        {"low_match_threshold": 1.2},
        {"track_buffer": -1},
        {"track_buffer": 2.5},
        {"oks_weight": float("nan")},
        {"keypoint_threshold": -0.1},
    ],
)
def test_config_names_the_bad_field(field):
    (name,) = field
    with pytest.raises(ValueError, match=f"TrackerConfig.{name} "):
        TrackerConfig(**field)


def test_tracker_rejects_bad_sigmas():
    with pytest.raises(ValueError, match="sigmas"):
        PoseTracker(sigmas=[0.1, 0.0])


GOOD_BOXES = np.stack([person_box(100, 100), person_box(300, 100)])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"boxes": GOOD_BOXES[:, :3]}, r"boxes must be \(P, 4\)"),
        ({"boxes": GOOD_BOXES[:, None]}, r"boxes must be \(P, 4\)"),
        ({"boxes": GOOD_BOXES[:, [2, 1, 0, 3]]}, "positive width and height"),
        ({"boxes": np.where(GOOD_BOXES == 100, np.nan, GOOD_BOXES)}, "finite"),
        ({"scores": np.ones(3)}, r"scores must be \(2,\)"),
        ({"keypoints": np.zeros((2, 17, 2))}, r"keypoints must be \(2, K, 3\)"),
        ({"keypoints": np.zeros((3, 17, 3))}, r"keypoints must be \(2, K, 3\)"),
        ({"keypoints": np.zeros((2, 16, 3))}, "K = 17"),
        ({"track_ids": np.array([-1])}, r"track_ids must be \(2,\)"),
        ({"track_ids": np.array([-2, -1])}, "track_ids must be -1 or"),
    ],
)
def test_update_rejects_bad_inputs(arguments, message):
    tracker = PoseTracker(sigmas=COCO_KEYPOINTS.sigmas)
    with pytest.raises(ValueError, match=message):
        tracker.update(**{"boxes": GOOD_BOXES, "scores": np.ones(2), **arguments})


def test_number_of_keypoints_is_fixed_by_the_first_keypoints():
    tracker = PoseTracker()
    box = person_box(100, 100)
    tracker.update(box[None], np.array([0.9]), np.zeros((1, 5, 3)))
    with pytest.raises(ValueError, match=r"K = 5 joints \(as before"):
        tracker.update(box[None], np.array([0.9]), np.zeros((1, 17, 3)))


def test_update_does_not_modify_its_inputs():
    tracker = PoseTracker()
    clip = crossing_clip(num_frames=6)
    for t, frame in enumerate(clip):
        boxes = np.stack([box for _, box, _ in frame]).astype(np.float32)
        scores = np.array([0.9, 0.4])[: len(frame)]
        keypoints = np.stack([pose for _, _, pose in frame])
        track_ids = np.array([1, -1] if t > 0 else [-1, -1])[: len(frame)]
        inputs = (boxes, scores, keypoints, track_ids)
        kept = [array.copy() for array in inputs]
        for array in inputs:
            array.setflags(write=False)
        tracker.update(boxes, scores, keypoints, track_ids)
        for before, after in zip(kept, inputs):
            np.testing.assert_array_equal(before, after)
