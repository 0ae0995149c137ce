"""Heatmap decoding + back-transform of 1,000 persons x 17 joints: hrnet_zoo (batched torch) vs a per-joint loop.

The reference is a straightforward NumPy implementation with the original test pipeline's structure
(``get_final_preds``): argmax over all heatmaps, a Python loop over persons and joints for the quarter offset,
and per person an affine matrix solved from three points (OpenCV) applied joint by joint. Both are checked to
agree before timing.

    python benchmarks/decode.py [--persons 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import cv2
import numpy as np
import torch

from hrnet_zoo.codec import HeatmapCodec, decode_argmax


def _rotate(point: list[float], rot_rad: float) -> list[float]:
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return [point[0] * cs - point[1] * sn, point[0] * sn + point[1] * cs]


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    direct = a - b
    return b + np.array([-direct[1], direct[0]], dtype=np.float32)


def reference_affine(center: np.ndarray, scale: np.ndarray, rot: float, output_size: list[int], inv: int) -> np.ndarray:
    """One person's matrix from three point pairs (float32 points, OpenCV solve), as the original pipeline does."""
    scale_tmp = np.asarray(scale) * 200.0
    src_w, dst_w, dst_h = scale_tmp[0], output_size[0], output_size[1]
    src_dir = _rotate([0, src_w * -0.5], np.pi * rot / 180)
    dst_dir = np.array([0, dst_w * -0.5], np.float32)
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center
    src[1, :] = center + src_dir
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    src[2:, :] = _third_point(src[0, :], src[1, :])
    dst[2:, :] = _third_point(dst[0, :], dst[1, :])
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def _apply(point: np.ndarray, trans: np.ndarray) -> np.ndarray:
    return np.dot(trans, np.array([point[0], point[1], 1.0]).T)[:2]


def reference_decode(heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Argmax, quarter offset joint by joint, then each person mapped back joint by joint."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    index, maxvals = np.argmax(flat, 2), np.amax(flat, 2)
    coords = np.stack([index % w, np.floor(index / w)], axis=2).astype(np.float32) * (maxvals > 0)[..., None]
    for i in range(n):
        for j in range(k):
            hm = heatmaps[i][j]
            px, py = math.floor(coords[i][j][0] + 0.5), math.floor(coords[i][j][1] + 0.5)
            if 1 < px < w - 1 and 1 < py < h - 1:
                diff = np.array([hm[py][px + 1] - hm[py][px - 1], hm[py + 1][px] - hm[py - 1][px]])
                coords[i][j] += np.sign(diff) * 0.25
    preds = coords.copy()
    for i in range(n):
        trans = reference_affine(centers[i], scales[i], 0, [w, h], inv=1)
        preds[i] = np.stack([_apply(coords[i, j], trans) for j in range(k)])
    return preds, maxvals


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    heatmaps = rng.random((args.persons, 17, 64, 48), dtype=np.float32)
    centers = rng.uniform(100, 500, (args.persons, 2)).astype(np.float32)
    scales = rng.uniform(0.5, 2.0, (args.persons, 2)).astype(np.float32)
    hm_t, c_t, s_t = torch.from_numpy(heatmaps), torch.from_numpy(centers), torch.from_numpy(scales)

    def ours() -> tuple[torch.Tensor, torch.Tensor]:
        coords, scores = decode_argmax(hm_t)
        return HeatmapCodec((256, 192)).to_image(coords, c_t, s_t), scores

    ref_preds, ref_scores = reference_decode(heatmaps, centers, scales)
    preds, scores = ours()
    assert np.abs(preds.numpy() - ref_preds).max() < 1e-3 and np.array_equal(scores.numpy(), ref_scores)

    t_ref = best_of(lambda: reference_decode(heatmaps, centers, scales), args.repeats)
    t_ours = best_of(ours, args.repeats)
    print(f"decode + back-transform, {args.persons} persons x 17 joints, 64x48 heatmaps")
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads")
    print("| implementation              | time (ms) | speed-up |")
    print("|-----------------------------|----------:|---------:|")
    print(f"| per-joint NumPy loop        | {t_ref * 1e3:9.1f} |    1.0x |")
    print(f"| hrnet_zoo (batched torch)   | {t_ours * 1e3:9.1f} | {t_ref / t_ours:7.1f}x |")


if __name__ == "__main__":
    main()
