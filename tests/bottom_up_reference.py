"""Transcriptions of the bottom-up test geometry DEKR and HigherHRNet share (their ``lib/utils/transforms.py``):
``get_multi_scale_size``, ``get_affine_transform`` without rotation or shift, and ``get_final_preds``. Sizes are
``(width, height)`` here, as there."""

from __future__ import annotations

import cv2
import numpy as np


def ref_multi_scale_size(h, w, input_size, current_scale, min_scale):
    center = np.array([int(w / 2.0 + 0.5), int(h / 2.0 + 0.5)])
    min_input_size = int((min_scale * input_size + 63) // 64 * 64)
    if w < h:
        w_resized = int(min_input_size * current_scale / min_scale)
        h_resized = int(int((min_input_size / w * h + 63) // 64 * 64) * current_scale / min_scale)
        scale = np.array([w / 200.0, h_resized / w_resized * w / 200.0])
    else:
        h_resized = int(min_input_size * current_scale / min_scale)
        w_resized = int(int((min_input_size / h * w + 63) // 64 * 64) * current_scale / min_scale)
        scale = np.array([w_resized / h_resized * h / 200.0, h / 200.0])
    return (w_resized, h_resized), center, scale


def ref_affine(center, scale, output_size, inv=False):
    src_w = scale[0] * 200.0
    dst_w, dst_h = output_size
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0], src[1] = center, center + np.array([0, src_w * -0.5])
    dst[0], dst[1] = [dst_w * 0.5, dst_h * 0.5], [dst_w * 0.5, dst_h * 0.5 - dst_w * 0.5]
    for pts in (src, dst):
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]], np.float32)
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def ref_final_preds(poses, center, scale, output_size):
    """get_final_preds: every joint's (x, y) through the inverse affine of an ``output_size`` map, in place of a
    copy; the other channels kept."""
    trans = ref_affine(center, scale, output_size, inv=True)
    out = poses.copy()
    for person in out:
        for joint in person:
            joint[:2] = trans @ np.array([joint[0], joint[1], 1.0])
    return out
