"""Make tests/data/ae_munkres_cases.npz: assignments of tie-heavy cost matrices by the ``munkres`` package 1.1.

HigherHRNet groups joints with ``munkres.Munkres().compute`` (the 1.1 series, Brian Clapper's); the package's
``hrnet_zoo.codec._munkres`` must break ties as it does. ``munkres`` is not a dependency: install it aside,

    pip install --target /tmp/munk munkres==1.1.4
    PYTHONPATH=/tmp/munk python tools/make_munkres_golden.py [--out tests/data]

Cases (seeded): matrices as the grouping builds them (``100 * round(distance) - score``, the score one per row and
float32, padded with ``1e10`` columns when there are more joints than persons), the same with scores shared by
rows, and small integer matrices, wide and tall (the tall ones exercise munkres' zero padding).

Writes ``ae_munkres_cases.npz``: ``shapes`` ``(N, 2)``, ``costs`` (the matrices flattened and concatenated,
float64), ``counts`` ``(N,)`` and ``pairs`` ``(sum(counts), 2)``, ``compute``'s ``(row, column)`` pairs in its order;
``version`` the munkres version.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import munkres
import numpy as np


def grouping_cost(rng: np.random.Generator, joints: int, persons: int, shared_scores: bool) -> np.ndarray:
    """A cost matrix as HigherHRNet's ``match_by_tag`` builds it with ``use_detection_val``."""
    rounded = rng.integers(0, rng.integers(2, 5), (joints, persons))
    if shared_scores:
        scores = rng.choice(np.array([0.25, 0.5, 0.75], np.float32), (joints, 1))
    else:
        scores = rng.uniform(0.1, 1.0, (joints, 1)).astype(np.float32)
    cost = rounded * 100 - scores.astype(np.float64)
    if joints > persons:
        cost = np.concatenate([cost, np.full((joints, joints - persons), 1e10)], axis=1)
    return cost


def make_cases(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    cases = [grouping_cost(rng, *rng.integers(1, 13, 2), shared_scores=False) for _ in range(220)]
    cases += [grouping_cost(rng, *rng.integers(1, 13, 2), shared_scores=True) for _ in range(60)]
    cases += [grouping_cost(rng, *rng.integers(18, 31, 2), shared_scores=i % 2 == 1) for i in range(20)]
    cases += [rng.integers(0, 3, rng.integers(1, 9, 2)).astype(np.float64) for _ in range(80)]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "tests" / "data")
    args = parser.parse_args()
    if not munkres.__version__.startswith("1.1."):
        raise SystemExit(f"munkres 1.1 is the reference, found {munkres.__version__}")
    cases = make_cases()
    pairs = [np.array(munkres.Munkres().compute(cost.tolist()), np.int64).reshape(-1, 2) for cost in cases]
    np.savez_compressed(
        args.out / "ae_munkres_cases.npz",
        shapes=np.array([cost.shape for cost in cases], np.int64),
        costs=np.concatenate([cost.ravel() for cost in cases]),
        counts=np.array([len(p) for p in pairs], np.int64),
        pairs=np.concatenate(pairs),
        version=np.array(munkres.__version__),
    )


if __name__ == "__main__":
    main()
