"""Cell embeddings and clusters shared by every stage: TF-IDF, LSI, exact kNN, Leiden.

One implementation each: the model's ATAC input, the peak stage's clusters of unlabelled
cells, the metacells of peak–gene correlation and the balancing clusters all use these.
Leiden runs on the igraph + leidenalg engines scanpy uses, called directly (no numba
start-up); everything is seeded, so the same input gives the same clusters.
"""

from __future__ import annotations

import igraph as ig
import leidenalg
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize
from sklearn.utils.extmath import randomized_svd

from crossglue.errors import CrossglueError


def tfidf(counts: sp.spmatrix) -> sp.csr_matrix:
    """log1p(1e4 · term frequency · inverse document frequency) of a cells × features matrix.

    Term frequency: counts over the cell's total; inverse document frequency: cells over the
    feature's total (GLUE's and Signac's recipe). Float32 throughout, as the model reads it.
    """
    counts = sp.csr_matrix(counts, dtype=np.float32)
    row = np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1.0)
    col = np.maximum(np.asarray(counts.sum(axis=0)).ravel(), 1.0)
    out = sp.csr_matrix(counts.multiply(1.0 / row[:, None]).multiply(counts.shape[0] / col[None, :]))
    out.data = np.log1p(1e4 * out.data)
    return out


def lsi(counts: sp.spmatrix, n_components: int = 30, seed: int = 0) -> np.ndarray:
    """Latent semantic indexing: truncated (randomised) SVD of :func:`tfidf`, as ``U · S``.

    The one LSI of the project: the model standardises each cell's components, clustering
    drops the first (depth) component and L2-normalises rows.
    """
    x = tfidf(counts)
    k = max(1, min(n_components, min(x.shape) - 1))
    u, s, _ = randomized_svd(x, n_components=k, n_iter=15, random_state=seed)
    return u * s


def knn_indices(x: np.ndarray, k: int, reference: np.ndarray | None = None, return_distance: bool = False):
    """Each row's ``k`` nearest rows of ``x[reference]`` (Euclidean, exact), itself excluded.

    ``reference`` (row indices, default all rows) restricts who can be a neighbour; a row
    that is itself a reference row is never its own neighbour, even among exact duplicates.
    Returns indices into ``x`` (and distances when asked), nearest first.
    """
    ref = np.arange(len(x)) if reference is None else np.asarray(reference)
    k = min(k, len(ref) - 1)
    if k < 1:
        raise CrossglueError(f"neighbours: need at least 2 reference cells, got {len(ref)}")
    dist, nbrs = NearestNeighbors(n_neighbors=k + 1).fit(x[ref]).kneighbors(x)
    nbrs = ref[nbrs]
    # Drop self; where duplicates make self not come first, drop whichever column holds it.
    is_self = nbrs == np.arange(len(x))[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    nbrs = nbrs[~is_self].reshape(len(x), k)
    if return_distance:
        return nbrs, dist[~is_self].reshape(len(x), k)
    return nbrs


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
    counts = sp.csr_matrix(counts)
    coverage = np.asarray(counts.sum(axis=0)).ravel()
    top = np.argsort(-coverage, kind="stable")[: min(n_top_features, counts.shape[1])]
    top = top[coverage[top] > 0]
    if min(len(top), counts.shape[0]) < 4:
        raise CrossglueError(
            f"clustering: {counts.shape[0]} cells with {len(top)} accessible tiles are too few for LSI"
        )
    # ArchR and Signac drop the first LSI component: it tracks sequencing depth.
    embedding = normalize(lsi(counts[:, top], n_components + 1, seed)[:, 1:])
    labels = knn_leiden(embedding, n_neighbors, resolution, seed).astype(str)
    return pd.Series(labels, index=pd.Index(cell_ids.astype(str)), name="cluster")
