"""QC metrics on hand-made cells with known values, and the pass rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from crossglue.genomics.fragments import Fragments
from crossglue.ingest.qc import atac_metrics, combine_qc, count_atac, no_cells_message, rna_qc, tss_regions

SIZES = {"chr1": 20_000, "chr2": 20_000, "chrM": 16_569}


def atac_qc(fragments: Fragments, genes: pd.DataFrame, sizes: dict[str, int], mito=("chrM",)) -> pd.DataFrame:
    """ATAC metrics of one in-memory table, as ingest computes them chunk by chunk."""
    regions = tss_regions(genes, fragments.chrom_names, sizes)
    return atac_metrics(count_atac(fragments, regions, mito), fragments.barcodes)


def fragments(rows: list[tuple[int, int, int, str, int]]) -> Fragments:
    """(chrom code, start, end, barcode, count) rows as a Fragments table."""
    table = pd.DataFrame(rows, columns=["chrom", "start", "end", "barcode", "count"]).sort_values(["chrom", "start"])
    codes, barcodes = pd.factorize(table["barcode"])
    return Fragments(
        chrom_names=list(SIZES),
        barcodes=np.asarray(barcodes, dtype=object),
        chrom=table["chrom"].to_numpy(np.int32),
        start=table["start"].to_numpy(np.int64),
        end=table["end"].to_numpy(np.int64),
        barcode=codes.astype(np.int32),
        count=table["count"].to_numpy(np.int32),
    )


GENES = pd.DataFrame({"chrom": ["chr1", "chr2"], "tss": [5000, 8000], "strand": ["+", "-"]})


def test_tss_enrichment_known_values():
    frags = fragments(
        [
            # cell A: 3 fragments with both insertions within +-50 bp of the TSS at 5000 (6 insertions),
            # 1 fragment with both insertions in the upstream flank [3000, 3100) (2 insertions)
            (0, 4960, 4990, "A", 1),
            (0, 4990, 5010, "A", 1),
            (0, 5000, 5040, "A", 1),
            (0, 3050, 3060, "A", 1),
            # cell B: one fragment at the TSS, nothing in the flanks -> flank floored at one insertion
            (0, 4990, 5010, "B", 1),
            # cell C: insertions only in the downstream flank of the minus-strand TSS at 8000: [9901, 10001)
            (1, 9950, 9960, "C", 1),
        ]
    )
    qc = atac_qc(frags, GENES, SIZES)
    assert qc.loc["A", "tss_enrichment"] == pytest.approx((6 / 101) / (2 / 200))
    assert qc.loc["B", "tss_enrichment"] == pytest.approx((2 / 101) / (1 / 200))
    assert qc.loc["C", "tss_enrichment"] == 0.0


def test_flank_boundaries_are_1900_to_2000_bp_either_side():
    # one probe per cell at TSS-2000 (in), -1901 (in), -1900 (out), +1901 (in), +2000 (in), +2001 (out);
    # a 1-bp fragment puts both its insertions on the probe, and every cell also gets one at the TSS.
    positions = [3000, 3099, 3100, 6901, 7000, 7001]
    frags = fragments(
        [(0, p, p + 1, f"c{i}", 1) for i, p in enumerate(positions)]
        + [(0, 5000, 5001, f"c{i}", 1) for i in range(len(positions))]
    )
    qc = atac_qc(frags, GENES.iloc[:1], SIZES)
    inside = (2 / 101) / (2 / 200)
    outside = (2 / 101) / (1 / 200)  # no flank insertion: flank floored at one
    expected = [inside, inside, outside, inside, inside, outside]
    assert qc.loc[[f"c{i}" for i in range(6)], "tss_enrichment"].to_numpy() == pytest.approx(expected)


def test_tss_enrichment_matches_a_direct_per_cell_count():
    rng = np.random.default_rng(0)
    tss = pd.DataFrame({"chrom": "chr1", "tss": rng.integers(2500, 17500, 6), "strand": rng.choice(["+", "-"], 6)})
    start = np.sort(rng.integers(0, 19_000, 3000))
    frags = fragments(
        [
            (0, s, s + int(length), f"b{c}", 1)
            for s, length, c in zip(start, rng.integers(20, 600, 3000), rng.integers(0, 12, 3000))
        ]
    )
    qc = atac_qc(frags, tss, SIZES)
    chrom, pos, cell = frags.insertions()
    for k, barcode in enumerate(frags.barcodes):  # reference: plain loops over this cell's insertions
        mine = pos[cell == k]
        d = mine[:, None] - tss["tss"].to_numpy()[None, :]
        center = np.any(np.abs(d) <= 50, axis=1).sum()
        flank = np.any((np.abs(d) >= 1901) & (np.abs(d) <= 2000), axis=1).sum()
        assert qc.loc[barcode, "tss_enrichment"] == pytest.approx((center / 101) / (max(flank, 1) / 200))


def test_fragment_counts_duplicates_and_nucleosome_signal():
    frags = fragments(
        [
            (0, 100, 200, "A", 2),
            (0, 300, 400, "A", 1),
            (0, 500, 700, "A", 3),
            (0, 900, 1200, "A", 1),  # 100,100,200,300 bp
            (0, 100, 300, "B", 1),  # mono-nucleosome only
            (1, 100, 150, "C", 1),
        ]
    )
    qc = atac_qc(frags, GENES, SIZES)
    assert list(qc["n_fragments"]) == [4, 1, 1]
    assert list(qc["total_reads"]) == [7, 1, 1]
    assert qc.loc["A", "duplicate_fraction"] == pytest.approx(1 - 4 / 7)
    assert qc.loc["A", "nucleosome_signal"] == pytest.approx(1 / 2)  # one 147-294 bp over two < 147 bp
    assert qc.loc["B", "nucleosome_signal"] == np.inf
    assert qc.loc["C", "nucleosome_signal"] == 0.0


def test_promoter_fraction_is_strand_aware():
    # minus-strand TSS at 8000 on chr2: promoter = [7501, 10001) (2 kb upstream is to the right)
    frags = fragments([(1, 9000, 9001, "up", 1), (1, 7000, 7001, "down", 1), (1, 7600, 9500, "half", 1)])
    qc = atac_qc(frags, GENES, SIZES)
    assert qc.loc["up", "promoter_fraction"] == 1.0
    assert qc.loc["down", "promoter_fraction"] == 0.0
    assert qc.loc["half", "promoter_fraction"] == 1.0


def test_rna_metrics():
    counts = sp.csr_matrix(np.array([[1, 0, 3, 6], [0, 0, 0, 0], [2, 2, 0, 0]]))
    qc = rna_qc(counts, np.array(["a", "b", "c"]), is_mito=np.array([False, False, False, True]))
    assert list(qc["total_counts"]) == [10, 0, 4]
    assert list(qc["n_genes"]) == [3, 0, 2]
    assert list(qc["mito_fraction"]) == [pytest.approx(0.6), 0.0, 0.0]


def test_multiome_nucleus_passes_only_when_both_modalities_pass():
    atac = pd.DataFrame(
        {"n_fragments": [1000, 1000, 10], "tss_enrichment": 5.0, "nucleosome_signal": 1.0, "duplicate_fraction": 0.5},
        index=pd.Index(["both", "rna_bad", "atac_bad"], name="barcode"),
    )
    rna = pd.DataFrame(
        {"total_counts": [500, 10, 500, 500], "n_genes": 200, "mito_fraction": 0.01},
        index=pd.Index(["both", "rna_bad", "atac_bad", "rna_only"], name="barcode"),
    )
    thresholds = {
        "atac": {"min_fragments": 500, "min_tss_enrichment": 2.0},
        "rna": {"min_counts": 300, "max_mito_fraction": 0.2},
    }
    table = combine_qc(atac, rna, thresholds)
    assert table["pass_atac"].to_dict() == {"both": True, "rna_bad": True, "atac_bad": False, "rna_only": False}
    assert table["pass_rna"].to_dict() == {"both": True, "rna_bad": False, "atac_bad": True, "rna_only": True}
    assert table["pass"].to_dict() == {"both": True, "rna_bad": False, "atac_bad": False, "rna_only": False}


@pytest.mark.parametrize(
    ("key", "value", "kept"),
    [("max_fragments", 999, ["b"]), ("max_nucleosome_signal", 2.0, ["a"]), ("max_duplicate_fraction", 0.3, ["a"])],
)
def test_each_atac_threshold_filters(key, value, kept):
    atac = pd.DataFrame(
        {
            "n_fragments": [1000, 10],
            "tss_enrichment": 5.0,
            "nucleosome_signal": [1.0, np.inf],
            "duplicate_fraction": [0.2, 0.9],
        },
        index=pd.Index(["a", "b"], name="barcode"),
    )
    table = combine_qc(atac, None, {"atac": {key: value}})
    assert list(table.index[table["pass"]]) == kept


def test_mitochondrial_fragments_are_left_out_of_atac_metrics_and_reported_as_a_fraction():
    # chrM carries a dense gene with its TSS at 100: mtDNA insertions there would swamp the TSS centre
    genes = pd.concat([GENES, pd.DataFrame({"chrom": ["chrM"], "tss": [100], "strand": ["+"]})], ignore_index=True)
    nuclear = [(0, 4960, 4990, "A", 1), (0, 3050, 3060, "A", 1)]
    mtdna = [(2, 90, 110, "A", 5)] * 6  # 6 unique chrM fragments, both insertions at the chrM TSS
    with_mt = atac_qc(fragments(nuclear + mtdna), genes, SIZES)
    without_mt = atac_qc(fragments(nuclear), genes, SIZES)
    for metric in (
        "n_fragments",
        "total_reads",
        "duplicate_fraction",
        "tss_enrichment",
        "nucleosome_signal",
        "promoter_fraction",
    ):
        assert with_mt.loc["A", metric] == without_mt.loc["A", metric], metric
    assert with_mt.loc["A", "n_fragments"] == 2
    assert with_mt.loc["A", "mito_fraction_atac"] == pytest.approx(6 / 8)
    assert without_mt.loc["A", "mito_fraction_atac"] == 0.0
    counted = atac_qc(fragments(nuclear + mtdna), genes, SIZES, mito=())  # what QC did before: chrM as chromatin
    assert (
        counted.loc["A", "n_fragments"] == 8
        and counted.loc["A", "tss_enrichment"] > 3 * with_mt.loc["A", "tss_enrichment"]
    )


def test_atac_max_mito_fraction_filters_on_the_atac_column():
    atac = pd.DataFrame(
        {"n_fragments": [1000, 1000], "mito_fraction_atac": [0.1, 0.6]}, index=pd.Index(["a", "b"], name="barcode")
    )
    table = combine_qc(atac, None, {"atac": {"max_mito_fraction": 0.5}})
    assert list(table.index[table["pass"]]) == ["a"]


QC_THRESHOLDS = {
    "atac": {"min_fragments": 500, "min_tss_enrichment": 2.0, "max_mito_fraction": None},
    "rna": {"min_counts": 300, "min_genes": 150},
}


def test_no_cells_message_names_the_threshold_that_removed_the_most_barcodes():
    atac = pd.DataFrame(
        {"n_fragments": [100, 180, 250] * 375, "tss_enrichment": [5.0, 1.0, 5.0] * 375},
        index=pd.Index([f"b{i}" for i in range(1125)], name="barcode"),
    )
    qc = combine_qc(atac, None, QC_THRESHOLDS)
    assert no_cells_message("human_atac1", qc, QC_THRESHOLDS, ["atac"]) == (
        "sample human_atac1: 0 of 1,125 barcodes pass ATAC QC (median 180 fragments vs ingest.atac.min_fragments 500); "
        "lower the threshold or drop the sample from the sample sheet"
    )


def test_no_cells_message_for_multiome_names_each_failing_modality_or_the_barcode_mismatch():
    atac = pd.DataFrame({"n_fragments": [100, 200], "tss_enrichment": 5.0}, index=pd.Index(["a", "b"], name="barcode"))
    rna = pd.DataFrame({"total_counts": [20, 40, 60], "n_genes": 200}, index=pd.Index(["a", "b", "c"], name="barcode"))
    qc = combine_qc(atac, rna, QC_THRESHOLDS)
    assert no_cells_message("mo", qc, QC_THRESHOLDS, ["rna", "atac"]) == (
        "sample mo: 0 of 2 barcodes pass ATAC QC (median 150 fragments vs ingest.atac.min_fragments 500) and "
        "0 of 3 barcodes pass RNA QC (median 40 UMIs vs ingest.rna.min_counts 300); "
        "lower the thresholds or drop the sample from the sample sheet"
    )
    atac = pd.DataFrame({"n_fragments": 1000, "tss_enrichment": 5.0}, index=pd.Index(["a-1", "b-1"], name="barcode"))
    rna = pd.DataFrame({"total_counts": 400, "n_genes": 200}, index=pd.Index(["a", "b", "c"], name="barcode"))
    qc = combine_qc(atac, rna, QC_THRESHOLDS)
    assert no_cells_message("mo", qc, QC_THRESHOLDS, ["rna", "atac"]) == (
        "sample mo: 0 of 5 barcodes pass both ATAC and RNA QC (2 pass ATAC, 3 pass RNA, none both); a multiome "
        "nucleus has the same barcode in the fragments and the counts file: check that both come from the same library"
    )
