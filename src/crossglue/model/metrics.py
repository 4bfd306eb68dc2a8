"""Integration scores used by the model's tests and benchmark.

k-nearest-neighbour label transfer from one domain to another and species mixing among
neighbours; FOSCTTM and the Seurat alignment score come from :mod:`crossglue.analysis.metrics`.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from crossglue.analysis.metrics import foscttm, seurat_alignment_score

__all__ = ["foscttm", "knn_transfer_accuracy", "seurat_alignment_score", "species_mixing"]


def knn_transfer_accuracy(
    ref: np.ndarray, ref_labels: np.ndarray, query: np.ndarray, query_labels: np.ndarray, k: int = 15
) -> float:
    """Accuracy of labels voted by each query cell's k nearest reference cells."""
    clf = KNeighborsClassifier(n_neighbors=min(k, len(ref))).fit(ref, np.asarray(ref_labels))
    return float((clf.predict(query) == np.asarray(query_labels)).mean())


def species_mixing(embedding: np.ndarray, species: np.ndarray, k: int = 30) -> float:
    """Mean share of other-species cells among each cell's k neighbours, divided by that
    share in the whole set: 1 = perfectly mixed, 0 = separated."""
    species = np.asarray(species)
    k = min(k, len(species) - 1)
    nbrs = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(embedding, return_distance=False)[:, 1:]
    other = (species[nbrs] != species[:, None]).mean(axis=1)
    _, inverse, counts = np.unique(species, return_inverse=True, return_counts=True)
    expected = 1.0 - counts[inverse] / len(species)
    return float(np.mean(other / np.maximum(expected, 1e-12)))
