"""Temporal smoothing of keypoint tracks: the One-Euro filter against the paper's algorithm, its jitter and lag on
synthetic tracks, and the Savitzky-Golay smoothing against scipy on interpolated series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import savgol_filter

from hrnet_zoo.pose.smooth import OneEuro, OneEuroFilter, OneEuroSmoother, Savgol, smooth_savgol

FPS = 30.0
DEFAULTS = OneEuro()
HEIGHT = 200.0  # pixels
# COCO's 17 joints of a person standing, in person heights (x right, y down from the top of the head).
STANDING = np.array(
    [
        [0.0, 0.06],
        [0.02, 0.04],
        [-0.02, 0.04],
        [0.05, 0.05],
        [-0.05, 0.05],
        [0.11, 0.19],
        [-0.11, 0.19],
        [0.14, 0.35],
        [-0.14, 0.35],
        [0.15, 0.5],
        [-0.15, 0.5],
        [0.07, 0.52],
        [-0.07, 0.52],
        [0.07, 0.74],
        [-0.07, 0.74],
        [0.07, 0.97],
        [-0.07, 0.97],
    ]
)


def paper_one_euro(
    values: list[float], times: list[float], config: OneEuro, sizes: list[float] | None = None
) -> list[float]:
    """Casiez et al.'s algorithm, sample by sample (the derivative from the previous filtered value), with the
    derivative divided by ``sizes`` when given."""

    def alpha(rate: float, cutoff: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * rate)

    out: list[float] = []
    x_hat = dx_hat = previous_time = 0.0
    for i, (x, t) in enumerate(zip(values, times)):
        if i == 0:
            x_hat, dx_hat = x, 0.0
        else:
            rate = 1.0 / (t - previous_time)
            dx = (x - x_hat) * rate / (sizes[i] if sizes else 1.0)
            a_d = alpha(rate, config.d_cutoff)
            dx_hat = a_d * dx + (1 - a_d) * dx_hat
            cutoff = config.min_cutoff + config.beta * abs(dx_hat)
            a = alpha(rate, cutoff)
            x_hat = a * x + (1 - a) * x_hat
        previous_time = t
        out.append(x_hat)
    return out


def person_track(offsets: np.ndarray, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Truth ``(T, 17, 2)`` and noisy ``(T, 17, 3)`` float32 observations (score 0.9) of a person ``HEIGHT`` px
    tall shifted sideways by ``offsets`` ``(T,)`` heights."""
    rng = np.random.default_rng(seed)
    truth = (STANDING[None] + np.stack([offsets, np.zeros_like(offsets)], -1)[:, None]) * HEIGHT + [300.0, 50.0]
    observed = np.concatenate([truth + rng.normal(0, noise, truth.shape), np.full((*truth.shape[:2], 1), 0.9)], -1)
    return truth, observed.astype(np.float32)


def run_one_euro(observed: np.ndarray, config: OneEuro = DEFAULTS) -> np.ndarray:
    smoother = OneEuroSmoother(config)
    ids = np.array([7])
    return np.stack([smoother(frame[None], ids, i / FPS)[0] for i, frame in enumerate(observed)])


def frame_jitter(track: np.ndarray) -> float:
    """RMS frame-to-frame displacement of the joints of ``(T, K, >=2)``, pixels."""
    return float(np.sqrt(np.mean(np.sum(np.diff(track[..., :2], axis=0) ** 2, axis=-1))))


# --- One-Euro ---


def test_one_euro_filter_equals_the_papers_algorithm():
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.02, 0.06, 80))  # irregular sampling
    values = 50 * np.sin(3 * times) + rng.normal(0, 2, 80)
    values[40:] += 100  # a jump: the adaptive cutoff at work
    for config in (OneEuro(), OneEuro(min_cutoff=1.0, beta=0.05, d_cutoff=2.0)):
        filter_ = OneEuroFilter(config)
        ours = [float(filter_(v, t)) for v, t in zip(values, times)]
        np.testing.assert_allclose(ours, paper_one_euro(list(values), list(times), config), rtol=0, atol=1e-6)


def test_smoother_measures_speed_in_person_sizes():
    rng = np.random.default_rng(2)
    frames = 40
    base = np.array([[0.0, 0.0], [30.0, 80.0], [10.0, 120.0]])
    keypoints = np.zeros((frames, 3, 3), dtype=np.float32)
    keypoints[..., :2] = base + np.linspace(0, 90, frames)[:, None, None] + rng.normal(0, 2, (frames, 3, 2))
    keypoints[..., 2] = 0.8
    keypoints[::5, 0, 2] = 0.1  # the first joint does not count in the size then
    times = [i / FPS for i in range(frames)]
    config = OneEuro(min_cutoff=0.8, beta=5.0)
    smoother = OneEuroSmoother(config)
    ours = np.stack([smoother(k[None], np.array([0]), t)[0] for k, t in zip(keypoints, times)])
    confident = [k[k[:, 2] >= 0.3, :2].astype(np.float64) for k in keypoints]
    sizes = [float(np.max(c.max(0) - c.min(0))) for c in confident]
    for joint in range(3):
        for coord in range(2):
            expected = paper_one_euro(list(keypoints[:, joint, coord].astype(np.float64)), times, config, sizes)
            np.testing.assert_allclose(ours[:, joint, coord], expected, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(ours[..., 2], keypoints[..., 2])


def test_one_euro_is_independent_of_the_pixel_scale():
    _, small = person_track(0.8 * np.arange(45) / FPS, noise=1.0)
    large = small.copy()
    large[..., :2] *= 10  # the same scene 10x the resolution
    expected = run_one_euro(small)
    expected[..., :2] *= 10
    np.testing.assert_allclose(run_one_euro(large), expected, rtol=1e-5)


def test_one_euro_removes_jitter_of_a_still_person():
    truth, observed = person_track(np.zeros(60), noise=2.0)
    smoothed = run_one_euro(observed)
    # measured: 4.0 px -> 0.77 px (5.2x, 5.1-5.2x over seeds); RMS error to the truth 2.8 px -> 1.2 px
    assert frame_jitter(smoothed) < frame_jitter(observed) / 4
    error = np.sqrt(np.mean(np.sum((smoothed[15:, :, :2] - truth[15:]) ** 2, axis=-1)))
    assert error < 1.6
    np.testing.assert_array_equal(smoothed[..., 2], observed[..., 2])


def test_one_euro_lag_on_a_walk_is_bounded():
    speed = 0.8 * HEIGHT  # px/s
    truth, observed = person_track(0.8 * np.arange(60) / FPS, noise=2.0)
    smoothed = run_one_euro(observed)
    lag_s = np.mean(truth[15:, :, 0] - smoothed[15:, :, 0]) / speed
    assert 0.0 < lag_s < 0.025  # measured 11 ms (10-12 ms over seeds)
    without_beta = run_one_euro(observed, OneEuro(beta=0.0))  # a plain low-pass: 1 / (2 pi 0.5 Hz) = 0.32 s
    assert np.mean(truth[15:, :, 0] - without_beta[15:, :, 0]) / speed > 0.2


def test_tracks_are_filtered_independently_and_untracked_persons_pass():
    _, first = person_track(0.5 * np.arange(20) / FPS, noise=2.0, seed=3)
    _, second = person_track(np.zeros(20), noise=2.0, seed=4)
    stranger = np.random.default_rng(5).uniform(0, 500, (20, 17, 3)).astype(np.float32)
    smoother = OneEuroSmoother()
    outputs: dict[int, list[np.ndarray]] = {3: [], 11: []}
    for i in range(20):
        persons = [(3, first[i]), (-1, stranger[i])] + ([] if 8 <= i < 12 else [(11, second[i])])  # gap of 4
        if i % 2:
            persons.reverse()
        ids = np.array([p[0] for p in persons])
        out = smoother(np.stack([p[1] for p in persons]), ids, i / FPS)
        np.testing.assert_array_equal(out[ids == -1][0], stranger[i])
        outputs[3].append(out[ids == 3][0])
        if 11 in ids:
            outputs[11].append(out[ids == 11][0])
    seen = [i for i in range(20) if not 8 <= i < 12]
    alone = OneEuroSmoother()
    expected = [alone(second[i][None], np.array([0]), i / FPS)[0] for i in seen]  # the gap: continued, te = 5 frames
    np.testing.assert_allclose(np.stack(outputs[11]), np.stack(expected), atol=1e-5)
    np.testing.assert_allclose(np.stack(outputs[3]), run_one_euro(first), atol=1e-5)


def test_one_euro_reset_and_first_observation():
    _, observed = person_track(np.zeros(5), noise=2.0)
    smoother = OneEuroSmoother()
    ids = np.array([0])
    np.testing.assert_array_equal(smoother(observed[:1], ids, 0.0), observed[:1])  # starts at its first value
    moved = smoother(observed[1:2], ids, 1 / FPS)
    assert not np.array_equal(moved, observed[1:2])
    smoother.reset()
    np.testing.assert_array_equal(smoother(observed[1:2], ids, 0.0), observed[1:2])  # forgotten, time restarts


def test_one_euro_rejects_bad_input_and_keeps_its_state():
    _, observed = person_track(np.zeros(4), noise=2.0)
    smoother = OneEuroSmoother()
    reference = OneEuroSmoother()
    ids = np.array([0])
    for s in (smoother, reference):
        s(observed[:1], ids, 0.0)
    with pytest.raises(ValueError, match="increase"):
        smoother(observed[1:2], ids, 0.0)
    with pytest.raises(ValueError, match="increase"):
        smoother(observed[1:2], ids, -1.0)
    with pytest.raises(ValueError, match=r"\(P, K, 3\)"):
        smoother(observed[1:2, :, :2], ids, 0.1)
    with pytest.raises(ValueError, match=r"\(P, K, 3\)"):
        smoother(observed[1], ids, 0.1)
    with pytest.raises(ValueError, match=r"track_ids: expected shape \(1,\)"):
        smoother(observed[1:2], np.array([0, 1]), 0.1)
    with pytest.raises(ValueError, match="twice"):
        smoother(np.concatenate([observed[1:2]] * 2), np.array([0, 0]), 0.1)
    with pytest.raises(ValueError, match="track 0 had 17 keypoints, now 5"):
        smoother(observed[1:2, :5], ids, 0.1)
    with pytest.raises(ValueError, match="integers"):
        smoother(observed[1:2], np.array([0.0]), 0.1)
    with pytest.raises(ValueError, match="timestamp"):
        smoother(observed[1:2], ids, math.nan)
    np.testing.assert_array_equal(smoother(observed[1:2], ids, 0.1), reference(observed[1:2], ids, 0.1))


def test_one_euro_handles_empty_frames_and_leaves_inputs_alone():
    smoother = OneEuroSmoother()
    assert smoother(np.zeros((0, 17, 3), np.float32), np.zeros(0, np.int64), 0.0).shape == (0, 17, 3)
    _, observed = person_track(np.zeros(3), noise=2.0)
    kept = observed.copy()
    for i, frame in enumerate(observed, start=1):
        out = smoother(frame[None], np.array([2]), i / FPS)
        assert out.dtype == np.float32 and out.shape == (1, 17, 3)
    np.testing.assert_array_equal(observed, kept)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_cutoff": 0.0}, "min_cutoff"),
        ({"min_cutoff": -1.0}, "min_cutoff"),
        ({"d_cutoff": 0.0}, "d_cutoff"),
        ({"d_cutoff": math.inf}, "d_cutoff"),
        ({"beta": -0.1}, "beta"),
        ({"beta": math.nan}, "beta"),
    ],
)
def test_one_euro_parameters_are_validated(kwargs: dict, field: str):
    with pytest.raises(ValueError, match=field):
        OneEuro(**kwargs)


# --- Savitzky-Golay ---


def random_track(frames: int, seed: int = 0, joints: int = 17) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(0, 400, (frames, joints, 3)).astype(np.float32)
    keypoints[..., 2] = rng.uniform(0.5, 1.0, (frames, joints))
    return keypoints


def test_savgol_without_gaps_equals_scipy():
    track = random_track(30)
    frames = [(np.array([4]), k[None]) for k in track]
    out = np.stack([o[0] for o in smooth_savgol(frames)])
    expected = savgol_filter(track[..., :2].astype(np.float64), 9, 2, axis=0, mode="interp")
    np.testing.assert_allclose(out[..., :2], expected, atol=1e-3)
    np.testing.assert_array_equal(out[..., 2], track[..., 2])
    assert out.dtype == np.float32


def test_savgol_fills_gaps_by_linear_interpolation():
    track = random_track(30, seed=1)
    track[5, 3, 2] = track[20, 3, 2] = 0.1  # joint 3 unreliable twice
    track[0, 4, 2] = 0.2  # joint 4 at the first frame: held from the next observation
    track[:, 6, 2] = 0.1  # joint 6 never confidently seen
    missing = {10, 11}  # the track is not seen
    seen = [t for t in range(30) if t not in missing]
    frames = [
        (np.array([0]), track[t][None]) if t in seen else (np.zeros(0, int), np.zeros((0, 17, 3))) for t in range(30)
    ]
    config = Savgol(window=7, polyorder=2, min_score=0.3)
    out = smooth_savgol(frames, config)
    assert all(out[t].shape == (0, 17, 3) for t in missing)
    filled = np.zeros((30, 17, 2))
    for joint in range(17):
        known = [t for t in seen if track[t, joint, 2] >= 0.3]
        for coord in range(2):
            filled[:, joint, coord] = np.interp(np.arange(30), known, track[known, joint, coord]) if known else 0
    expected = savgol_filter(filled, 7, 2, axis=0, mode="interp")[seen]
    got = np.stack([out[t][0] for t in seen])
    keep = [j for j in range(17) if j != 6]
    np.testing.assert_allclose(got[:, keep, :2], expected[:, keep], atol=1e-3)
    np.testing.assert_array_equal(got[:, 6], track[seen, 6])
    np.testing.assert_array_equal(got[..., 2], track[seen, :, 2])


def test_savgol_smooths_tracks_independently_in_any_person_order():
    first, second = random_track(25, seed=2), random_track(18, seed=3)
    stranger = random_track(25, seed=4)
    rng = np.random.default_rng(5)
    frames, orders = [], []
    for t in range(25):
        persons = [(1, first[t]), (-1, stranger[t])] + ([(9, second[t - 7])] if t >= 7 else [])
        order = rng.permutation(len(persons))
        orders.append([persons[i][0] for i in order])
        frames.append((np.array(orders[-1]), np.stack([persons[i][1] for i in order])))
    out = smooth_savgol(frames)
    alone_first = smooth_savgol([(np.array([0]), k[None]) for k in first])
    alone_second = smooth_savgol([(np.array([0]), k[None]) for k in second])
    for t in range(25):
        ids = np.array(orders[t])
        np.testing.assert_array_equal(out[t][ids == 1][0], alone_first[t][0])
        np.testing.assert_array_equal(out[t][ids == -1][0], stranger[t])
        if t >= 7:
            np.testing.assert_array_equal(out[t][ids == 9][0], alone_second[t - 7][0])


@pytest.mark.parametrize(("length", "window"), [(5, 5), (4, 3), (3, 3), (2, None), (1, None)])
def test_savgol_short_tracks(length: int, window: int | None):
    track = random_track(length, seed=6, joints=5)
    out = np.stack([o[0] for o in smooth_savgol([(np.array([0]), k[None]) for k in track])])
    if window is None:  # too short for a quadratic: left as is
        np.testing.assert_array_equal(out, track)
    else:
        expected = savgol_filter(track[..., :2].astype(np.float64), window, 2, axis=0, mode="interp")
        np.testing.assert_allclose(out[..., :2], expected, atol=1e-3)


def test_savgol_short_window_spans_the_gaps():
    track = random_track(3, seed=7, joints=2)
    empty = (np.zeros(0, np.int64), np.zeros((0, 2, 3), np.float32))
    frames = [(np.array([5]), k[None]) for k in track]
    frames.insert(2, empty)  # seen at frames 0, 1 and 3: four frames, window 3
    out = smooth_savgol(frames, Savgol(window=9, polyorder=1))
    xy = track[..., :2].astype(np.float64)
    filled = np.stack([xy[0], xy[1], (xy[1] + xy[2]) / 2, xy[2]])
    expected = savgol_filter(filled, 3, 1, axis=0, mode="interp")
    assert not np.allclose(expected[[0, 1, 3]], xy, atol=1e-2)  # a real smoothing, not the identity
    for frame, time in zip(track, (0, 1, 3)):
        np.testing.assert_allclose(out[time][0, :, :2], expected[time], atol=1e-3)
        np.testing.assert_array_equal(out[time][0, :, 2], frame[:, 2])
    assert out[2].shape == (0, 2, 3)


def test_savgol_empty_clip_and_empty_frames():
    assert smooth_savgol([]) == []
    empty = (np.zeros(0, np.int64), np.zeros((0, 17, 3), np.float32))
    out = smooth_savgol([empty, empty])
    assert [o.shape for o in out] == [(0, 17, 3), (0, 17, 3)]


def test_savgol_leaves_its_inputs_alone():
    frames = [(np.array([0, -1]), np.stack([k, k + 1])) for k in random_track(12, seed=8)]
    frames[3][1][0, 2, 2] = 0.0
    kept = [(ids.copy(), keypoints.copy()) for ids, keypoints in frames]
    smooth_savgol(frames)
    for (ids, keypoints), (ids_kept, keypoints_kept) in zip(frames, kept):
        np.testing.assert_array_equal(ids, ids_kept)
        np.testing.assert_array_equal(keypoints, keypoints_kept)


def test_savgol_rejects_bad_frames():
    good = (np.array([0]), np.zeros((1, 17, 3), np.float32))
    with pytest.raises(ValueError, match=r"frame 1: keypoints: expected a \(P, K, 3\)"):
        smooth_savgol([good, (np.array([0]), np.zeros((1, 17, 2)))])
    with pytest.raises(ValueError, match=r"frame 0: track_ids: expected shape \(1,\)"):
        smooth_savgol([(np.array([0, 1]), good[1])])
    with pytest.raises(ValueError, match="frame 1: track 0 has 5 keypoints, 17 before"):
        smooth_savgol([good, (np.array([0]), np.zeros((1, 5, 3)))])
    with pytest.raises(ValueError, match="frame 0: expected a pair"):
        smooth_savgol([good[1]])
    with pytest.raises(ValueError, match="twice"):
        smooth_savgol([(np.array([2, 2]), np.zeros((2, 17, 3)))])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 8}, "window"),
        ({"window": 1}, "window"),
        ({"window": 9.0}, "window"),
        ({"window": 5, "polyorder": 5}, "polyorder"),
        ({"polyorder": -1}, "polyorder"),
        ({"min_score": math.nan}, "min_score"),
    ],
)
def test_savgol_parameters_are_validated(kwargs: dict, field: str):
    with pytest.raises(ValueError, match=field):
        Savgol(**kwargs)
