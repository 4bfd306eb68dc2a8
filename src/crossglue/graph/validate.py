"""The one guidance-graph validator: what the model, scglue's ``check_graph`` and the files need.

Both the pipeline (after assembly) and the model (before training, on any edge table a
user brings) call :func:`validate`, so the two can never disagree on what a graph is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossglue.errors import CrossglueError

EDGE_COLUMNS = ("source", "target", "weight", "sign", "type")
# Optional per-edge attributes carried into both files (NA where they do not apply).
ATTRIBUTE_COLUMNS = ("distance", "corr")


def validate(edges: pd.DataFrame, nodes: pd.DataFrame | None = None, source: str = "guidance graph") -> None:
    """Raise :class:`CrossglueError` on anything the model or scglue's check_graph would reject.

    Checks columns, weights in (0, 1], signs ±1, one edge per ordered pair, a reverse edge
    with equal weight and sign for every edge, a weight-1 self-loop on every node, and (when
    ``nodes`` is given) a node for every data feature.
    """
    missing = [c for c in EDGE_COLUMNS if c not in edges.columns]
    if missing:
        raise CrossglueError(f"{source}: missing column(s) {', '.join(missing)}; expected {', '.join(EDGE_COLUMNS)}")
    if len(edges) == 0:
        raise CrossglueError(f"{source}: the graph has no edges (not even self-loops)")
    src = edges["source"].astype(str).to_numpy(object)
    dst = edges["target"].astype(str).to_numpy(object)

    def at(i: int) -> str:
        return f"{source}: edge {src[i]} -> {dst[i]} (type {edges['type'].iloc[i]})"

    weight = pd.to_numeric(edges["weight"], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~(np.isfinite(weight) & (weight > 0) & (weight <= 1)))
    if bad.size:
        raise CrossglueError(
            f"{at(bad[0])} has weight {edges['weight'].iloc[bad[0]]!r}; expected a number in (0, 1] "
            f"({bad.size} edge(s) out of range)"
        )
    sign = pd.to_numeric(edges["sign"], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isin(sign, (-1.0, 1.0)))
    if bad.size:
        raise CrossglueError(f"{at(bad[0])} has sign {edges['sign'].iloc[bad[0]]!r}; expected +1 or -1")

    names = pd.Index(pd.unique(np.concatenate([src, dst])))
    s_code = names.get_indexer(src).astype(np.int64)
    t_code = names.get_indexer(dst).astype(np.int64)
    n = np.int64(len(names))
    forward = s_code * n + t_code
    order = np.argsort(forward, kind="stable")
    dup = np.flatnonzero(np.diff(forward[order]) == 0)
    if dup.size:
        raise CrossglueError(
            f"{at(order[dup[0] + 1])} is listed more than once; expected one edge per ordered node pair"
        )
    pos = np.minimum(np.searchsorted(forward[order], t_code * n + s_code), len(forward) - 1)
    reverse = order[pos]
    bad = np.flatnonzero(forward[reverse] != t_code * n + s_code)
    if bad.size:
        raise CrossglueError(
            f"{at(bad[0])} has no reverse edge ({bad.size} edge(s) without one); the graph must be symmetric"
        )
    bad = np.flatnonzero((weight[reverse] != weight) | (sign[reverse] != sign))
    if bad.size:
        i = bad[0]
        raise CrossglueError(
            f"{at(i)} has weight {weight[i]}, sign {sign[i]:+g} but its reverse has weight "
            f"{weight[reverse[i]]}, sign {sign[reverse[i]]:+g}; the graph must be symmetric"
        )

    loop = s_code == t_code
    looped = np.zeros(len(names), dtype=bool)
    looped[s_code[loop]] = True
    if not looped.all():
        lonely = names[~looped]
        raise CrossglueError(
            f"{source}: {lonely.size} node(s) without a self-loop, e.g. {list(lonely[:3])}; "
            "every node needs a self-loop of weight 1"
        )
    bad = np.flatnonzero(loop & (weight != 1))
    if bad.size:
        raise CrossglueError(f"{at(bad[0])} is a self-loop of weight {weight[bad[0]]}; expected 1")
    if nodes is not None:
        absent = ~nodes["node"].isin(names)
        if absent.any():
            row = nodes[absent].iloc[0]
            raise CrossglueError(
                f"{source}: {int(absent.sum())} data feature(s) have no node, e.g. '{row['node']}' "
                f"({row['species']} {row['modality']}); every feature of the data needs a node"
            )
