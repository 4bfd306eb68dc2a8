"""Per-cell quality metrics for snATAC (fragments) and snRNA (counts), and the filter.

Every metric is computed for all barcodes at once with searchsorted / bincount.
ATAC metrics count unique fragments (one record per fragment, PCR duplicates collapsed
into ``count``) and their two Tn5 insertions (``start`` and ``end - 1``). Fragments on the
mitochondrial chromosome are left out of every ATAC metric, as ArchR leaves chrM out of its
arrow files: mtDNA is not chromatin, and a sample rich in it (its many copies sit right on
the dense chrM TSSs) had its median TSS enrichment fall from 17 to 5. Their share of each
cell's fragments is reported instead (``mito_fraction_atac``).

Multiome: a nucleus is kept only when it passes the ATAC *and* the RNA thresholds; both
modalities of a kept nucleus are kept, so its RNA and ATAC cells pair one to one.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.genomics.fragments import Fragments

# ArchR's TSS enrichment: insertions within +-50 bp of a TSS, per bp, over insertions in the
# two 100 bp flanks at 1,900-2,000 bp on either side, per bp.
TSS_WINDOW = 50
TSS_FLANK_INNER = 1900
TSS_FLANK_OUTER = 2000
# Signac's nucleosome signal: mono-nucleosome fragments (147-294 bp) over nucleosome-free (< 147 bp).
NUCLEOSOME_FREE_MAX = 147
MONO_NUCLEOSOME_MAX = 294
# Promoter for the fraction of insertions in promoters: 2 kb upstream to 500 bp downstream.
PROMOTER_UPSTREAM = 2000
PROMOTER_DOWNSTREAM = 500

ATAC_THRESHOLDS = {
    "min_fragments": ("n_fragments", ">="),
    "max_fragments": ("n_fragments", "<="),
    "min_tss_enrichment": ("tss_enrichment", ">="),
    "max_nucleosome_signal": ("nucleosome_signal", "<="),
    "max_duplicate_fraction": ("duplicate_fraction", "<="),
    "max_mito_fraction": ("mito_fraction_atac", "<="),
}
# The metrics a QC summary and plot show, ATAC first.
QC_METRICS = (
    "n_fragments",
    "tss_enrichment",
    "nucleosome_signal",
    "duplicate_fraction",
    "mito_fraction_atac",
    "total_counts",
    "n_genes",
    "mito_fraction",
)
RNA_THRESHOLDS = {
    "min_counts": ("total_counts", ">="),
    "max_counts": ("total_counts", "<="),
    "min_genes": ("n_genes", ">="),
    "max_mito_fraction": ("mito_fraction", "<="),
}


def _genome_offsets(chrom_names: list[str], sizes: dict[str, int]) -> np.ndarray:
    """Start of each chromosome on one concatenated axis, so intervals of all chromosomes sort together."""
    return np.concatenate([[0], np.cumsum([sizes[c] for c in chrom_names])[:-1]]).astype(np.int64)


def _merged(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of intervals (global coordinates) as disjoint sorted intervals."""
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends) if len(ends) else ends
    new = np.r_[True, starts[1:] > reach[:-1]] if len(starts) else np.zeros(0, bool)
    return starts[new], np.maximum.reduceat(ends, np.flatnonzero(new)) if len(starts) else ends


def _inside(positions: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which positions fall in any of the disjoint sorted [start, end) intervals."""
    if not len(starts):
        return np.zeros(len(positions), bool)
    k = np.searchsorted(starts, positions, side="right") - 1
    return (k >= 0) & (positions < ends[np.clip(k, 0, None)])


def _tss_regions(
    tss: pd.DataFrame, chrom_names: list[str], offsets: np.ndarray, sizes: dict[str, int], lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merged global intervals [tss + lo, tss + hi) on the gene's strand, clipped to the chromosome."""
    code = pd.Categorical(tss["chrom"], categories=chrom_names).codes
    keep = code >= 0
    pos = tss["tss"].to_numpy(np.int64)[keep]
    minus = (tss["strand"].to_numpy() == "-")[keep]
    code = code[keep]
    start = np.where(minus, pos - hi + 1, pos + lo)
    end = np.where(minus, pos - lo + 1, pos + hi)
    limit = np.array([sizes[c] for c in chrom_names], dtype=np.int64)[code]
    start, end = np.clip(start, 0, limit), np.clip(end, 0, limit)
    ok = end > start
    return _merged(start[ok] + offsets[code[ok]], end[ok] + offsets[code[ok]])


ATAC_COUNTS = (
    "n_fragments",
    "total_reads",
    "nucleosome_free",
    "mono_nucleosome",
    "center",
    "flank",
    "promoter",
    "mito_fragments",
)


def tss_regions(genes: pd.DataFrame, chrom_names: list[str], sizes: dict[str, int]) -> dict:
    """Merged genome-wide intervals around every TSS: TSS centre, the two flanks, promoter."""
    offsets = _genome_offsets(chrom_names, sizes)
    return {
        "center": _tss_regions(genes, chrom_names, offsets, sizes, -TSS_WINDOW, TSS_WINDOW + 1),
        "flank": _merged(
            *(
                np.concatenate(pair)
                for pair in zip(
                    _tss_regions(genes, chrom_names, offsets, sizes, -TSS_FLANK_OUTER, -TSS_FLANK_INNER),
                    _tss_regions(genes, chrom_names, offsets, sizes, TSS_FLANK_INNER + 1, TSS_FLANK_OUTER + 1),
                    strict=True,
                )
            )
        ),
        "promoter": _tss_regions(genes, chrom_names, offsets, sizes, -PROMOTER_UPSTREAM, PROMOTER_DOWNSTREAM),
        "offsets": offsets,
    }


def count_atac(fragments: Fragments, regions: dict, mito_chroms: Collection[str] = ()) -> dict[str, np.ndarray]:
    """Per-barcode counts behind the ATAC metrics; additive, so chunks of one file sum up.

    Fragments on ``mito_chroms`` (canonical names) count only as ``mito_fragments``.
    """
    n_cells = len(fragments.barcodes)
    mito = np.isin(fragments.chrom, [k for k, c in enumerate(fragments.chrom_names) if c in mito_chroms])
    nuclear = ~mito
    bc = fragments.barcode[nuclear]
    length = (fragments.end - fragments.start)[nuclear]
    chrom, start, end = fragments.chrom[nuclear], fragments.start[nuclear], fragments.end[nuclear]
    gpos = np.concatenate([start, end - 1]) + regions["offsets"][np.concatenate([chrom, chrom])]
    cell = np.concatenate([bc, bc])
    counts = {
        "n_fragments": np.bincount(bc, minlength=n_cells),
        "total_reads": np.bincount(bc, weights=fragments.count[nuclear], minlength=n_cells).astype(np.int64),
        "nucleosome_free": np.bincount(bc[length < NUCLEOSOME_FREE_MAX], minlength=n_cells),
        "mono_nucleosome": np.bincount(
            bc[(length >= NUCLEOSOME_FREE_MAX) & (length <= MONO_NUCLEOSOME_MAX)], minlength=n_cells
        ),
        "mito_fragments": np.bincount(fragments.barcode[mito], minlength=n_cells),
    }
    for key in ("center", "flank", "promoter"):
        counts[key] = np.bincount(cell[_inside(gpos, *regions[key])], minlength=n_cells)
    return {k: v.astype(np.int64) for k, v in counts.items()}


def add_counts(total: dict[str, np.ndarray] | None, more: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sum per-barcode counts of two chunks; later chunks may know more barcodes."""
    if total is None:
        return more
    n = max(len(more["n_fragments"]), len(total["n_fragments"]))
    return {k: np.pad(total[k], (0, n - len(total[k]))) + np.pad(more[k], (0, n - len(more[k]))) for k in total}


def atac_metrics(counts: dict[str, np.ndarray], barcodes: np.ndarray) -> pd.DataFrame:
    """ATAC metrics per barcode from :func:`count_atac` counts.

    n_fragments: unique nuclear fragments; total_reads: sum of their counts; duplicate_fraction:
    1 - unique / total; tss_enrichment (ArchR-style, see module constants; the flank rate is
    floored at one insertion across the flanks so a cell without flank insertions gets a
    finite score); nucleosome_signal (Signac-style; inf when there is no nucleosome-free
    fragment but a mono-nucleosome one, 0 when neither); promoter_fraction: share of
    insertions in promoters; mito_fraction_atac: share of the barcode's unique fragments
    (nuclear and mitochondrial) on the mitochondrial chromosome.
    """
    n_frag, total = counts["n_fragments"], counts["total_reads"]
    nfr, mono = counts["nucleosome_free"], counts["mono_nucleosome"]
    center_rate = counts["center"] / (2 * TSS_WINDOW + 1)
    flank_rate = np.maximum(counts["flank"], 1) / (2 * (TSS_FLANK_OUTER - TSS_FLANK_INNER))
    n_cells = len(n_frag)
    mito = counts["mito_fragments"]
    return pd.DataFrame(
        {
            "n_fragments": n_frag,
            "total_reads": total,
            "duplicate_fraction": np.divide(total - n_frag, total, out=np.zeros(n_cells), where=total > 0),
            "tss_enrichment": center_rate / flank_rate,
            "nucleosome_signal": np.divide(mono, nfr, out=np.where(mono > 0, np.inf, 0.0), where=nfr > 0),
            "promoter_fraction": np.divide(counts["promoter"], 2 * n_frag, out=np.zeros(n_cells), where=n_frag > 0),
            "mito_fraction_atac": np.divide(mito, n_frag + mito, out=np.zeros(n_cells), where=n_frag + mito > 0),
        },
        index=pd.Index(np.asarray(barcodes, dtype=object), name="barcode"),
    )


def rna_qc(counts: sp.spmatrix, barcodes: np.ndarray, is_mito: np.ndarray) -> pd.DataFrame:
    """RNA metrics per barcode: total_counts, n_genes (detected), mito_fraction.

    ``is_mito`` flags genes on the mitochondrial chromosome or named ``MT-*``.
    """
    x = sp.csr_matrix(counts)
    total = np.asarray(x.sum(axis=1)).ravel()
    mito = np.asarray(x[:, np.flatnonzero(is_mito)].sum(axis=1)).ravel() if np.any(is_mito) else np.zeros(x.shape[0])
    return pd.DataFrame(
        {
            "total_counts": total.astype(np.int64),
            "n_genes": np.diff((x > 0).tocsr().indptr).astype(np.int64),
            "mito_fraction": np.divide(mito, total, out=np.zeros(x.shape[0]), where=total > 0),
        },
        index=pd.Index(np.asarray(barcodes, dtype=object), name="barcode"),
    )


def passes(metrics: pd.DataFrame, thresholds: dict, rules: dict) -> np.ndarray:
    """True where every configured threshold holds (a missing metric value fails)."""
    ok = np.ones(len(metrics), bool)
    for key, value in (thresholds or {}).items():
        if key not in rules or value is None:
            continue
        column, op = rules[key]
        values = metrics[column].to_numpy(dtype=float)
        ok &= (values >= value) if op == ">=" else (values <= value)
    return ok


def combine_qc(atac: pd.DataFrame | None, rna: pd.DataFrame | None, thresholds: dict) -> pd.DataFrame:
    """One row per barcode seen in either modality (sorted), with pass_atac / pass_rna / pass.

    A barcode absent from a modality the sample has fails that modality; so a multiome
    nucleus passes only when both its ATAC and RNA pass.
    """
    parts = []
    if atac is not None:
        parts.append(atac.assign(pass_atac=passes(atac, thresholds.get("atac", {}), ATAC_THRESHOLDS)))
    if rna is not None:
        parts.append(rna.assign(pass_rna=passes(rna, thresholds.get("rna", {}), RNA_THRESHOLDS)))
    table = pd.concat(parts, axis=1, join="outer") if len(parts) > 1 else parts[0].copy()
    table = table.sort_index(kind="stable")  # the same order however the inputs were chunked
    table.index.name = "barcode"
    passed = np.ones(len(table), bool)
    for flag in ("pass_atac", "pass_rna"):
        if flag in table:
            table[flag] = table[flag].astype("boolean").fillna(False).astype(bool)
            passed &= table[flag].to_numpy()
    table["pass"] = passed
    return table


# How a metric reads in a message: "median 180 fragments", "median 1.2 TSS enrichment".
METRIC_LABELS = {
    "n_fragments": "fragments",
    "tss_enrichment": "TSS enrichment",
    "nucleosome_signal": "nucleosome signal",
    "duplicate_fraction": "duplicate fraction",
    "mito_fraction_atac": "mitochondrial fraction",
    "total_counts": "UMIs",
    "n_genes": "genes",
    "mito_fraction": "mitochondrial fraction",
}
MODALITY_RULES = {"atac": ATAC_THRESHOLDS, "rna": RNA_THRESHOLDS}


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.3g}"


def _main_failure(metrics: pd.DataFrame, modality: str, thresholds: dict) -> str:
    """The threshold that the most barcodes fail, as 'median <m> <metric> vs ingest.<mod>.<key> <value>'."""
    rules = MODALITY_RULES[modality]
    worst, worst_failing = None, -1
    for key, value in (thresholds or {}).items():
        if key not in rules or value is None:
            continue
        failing = int((~passes(metrics, {key: value}, rules)).sum())
        if failing > worst_failing:
            worst, worst_failing = key, failing
    if worst is None:
        return "no threshold is set"
    column = rules[worst][0]
    median = float(np.median(metrics[column].to_numpy(dtype=float)))
    return (
        f"median {_number(median)} {METRIC_LABELS.get(column, column)} vs ingest.{modality}.{worst} "
        f"{_number(thresholds[worst])}"
    )


def no_cells_message(sample: str, qc: pd.DataFrame, thresholds: dict, modalities: Collection[str]) -> str:
    """Why no barcode of ``sample`` passed QC, naming the threshold that removed the most barcodes.

    ``qc`` is :func:`combine_qc`'s table; ``modalities`` the sample's layers (rna, atac).
    """
    failed = []
    for modality in ("atac", "rna"):
        if modality not in modalities:
            continue
        if qc[f"pass_{modality}"].any():
            continue
        first_metric = next(iter(MODALITY_RULES[modality].values()))[0]  # present for every barcode of the modality
        metrics = qc[qc[first_metric].notna()]
        failed.append((modality, len(metrics), _main_failure(metrics, modality, thresholds.get(modality, {}))))
    if not failed:  # multiome: each modality keeps barcodes, but none passes both
        return (
            f"sample {sample}: 0 of {len(qc):,} barcodes pass both ATAC and RNA QC "
            f"({int(qc['pass_atac'].sum()):,} pass ATAC, {int(qc['pass_rna'].sum()):,} pass RNA, none both); "
            "a multiome nucleus has the same barcode in the fragments and the counts file: check that both come "
            "from the same library"
        )
    parts = [f"0 of {n:,} barcodes pass {m.upper()} QC ({why})" for m, n, why in failed]
    fix = "lower the threshold" if len(failed) == 1 else "lower the thresholds"
    return f"sample {sample}: {' and '.join(parts)}; {fix} or drop the sample from the sample sheet"
