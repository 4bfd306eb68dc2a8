"""Peak calling: pseudobulk insertions, MACS2 summits, fixed width, iterative-overlap merging, groups."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from test_fragments import write_fragments

from crossglue.errors import CrossglueError
from crossglue.genomics.intervals import overlaps_any
from crossglue.peaks.calling import (
    PeakParams,
    call_species_peaks,
    cell_groups,
    fixed_width,
    iterative_overlap_merge,
    score_per_million,
    write_pseudobulk_insertions,
)

# hg19 lengths of the two chromosomes in ArchR's PBSmall test fragments
HG19_SIZES = {"chr5": 180_915_260, "chr11": 135_006_516}
needs_macs2 = pytest.mark.skipif(shutil.which("macs2") is None, reason="macs2 not on PATH")


def _sequential_greedy(peaks: pd.DataFrame) -> set[int]:
    """Reference: walk peaks by decreasing score, keep one unless it overlaps a kept one."""
    kept: list[int] = []
    order = np.lexsort((np.arange(len(peaks)), -peaks["score"].to_numpy()))
    for i in order:
        row = peaks.iloc[i]
        clash = any(
            peaks.iloc[k]["chrom"] == row["chrom"]
            and peaks.iloc[k]["start"] < row["end"]
            and row["start"] < peaks.iloc[k]["end"]
            for k in kept
        )
        if not clash:
            kept.append(i)
    return {(peaks.iloc[i]["chrom"], int(peaks.iloc[i]["start"])) for i in kept}


def test_iterative_overlap_merge_equals_the_sequential_greedy():
    rng = np.random.default_rng(3)
    n = 400
    summit = rng.integers(300, 60_000, n)
    peaks = pd.DataFrame(
        {
            "chrom": rng.choice(["chr1", "chr2"], n),
            "start": summit - 250,
            "end": summit + 251,
            "summit": summit,
            "score": rng.gamma(2.0, 10.0, n).round(1),  # rounded: ties happen
            "group": rng.choice(["A", "B", "C"], n),
        }
    )
    merged = iterative_overlap_merge(peaks)
    assert set(zip(merged["chrom"], merged["start"].astype(int))) == _sequential_greedy(peaks)
    # no two kept peaks overlap, and every dropped peak overlaps a kept one with a higher score
    assert not any(overlaps_any(merged.iloc[[i]], merged.drop(index=merged.index[i])).any() for i in range(len(merged)))
    dropped = peaks.merge(merged[["chrom", "start"]], how="left", indicator=True).query("_merge == 'left_only'")
    assert overlaps_any(dropped, merged).all()
    assert merged["n_groups"].between(1, 3).all()


def test_scores_are_normalised_per_group_so_depth_does_not_win():
    summits = pd.DataFrame({"group": ["deep"] * 3 + ["shallow"] * 2, "neg_log10_p": [100.0, 100.0, 200.0, 5.0, 20.0]})
    spm = score_per_million(summits)
    assert spm.tolist() == pytest.approx([250_000, 250_000, 500_000, 200_000, 800_000])


def test_fixed_width_drops_peaks_past_chromosome_ends_and_on_the_blacklist():
    summits = pd.DataFrame(
        {"chrom": ["chr1", "chr1", "chr1", "chr1", "chrX"], "summit": [100, 250, 5_000, 9_749, 5_000]}
    )
    blacklist = pd.DataFrame({"chrom": ["chr1"], "start": [5_200], "end": [5_300]})
    out = fixed_width(summits, {"chr1": 10_000, "chrX": 8_000}, 250, blacklist)
    assert out[["chrom", "start", "end"]].values.tolist() == [
        ["chr1", 0, 501],
        ["chr1", 9_499, 10_000],
        ["chrX", 4_750, 5_251],
    ]


def test_pseudobulk_writes_both_cut_sites_of_each_cell_fragment(tmp_path):
    frags = pd.DataFrame(
        {
            "chrom": ["1", "1", "2", "1"],
            "start": [10, 100, 50, 70],
            "end": [60, 180, 90, 80],
            "barcode": ["AA-1", "CC-1", "AA-1", "GG-1"],
            "count": [1, 3, 1, 1],
        }
    )
    path = write_fragments(
        tmp_path / "f.tsv.gz", frags.sort_values(["chrom", "start"]).to_csv(sep="\t", header=False, index=False)
    )
    groups = pd.Series(["neuron", "glia"], index=["s#AA-1", "s#CC-1"])  # GG-1 is not a cell
    beds = write_pseudobulk_insertions(
        {"s": path}, groups, {"1": "chr1", "2": "chr2"}, {"chr1": 1000, "chr2": 1000}, tmp_path / "pb"
    )
    neuron = pd.read_csv(beds["neuron"], sep="\t", header=None)
    assert sorted(zip(neuron[0], neuron[1])) == [("chr1", 10), ("chr1", 59), ("chr2", 50), ("chr2", 89)]
    assert (neuron[2] - neuron[1] == 1).all() and (neuron[5] == "+").all()
    glia = pd.read_csv(beds["glia"], sep="\t", header=None)
    assert sorted(glia[1]) == [100, 179]


def test_pseudobulk_leaves_out_the_mitochondrial_chromosome_under_any_name(tmp_path):
    frags = pd.DataFrame(
        {"chrom": ["1", "MT"], "start": [10, 100], "end": [60, 180], "barcode": ["AA-1", "AA-1"], "count": [1, 1]}
    )
    path = write_fragments(tmp_path / "f.tsv.gz", frags.to_csv(sep="\t", header=False, index=False))
    beds = write_pseudobulk_insertions(
        {"s": path},
        pd.Series(["neuron"], index=["s#AA-1"]),
        {"1": "chr1", "MT": "chrM"},
        {"chr1": 1000, "chrM": 16569},
        tmp_path / "pb",
    )
    assert set(pd.read_csv(beds["neuron"], sep="\t", header=None)[0]) == {"chr1"}


def test_groups_are_labels_when_every_cell_has_one_else_clusters():
    obs = pd.DataFrame({"cell_type": ["A"] * 30 + ["B"] * 25 + ["C"] * 3}, index=[f"s#{i}" for i in range(58)])
    groups = cell_groups(obs, min_cells=20)
    assert groups.value_counts().to_dict() == {"A": 30, "B": 25, "other": 3}
    obs.loc["s#0", "cell_type"] = np.nan
    clusters = pd.Series(["0"] * 29 + ["1"] * 29, index=obs.index)
    assert cell_groups(obs, clusters, min_cells=20)["s#0"] == "A"  # its cluster's labelled cells are A
    unlabelled = obs.assign(cell_type=np.nan)
    assert set(cell_groups(unlabelled, clusters, min_cells=20)) == {"cluster0", "cluster1"}
    with pytest.raises(CrossglueError, match="some cells have no cell_type and no clusters"):
        cell_groups(obs)


def test_partly_labelled_species_keeps_its_labels_for_peak_groups():
    """Only one sample labelled (the realistic preset's human ATAC: multiome labelled, atac1
    not): labelled cells keep their type, unlabelled cells take their cluster's majority type,
    and a cluster no labelled cell explains stays a cluster group of its own."""
    labelled = ["A"] * 40 + ["B"] * 40
    obs = pd.DataFrame(
        {"cell_type": labelled + [np.nan] * 90},
        index=[f"s{i // 80}#{i}" for i in range(170)],
    )
    # clusters: 0 = A (labelled and not), 1 = B, 2 = a population only the unlabelled sample has
    clusters = pd.Series(["0"] * 40 + ["1"] * 40 + ["0"] * 30 + ["1"] * 30 + ["2"] * 30, index=obs.index)
    groups = cell_groups(obs, clusters, min_cells=20)
    assert groups.value_counts().to_dict() == {"A": 70, "B": 70, "cluster2": 30}
    assert (groups.iloc[:80] == np.array(labelled)).all()


def test_leiden_on_lsi_recovers_planted_cell_groups():
    from sklearn.metrics import adjusted_rand_score

    from crossglue.embedding import leiden_clusters

    rng = np.random.default_rng(0)
    n_per, n_tiles, truth = 60, 600, np.repeat([0, 1, 2], 60)
    rate = np.full((3, n_tiles), 0.2)
    for g in range(3):
        rate[g, g * 150 : (g + 1) * 150] = 1.5  # each group opens its own tiles
    depth = rng.lognormal(0, 0.3, 3 * n_per)[:, None]
    counts = sp.csr_matrix(rng.poisson(rate[truth] * depth))
    cells = pd.Index([f"s#{i}" for i in range(3 * n_per)])
    labels = leiden_clusters(counts, cells, n_components=10, resolution=0.3, seed=0)
    assert adjusted_rand_score(truth, labels) > 0.9
    assert labels.equals(leiden_clusters(counts, cells, n_components=10, resolution=0.3, seed=0))  # seeded


@needs_macs2
def test_pbsmall_peaks_end_to_end(shared_data, tmp_path, caplog):
    """Real ArchR fragments, grouped by cell type (barcode prefix B/M/T): merged 501 bp peaks;
    a log line per MACS2 group with the CPU its child process used."""
    import logging
    import re

    caplog.set_level(logging.INFO, logger="crossglue.peaks.calling")
    frag = shared_data / "singlecell" / "archr_pbsmall" / "PBSmall.tsv.gz"
    table = pd.read_csv(frag, sep="\t", header=None, comment="#")
    barcodes = table[3].unique()
    groups = pd.Series([b[0] for b in barcodes], index=[f"pb#{b}" for b in barcodes])
    peaks, summits = call_species_peaks("human", {"pb": frag}, groups, {}, HG19_SIZES, tmp_path / "w", PeakParams())
    assert set(summits["group"]) == {"B", "M", "T"}
    messages = [r.getMessage() for r in caplog.records]
    for i, group in enumerate("BMT", start=1):
        assert any(m.startswith(f"human: MACS2 group {i} of 3: '{group}' (") for m in messages), messages
    done = [
        re.fullmatch(r"human: MACS2 group '(\w)': (\d+) summits in [\d.]+ s wall, ([\d.]+) s CPU .*", m)
        for m in messages
    ]
    done = [m for m in done if m]
    assert [m.group(1) for m in done] == ["B", "M", "T"]
    assert sum(int(m.group(2)) for m in done) == len(summits)
    assert sum(float(m.group(3)) for m in done) > 0  # MACS2's CPU, which the rule's benchmark misses
    total = next(m for m in messages if m.startswith(f"human: {len(summits)} summits from 3 groups; MACS2 children "))
    assert float(re.search(r"children ([\d.]+) s CPU", total).group(1)) > 0
    assert len(peaks) > 500
    assert ((peaks["end"] - peaks["start"]) == 501).all()
    assert (peaks["summit"] - peaks["start"] == 250).all()
    assert peaks["peak_id"].tolist() == [f"human_p{i}" for i in range(1, len(peaks) + 1)]
    assert list(pd.unique(peaks["chrom"])) == ["chr5", "chr11"]  # genome order of the chrom sizes
    for chrom, sub in peaks.groupby("chrom"):
        assert (sub["start"].to_numpy()[1:] >= sub["end"].to_numpy()[:-1]).all(), f"overlapping peaks on {chrom}"
    # each group's 20 strongest summits survive the merge
    for group, sub in summits.groupby("group"):
        top = sub.nlargest(20, "neg_log10_p")
        assert overlaps_any(top.assign(start=top["summit"], end=top["summit"] + 1), peaks).all(), group
    # real signal: most Tn5 insertions fall in peaks (ArchR's FRiP for this data is high)
    cuts = pd.DataFrame({"chrom": np.r_[table[0], table[0]], "start": np.r_[table[1], table[2] - 1]})
    assert overlaps_any(cuts.assign(end=cuts["start"] + 1), peaks).mean() > 0.5


def test_unknown_peak_settings_are_named():
    with pytest.raises(CrossglueError, match="config key 'peaks.q_vlaue' is not a known key; expected one of: extsize"):
        PeakParams.from_config({"q_vlaue": 0.05})


def test_blacklist_names_are_made_canonical_and_foreign_contigs_ignored(tmp_path):
    from crossglue.peaks.calling import read_blacklist

    path = tmp_path / "blacklist.bed"
    path.write_text("# ENCODE-style\n1\t100\t200\tHigh Signal Region\nchrUn_KI270\t0\t50\tLow Mappability\n")
    table = read_blacklist(path, {"1": "chr1"}, {"chr1": 1_000})
    assert table.values.tolist() == [["chr1", 100, 200]]


def test_missing_labels_in_text_form_send_cells_to_clustering():
    from crossglue.peaks.calling import every_cell_labelled

    obs = pd.DataFrame({"cell_type": ["A", "NA", "B"]}, index=["s#1", "s#2", "s#3"])
    assert not every_cell_labelled(obs)
    assert every_cell_labelled(obs.assign(cell_type=["A", "C", "B"]))
    assert not every_cell_labelled(pd.DataFrame(index=["s#1"]))
