"""Integration metrics of a joint cell embedding: is biology kept, are species and batches mixed?

Definitions follow the benchmarks readers know: scIB (Luecken et al. 2022) for ASW, NMI/ARI
and graph connectivity; GLUE (Cao & Gao 2022) for mean average precision, Seurat alignment
score and FOSCTTM; BENGAL (Song et al. 2023) for ALCS. Every function takes plain arrays, so
each can be checked by hand on a few points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_samples
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier

from crossglue.embedding import knn_indices
from crossglue.errors import CrossglueError


def _labels(values, n: int, name: str) -> np.ndarray:
    out = np.asarray(values).astype(str)
    if out.shape != (n,):
        raise CrossglueError(f"metrics: {name} has shape {out.shape}, expected one label per cell ({n})")
    return out


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
    nbrs = knn_indices(embedding, k)
    other = (species[nbrs] != species[:, None]).mean(axis=1)
    _, inverse, counts = np.unique(species, return_inverse=True, return_counts=True)
    expected = 1.0 - counts[inverse] / len(species)
    return float(np.mean(other / np.maximum(expected, 1e-12)))


def cell_type_asw(x: np.ndarray, labels) -> float:
    """Cell-type average silhouette width rescaled to [0, 1] (1 = compact, separated types)."""
    labels = _labels(labels, len(x), "labels")
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float((silhouette_samples(x, labels).mean() + 1) / 2)


def batch_asw(x: np.ndarray, batch, labels) -> float:
    """scIB batch ASW: inside each cell type, 1 - |silhouette of batch|, averaged over cells of
    the type and then over types (1 = batches fully mixed). Types seen in one batch are skipped."""
    batch = _labels(batch, len(x), "batch")
    labels = _labels(labels, len(x), "labels")
    scores = []
    for label in np.unique(labels):
        mask = labels == label
        if len(np.unique(batch[mask])) < 2 or mask.sum() < 3:
            continue
        scores.append(np.mean(1 - np.abs(silhouette_samples(x[mask], batch[mask]))))
    return float(np.mean(scores)) if scores else float("nan")


def nmi(clusters, labels) -> float:
    """Normalised mutual information between clusters and labels (arithmetic mean normaliser)."""
    return float(normalized_mutual_info_score(np.asarray(labels).astype(str), np.asarray(clusters).astype(str)))


def ari(clusters, labels) -> float:
    """Adjusted Rand index between clusters and labels."""
    return float(adjusted_rand_score(np.asarray(labels).astype(str), np.asarray(clusters).astype(str)))


def mean_average_precision(x: np.ndarray, labels, k: int | None = None) -> float:
    """GLUE's MAP: for each cell, the average precision of its ``k`` nearest neighbours ranked by
    distance, a neighbour being relevant when it shares the cell's label (0 when none does).
    ``k`` defaults to 1 % of cells (at least 1)."""
    labels = _labels(labels, len(x), "labels")
    k = max(1, round(0.01 * len(x))) if k is None else k
    nbrs = knn_indices(x, k)
    relevant = labels[nbrs] == labels[:, None]
    hits = np.cumsum(relevant, axis=1)
    precision_at = hits / np.arange(1, nbrs.shape[1] + 1)
    n_relevant = relevant.sum(axis=1)
    ap = np.where(n_relevant > 0, (precision_at * relevant).sum(axis=1) / np.maximum(n_relevant, 1), 0.0)
    return float(ap.mean())


def graph_connectivity(x: np.ndarray, labels, k: int = 15) -> float:
    """scIB graph connectivity: for each label, the share of its cells in the largest connected
    component of the kNN graph restricted to that label; averaged over labels (1 = each type
    forms one connected piece)."""
    labels = _labels(labels, len(x), "labels")
    nbrs = knn_indices(x, k)
    rows = np.repeat(np.arange(len(x)), nbrs.shape[1])
    graph = sp.csr_matrix((np.ones(rows.size), (rows, nbrs.ravel())), shape=(len(x), len(x)))
    scores = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        _, comp = connected_components(graph[idx][:, idx], directed=False)
        scores.append(np.bincount(comp).max() / idx.size)
    return float(np.mean(scores))


def seurat_alignment_score(x: np.ndarray, batch, k: int | None = None, seed: int = 0) -> float:
    """Seurat alignment score as in GLUE: subsample every batch to the smallest batch's size,
    count same-batch cells among each cell's ``k`` neighbours (k = 1 % of cells, at least 1),
    and rescale the mean so 1 = neighbours as mixed as the batch sizes allow, 0 = none mixed."""
    batch = _labels(batch, len(x), "batch")
    names, codes = np.unique(batch, return_inverse=True)
    if len(names) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    smallest = np.bincount(codes).min()
    keep = np.sort(
        np.concatenate([rng.choice(np.flatnonzero(codes == c), smallest, replace=False) for c in range(len(names))])
    )
    x, codes = x[keep], codes[keep]
    k = max(1, round(0.01 * len(x))) if k is None else min(k, len(x) - 1)
    nbrs = knn_indices(x, k)
    same = (codes[nbrs] == codes[:, None]).sum(axis=1).mean()
    expected = k / len(names)
    return float(1 - (same - expected) / (k - expected))


def foscttm(x: np.ndarray, y: np.ndarray, chunk: int = 2048) -> float:
    """Fraction of samples closer than the true match, for paired rows of ``x`` and ``y``
    (0 = every nucleus nearest its own partner, ~0.5 = random), averaged over both directions
    with GLUE's denominator n. Computed in row chunks so memory stays O(chunk * n)."""
    if x.shape != y.shape:
        raise CrossglueError(f"metrics: FOSCTTM needs paired rows, got shapes {x.shape} and {y.shape}")
    n = len(x)
    if n < 2:
        return float("nan")
    x_side = np.empty(n)
    y_side_counts = np.zeros(n)
    true = np.sqrt(((x - y) ** 2).sum(axis=1))
    for lo in range(0, n, chunk):
        d = cdist(x[lo : lo + chunk], y)
        x_side[lo : lo + chunk] = (d < true[lo : lo + chunk, None]).sum(axis=1) / n
        y_side_counts += (d < true[None, :]).sum(axis=0)
    return float((x_side.mean() + (y_side_counts / n).mean()) / 2)


def self_projection_accuracy(x: np.ndarray, labels, k: int = 15, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a kNN classifier predicting a cell's type from the others in
    the same space: how distinguishable the types are there."""
    labels = _labels(labels, len(x), "labels")
    counts = pd.Series(labels).value_counts()
    keep = np.isin(labels, counts.index[counts >= folds])
    x, labels = x[keep], labels[keep]
    if len(np.unique(labels)) < 2:
        return float("nan")
    correct = 0
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, labels):
        clf = KNeighborsClassifier(n_neighbors=min(k, len(train))).fit(x[train], labels[train])
        correct += (clf.predict(x[test]) == labels[test]).sum()
    return float(correct / len(labels))


def alcs(
    before: dict[str, tuple[np.ndarray, np.ndarray]], after: dict[str, tuple[np.ndarray, np.ndarray]], **kw
) -> float:
    """BENGAL's accuracy loss of cell-type self-projection: for each species, how much the
    self-projection accuracy of its labelled cells drops from its own (unintegrated) space to
    the joint space, floored at 0, averaged over species (0 = integration blurred nothing)."""
    losses = []
    for species, (x_before, labels) in before.items():
        if species not in after:
            continue
        x_after, labels_after = after[species]
        acc_before = self_projection_accuracy(x_before, labels, **kw)
        acc_after = self_projection_accuracy(x_after, labels_after, **kw)
        if np.isfinite(acc_before) and np.isfinite(acc_after):
            losses.append(max(0.0, acc_before - acc_after))
    return float(np.mean(losses)) if losses else float("nan")


def label_transfer_accuracy(predicted, truth) -> float:
    """Share of cells whose transferred label equals the true one (``unassigned`` counts as wrong)."""
    predicted, truth = np.asarray(predicted).astype(str), np.asarray(truth).astype(str)
    return float((predicted == truth).mean()) if len(truth) else float("nan")


# Names and groups of the rows of results/analysis/metrics.tsv, in report order.
METRIC_CATEGORIES = {
    "cell_type_asw": "biology conservation",
    "nmi": "biology conservation",
    "ari": "biology conservation",
    "mean_average_precision": "biology conservation",
    "alcs": "biology conservation (lower is better)",
    "batch_asw_species": "species and batch mixing",
    "batch_asw_modality": "species and batch mixing",
    "batch_asw_sample": "species and batch mixing",
    "graph_connectivity": "species and batch mixing",
    "seurat_alignment_species": "species and batch mixing",
    "seurat_alignment_modality": "species and batch mixing",
    "foscttm": "multiome pairing (lower is better)",
    "label_transfer_accuracy": "annotation",
}


def shared_nuclei(ids_a, ids_b) -> tuple[np.ndarray, np.ndarray]:
    """Positions (a, b) of the nuclei named exactly once in ``ids_a`` and once in ``ids_b``,
    sorted by nucleus id; missing ids (None, NaN, "", "nan", "NA", "None") never pair."""

    def once(ids) -> pd.Series:
        ids = pd.Series(pd.array(np.asarray(ids, dtype=object), dtype="string"))
        ids = ids[ids.notna() & ~ids.isin(["", "nan", "NA", "None"])]
        ids = ids[~ids.duplicated(keep=False)]
        return pd.Series(ids.index.to_numpy(np.int64), index=ids.to_numpy(str))

    a, b = once(ids_a), once(ids_b)
    common = a.index.intersection(b.index).sort_values()
    return a.loc[common].to_numpy(np.int64), b.loc[common].to_numpy(np.int64)


def paired_nuclei(
    obs: pd.DataFrame, nucleus_key: str = "nucleus", modality_key: str = "modality"
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (a, b) of the two profiles of each multiome nucleus: nuclei seen exactly
    twice, in two different modalities; ``a`` holds the alphabetically first modality."""
    modalities = np.sort(obs[modality_key].astype(str).unique()) if nucleus_key in obs else []
    if len(modalities) != 2:
        return np.array([], dtype=int), np.array([], dtype=int)
    rows = {m: np.flatnonzero(obs[modality_key].astype(str).to_numpy() == m) for m in modalities}
    ids = obs[nucleus_key].astype(object).to_numpy()
    a, b = shared_nuclei(ids[rows[modalities[0]]], ids[rows[modalities[1]]])
    return rows[modalities[0]][a], rows[modalities[1]][b]


def evaluate_embedding(
    x: np.ndarray,
    obs: pd.DataFrame,
    labels: pd.Series,
    clusters_key: str = "leiden",
    unintegrated: dict[str, tuple[pd.Index, np.ndarray]] | None = None,
    transferred: pd.Series | None = None,
    k: int = 15,
    seed: int = 0,
) -> dict[str, float]:
    """Every metric of one embedding against one set of labels (given or true).

    ``labels`` is aligned to ``obs`` with NA where a cell has none; label-based metrics use the
    labelled cells only. ``unintegrated`` maps species -> (cell ids, per-species embedding) for
    ALCS; ``transferred`` (labels transferred to every cell) gives the annotation accuracy.
    """
    labels = pd.Series(np.asarray(labels, dtype=object), index=obs.index)
    has = labels.notna().to_numpy() & (labels.astype(str) != "unassigned").to_numpy()
    out: dict[str, float] = dict.fromkeys(METRIC_CATEGORIES, float("nan"))
    if has.sum() >= 3:
        xl, yl, ol = x[has], labels[has].astype(str).to_numpy(), obs[has]
        out["cell_type_asw"] = cell_type_asw(xl, yl)
        if clusters_key in ol:
            out["nmi"] = nmi(ol[clusters_key], yl)
            out["ari"] = ari(ol[clusters_key], yl)
        out["mean_average_precision"] = mean_average_precision(xl, yl)
        out["graph_connectivity"] = graph_connectivity(xl, yl, k=k)
        for key in ("species", "modality", "sample"):
            if key in ol:
                out[f"batch_asw_{key}"] = batch_asw(xl, ol[key], yl)
        if unintegrated:
            position = pd.Series(np.arange(len(obs)), index=obs.index)
            before, after = {}, {}
            for species, (ids, emb) in unintegrated.items():
                ids = pd.Index(ids)
                found = ids.isin(labels.index[has])
                if found.sum() < 10:
                    continue
                ids, emb = ids[found], emb[found]
                before[species] = (emb, labels[ids].astype(str).to_numpy())
                after[species] = (x[position[ids].to_numpy()], labels[ids].astype(str).to_numpy())
            out["alcs"] = alcs(before, after, k=k, seed=seed)
        if transferred is not None:
            out["label_transfer_accuracy"] = label_transfer_accuracy(np.asarray(transferred)[has], yl)
    for key in ("species", "modality"):
        if key in obs:
            out[f"seurat_alignment_{key}"] = seurat_alignment_score(x, obs[key], seed=seed)
    a, b = paired_nuclei(obs)
    if len(a) >= 2:
        out["foscttm"] = foscttm(x[a], x[b])
    return out
