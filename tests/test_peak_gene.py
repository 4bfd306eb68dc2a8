"""Peak–gene edges: the published weights, the window, strands, and metacell co-variation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from crossglue.errors import CrossglueError
from crossglue.graph.peak_gene import (
    PeakGeneParams,
    distance_weight,
    genes_from_var,
    metacells,
    pair_correlation,
    peak_gene_edges,
)
from crossglue.stats import benjamini_hochberg


def _genes(rows):
    return pd.DataFrame(rows, columns=["gene_id", "chrom", "start", "end", "strand"])


def _peaks(rows):
    return pd.DataFrame(rows, columns=["peak_id", "chrom", "start", "end"])


def _weights(edges):
    return {(p, g): (d, w) for p, g, d, w in edges[["peak", "gene", "distance", "weight"]].itertuples(index=False)}


def test_promoter_lies_upstream_of_the_tss_on_either_strand():
    genes = _genes([("plus", "chr1", 10_000, 20_000, "+"), ("minus", "chr2", 10_000, 20_000, "-")])
    peaks = _peaks(
        [
            ("p_plus_promoter", "chr1", 8_000, 8_501),  # inside the 2 kb upstream of the + TSS
            ("p_plus_3prime", "chr1", 20_500, 21_001),  # 500 bp past the 3' end: not a promoter
            ("p_minus_promoter", "chr2", 21_499, 22_000),  # inside 2 kb upstream of the - TSS (at 20,000)
            ("p_minus_3prime", "chr2", 8_999, 9_500),  # 500 bp before the - gene's 3' end
        ]
    )
    got = _weights(peak_gene_edges(peaks, genes))
    assert got[("p_plus_promoter", "plus")] == (0, 1.0)
    assert got[("p_minus_promoter", "minus")] == (0, 1.0)
    assert got[("p_plus_3prime", "plus")][0] == 500
    assert got[("p_minus_3prime", "minus")][0] == 500
    assert got[("p_plus_3prime", "plus")][1] == pytest.approx(1.5**-0.75)


def test_numeric_strand_is_understood():
    genes = _genes([("minus", "chr2", 10_000, 20_000, -1)])
    peaks = _peaks([("p_minus_promoter", "chr2", 21_499, 22_000)])
    assert _weights(peak_gene_edges(peaks, genes))[("p_minus_promoter", "minus")] == (0, 1.0)


def test_distance_weight_is_the_published_power_decay():
    d = np.array([0, 1000, 8000, 150_000])
    assert distance_weight(d) == pytest.approx(((d + 1000) / 1000) ** -0.75)
    assert distance_weight(np.array([0]))[0] == 1.0


def test_window_edge_is_inclusive_and_extension_switch_keeps_only_overlaps():
    genes = _genes([("g", "chr1", 200_000, 210_000, "+")])  # region [198000, 210000)
    peaks = _peaks(
        [
            ("at_window", "chr1", 210_000 + 150_000, 210_000 + 150_501),
            ("beyond", "chr1", 210_000 + 150_001, 210_000 + 150_502),
            ("upstream_at_window", "chr1", 198_000 - 150_000 - 501, 198_000 - 150_000),
            ("inside", "chr1", 205_000, 205_501),
        ]
    )
    got = _weights(peak_gene_edges(peaks, genes))
    assert set(got) == {("at_window", "g"), ("upstream_at_window", "g"), ("inside", "g")}
    assert got[("at_window", "g")][0] == 150_000
    only_overlap = peak_gene_edges(peaks, genes, PeakGeneParams(extension=False))
    assert only_overlap[["peak", "gene"]].values.tolist() == [["inside", "g"]]


def test_same_coordinates_on_another_chromosome_never_link():
    genes = _genes([("g", "chr1", 1_000_000, 1_010_000, "+")])
    peaks = _peaks([("far_chrom", "chr2", 1_000_000, 1_000_501), ("chr10", "chr10", 1_005_000, 1_005_501)])
    assert peak_gene_edges(peaks, genes).empty


def test_matches_brute_force_on_random_intervals():
    rng = np.random.default_rng(3)
    chroms = np.array(["chr1", "chr2", "chrX"])
    n_genes, n_peaks = 60, 800
    g_start = rng.integers(0, 2_000_000, n_genes)
    genes = _genes(
        list(
            zip(
                [f"g{i}" for i in range(n_genes)],
                rng.choice(chroms, n_genes),
                g_start,
                g_start + rng.integers(500, 80_000, n_genes),
                rng.choice(["+", "-"], n_genes),
                strict=True,
            )
        )
    )
    p_start = rng.integers(0, 2_100_000, n_peaks)
    peaks = _peaks(
        list(
            zip(
                [f"p{i}" for i in range(n_peaks)],
                rng.choice(chroms, n_peaks),
                p_start,
                p_start + rng.integers(200, 3_000, n_peaks),
                strict=True,
            )
        )
    )
    params = PeakGeneParams(promoter=2000, window=50_000)
    got = _weights(peak_gene_edges(peaks, genes, params))

    plus = genes["strand"].to_numpy() == "+"
    rs = np.where(plus, np.maximum(genes["start"] - 2000, 0), genes["start"])[None, :]
    re_ = np.where(plus, genes["end"], genes["end"] + 2000)[None, :]
    ps, pe = peaks["start"].to_numpy()[:, None], peaks["end"].to_numpy()[:, None]
    gap = np.maximum(0, np.maximum(rs - pe, ps - re_))
    same = peaks["chrom"].to_numpy()[:, None] == genes["chrom"].to_numpy()[None, :]
    pi, gi = np.nonzero(same & (gap <= 50_000))
    expected = {(f"p{p}", f"g{g}"): (gap[p, g], distance_weight(gap[p, g])) for p, g in zip(pi, gi, strict=True)}
    assert len(expected) > 100
    assert got.keys() == expected.keys()
    assert all(got[k][0] == expected[k][0] and got[k][1] == pytest.approx(expected[k][1]) for k in expected)


def test_missing_gene_columns_are_named():
    with pytest.raises(CrossglueError, match="gene annotation: missing column\\(s\\) strand"):
        peak_gene_edges(
            _peaks([("p", "chr1", 0, 10)]),
            pd.DataFrame({"gene_id": ["g"], "chrom": ["chr1"], "start": [0], "end": [5]}),
        )


def _paired_cells(seed=0):
    """Cells in 4 states; gene 0 follows peak 0, gene 1 follows peak 1 inversely, gene 2 is noise."""
    rng = np.random.default_rng(seed)
    n = 600
    state = rng.integers(0, 4, n)
    activity = np.array([[0.2, 1, 3, 5], [5, 3, 1, 0.2], [1, 1, 1, 1]])[:, state]  # peaks × cells
    atac = rng.poisson(activity.T * 2 + 0.1)
    rna = np.column_stack(
        [rng.poisson(2 * activity[0] + 0.1), rng.poisson(2 * activity[1] + 0.1), rng.poisson(np.full(n, 3.0))]
    )
    rep = np.column_stack([state + rng.normal(0, 0.3, n), rng.normal(0, 0.3, n)])
    return sp.csr_matrix(rna), sp.csr_matrix(atac), rep


def test_metacell_correlation_finds_linked_pairs_and_not_noise():
    rna, atac, rep = _paired_cells()
    agg = metacells(rep, n_metacells=80, k=20, seed=1)
    assert agg.shape[1] == 600 and (agg.sum(axis=1) == 20).all()
    scores = pair_correlation(
        rna, atac, gene_idx=np.array([0, 0, 1, 2]), peak_idx=np.array([0, 1, 1, 0]), aggregation=agg
    )
    r = scores["corr"].to_numpy()
    assert r[0] > 0.8 and r[1] < -0.8 and r[2] > 0.8
    assert abs(r[3]) < 0.5
    assert (scores["fdr"].to_numpy()[:3] < 1e-6).all()


def test_pair_correlation_equals_pearson_of_log_normalised_metacells():
    rna, atac, rep = _paired_cells(seed=4)
    agg = metacells(rep, n_metacells=50, k=15, seed=2)
    got = pair_correlation(rna, atac, np.array([2]), np.array([2]), agg)["corr"].iloc[0]
    a_rna = np.asarray((agg @ rna).todense(), dtype=float)
    a_atac = np.asarray((agg @ atac).todense(), dtype=float)
    x = np.log2(1e4 * a_rna / a_rna.sum(1, keepdims=True) + 1)[:, 2]
    y = np.log2(1e4 * a_atac / a_atac.sum(1, keepdims=True) + 1)[:, 2]
    assert got == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_overlapping_metacells_are_dropped():
    rep = np.zeros((30, 2)) + np.arange(30)[:, None] * 1e-3
    agg = metacells(rep, n_metacells=30, k=30, overlap_cutoff=0.8)
    assert agg.shape[0] == 1  # every neighbourhood is the whole set


def test_benjamini_hochberg_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.20])
    assert benjamini_hochberg(p) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.20])


def test_mismatched_cells_are_refused():
    rna, atac, rep = _paired_cells()
    agg = metacells(rep, n_metacells=10, k=5)
    with pytest.raises(CrossglueError, match="expected the same paired nuclei"):
        pair_correlation(rna[:-1], atac, np.array([0]), np.array([0]), agg)


def test_genes_come_from_the_coordinates_ingest_wrote_and_misses_are_reported():
    var = pd.DataFrame(
        {
            "gene_name": ["A", "B", "X"],
            "chrom": pd.array(["chr1", "chr2", pd.NA], dtype="string"),
            "start": pd.array([0, 100, pd.NA], dtype="Int64"),
            "end": pd.array([50, 150, pd.NA], dtype="Int64"),
            "strand": pd.array(["+", "-", pd.NA], dtype="string"),
            "in_annotation": [True, True, False],
        },
        index=["ENSG1", "ENSG2", "NOVEL"],
    )
    genes, unmatched = genes_from_var(var)
    assert genes.values.tolist() == [["ENSG1", "chr1", 0, 50, "+"], ["ENSG2", "chr2", 100, 150, "-"]]
    assert unmatched[["gene_id", "gene_name"]].values.tolist() == [["NOVEL", "X"]]
    assert unmatched["reason"].str.startswith("not in the gene annotation").all()
    with pytest.raises(CrossglueError, match=r"RNA var \(written by ingest\): missing column\(s\) in_annotation"):
        genes_from_var(var.drop(columns="in_annotation"))


def test_pairs_agree_with_bedtools_window_on_real_gencode_genes(shared_data, tmp_path):
    """Real gene structure (nested and overlapping genes, both strands) against the reference tool."""
    pybedtools = pytest.importorskip("pybedtools")
    gtf = pd.read_csv(
        shared_data / "annotation" / "hg38_gencode_v48_genes.gtf.gz",
        sep="\t",
        header=None,
        usecols=[0, 2, 3, 4, 6, 8],
        names=["chrom", "feature", "start", "end", "strand", "attrs"],
    )
    genes = gtf[(gtf["feature"] == "gene") & gtf["chrom"].isin(["chr21", "chr22"])].copy()
    genes["gene_id"] = genes["attrs"].str.extract(r'gene_id "([^"]+)"', expand=False)
    genes["start"] -= 1  # GTF is 1-based closed
    genes = genes[["gene_id", "chrom", "start", "end", "strand"]].reset_index(drop=True)
    rng = np.random.default_rng(7)
    n = 3000
    chrom = rng.choice(["chr21", "chr22"], n)
    start = rng.integers(5_000_000, 50_000_000, n)
    peaks = pd.DataFrame({"peak_id": [f"p{i}" for i in range(n)], "chrom": chrom, "start": start, "end": start + 501})
    params = PeakGeneParams(window=100_000)
    got = peak_gene_edges(peaks, genes, params)

    plus = genes["strand"] == "+"
    regions = genes.assign(
        start=np.where(plus, np.maximum(genes["start"] - 2000, 0), genes["start"]),
        end=np.where(plus, genes["end"], genes["end"] + 2000),
    )
    a = pybedtools.BedTool.from_dataframe(peaks[["chrom", "start", "end", "peak_id"]])
    b = pybedtools.BedTool.from_dataframe(regions[["chrom", "start", "end", "gene_id"]])
    hits = a.window(b, w=100_000).to_dataframe(header=None, names=range(8), dtype={3: str, 7: str})
    expected = set(zip(hits[3], hits[7], strict=True))
    assert len(expected) > 10_000
    assert set(zip(got["peak"], got["gene"], strict=True)) == expected
    overlap = a.intersect(b, wa=True, wb=True).to_dataframe(header=None, names=range(8), dtype={3: str, 7: str})
    zero = got[got["distance"] == 0]
    assert set(zip(zero["peak"], zero["gene"], strict=True)) == set(zip(overlap[3], overlap[7], strict=True))
