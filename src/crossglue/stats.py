"""Statistics shared by the stages: multiple-testing correction.

One Benjamini–Hochberg for every q value the pipeline reports (peak–gene correlations,
regulatory links, motif enrichment), so the same p values always give the same q values.
"""

from __future__ import annotations

import numpy as np


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p values (q values): monotone in p, capped at 1."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    q = np.empty_like(p)
    q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q
