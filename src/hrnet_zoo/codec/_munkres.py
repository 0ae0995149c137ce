"""The Munkres (Kuhn) assignment as the ``munkres`` package 1.1 computes it, ties included.

HigherHRNet groups joints with ``munkres.Munkres().compute`` (the 1.1 series of its time, Brian Clapper's
implementation of the textbook algorithm). Its cost ``100 * round(distance) - score`` ties often, and a tie has
several optimal assignments: scipy's ``linear_sum_assignment`` (as the unrelated solver of ``munkres`` 3.x) picks
another one than munkres 1.1 on many such matrices (140 of the 300 grouping-like ones of the test data), and then
the persons differ. Hence our own: it follows the textbook algorithm in munkres 1.1's order and so picks its optimum:

- the matrix is padded to a square with zeros, then each row reduced by its minimum (no column reduction);
- zeros are starred greedily, row by row, the first zero of a row whose column holds no star;
- the search for an uncovered zero starts at ``(0, 0)``, or after a prime at its row and the column of the star
  in that row; it visits the rows cyclically from there and, in the first uncovered row holding one, takes the
  last uncovered zero met when the columns are visited cyclically from the start column;
- after an augmenting path, primes are erased and all lines uncovered; when no uncovered zero is left the smallest
  uncovered value is added to covered rows, then subtracted from uncovered columns (in this order, as floats).
"""

from __future__ import annotations

import numpy as np

__all__ = ["munkres_assignment"]


def _uncovered_zero(
    reduced: np.ndarray, row_covered: np.ndarray, col_covered: np.ndarray, start: tuple[int, int]
) -> tuple[int, int] | None:
    """``(row, column)`` of the uncovered zero munkres 1.1 finds from ``start``, or ``None``."""
    n = len(reduced)
    columns = np.roll(np.arange(n), -start[1])
    for row in np.roll(np.arange(n), -start[0]):
        if row_covered[row]:
            continue
        hits = columns[(reduced[row, columns] == 0) & ~col_covered[columns]]
        if hits.size:
            return int(row), int(hits[-1])
    return None


def _augment(star: np.ndarray, prime: np.ndarray, row: int, col: int) -> None:
    """Flip the alternating path from the prime at ``(row, col)``: its primes become the stars (in place)."""
    while True:
        holder = np.flatnonzero(star == col)
        star[row] = col
        if holder.size == 0:
            return
        row = int(holder[0])
        col = int(prime[row])


def munkres_assignment(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost assignment of an ``(R, C)`` cost matrix, ties broken as ``munkres`` 1.1's ``compute``.

    Returns:
        ``(min(R, C), 2)`` int64 ``(row, column)`` pairs, by row.
    """
    cost = np.asarray(cost, dtype=np.float64)
    rows, cols = cost.shape
    n = max(rows, cols)
    reduced = np.zeros((n, n))
    reduced[:rows, :cols] = cost
    reduced -= reduced.min(axis=1, keepdims=True)
    star = np.full(n, -1)  # the starred column of each row
    for row in range(n):
        free = np.flatnonzero((reduced[row] == 0) & ~np.isin(np.arange(n), star))
        if free.size:
            star[row] = free[0]
    while (star >= 0).sum() < n:
        prime = np.full(n, -1)
        row_covered = np.zeros(n, bool)
        col_covered = np.isin(np.arange(n), star)
        start = (0, 0)
        while True:
            found = _uncovered_zero(reduced, row_covered, col_covered, start)
            if found is None:
                smallest = reduced[~row_covered][:, ~col_covered].min()
                reduced[row_covered] += smallest
                reduced[:, ~col_covered] -= smallest
                start = (0, 0)
                continue
            row, col = found
            prime[row] = col
            if star[row] < 0:
                _augment(star, prime, row, col)
                break
            row_covered[row], col_covered[star[row]] = True, False
            start = (row, int(star[row]))
    pairs = [(row, int(star[row])) for row in range(rows) if star[row] < cols]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)
