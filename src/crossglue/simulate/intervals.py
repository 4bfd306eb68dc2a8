"""Vectorised interval helpers for the simulator (sorted starts, searchsorted lookups)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossglue.genomics.intervals import expand_ranges


def concat_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])`` without the loop."""
    starts = np.asarray(starts, dtype=np.int64)
    return expand_ranges(starts, starts + np.asarray(counts, dtype=np.int64))[1]


def merge_intervals(iv: pd.DataFrame) -> pd.DataFrame:
    """Union of intervals per chromosome (columns chrom, start, end), sorted."""
    iv = iv.sort_values(["chrom", "start"], kind="stable").reset_index(drop=True)
    prev_end = iv.groupby("chrom")["end"].transform(lambda e: e.cummax().shift(1)).fillna(-np.inf)
    run = (iv["start"] > prev_end).cumsum()
    merged = iv.groupby(run).agg(chrom=("chrom", "first"), start=("start", "min"), end=("end", "max"))
    return merged.reset_index(drop=True)


def free_mask(
    positions: np.ndarray, chroms: np.ndarray, protected: pd.DataFrame, span: np.ndarray | None = None
) -> np.ndarray:
    """True where [pos, pos+span] touches no protected interval (vectorised lookup)."""
    span = np.zeros(len(positions), dtype=np.int64) if span is None else span
    ok = ~np.isin(chroms, protected["chrom"].unique())  # chromosomes with nothing protected
    for chrom, sub in protected.groupby("chrom", sort=False):
        sel = chroms == chrom
        if not sel.any():
            continue
        starts, ends = sub["start"].to_numpy(), sub["end"].to_numpy()
        lo, hi = positions[sel], positions[sel] + span[sel]
        i = np.searchsorted(starts, lo, side="right") - 1  # last interval starting at or before lo
        inside = (i >= 0) & (ends[np.maximum(i, 0)] > lo)
        j = np.searchsorted(starts, hi, side="right") - 1
        ok[np.flatnonzero(sel)] = ~inside & (i == j)
    return ok
