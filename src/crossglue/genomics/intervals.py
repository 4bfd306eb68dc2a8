"""Vectorised interval kernels on 0-based half-open coordinates (BED convention).

One home for the searchsorted overlap join that counting, peak merging, blacklists and the
union table all use: elements sorted by start, queries in any order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def insertion_sites(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both Tn5 cut sites of each fragment, 0-based: ``start`` and ``end - 1``; also the fragment index."""
    n = len(start)
    return np.concatenate([start, end - 1]), np.concatenate([np.arange(n), np.arange(n)])


def expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query index, element index) for every element index in [lo[i], hi[i])."""
    n = np.maximum(hi - lo, 0)
    query = np.repeat(np.arange(len(lo)), n)
    offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    return query, np.repeat(lo, n) + offset


def overlapping_elements(
    starts: np.ndarray, ends: np.ndarray, q_start: np.ndarray, q_end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (query, element) pairs with overlapping half-open intervals; elements sorted by start.

    Elements may overlap each other and vary in width: the running maximum of ends bounds
    the first candidate, and candidates are then filtered exactly.
    """
    reach = np.maximum.accumulate(ends) if len(ends) else ends
    lo = np.searchsorted(reach, q_start, side="right")  # first element that can end after q_start
    hi = np.searchsorted(starts, q_end, side="left")  # elements starting before q_end
    query, element = expand_ranges(lo, hi)
    keep = ends[element] > q_start[query]
    return query[keep], element[keep]


def overlaps_any(intervals: pd.DataFrame, others: pd.DataFrame) -> np.ndarray:
    """Whether each interval (chrom, start, end) overlaps any of ``others``."""
    hit = np.zeros(len(intervals), bool)
    for chrom, sub in others.groupby("chrom", sort=False):  # chromosomes
        sub = sub.sort_values("start")
        sel = np.flatnonzero((intervals["chrom"] == chrom).to_numpy())
        if not len(sel):
            continue
        q, _ = overlapping_elements(
            sub["start"].to_numpy(np.int64),
            sub["end"].to_numpy(np.int64),
            intervals["start"].to_numpy(np.int64)[sel],
            intervals["end"].to_numpy(np.int64)[sel],
        )
        hit[sel[q]] = True
    return hit
