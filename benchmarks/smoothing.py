"""Temporal smoothing of keypoint tracks: jitter removed against lag, on synthetic COCO tracks.

A person ``--height`` pixels tall (COCO's 17 joints in a standing pose) is filmed at ``--fps`` for ``--seconds``,
each coordinate observed with Gaussian noise of ``--noise`` pixels, in four tracks:

- still: the person stands still; its jitter is the RMS frame-to-frame displacement of the joints (the truth has
  none);
- walk: the person moves sideways at a constant 0.8 heights per second;
- swing: the person sways sideways at 1 Hz with an amplitude of a quarter height;
- fast swing: at 2 Hz with an amplitude of a tenth of their height (limbs move faster than the body).

The lag on a moving track is the delay of the truth (linearly interpolated, in steps of 0.5 ms) closest to the
output in x (least squares); on the walk it is the output's mean distance behind the truth over the speed.

Errors are RMS Euclidean distances to the truth over all joints, the first 0.5 s left out (filters start there).
Each filter runs on the same noisy tracks: none, :class:`~hrnet_zoo.pose.smooth.OneEuroSmoother` with its
defaults and other settings, and :func:`~hrnet_zoo.pose.smooth.smooth_savgol` with its default and other windows.

    python benchmarks/smoothing.py [--fps 30] [--seconds 10] [--height 200] [--noise 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np

from hrnet_zoo.pose.smooth import OneEuro, OneEuroSmoother, Savgol, smooth_savgol

# COCO's 17 joints of a person standing, facing the camera: x right, y down, in person heights from the top.
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
WALK_SPEED = 0.8  # person heights per second
SWING_HZ, SWING_AMPLITUDE = 1.0, 0.25  # Hz, person heights
FAST_SWING_HZ, FAST_SWING_AMPLITUDE = 2.0, 0.1
WARM_UP_S = 0.5

Smoother = Callable[[np.ndarray, float], np.ndarray]


def make_track(offsets: np.ndarray, height: float, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Truth ``(T, 17, 2)`` and noisy observations ``(T, 17, 3)`` (score 0.9) of the person shifted sideways by
    ``offsets`` ``(T,)`` person heights."""
    truth = (STANDING[None] + np.stack([offsets, np.zeros_like(offsets)], -1)[:, None]) * height + [640.0, 100.0]
    observed = np.concatenate([truth + rng.normal(0.0, noise, truth.shape), np.full((*truth.shape[:2], 1), 0.9)], -1)
    return truth, observed.astype(np.float32)


def one_euro(config: OneEuro) -> Smoother:
    def run(observed: np.ndarray, fps: float) -> np.ndarray:
        smoother = OneEuroSmoother(config)
        ids = np.zeros(1, dtype=np.int64)
        return np.stack([smoother(frame[None], ids, index / fps)[0] for index, frame in enumerate(observed)])

    return run


def savgol(config: Savgol) -> Smoother:
    def run(observed: np.ndarray, fps: float) -> np.ndarray:
        ids = np.zeros(1, dtype=np.int64)
        return np.stack([frame[0] for frame in smooth_savgol([(ids, frame[None]) for frame in observed], config)])

    return run


def unsmoothed(observed: np.ndarray, fps: float) -> np.ndarray:
    return observed


def rms(distances: np.ndarray) -> float:
    return float(np.sqrt(np.mean(distances**2)))


def delay(out: np.ndarray, truth: np.ndarray, fps: float, start: int) -> float:
    """Seconds by which ``out`` ``(T - start, 17)`` trails ``truth`` ``(T, 17)`` (x): the shift of the truth,
    linearly interpolated, in steps of 0.5 ms, that brings it closest (least squares) to the output."""
    times = np.arange(len(truth)) / fps
    shifts = np.arange(-0.1, 0.5, 0.0005)
    errors = [
        np.mean((out - np.stack([np.interp(times[start:] - shift, times, joint) for joint in truth.T], 1)) ** 2)
        for shift in shifts
    ]
    return float(shifts[int(np.argmin(errors))])


def measure(smooth: Smoother, tracks: dict[str, tuple[np.ndarray, ...]], fps: float) -> list[float]:
    """Still jitter (px), walk error (px) and lag (ms), swing error (px) and lag (ms), fast swing error (px)."""
    start = round(WARM_UP_S * fps)
    _, still = tracks["still"]
    jitter = rms(np.linalg.norm(np.diff(smooth(still, fps)[start:, :, :2], axis=0), axis=-1))
    row = [jitter]
    for name in ("walk", "swing"):
        truth, observed = tracks[name]
        out = smooth(observed, fps)[start:, :, :2]
        error = rms(np.linalg.norm(out - truth[start:], axis=-1))
        row += [error, 1000 * delay(out[..., 0], truth[..., 0], fps, start)]
    truth, observed = tracks["fast swing"]
    row.append(rms(np.linalg.norm(smooth(observed, fps)[start:, :, :2] - truth[start:], axis=-1)))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--height", type=float, default=200.0, help="person height, pixels")
    parser.add_argument("--noise", type=float, default=2.0, help="keypoint noise sigma, pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    times = np.arange(round(args.seconds * args.fps)) / args.fps
    offsets = {
        "still": np.zeros_like(times),
        "walk": WALK_SPEED * times,
        "swing": SWING_AMPLITUDE * np.sin(2 * math.pi * SWING_HZ * times),
        "fast swing": FAST_SWING_AMPLITUDE * np.sin(2 * math.pi * FAST_SWING_HZ * times),
    }
    tracks = {name: make_track(offset, args.height, args.noise, rng) for name, offset in offsets.items()}
    default_one_euro, default_savgol = OneEuro(), Savgol()
    filters: dict[str, Smoother] = {
        "none": unsmoothed,
        f"one_euro defaults ({_one_euro_label(default_one_euro)})": one_euro(default_one_euro),
        f"one_euro {_one_euro_label(OneEuro(0.5, 0.0, 1.0))}": one_euro(OneEuro(0.5, 0.0, 1.0)),
        f"one_euro {_one_euro_label(OneEuro(0.5, 4.0, 1.0))}": one_euro(OneEuro(0.5, 4.0, 1.0)),
        f"one_euro {_one_euro_label(OneEuro(1.0, 12.0, 1.0))}": one_euro(OneEuro(1.0, 12.0, 1.0)),
        f"one_euro {_one_euro_label(OneEuro(0.5, 24.0, 1.0))}": one_euro(OneEuro(0.5, 24.0, 1.0)),
        f"savgol defaults (window {default_savgol.window}, order {default_savgol.polyorder})": savgol(default_savgol),
        "savgol window 5, order 2": savgol(Savgol(window=5)),
        "savgol window 15, order 2": savgol(Savgol(window=15)),
    }

    began = time.perf_counter()
    rows = {name: measure(smooth, tracks, args.fps) for name, smooth in filters.items()}
    elapsed = time.perf_counter() - began
    raw_jitter = rows["none"][0]
    print(
        f"{args.seconds:g} s at {args.fps:g} fps, person {args.height:g} px tall, noise {args.noise:g} px; "
        f"walk {WALK_SPEED} heights/s, swing {SWING_HZ:g} Hz x {SWING_AMPLITUDE} heights, "
        f"fast swing {FAST_SWING_HZ:g} Hz x {FAST_SWING_AMPLITUDE} heights\n"
    )
    print(
        "| filter | still jitter (px) | jitter removed | walk error (px) | walk lag (ms) | swing error (px) "
        "| swing lag (ms) | fast swing error (px) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (jitter, walk_error, walk_lag, swing_error, swing_lag, fast_error) in rows.items():
        removed = 100 * (1 - jitter / raw_jitter)
        print(
            f"| {name} | {jitter:.2f} | {removed:.0f}% | {walk_error:.2f} | {walk_lag:.0f} | {swing_error:.2f} | "
            f"{swing_lag:.0f} | {fast_error:.2f} |"
        )
    print(f"\nmeasured in {elapsed:.1f} s")


def _one_euro_label(config: OneEuro) -> str:
    return f"min_cutoff {config.min_cutoff:g}, beta {config.beta:g}, d_cutoff {config.d_cutoff:g}"


if __name__ == "__main__":
    main()
