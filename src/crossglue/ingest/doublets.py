"""Doublet detection per sample: simulated doublets, embedded with the observed nuclei.

The Scrublet recipe (Wolock et al., Cell Systems 2019), applied to each modality with its
own embedding: add ``sim_ratio`` x n artificial doublets, each the sum of the raw counts of
two random observed nuclei; embed observed + simulated (RNA: library-size normalised log
counts of the most variable genes, PCA fitted on the observed nuclei; ATAC: TF-IDF of the
most accessible tiles, SVD fitted on the observed nuclei, first component dropped as in
:func:`crossglue.embedding.lsi`); score each nucleus by the share of simulated doublets among
its neighbours, turned into a posterior probability with the expected doublet rate.

A heterotypic doublet lands between two cell types where only simulated doublets live; a
singlet lands among singlets. ATAC instead counts, as AMULET does (Thibodeau et al., Genome
Biology 2021), the loci a barcode covers with more than two fragments: a diploid nucleus has
two copies of each locus, so a third fragment there comes from a second nucleus
(:class:`OverlapCounter`, :func:`overlap_counts`; the kNN score remains for callers without
fragments). The call flags, per sample and modality, the ``expected_rate`` share of nuclei
with the highest scores, ties at the cut broken by depth (:func:`rate_call`): the rate is
known from the loading, whereas Scrublet's automatic cut (histogram minimum of the simulated
doublets' scores) caught only 33-57 % of the realistic preset's doublets. A multiome nucleus is a doublet when either
modality calls it (both modalities hold the same two nuclei); each of its modalities then
calls half the expected rate, so the union does not call twice the expected count.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from crossglue.config import schema_defaults, settings_from
from crossglue.embedding import knn_indices, tfidf
from crossglue.genomics.fragments import Fragments

log = logging.getLogger(__name__)

_DEFAULTS = schema_defaults("ingest.doublets")
LOCUS_BIN = 1_000  # bp; loci of many nuclei in one bin are excluded (see overlap_counts)
OVERLAP_COLUMN = "atac_overlap_loci"  # loci covered by > 2 fragments of the barcode (AMULET)
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
    max_locus_share: float = _DEFAULTS["max_locus_share"]
    seed: int = _DEFAULTS["seed"]

    @classmethod
    def from_config(cls, values: dict | None) -> DoubletSettings:
        return settings_from(cls, "ingest.doublets", values)


@dataclass
class DoubletScores:
    """One modality's result: per observed nucleus its score and call, and the threshold used."""

    scores: np.ndarray
    threshold: float
    called: np.ndarray  # bool per observed nucleus
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


class OverlapCounter:
    """AMULET's count (Thibodeau et al., Genome Biology 2021), streamed over a fragments file.

    A diploid nucleus covers a position with at most two fragments (two copies, each cut into
    disjoint pieces); a locus covered by more than two fragments of one barcode points to a
    second nucleus. :meth:`add` takes the file's chunks in order and keeps, per such locus,
    the barcode, the chromosome and where the third fragment starts. Fragments on the
    mitochondrial chromosomes (many copies per nucleus) and longer than ``MAX_FRAGMENT`` bp
    (AMULET's default insert size cap) are ignored. Fragments that reach past a chunk's last
    start travel to the next chunk, so a locus split by a chunk boundary is counted once.
    """

    MAX_FRAGMENT = 900

    def __init__(self, mito_chroms: Collection[str] = ()) -> None:
        self.mito_chroms = set(mito_chroms)
        self._carry = (np.zeros(0, np.int64),) * 4  # chrom, start, end, barcode
        self._loci: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, chunk: Fragments) -> None:
        mito = [k for k, c in enumerate(chunk.chrom_names) if c in self.mito_chroms]
        keep = ~np.isin(chunk.chrom, mito) & (chunk.end - chunk.start <= self.MAX_FRAGMENT)
        new = [np.asarray(a[keep], np.int64) for a in (chunk.chrom, chunk.start, chunk.end, chunk.barcode)]
        if not len(new[0]):
            return
        chrom, start, end, barcode = (np.concatenate([c, n]) for c, n in zip(self._carry, new, strict=True))
        is_new = np.r_[np.zeros(len(self._carry[0]), bool), np.ones(len(new[0]), bool)]
        # Sweep line per (barcode, chromosome): +1 at a start, -1 at an end (ends first at a tie,
        # as intervals are half-open); a start that lifts the depth to 3 enters a locus.
        n = len(start)
        pos, delta = np.r_[start, end], np.r_[np.ones(n, np.int8), -np.ones(n, np.int8)]
        order = np.lexsort((np.r_[is_new, is_new], delta, pos, np.r_[chrom, chrom], np.r_[barcode, barcode]))
        depth = np.cumsum(delta[order], dtype=np.int64)
        entry = order[(delta[order] == 1) & (depth == 3)]
        entry = entry[is_new[entry]]
        self._loci.append((barcode[entry], chrom[entry], start[entry]))
        # The file is sorted by (chromosome, start): only fragments reaching past the last start
        # can cover a later fragment.
        last_chrom, last_start = new[0][-1], new[1][-1]
        reach = (chrom == last_chrom) & (end > last_start)
        self._carry = (chrom[reach], start[reach], end[reach], barcode[reach])

    def loci(self) -> pd.DataFrame:
        """One row per locus: ``barcode`` (code in the file's barcodes), ``chrom`` (code), ``start``."""
        parts = self._loci or [(np.zeros(0, np.int64),) * 3]
        return pd.DataFrame(
            {k: np.concatenate([p[i] for p in parts]) for i, k in enumerate(("barcode", "chrom", "start"))}
        )


def overlap_counts(loci: pd.DataFrame, barcodes: np.ndarray, max_locus_share: float) -> np.ndarray:
    """Per scored nucleus (``barcodes``), its loci with > 2 fragments.

    A locus bin (``LOCUS_BIN`` bp) where more than ``max_locus_share`` of the nuclei show such a
    locus is left out: doublets are a few percent of the nuclei, so a bin most nuclei share is
    a collapsed repeat or an artefact, not a second nucleus (AMULET excludes repeats and
    blacklisted regions for the same reason).
    """
    scored = pd.Index(barcodes)
    row = scored.get_indexer(loci["barcode"].to_numpy())
    loci = loci[row >= 0].assign(row=row[row >= 0])
    bins = loci["chrom"].to_numpy() * (1 << 40) + loci["start"].to_numpy() // LOCUS_BIN
    per_bin = pd.Series(loci["row"].to_numpy()).groupby(bins).nunique()
    crowded = per_bin.index[per_bin.to_numpy() > max_locus_share * len(scored)]
    kept = ~np.isin(bins, crowded)
    return np.bincount(loci["row"].to_numpy()[kept], minlength=len(scored))


def rate_threshold(scores: np.ndarray, expected_rate: float) -> float:
    """The score of the ``ceil(expected_rate x n)``-th highest nucleus: the cut that flags the expected doublets.

    Why not the histogram minimum of the simulated doublets' scores (Scrublet's automatic
    threshold): on the realistic preset it sits above half the planted doublets, while
    the kNN score ranks them well (RNA AUC 0.94-1.00); the expected rate is what a user
    knows from the loading.
    """
    n_called = max(1, int(np.ceil(expected_rate * len(scores))))
    return float(np.sort(scores)[::-1][min(n_called, len(scores)) - 1])


def rate_call(scores: np.ndarray, depth: np.ndarray, settings: DoubletSettings) -> tuple[np.ndarray, float]:
    """The called nuclei and the threshold: ``settings.threshold`` if set, else the expected share exactly.

    With the expected rate, exactly ``ceil(expected_rate x n)`` nuclei are called, ties at the
    cut broken by depth (a doublet carries two nuclei's material): the kNN posterior takes
    few distinct values, and calling every nucleus tied at the cut lost 3.1-3.5 % of the
    doublet-free demo preset's RNA nuclei instead of 2.5 %.
    """
    if settings.threshold is not None:
        return scores >= settings.threshold, float(settings.threshold)
    threshold = rate_threshold(scores, settings.expected_rate)
    n_called = max(1, min(int(np.ceil(settings.expected_rate * len(scores))), len(scores)))
    called = np.zeros(len(scores), bool)
    called[np.lexsort((-np.asarray(depth, np.float64), -scores))[:n_called]] = True
    return called, threshold


def _percentile(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``reference`` below each value (mid-rank for ties), in [0, 1]."""
    ref = np.sort(reference)
    return (np.searchsorted(ref, values, side="left") + np.searchsorted(ref, values, side="right")) / (2 * len(ref))


def score_doublets(
    counts: sp.spmatrix, modality: str, settings: DoubletSettings, overlaps: np.ndarray | None = None
) -> DoubletScores:
    """Doublet score of every row of ``counts`` and the threshold from the expected rate.

    RNA: Scrublet's posterior probability from the share of simulated neighbours. ATAC with
    ``overlaps`` (per nucleus its loci covered by > 2 fragments, :func:`overlap_counts`): the
    percentile among the observed nuclei of those loci per insertion in ``counts``. A
    singlet's loci come from chance collisions, which grow with depth, hence the rate (AUC
    0.98-1.00 on the realistic preset, the raw count 0.96-0.99); no simulated doublets are
    needed. It rests on AMULET's premise, two copies per locus: on fragments without it (the
    realistic simulator before it was made diploid, ~3.5 fragments per open element of one
    nucleus) no ATAC-only doublet ranked in the top share. ATAC without ``overlaps``: the
    mean of two percentiles, the Scrublet posterior's and the insertion count's (at ~2,000
    fragments the LSI neighbours alone separate poorly, AUC 0.63-0.89 on the realistic
    preset, depth alone 0.83-0.92; the mean 0.82-0.94).
    """
    observed = sp.csr_matrix(counts, dtype=np.float64)
    n_obs = observed.shape[0]
    rho = settings.expected_rate
    if modality == "atac" and overlaps is not None:
        depth = np.asarray(observed.sum(axis=1)).ravel()
        rate = np.asarray(overlaps, np.float64) / np.maximum(depth, 1)
        scores = _percentile(rate, rate)
        called, threshold = rate_call(scores, depth, settings)
        return DoubletScores(scores=scores, threshold=threshold, called=called, simulated=np.zeros(0))
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
    r = ratio
    scores = q * rho / r / (1 - rho - q * (1 - rho - rho / r))
    if modality == "atac":
        depth = np.log1p(np.asarray(sp.vstack([observed, simulated]).sum(axis=1)).ravel())
        scores = (_percentile(scores[:n_obs], scores) + _percentile(depth[:n_obs], depth)) / 2
    observed_scores = scores[:n_obs]
    called, threshold = rate_call(observed_scores, np.asarray(observed.sum(axis=1)).ravel(), settings)
    return DoubletScores(scores=observed_scores, threshold=threshold, called=called, simulated=scores[n_obs:])


def call_doublets(
    qc: pd.DataFrame,
    matrices: dict[str, tuple[sp.spmatrix, np.ndarray]],
    settings: DoubletSettings,
    sample: str,
    loci: pd.DataFrame | None = None,
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
        overlaps = None
        if modality == "atac" and loci is not None:
            overlaps = overlap_counts(loci, barcodes, settings.max_locus_share)
            qc[OVERLAP_COLUMN] = np.nan
            qc.iloc[qc.index.get_indexer(barcodes), qc.columns.get_loc(OVERLAP_COLUMN)] = overlaps
        result = score_doublets(counts, modality, shared, overlaps)
        rows = qc.index.get_indexer(barcodes)
        qc.iloc[rows, qc.columns.get_loc(column)] = result.scores
        called[rows[result.called]] = True
        thresholds[modality] = result.threshold
        log.info(
            "%s: %d of %d nuclei called %s doublets (score >= %.3f%s)",
            sample,
            int(result.called.sum()),
            len(barcodes),
            modality,
            result.threshold,
            f"; {100 * float((result.simulated >= result.threshold).mean()):.0f}% of simulated doublets above it"
            if len(result.simulated)
            else "; from loci covered by > 2 fragments",
        )
    qc["doublet"] = called
    qc["pass"] = qc["pass"].to_numpy() & ~called
    qc.attrs["doublet_thresholds"] = thresholds
    return qc
