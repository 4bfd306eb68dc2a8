"""The guidance graph as arrays: node index, normalised propagation matrix, edge sampling.

The graph arrives as an edge table (source, target, weight, sign, type) whose nodes are
``species:feature`` strings. Everything here works on integer node indices so that a
training step is one sparse matrix product plus a few vectorised draws.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from crossglue.errors import CrossglueError

EDGE_COLUMNS = ("source", "target", "weight", "sign")


@dataclass(frozen=True)
class GuidanceGraph:
    """A symmetric, signed, weighted graph with self-loops, indexed by node position.

    ``nodes`` holds the node names; ``src``/``dst`` are positions into it. Every edge is
    stored in both directions, as the edge table gives it.
    """

    nodes: pd.Index
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    sign: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return len(self.src)

    @classmethod
    def from_edges(cls, edges: pd.DataFrame, source: str = "edge table") -> GuidanceGraph:
        """Validate an edge table and index its nodes (sorted, so the index is reproducible)."""
        missing = [c for c in EDGE_COLUMNS if c not in edges.columns]
        if missing:
            raise CrossglueError(
                f"{source}: missing column(s) {missing}; expected columns {list(EDGE_COLUMNS)} (+ optional type)"
            )
        if len(edges) == 0:
            raise CrossglueError(f"{source}: the graph has no edges")
        weight = pd.to_numeric(edges["weight"], errors="coerce").to_numpy(np.float64)
        bad = ~(np.isfinite(weight) & (weight > 0) & (weight <= 1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CrossglueError(
                f"{source}: row {row} ({edges['source'].iloc[row]} -> {edges['target'].iloc[row]}) "
                f"has weight {edges['weight'].iloc[row]}; expected a number in (0, 1]"
            )
        sign = pd.to_numeric(edges["sign"], errors="coerce").to_numpy(np.float64)
        bad = ~np.isin(sign, (-1.0, 1.0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CrossglueError(
                f"{source}: row {row} ({edges['source'].iloc[row]} -> {edges['target'].iloc[row]}) "
                f"has sign {edges['sign'].iloc[row]}; expected +1 or -1"
            )
        names = pd.Index(pd.unique(np.concatenate([edges["source"].astype(str), edges["target"].astype(str)])))
        nodes = pd.Index(np.sort(names.to_numpy(dtype=object)).astype(str))
        src = nodes.get_indexer(edges["source"].astype(str)).astype(np.int64)
        dst = nodes.get_indexer(edges["target"].astype(str)).astype(np.int64)
        graph = cls(nodes=nodes, src=src, dst=dst, weight=weight, sign=sign)
        graph._check_symmetric_with_self_loops(source)
        return graph

    def _check_symmetric_with_self_loops(self, source: str) -> None:
        n = np.int64(self.n_nodes)
        forward = self.src * n + self.dst
        backward = self.dst * n + self.src
        order = np.argsort(forward, kind="stable")
        pos = np.searchsorted(forward[order], backward)
        pos = np.minimum(pos, len(forward) - 1)
        found = forward[order][pos] == backward
        if not found.all():
            i = int(np.flatnonzero(~found)[0])
            raise CrossglueError(
                f"{source}: edge {self.nodes[self.src[i]]} -> {self.nodes[self.dst[i]]} has no reverse edge; "
                "the guidance graph must list every edge in both directions"
            )
        looped = np.zeros(self.n_nodes, dtype=bool)
        looped[self.src[self.src == self.dst]] = True
        if not looped.all():
            lonely = self.nodes[~looped][:5].tolist()
            raise CrossglueError(
                f"{source}: {int((~looped).sum())} node(s) without a self-loop, e.g. {lonely}; "
                "every node needs a self-loop of weight 1"
            )

    def weighted_degree(self) -> np.ndarray:
        """Sum of edge weights per node, self-loop included."""
        return np.bincount(self.dst, weights=self.weight, minlength=self.n_nodes)

    def propagation_matrix(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Sparse ``Â[t, s] = sign · w / sqrt(deg(s) · deg(t))`` (symmetric GCN normalisation).

        One ``Â @ e`` per step is the whole graph encoder's message passing; CSR keeps the
        product fast on CPU and GPU alike.
        """
        degree = self.weighted_degree()
        values = self.sign * self.weight / np.sqrt(degree[self.src] * degree[self.dst])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # "beta" / invariant notices
            coo = torch.sparse_coo_tensor(
                torch.from_numpy(np.stack([self.dst, self.src])),
                torch.from_numpy(values.astype(np.float32)),
                size=(self.n_nodes, self.n_nodes),
                check_invariants=False,
            ).coalesce()
            return coo.to_sparse_csr().to(device)


class EdgeSampler:
    """Draws positive edges in proportion to weight and negatives in proportion to degree.

    Each positive edge (i, j, sign) gets ``negatives`` partners (i, j', sign) with j' drawn
    from the weighted-degree distribution; draws are inverse-CDF lookups on uniform numbers,
    so a batch of any size is a few vectorised numpy calls.
    """

    def __init__(self, graph: GuidanceGraph, negatives: int = 10) -> None:
        self.src = graph.src
        self.dst = graph.dst
        self.sign = graph.sign.astype(np.float32)
        self.negatives = negatives
        self._edge_cdf = _cdf(graph.weight)
        self._node_cdf = _cdf(graph.weighted_degree())

    def sample(self, n_positive: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (source, target, sign, label) arrays: positives first, then their negatives."""
        pos = _draw(self._edge_cdf, n_positive, rng)
        neg_dst = _draw(self._node_cdf, n_positive * self.negatives, rng)
        src = np.concatenate([self.src[pos], np.repeat(self.src[pos], self.negatives)])
        dst = np.concatenate([self.dst[pos], neg_dst])
        sign = np.concatenate([self.sign[pos], np.repeat(self.sign[pos], self.negatives)])
        label = np.concatenate([np.ones(n_positive, np.float32), np.zeros(n_positive * self.negatives, np.float32)])
        return src, dst, sign, label


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, dtype=np.float64)
    return cdf / cdf[-1]


def _draw(cdf: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    idx = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(idx, len(cdf) - 1)
