"""Counting Tn5 insertions / fragments per element: agrees with a direct count, reads chunks right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_fragments import write_fragments

from crossglue.elements.counting import count_fragments_file
from crossglue.elements.union import species_elements
from crossglue.errors import CrossglueError
from crossglue.genomics.intervals import overlapping_elements

SIZES = {"chr1": 100_000, "chr2": 50_000}
ALIASES = {"1": "chr1", "2": "chr2", "chr1": "chr1", "chr2": "chr2"}


def _write_fragments(path, frags: pd.DataFrame, index: str = "tabix") -> None:
    text = "# id=test\n# pipeline=hand-made\n" + frags.to_csv(sep="\t", header=False, index=False)
    write_fragments(path, text, index=index)


@pytest.fixture
def small_case(tmp_path):
    rng = np.random.default_rng(7)
    n = 5_000
    chrom_alias = rng.choice(["1", "chr2"], n)  # one chromosome under an alias name
    start = rng.integers(0, 49_000, n)
    frags = pd.DataFrame(
        {
            "chrom": chrom_alias,
            "start": start,
            "end": start + rng.integers(20, 800, n),
            "barcode": rng.choice([f"BC{i}-1" for i in range(12)], n),  # BC10, BC11 are not cells
            "count": 1,
        }
    ).sort_values(["chrom", "start"])
    path = tmp_path / "fragments.tsv.gz"
    _write_fragments(path, frags)
    # elements: fixed width and a few wide / overlapping ones, deliberately unsorted
    el_start = np.concatenate([rng.integers(0, 48_000, 60), [1_000, 1_200, 30_000]])
    el_end = np.concatenate([el_start[:60] + 501, [6_000, 1_500, 30_001]])
    elements = pd.DataFrame(
        {"chrom": np.r_[rng.choice(["chr1", "chr2"], 60), ["chr1", "chr1", "chr2"]], "start": el_start, "end": el_end},
        index=[f"el{i:07d}" for i in range(63)],
    )
    cells = pd.Index([f"s1#BC{i}-1" for i in range(10)] + ["s2#BC0-1"])  # another sample's cell shares a barcode
    return path, frags, elements, cells


def _direct_counts(frags, elements, cells, mode):
    """Reference: loop over elements and test every fragment (slow, obviously right)."""
    canon = frags["chrom"].map(ALIASES).to_numpy()
    cell_row = pd.Index(cells).get_indexer("s1#" + frags["barcode"])
    expected = np.zeros((len(cells), len(elements)), np.int64)
    for j, (chrom, s, e) in enumerate(elements[["chrom", "start", "end"]].itertuples(index=False)):
        on = (canon == chrom) & (cell_row >= 0)
        if mode == "insertions":
            hits = [
                (frags["start"].to_numpy() >= s) & (frags["start"].to_numpy() < e),
                (frags["end"].to_numpy() - 1 >= s) & (frags["end"].to_numpy() - 1 < e),
            ]
            for hit in hits:
                np.add.at(expected[:, j], cell_row[on & hit], 1)
        else:
            hit = (frags["start"].to_numpy() < e) & (frags["end"].to_numpy() > s)
            np.add.at(expected[:, j], cell_row[on & hit], 1)
    return expected


@pytest.mark.parametrize("mode", ["insertions", "fragments"])
def test_counts_equal_a_direct_count(small_case, mode):
    path, frags, elements, cells = small_case
    counts, n_read = count_fragments_file(path, "s1", cells, elements, ALIASES, SIZES, mode=mode, chunk_rows=777)
    assert n_read == len(frags)
    expected = _direct_counts(frags, elements, cells, mode)
    assert expected.sum() > 500  # the case exercises real overlaps
    np.testing.assert_array_equal(counts.toarray(), expected)
    assert counts[-1].sum() == 0  # s2's cell is not counted from s1's file


def test_overlapping_elements_handles_nested_intervals():
    starts = np.array([0, 10, 12, 40])
    ends = np.array([100, 20, 15, 45])
    q, e = overlapping_elements(starts, ends, np.array([13, 50, 41]), np.array([14, 51, 42]))
    assert sorted(zip(q.tolist(), e.tolist())) == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 3)]


def test_unknown_chromosome_names_the_file(small_case, tmp_path):
    path, frags, elements, cells = small_case
    bad = tmp_path / "bad.tsv.gz"
    _write_fragments(bad, frags.assign(chrom="chrUn_weird"), index="placeholder")
    with pytest.raises(CrossglueError, match="bad.tsv.gz"):
        count_fragments_file(bad, "s1", cells, elements, ALIASES, SIZES)


def test_fragment_with_end_before_start_is_reported_with_its_line(small_case, tmp_path):
    path, frags, elements, cells = small_case
    broken = frags.copy()
    broken.iloc[3, 2] = broken.iloc[3, 1]  # end == start
    bad = tmp_path / "broken.tsv.gz"
    _write_fragments(bad, broken, index="placeholder")
    with pytest.raises(CrossglueError, match=r"broken.tsv.gz:6: fragment start \d+ is not before its end"):
        count_fragments_file(bad, "s1", cells, elements, ALIASES, SIZES)


def test_unknown_mode_is_rejected(small_case):
    path, _, elements, cells = small_case
    with pytest.raises(CrossglueError, match="counting.mode 'reads': expected one of insertions, fragments"):
        count_fragments_file(path, "s1", cells, elements, ALIASES, SIZES, mode="reads")


def test_species_elements_keeps_only_elements_present_in_the_species():
    union = pd.DataFrame(
        {
            "element_id": ["el0000001", "el0000002", "el0000003"],
            "class": ["conserved", "macaque_sequence", "human_accessible"],
            "human_chrom": ["chr1", None, "chr2"],
            "human_start": [10, None, 50],
            "human_end": [511, None, 551],
            "human_peak": ["human_p1", None, "human_p2"],
            "macaque_chrom": ["chr1", "chr3", "chr2"],
            "macaque_start": [5, 9, 70],
            "macaque_end": [506, 510, 571],
            "macaque_peak": ["macaque_p1", "macaque_p2", None],
            "class_human_macaque": ["conserved", "macaque_sequence", "human_accessible"],
        }
    )
    human = species_elements(union, "human")
    assert list(human.index) == ["el0000001", "el0000003"]
    assert human["start"].tolist() == [10, 50] and human["end"].dtype == np.int64
    macaque = species_elements(union, "macaque")
    assert macaque["peak"].tolist() == ["macaque_p1", "macaque_p2", ""]
    assert macaque["class_human_macaque"].tolist() == union["class_human_macaque"].tolist()


def test_plain_barcodes_instead_of_cell_ids_are_an_error(small_case):
    path, _, elements, _ = small_case
    plain = pd.Index([f"BC{i}-1" for i in range(10)])
    with pytest.raises(CrossglueError) as err:
        count_fragments_file(path, "s1", plain, elements, ALIASES, SIZES)
    assert str(err.value) == (
        f"{path}: none of the 10 cell ids belongs to sample s1: cell ids are 's1#<barcode>', got e.g. 'BC0-1'; "
        "prefix plain barcodes with 's1#'"
    )


def test_cells_without_a_fragment_in_the_file_are_an_error(small_case):
    path, frags, elements, _ = small_case
    suffixless = pd.Index([f"s1#BC{i}" for i in range(10)])  # the file's barcodes end in -1
    with pytest.raises(CrossglueError) as err:
        count_fragments_file(path, "s1", suffixless, elements, ALIASES, SIZES, chunk_rows=777)
    assert str(err.value) == (
        f"{path}: none of the 10 cells of sample s1 has a fragment in this file (cell ids look like 's1#BC0', "
        f"its barcodes look like '{frags['barcode'].iloc[0]}'); cell ids must be 's1#' + the barcode as the "
        "fragments file writes it"
    )
