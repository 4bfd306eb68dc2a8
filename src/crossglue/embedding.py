"""Cell groups for pseudobulk peak calling when a species' cells carry no labels.

TF-IDF + LSI on the genome-tile matrix (the ArchR / Signac recipe), then a kNN graph and
Leiden (the igraph + leidenalg engines scanpy uses, called directly: no numba start-up);
everything seeded, so the same input gives the same clusters.
"""

from __future__ import annotations

import igraph as ig
import leidenalg
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize

from crossglue.analysis.metrics import knn_indices
from crossglue.errors import CrossglueError


def tfidf(counts: sp.spmatrix) -> sp.csr_matrix:
    """log1p(term frequency × inverse document frequency × 1e4) of a cells × features matrix."""
    counts = sp.csr_matrix(counts, dtype=np.float64)
    depth = np.asarray(counts.sum(axis=1)).ravel()
    n_cells = counts.shape[0]
    present = np.asarray((counts > 0).sum(axis=0)).ravel()
    idf = np.log1p(n_cells / (1.0 + present))
    tf = sp.diags(1.0 / np.where(depth > 0, depth, 1.0)) @ counts
    out = tf @ sp.diags(idf)
    out.data = np.log1p(out.data * 1e4)
    return sp.csr_matrix(out)


def lsi(counts: sp.spmatrix, n_components: int = 30, n_top_features: int = 25_000, seed: int = 0) -> np.ndarray:
    """LSI embedding: TF-IDF on the most accessible features, truncated SVD, first component dropped.

    The first LSI component tracks sequencing depth (ArchR and Signac drop it too); rows are
    L2-normalised so that cosine-like distances drive the kNN graph.
    """
    counts = sp.csr_matrix(counts)
    coverage = np.asarray(counts.sum(axis=0)).ravel()
    top = np.argsort(-coverage, kind="stable")[: min(n_top_features, counts.shape[1])]
    top = top[coverage[top] > 0]
    n_comp = min(n_components + 1, len(top) - 1, counts.shape[0] - 1)
    if n_comp < 2:
        raise CrossglueError(
            f"clustering: {counts.shape[0]} cells with {len(top)} accessible tiles are too few for LSI"
        )
    svd = TruncatedSVD(n_components=n_comp, random_state=seed, algorithm="randomized", n_iter=7)
    embedding = svd.fit_transform(tfidf(counts[:, top]))[:, 1:]
    return normalize(embedding)


def knn_leiden(embedding: np.ndarray, n_neighbors: int = 15, resolution: float = 1.0, seed: int = 0) -> np.ndarray:
    """Leiden clusters (seeded; 0 = largest) of the union kNN graph of an embedding's rows:
    exact Euclidean neighbours, an unweighted edge when either row is the other's neighbour."""
    n = len(embedding)
    if n < 3:
        return np.zeros(n, dtype=np.int64)
    neighbours = knn_indices(embedding, n_neighbors)
    source = np.repeat(np.arange(n), neighbours.shape[1])
    graph = ig.Graph(n=n, edges=np.column_stack([source, neighbours.ravel()]).tolist(), directed=False)
    graph.simplify(multiple=True, loops=True)
    partition = leidenalg.find_partition(
        graph, leidenalg.RBConfigurationVertexPartition, resolution_parameter=resolution, n_iterations=-1, seed=seed
    )
    return np.asarray(partition.membership, dtype=np.int64)


def leiden_clusters(
    counts: sp.spmatrix,
    cell_ids: pd.Index,
    n_components: int = 30,
    n_top_features: int = 25_000,
    n_neighbors: int = 15,
    resolution: float = 1.0,
    seed: int = 0,
) -> pd.Series:
    """Leiden cluster (as a string label) of every cell, from LSI of its tile counts."""
    labels = knn_leiden(lsi(counts, n_components, n_top_features, seed), n_neighbors, resolution, seed).astype(str)
    return pd.Series(labels, index=pd.Index(cell_ids.astype(str)), name="cluster")
