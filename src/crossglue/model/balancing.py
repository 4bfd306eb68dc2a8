"""Balancing weights for the discriminator, estimated from the pretrained embedding.

Each domain is clustered (Leiden on a kNN graph of its u, :func:`crossglue.embedding.knn_leiden`); a cluster's
score is, summed
over the other domains, its best cosine similarity to one of their cluster centroids
(similarities below ``cutoff`` count as zero, the rest are raised to ``power``). A cell's
weight is its cluster's score divided by the cluster size, scaled to mean 1 per domain, so
matched cell types count equally whatever their proportions and unmatched ones (a
species-specific type) are not pushed onto others. scglue divides by the total score even
when it is zero, which yields NaN when domains start far apart (common across species);
here a domain without any matched cluster falls back to uniform weights, with a warning.

Clustering uses exact kNN, quadratic in the cells, so a domain larger than
``BALANCING_CELLS`` is clustered on a seeded sample of that many cells and every other cell
joins its nearest cluster centroid: the cost stays bounded at atlas scale, and domains up to
that size (the demo, the realistic preset) are clustered whole as before.
"""

from __future__ import annotations

import logging

import numpy as np

from crossglue.embedding import knn_leiden

log = logging.getLogger("crossglue.model")

BALANCING_CELLS = 50_000
# Rows per block when assigning cells to their nearest centroid (bounds the distance matrix).
_ASSIGN_BLOCK = 65_536


def _centroids(embedding: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_clusters = clusters.max() + 1
    sizes = np.bincount(clusters, minlength=n_clusters).astype(np.float64)
    sums = np.zeros((n_clusters, embedding.shape[1]))
    np.add.at(sums, clusters, embedding)
    return sums / sizes[:, None], sizes


def _unit_centroids(embedding: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centroids, sizes = _centroids(embedding, clusters)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return centroids / np.maximum(norms, 1e-12), sizes


def domain_clusters(
    embedding: np.ndarray, n_neighbors: int, resolution: float, seed: int, max_cells: int = BALANCING_CELLS
) -> np.ndarray:
    """Leiden clusters of a domain's cells; above ``max_cells`` cells, of a seeded sample, the
    other cells taking their nearest (Euclidean) cluster centroid."""
    n = len(embedding)
    if n <= max_cells:
        return knn_leiden(embedding, n_neighbors, resolution, seed)
    sample = np.sort(np.random.default_rng(seed).choice(n, size=max_cells, replace=False))
    sampled = knn_leiden(embedding[sample], n_neighbors, resolution, seed)
    centroids, _ = _centroids(embedding[sample], sampled)
    clusters = np.empty(n, dtype=np.int64)
    for start in range(0, n, _ASSIGN_BLOCK):
        block = embedding[start : start + _ASSIGN_BLOCK].astype(np.float64)
        distance = (centroids**2).sum(axis=1) - 2.0 * block @ centroids.T
        clusters[start : start + len(block)] = distance.argmin(axis=1)
    clusters[sample] = sampled
    return clusters


def balancing_weights(
    embeddings: dict[str, np.ndarray],
    cutoff: float = 0.5,
    power: float = 4.0,
    n_neighbors: int = 15,
    resolution: float = 1.0,
    seed: int = 0,
    max_cells: int = BALANCING_CELLS,
) -> dict[str, np.ndarray]:
    """Per-cell discriminator weights for every domain: finite, non-negative, mean 1."""
    clusters = {k: domain_clusters(e, n_neighbors, resolution, seed, max_cells) for k, e in embeddings.items()}
    centroids = {k: _unit_centroids(embeddings[k], clusters[k]) for k in embeddings}
    weights = {}
    for k in embeddings:
        unit_k, sizes_k = centroids[k]
        score = np.zeros(len(sizes_k))
        for j in embeddings:
            if j == k:
                continue
            similarity = unit_k @ centroids[j][0].T
            similarity = np.where(similarity >= cutoff, similarity, 0.0) ** power
            score += similarity.max(axis=1)
        per_cell = (score / sizes_k)[clusters[k]]
        total = per_cell.sum()
        if not np.isfinite(total) or total <= 0:
            log.warning(
                "balancing: no cluster of domain %s matches any other domain (cosine >= %.2f); "
                "using uniform weights for it",
                k,
                cutoff,
            )
            per_cell = np.ones(len(per_cell))
            total = float(len(per_cell))
        weights[k] = (per_cell * (len(per_cell) / total)).astype(np.float32)
    return weights
