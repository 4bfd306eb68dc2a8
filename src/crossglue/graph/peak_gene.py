"""Peak–gene edges inside one species: overlap and distance weights, optional co-variation.

A peak is linked to a gene when it overlaps the gene body extended by a promoter upstream
of the TSS (weight 1), or, with the extension window on, lies within ``window`` bp of that
region (weight ``((d + 1000) / 1000) ** -0.75``, d = bases between them; scglue's
distance decay). Where paired multiome nuclei exist, every candidate pair is also scored by
the Pearson correlation of accessibility and expression across metacells (ArchR's
peak2gene idea) and that score travels with the edge as an attribute.

All interval logic is one searchsorted over chromosome-offset coordinates: no loop per
chromosome, gene or peak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from crossglue.errors import CrossglueError

# Chromosome c occupies [c * OFFSET, c * OFFSET + length): windows never reach a neighbour.
_OFFSET = np.int64(1) << np.int64(40)


@dataclass(frozen=True)
class PeakGeneParams:
    """Published defaults (scglue's rna_anchored guidance): 2 kb promoter, 150 kb window."""

    promoter: int = 2000
    window: int = 150_000
    extension: bool = True
    decay_scale: float = 1000.0
    decay_power: float = 0.75


@dataclass(frozen=True)
class CorrelationParams:
    """Metacells as in ArchR's peak2gene: 500 seed cells, drop metacells sharing > 80 %.

    ArchR aggregates 100 neighbours, sized for tens of thousands of cells; with the few
    hundred paired nuclei of a typical multiome sample that blurs cell types. On the demo
    (800 paired nuclei) 20 neighbours matched pseudobulks of the true cell types (AUROC of
    truth links 0.75 for both) where 100 gave 0.69, hence k = 20.
    """

    enabled: bool = True
    n_metacells: int = 500
    k: int = 20
    overlap_cutoff: float = 0.8
    min_paired_cells: int = 100
    n_comps: int = 30
    seed: int = 0


def annotate_genes(data_genes: pd.DataFrame, annotation: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give each gene of the RNA data its annotation record, by Ensembl id, else by symbol.

    ``data_genes``: gene_id (version suffix allowed), gene_name. ``annotation``: the output of
    :func:`crossglue.genomics.gtf.read_genes`. A symbol is used only when it names exactly one
    annotated gene. Returns (annotated: the data's gene_id with chrom, start, end, strand and
    ``matched_by``; unmatched: data genes with no record, and why), so nothing is dropped
    silently.
    """
    _require(data_genes, ("gene_id", "gene_name"), "RNA genes")
    _require(annotation, ("gene_id", "gene_name", "chrom", "start", "end", "strand"), "gene annotation")
    ids = data_genes["gene_id"].astype(str).str.replace(r"\.\d+$", "", regex=True)
    by_id = annotation.drop_duplicates("gene_id").set_index("gene_id")
    names = annotation["gene_name"].astype(str)
    unique_names = annotation[~names.duplicated(keep=False)].set_index("gene_name")
    hit_id = ids.isin(by_id.index).to_numpy()
    symbol = data_genes["gene_name"].astype(str)
    hit_name = ~hit_id & symbol.isin(unique_names.index).to_numpy()
    cols = ["chrom", "start", "end", "strand"]
    annotated = pd.concat(
        [
            by_id.loc[ids[hit_id], cols].assign(gene_id=data_genes["gene_id"].to_numpy()[hit_id], matched_by="id"),
            unique_names.loc[symbol[hit_name], cols].assign(
                gene_id=data_genes["gene_id"].to_numpy()[hit_name], matched_by="symbol"
            ),
        ],
        ignore_index=True,
    )[["gene_id", *cols, "matched_by"]]
    missed = ~hit_id & ~hit_name
    ambiguous = symbol.isin(names[names.duplicated(keep=False)]).to_numpy()
    unmatched = data_genes.loc[missed, ["gene_id", "gene_name"]].assign(
        reason=np.where(ambiguous[missed], "symbol names several annotated genes", "id and symbol not in annotation")
    )
    return annotated, unmatched.reset_index(drop=True)


def distance_weight(distance: np.ndarray, params: PeakGeneParams = PeakGeneParams()) -> np.ndarray:
    """``((d + 1000) / 1000) ** -0.75``: 1 at d = 0, 0.19 at 8 kb, 0.023 at 150 kb."""
    d = np.asarray(distance, dtype=np.float64)
    return ((d + params.decay_scale) / params.decay_scale) ** -params.decay_power


def regulatory_regions(genes: pd.DataFrame, promoter: int) -> pd.DataFrame:
    """Gene body plus ``promoter`` bp upstream of the TSS (strand-aware), 0-based half-open."""
    _require(genes, ("gene_id", "chrom", "start", "end", "strand"), "gene annotation")
    plus = ~np.isin(genes["strand"].astype(str).to_numpy(), ["-", "-1"])  # "+"/"-" or +1/-1
    start = genes["start"].to_numpy(np.int64)
    end = genes["end"].to_numpy(np.int64)
    return pd.DataFrame(
        {
            "gene_id": genes["gene_id"].to_numpy(),
            "chrom": genes["chrom"].to_numpy(),
            "start": np.where(plus, np.maximum(start - promoter, 0), start),
            "end": np.where(plus, end, end + promoter),
        }
    )


def peak_gene_edges(
    peaks: pd.DataFrame, genes: pd.DataFrame, params: PeakGeneParams = PeakGeneParams()
) -> pd.DataFrame:
    """Every (peak, gene) pair within reach, with its distance and weight.

    ``peaks``: peak_id, chrom, start, end; ``genes``: gene_id, chrom, start, end, strand
    (0-based half-open, same chromosome names). Returns columns peak, gene, distance
    (0 = overlap) and weight, sorted by gene then peak position.
    """
    _require(peaks, ("peak_id", "chrom", "start", "end"), "peak table")
    regions = regulatory_regions(genes, params.promoter)
    reach = params.window if params.extension else 0
    empty = pd.DataFrame({"peak": [], "gene": [], "distance": np.array([], np.int64), "weight": []})
    if len(peaks) == 0 or len(regions) == 0:
        return empty

    chroms = pd.Index(pd.unique(np.concatenate([peaks["chrom"].astype(str), regions["chrom"].astype(str)])))
    p_code = chroms.get_indexer(peaks["chrom"].astype(str)).astype(np.int64)
    g_code = chroms.get_indexer(regions["chrom"].astype(str)).astype(np.int64)
    p_start = p_code * _OFFSET + peaks["start"].to_numpy(np.int64)
    p_end = p_code * _OFFSET + peaks["end"].to_numpy(np.int64)
    g_start = g_code * _OFFSET + regions["start"].to_numpy(np.int64)
    g_end = g_code * _OFFSET + regions["end"].to_numpy(np.int64)

    order = np.argsort(p_start, kind="stable")
    sorted_start = p_start[order]
    longest = int((p_end - p_start).max())
    # Candidate peaks start in [region start - reach - longest peak, region end + reach].
    lo = np.searchsorted(sorted_start, g_start - reach - longest, side="left")
    hi = np.searchsorted(sorted_start, g_end + reach, side="right")
    counts = hi - lo
    gene_idx = np.repeat(np.arange(len(regions)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    peak_idx = order[lo[gene_idx] + within]

    gap = np.maximum(0, np.maximum(g_start[gene_idx] - p_end[peak_idx], p_start[peak_idx] - g_end[gene_idx]))
    overlap = (p_start[peak_idx] < g_end[gene_idx]) & (g_start[gene_idx] < p_end[peak_idx])
    keep = overlap | (params.extension & (gap <= reach))
    gene_idx, peak_idx, gap = gene_idx[keep], peak_idx[keep], gap[keep]
    edges = pd.DataFrame(
        {
            "peak": peaks["peak_id"].to_numpy()[peak_idx],
            "gene": regions["gene_id"].to_numpy()[gene_idx],
            "distance": gap.astype(np.int64),
        }
    )
    edges["weight"] = distance_weight(edges["distance"].to_numpy(), params)
    # A gene listed twice (alternative records) keeps its closest link to each peak.
    edges = edges.sort_values("distance", kind="stable").drop_duplicates(["peak", "gene"])
    return edges.sort_index(kind="stable").reset_index(drop=True)


# --- co-variation across metacells (paired cells only) ---------------------------------


def lsi(counts: sp.spmatrix, n_comps: int = 30, seed: int = 0) -> np.ndarray:
    """TF-IDF → log1p(1e4 ·) → truncated SVD of a cells × peaks count matrix."""
    from sklearn.decomposition import TruncatedSVD

    x = sp.csr_matrix(counts, dtype=np.float64)
    x.data = np.ones_like(x.data)
    per_cell = np.asarray(x.sum(axis=1)).ravel()
    per_peak = np.asarray(x.sum(axis=0)).ravel()
    idf = x.shape[0] / np.maximum(per_peak, 1)
    tfidf = sp.diags(1 / np.maximum(per_cell, 1)) @ x @ sp.diags(idf)
    tfidf.data = np.log1p(1e4 * tfidf.data)
    n = max(1, min(n_comps, min(x.shape) - 1))
    return TruncatedSVD(n_components=n, random_state=seed).fit_transform(tfidf)


def metacells(
    rep: np.ndarray, n_metacells: int = 500, k: int = 20, overlap_cutoff: float = 0.8, seed: int = 0
) -> sp.csr_matrix:
    """Metacells × cells 0/1 matrix: ``k`` nearest neighbours of randomly drawn seed cells.

    As in ArchR's peak2gene, a metacell sharing more than ``overlap_cutoff`` of its cells
    with one kept earlier is dropped, so nearly identical aggregates do not inflate n.
    """
    from sklearn.neighbors import NearestNeighbors

    n_cells = rep.shape[0]
    k = min(k, n_cells)
    rng = np.random.default_rng(seed)
    seeds = rng.choice(n_cells, size=min(n_metacells, n_cells), replace=False)
    _, members = NearestNeighbors(n_neighbors=k).fit(rep).kneighbors(rep[seeds])
    rows = np.repeat(np.arange(len(seeds)), k)
    agg = sp.csr_matrix((np.ones(rows.size), (rows, members.ravel())), shape=(len(seeds), n_cells))
    shared = (agg @ agg.T).toarray() / k
    keep = np.zeros(len(seeds), dtype=bool)
    for i in range(len(seeds)):  # a few hundred metacells at most, not a hot path
        keep[i] = not (shared[i, keep] > overlap_cutoff).any()
    return agg[keep]


def _log_normalised(counts: sp.spmatrix, columns: np.ndarray, aggregation: sp.spmatrix) -> np.ndarray:
    """log2(1e4 · metacell sum / metacell library + 1) of the chosen columns (library over all)."""
    counts = sp.csc_matrix(counts)
    total = aggregation @ np.asarray(counts.sum(axis=1)).ravel()
    aggregate = np.asarray((aggregation @ counts[:, columns]).todense(), dtype=np.float64)
    return np.log2(1e4 * aggregate / np.maximum(total, 1)[:, None] + 1)


def _standardised(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0)
    norm = np.sqrt((centred**2).sum(axis=0))
    return centred / np.where(norm > 0, norm, np.inf)


def pair_correlation(
    rna_counts: sp.spmatrix,
    atac_counts: sp.spmatrix,
    gene_idx: np.ndarray,
    peak_idx: np.ndarray,
    aggregation: sp.spmatrix,
    chunk: int = 200_000,
) -> pd.DataFrame:
    """Pearson r, two-sided p and BH FDR of each (gene, peak) pair across metacells.

    ``rna_counts`` and ``atac_counts`` are cells × features for the same paired nuclei in
    the same order; ``aggregation`` is metacells × cells. A feature constant across
    metacells gets r = 0, p = 1.
    """
    if rna_counts.shape[0] != atac_counts.shape[0] or aggregation.shape[1] != rna_counts.shape[0]:
        raise CrossglueError(
            f"peak-gene correlation: {rna_counts.shape[0]} RNA cells, {atac_counts.shape[0]} ATAC cells and "
            f"{aggregation.shape[1]} aggregated cells; expected the same paired nuclei in all three"
        )
    genes, gene_pos = np.unique(gene_idx, return_inverse=True)
    peaks, peak_pos = np.unique(peak_idx, return_inverse=True)
    z_rna = _standardised(_log_normalised(rna_counts, genes, aggregation))
    z_atac = _standardised(_log_normalised(atac_counts, peaks, aggregation))
    r = np.empty(len(gene_idx))
    for s in range(0, len(r), chunk):  # chunks bound memory (pairs × metacells)
        e = s + chunk
        r[s:e] = np.einsum("ij,ij->j", z_rna[:, gene_pos[s:e]], z_atac[:, peak_pos[s:e]])
    r = np.clip(r, -1.0, 1.0)
    n = aggregation.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt((n - 2) / np.maximum(1 - r**2, 1e-300))
    p = 2 * stats.t.sf(np.abs(t), df=max(n - 2, 1)) if n > 2 else np.ones_like(r)
    return pd.DataFrame({"corr": r, "pvalue": p, "fdr": benjamini_hochberg(p)})


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted q values (monotone, capped at 1)."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CrossglueError(f"{what}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}")


def correlate_edges(
    edges: pd.DataFrame,
    rna_counts: sp.spmatrix,
    genes: pd.Index,
    atac_counts: sp.spmatrix,
    peaks: pd.Index,
    params: CorrelationParams = CorrelationParams(),
) -> pd.DataFrame:
    """Metacell correlation of every (peak, gene) edge, for paired nuclei given row by row.

    ``rna_counts`` (cells × ``genes``) and ``atac_counts`` (cells × ``peaks``) hold the same
    nuclei in the same order. Metacells come from the ATAC LSI (first component dropped: it
    tracks sequencing depth). Returns corr, pvalue, fdr aligned with ``edges``.
    """
    n_cells = rna_counts.shape[0]
    if n_cells < params.min_paired_cells:
        raise CrossglueError(
            f"peak-gene correlation needs at least {params.min_paired_cells} paired nuclei "
            f"(graph.correlation.min_paired_cells), found {n_cells}"
        )
    gene_idx = genes.get_indexer(edges["gene"])
    peak_idx = peaks.get_indexer(edges["peak"])
    if (gene_idx < 0).any() or (peak_idx < 0).any():
        raise CrossglueError("peak-gene correlation: an edge names a gene or peak absent from the paired data")
    rep = lsi(atac_counts, n_comps=params.n_comps + 1, seed=params.seed)[:, 1:]
    aggregation = metacells(rep, params.n_metacells, params.k, params.overlap_cutoff, params.seed)
    return pair_correlation(rna_counts, atac_counts, gene_idx, peak_idx, aggregation)


@dataclass
class PairedCounts:
    """Counts of the same multiome nuclei, row for row: RNA (cells × genes), ATAC (cells × peaks)."""

    rna: sp.spmatrix
    genes: pd.Index
    atac: sp.spmatrix
    peaks: pd.Index


def link_species(
    annotation: pd.DataFrame,
    data_genes: pd.DataFrame,
    peaks: pd.DataFrame,
    params: PeakGeneParams = PeakGeneParams(),
    correlation: CorrelationParams = CorrelationParams(),
    paired: PairedCounts | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One species' peak–gene layer: (links, annotated genes, unmatched genes).

    ``data_genes`` (gene_id, gene_name) are the RNA features, ``peaks`` (peak_id, chrom,
    start, end) the ATAC features with coordinates. Links carry corr, pvalue and fdr (NaN
    unless correlation is enabled and ``paired`` holds at least ``min_paired_cells`` nuclei).
    """
    annotated, unmatched = annotate_genes(data_genes, annotation)
    links = peak_gene_edges(peaks, annotated, params).assign(corr=np.nan, pvalue=np.nan, fdr=np.nan)
    usable = paired is not None and paired.rna.shape[0] >= correlation.min_paired_cells
    if correlation.enabled and usable and len(links):
        scores = correlate_edges(links, paired.rna, paired.genes, paired.atac, paired.peaks, correlation)
        links[["corr", "pvalue", "fdr"]] = scores.to_numpy()
    return links, annotated, unmatched
