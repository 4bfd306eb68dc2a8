"""The guidance graph as arrays: node index, normalised propagation matrix, edge sampling.

The graph arrives as an edge table (source, target, weight, sign[, type]) whose nodes are
``species:feature`` strings, checked by :func:`crossglue.graph.validate.validate` (the one
validator, shared with the pipeline). Everything here works on integer node indices so that a
training step is one sparse matrix product plus a few vectorised draws.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from crossglue.graph.validate import validate

# The edge type a user's table without a ``type`` column is validated with.
UNTYPED = "edge"


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
        """Validate an edge table with the pipeline's own validator and index its nodes
        (sorted, so the index is reproducible). ``type`` is optional in a user's table."""
        if "type" not in edges.columns:
            edges = edges.assign(type=UNTYPED)
        validate(edges, source=source)
        names = pd.unique(np.concatenate([edges["source"].astype(str), edges["target"].astype(str)]))
        nodes = pd.Index(np.sort(names.astype(object)).astype(str))
        return cls(
            nodes=nodes,
            src=nodes.get_indexer(edges["source"].astype(str)).astype(np.int64),
            dst=nodes.get_indexer(edges["target"].astype(str)).astype(np.int64),
            weight=pd.to_numeric(edges["weight"]).to_numpy(np.float64),
            sign=pd.to_numeric(edges["sign"]).to_numpy(np.float64),
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

    def sample_grouped(
        self, n_positive: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (source, target, sign) of ``n_positive`` positive edges and their
        (n_positive, negatives) negative targets; each negative keeps its positive's source
        and sign."""
        pos = _draw(self._edge_cdf, n_positive, rng)
        neg_dst = _draw(self._node_cdf, n_positive * self.negatives, rng)
        return self.src[pos], self.dst[pos], self.sign[pos], neg_dst.reshape(n_positive, self.negatives)

    def sample(
        self, n_positive: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The same draws as :meth:`sample_grouped`, flat: (source, target, sign, label)
        arrays, positives first, then their negatives."""
        src, dst, sign, neg = self.sample_grouped(n_positive, rng)
        return (
            np.concatenate([src, np.repeat(src, self.negatives)]),
            np.concatenate([dst, neg.reshape(-1)]),
            np.concatenate([sign, np.repeat(sign, self.negatives)]),
            np.concatenate([np.ones(n_positive, np.float32), np.zeros(n_positive * self.negatives, np.float32)]),
        )


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, dtype=np.float64)
    return cdf / cdf[-1]


def _draw(cdf: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    idx = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(idx, len(cdf) - 1)
