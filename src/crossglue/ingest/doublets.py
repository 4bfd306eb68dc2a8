"""Doublet detection per sample: simulated doublets, embedded with the observed nuclei.

The Scrublet recipe (Wolock et al., Cell Systems 2019), applied to each modality with its
own embedding: add ``sim_ratio`` x n artificial doublets, each the sum of the raw counts of
two random observed nuclei; embed observed + simulated (RNA: library-size normalised log
counts of the most variable genes, PCA fitted on the observed nuclei; ATAC: TF-IDF of the
most accessible tiles, SVD fitted on the observed nuclei, first component dropped as in
:func:`crossglue.embedding.lsi`); score each nucleus by the share of simulated doublets among
its neighbours, turned into a posterior probability with the expected doublet rate.

A heterotypic doublet lands between two cell types where only simulated doublets live; a
singlet lands among singlets. ATAC adds depth to that score (see :func:`score_doublets`).
The call flags, per sample and modality, the ``expected_rate`` share of nuclei with the
highest scores (:func:`rate_threshold`): the rate is known from the loading, whereas
Scrublet's automatic cut (histogram minimum of the simulated doublets' scores) caught only
33-57 % of the realistic preset's doublets. A multiome nucleus is a doublet when either
modality calls it (both modalities hold the same two nuclei); each of its modalities then
calls half the expected rate, so the union does not call twice the expected count. AMULET (positions covered by
more than two fragments of a barcode) is not used: the simulator does not cap a nucleus at
two copies per locus, so its singlets show hundreds of such positions and the count is a
depth proxy (AUC 0.75-0.91, below depth itself).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from crossglue.config import schema_defaults, settings_from
from crossglue.embedding import knn_indices, tfidf

log = logging.getLogger(__name__)

_DEFAULTS = schema_defaults("ingest.doublets")
SCORE_COLUMNS = {"rna": "doublet_score_rna", "atac": "doublet_score_atac"}


@dataclass(frozen=True)
class DoubletSettings:
    """``config["ingest"]["doublets"]`` (defaults from the schema)."""

    enabled: bool = _DEFAULTS["enabled"]
    expected_rate: float = _DEFAULTS["expected_rate"]
    sim_ratio: float = _DEFAULTS["sim_ratio"]
    n_components: int = _DEFAULTS["n_components"]
    n_top_features: int = _DEFAULTS["n_top_features"]
    n_neighbors: int | None = _DEFAULTS["n_neighbors"]
    threshold: float | None = _DEFAULTS["threshold"]
    min_cells: int = _DEFAULTS["min_cells"]
    seed: int = _DEFAULTS["seed"]

    @classmethod
    def from_config(cls, values: dict | None) -> DoubletSettings:
        return settings_from(cls, "ingest.doublets", values)


@dataclass
class DoubletScores:
    """One modality's result: per observed nucleus its score, and the threshold used."""

    scores: np.ndarray
    threshold: float
    simulated: np.ndarray  # scores of the simulated doublets (for the QC plot)


def simulate_doublets(counts: sp.csr_matrix, n: int, rng: np.random.Generator) -> sp.csr_matrix:
    """``n`` artificial doublets: the summed raw counts of two different random nuclei."""
    a = rng.integers(0, counts.shape[0], n)
    b = (a + rng.integers(1, counts.shape[0], n)) % counts.shape[0]  # never the same nucleus twice
    return sp.csr_matrix(counts[a] + counts[b])


def _rna_features(observed: sp.csr_matrix, simulated: sp.csr_matrix, settings: DoubletSettings) -> np.ndarray:
    """Log-normalised counts (1e4 per nucleus) of the most variable genes, PCA fitted on the observed."""

    def lognorm(x: sp.csr_matrix) -> sp.csr_matrix:
        depth = np.asarray(x.sum(axis=1)).ravel()
        out = sp.csr_matrix(sp.diags(1e4 / np.maximum(depth, 1)) @ x)
        out.data = np.log1p(out.data)
        return out

    obs, sim = lognorm(observed), lognorm(simulated)
    mean = np.asarray(obs.mean(axis=0)).ravel()
    var = np.asarray(obs.multiply(obs).mean(axis=0)).ravel() - mean**2
    # Most variable genes by dispersion (variance / mean) among the expressed ones.
    disp = np.divide(var, mean, out=np.zeros_like(mean), where=mean > 0)
    top = np.argsort(-disp, kind="stable")[: min(settings.n_top_features, int((mean > 0).sum()))]
    obs, sim = obs[:, top], sim[:, top]
    mean, sd = mean[top], np.sqrt(np.maximum(var[top], 1e-12))
    z_obs = (obs.toarray() - mean) / sd
    z_sim = (sim.toarray() - mean) / sd
    n_comp = max(1, min(settings.n_components, z_obs.shape[0] - 1, z_obs.shape[1] - 1))
    svd = TruncatedSVD(n_components=n_comp, random_state=settings.seed, algorithm="randomized", n_iter=7)
    return np.vstack([svd.fit_transform(z_obs), svd.transform(z_sim)])


def _atac_features(observed: sp.csr_matrix, simulated: sp.csr_matrix, settings: DoubletSettings) -> np.ndarray:
    """LSI of the most accessible tiles: SVD fitted on the observed nuclei, component 1 (depth) dropped."""
    coverage = np.asarray(observed.sum(axis=0)).ravel()
    top = np.argsort(-coverage, kind="stable")[: min(settings.n_top_features, int((coverage > 0).sum()))]
    both = tfidf(sp.vstack([observed[:, top], simulated[:, top]]).tocsr())
    n_obs = observed.shape[0]
    n_comp = max(2, min(settings.n_components + 1, n_obs - 1, len(top) - 1))
    svd = TruncatedSVD(n_components=n_comp, random_state=settings.seed, algorithm="randomized", n_iter=7)
    svd.fit(both[:n_obs])
    emb = svd.transform(both)[:, 1:]
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def rate_threshold(scores: np.ndarray, expected_rate: float) -> float:
    """The score of the ``ceil(expected_rate x n)``-th highest nucleus: the cut that flags the expected doublets.

    Why not the histogram minimum of the simulated doublets' scores (Scrublet's automatic
    threshold): on the realistic preset it sits above half the planted doublets, while
    the kNN score ranks them well (RNA AUC 0.94-1.00); the expected rate is what a user
    knows from the loading.
    """
    n_called = max(1, int(np.ceil(expected_rate * len(scores))))
    return float(np.sort(scores)[::-1][min(n_called, len(scores)) - 1])


def _percentile(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``reference`` below each value (mid-rank for ties), in [0, 1]."""
    ref = np.sort(reference)
    return (np.searchsorted(ref, values, side="left") + np.searchsorted(ref, values, side="right")) / (2 * len(ref))


def score_doublets(counts: sp.spmatrix, modality: str, settings: DoubletSettings) -> DoubletScores:
    """Doublet score of every row of ``counts`` and the threshold from the expected rate.

    RNA: Scrublet's posterior probability from the share of simulated neighbours. ATAC: the
    mean of two percentiles among the observed nuclei, that posterior's and the fragment
    count's (a doublet holds two nuclei's fragments; at ~2,000 fragments the LSI neighbours
    alone separate poorly, AUC 0.63-0.89 on the realistic preset, depth alone 0.83-0.92).
    """
    observed = sp.csr_matrix(counts, dtype=np.float64)
    n_obs = observed.shape[0]
    rng = np.random.default_rng(settings.seed)
    n_sim = max(1, int(round(settings.sim_ratio * n_obs)))
    simulated = simulate_doublets(observed, n_sim, rng)
    features = (_rna_features if modality == "rna" else _atac_features)(observed, simulated, settings)
    ratio = n_sim / n_obs
    k = settings.n_neighbors or max(5, int(round(0.5 * np.sqrt(n_obs))))
    k_adj = min(int(round(k * (1 + ratio))), len(features) - 1)
    nbrs = knn_indices(features, k_adj)  # itself excluded, even among identical rows
    n_sim_nbrs = (nbrs >= n_obs).sum(axis=1)
    # Scrublet: q = share of simulated neighbours (with a pseudocount); Bayes with the prior
    # rate rho and the simulation ratio r gives P(doublet | q).
    q = (n_sim_nbrs + 1) / (k_adj + 2)
    rho, r = settings.expected_rate, ratio
    scores = q * rho / r / (1 - rho - q * (1 - rho - rho / r))
    if modality == "atac":
        depth = np.log1p(np.asarray(sp.vstack([observed, simulated]).sum(axis=1)).ravel())
        scores = (_percentile(scores[:n_obs], scores) + _percentile(depth[:n_obs], depth)) / 2
    observed_scores = scores[:n_obs]
    threshold = settings.threshold if settings.threshold is not None else rate_threshold(observed_scores, rho)
    return DoubletScores(scores=observed_scores, threshold=threshold, simulated=scores[n_obs:])


def call_doublets(
    qc: pd.DataFrame, matrices: dict[str, tuple[sp.spmatrix, np.ndarray]], settings: DoubletSettings, sample: str
) -> pd.DataFrame:
    """Add ``doublet_score_<modality>`` and ``doublet`` to the QC table; doublets fail ``pass``.

    ``matrices`` maps a modality to (counts, barcodes) of the nuclei that passed the QC
    thresholds (only they are scored; others keep NA scores). A sample with fewer than
    ``min_cells`` such nuclei is not scored (a warning says so): its kNN would be noise.
    """
    qc = qc.copy()
    qc["doublet"] = False
    if not settings.enabled:
        return qc
    called = np.zeros(len(qc), bool)
    thresholds = {}
    for modality, (counts, barcodes) in matrices.items():
        column = SCORE_COLUMNS[modality]
        qc[column] = np.nan
        if len(barcodes) < settings.min_cells:
            log.warning(
                "%s: %d nuclei pass QC, fewer than ingest.doublets.min_cells = %d; %s doublets not scored",
                sample,
                len(barcodes),
                settings.min_cells,
                modality,
            )
            continue
        # A multiome sample's modalities share its nuclei: each calls its share of the expected
        # rate, so that the union stays at the expected count (the full rate each lost 3.4 %).
        shared = replace(settings, expected_rate=settings.expected_rate / len(matrices))
        result = score_doublets(counts, modality, shared)
        rows = qc.index.get_indexer(barcodes)
        qc.iloc[rows, qc.columns.get_loc(column)] = result.scores
        called[rows[result.scores >= result.threshold]] = True
        thresholds[modality] = result.threshold
        log.info(
            "%s: %d of %d nuclei called %s doublets (score >= %.3f; %.0f%% of simulated doublets above it)",
            sample,
            int((result.scores >= result.threshold).sum()),
            len(barcodes),
            modality,
            result.threshold,
            100 * float((result.simulated >= result.threshold).mean()),
        )
    qc["doublet"] = called
    qc["pass"] = qc["pass"].to_numpy() & ~called
    qc.attrs["doublet_thresholds"] = thresholds
    return qc
