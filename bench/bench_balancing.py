"""Benchmark: the discriminator's balancing weights at atlas scale, capped and uncapped.

Balancing clusters each domain's pretrained embedding with exact kNN + Leiden; above
``BALANCING_CELLS`` cells per domain it clusters a seeded sample and assigns the rest to the
nearest centroid (:mod:`crossglue.model.balancing`). Two domains of Gaussian blobs (20 types,
50 dimensions, one type private to each domain) are weighted with the cap and without it, in
this one process, one after the other; printed: wall seconds, peak RSS growth, and how far the
capped weights are from the uncapped ones (each type's share of its domain's weight).

    .venv/bin/python bench/bench_balancing.py                  # 25k, 100k, 200k cells per domain
    .venv/bin/python bench/bench_balancing.py --cells 50000,400000 --no-uncapped
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from crossglue.model.balancing import BALANCING_CELLS, balancing_weights


def domains(cells: int, types: int = 20, dims: int = 50, seed: int = 0) -> tuple[dict, dict]:
    """Two domains sharing types 1..types-1, type 0 private to each (different centres)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(types + 1, dims)) * 3
    out, labels = {}, {}
    for d, private in (("a", 0), ("b", types)):
        kinds = np.r_[private, np.arange(1, types)]
        label = kinds[rng.integers(len(kinds), size=cells)]
        out[d] = (centres[label] + rng.normal(size=(cells, dims))).astype(np.float32)
        labels[d] = label
    return out, labels


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(embeddings: dict, max_cells: int) -> tuple[dict, float, float]:
    before = peak_mb()
    start = time.perf_counter()
    weights = balancing_weights(embeddings, max_cells=max_cells)
    return weights, time.perf_counter() - start, peak_mb() - before


def type_shares(weights: np.ndarray, labels: np.ndarray) -> pd.Series:
    return pd.Series(weights).groupby(labels).sum() / weights.sum()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", default="25000,100000,200000", help="cells per domain, comma-separated")
    p.add_argument("--no-uncapped", action="store_true", help="time only the capped weights")
    args = p.parse_args()
    rows = []
    for cells in (int(c) for c in args.cells.split(",")):
        embeddings, labels = domains(cells)
        capped, t_cap, m_cap = timed(embeddings, BALANCING_CELLS)
        row = {"cells per domain": cells, "capped s": t_cap, "capped peak MB (growth)": m_cap}
        if not args.no_uncapped:
            whole, t_all, m_all = timed(embeddings, max(cells, BALANCING_CELLS))
            gap = max((type_shares(capped[d], labels[d]) - type_shares(whole[d], labels[d])).abs().max() for d in whole)
            row |= {"uncapped s": t_all, "uncapped peak MB (growth)": m_all, "speed-up": t_all / t_cap}
            row["largest type-share gap"] = gap
        private = max(type_shares(capped[d], labels[d]).iloc[i] for d, i in (("a", 0), ("b", -1)))
        row["private type's share (capped)"] = private
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False), flush=True)
    print("\n" + pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
