"""10x fragments read into arrays; every malformed file is refused with a message naming where."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest

from crossglue.errors import CrossglueError
from crossglue.genomics.fragments import read_fragments

SIZES = {"chr1": 10_000, "chr2": 5_000}
ALIASES = {"1": "chr1", "2": "chr2"}
HEADER = "# id=test\n# reference_assembly=toy\n"
GOOD = "1\t10\t60\tAAA-1\t2\n1\t10\t200\tBBB-1\t1\n1\t50\t400\tAAA-1\t1\n2\t5\t100\tBBB-1\t3\n"
MANY = "".join(f"1\t{i}\t{i + 100}\tAAA-1\t1\n" for i in range(0, 5000, 2))
# hg19 lengths of the two chromosomes in ArchR's PBSmall test data
HG19 = {"chr5": 180_915_260, "chr11": 135_006_516}


def write_fragments(path: Path, text: str, index: str = "tabix") -> Path:
    """bgzip ``text`` to ``path``; index with tabix, or write a placeholder index, or none."""
    plain = path.with_name(path.name + ".txt")
    plain.write_text(text)
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    if index == "tabix":
        pysam.tabix_index(str(path), preset="bed", force=True, meta_char=ord("#"))
    elif index == "placeholder":  # tabix refuses to index malformed files; existence is what is checked first
        Path(f"{path}.tbi").write_bytes(b"")
    return path


def test_columns_are_canonical_codes_and_integers(tmp_path):
    frags = read_fragments(write_fragments(tmp_path / "f.tsv.gz", HEADER + GOOD), SIZES, ALIASES)
    assert frags.chrom_names == ["chr1", "chr2"]
    assert list(frags.chrom) == [0, 0, 0, 1]
    assert list(frags.start) == [10, 10, 50, 5] and list(frags.end) == [60, 200, 400, 100]
    assert list(frags.barcodes[frags.barcode]) == ["AAA-1", "BBB-1", "AAA-1", "BBB-1"]
    assert list(frags.count) == [2, 1, 1, 3]


def test_tn5_insertions_are_start_and_end_minus_one(tmp_path):
    frags = read_fragments(write_fragments(tmp_path / "f.tsv.gz", GOOD), SIZES, ALIASES)
    chrom, pos, cell = frags.insertions()
    assert sorted(zip(chrom.tolist(), pos.tolist())) == sorted(
        [(0, 10), (0, 59), (0, 10), (0, 199), (0, 50), (0, 399), (1, 5), (1, 99)]
    )
    assert len(cell) == 2 * len(frags)


def test_one_chromosome_through_tabix_matches_the_whole_read(tmp_path):
    path = write_fragments(tmp_path / "f.tsv.gz", HEADER + GOOD)
    whole = read_fragments(path, SIZES, ALIASES)
    chr1 = read_fragments(path, SIZES, ALIASES, chrom="chr1")
    assert list(chr1.start) == list(whole.start[whole.chrom == 0]) and set(chr1.chrom) == {0}
    assert len(read_fragments(path, SIZES, ALIASES, chrom="chr2")) == 1


def test_pbsmall_counts_per_cell_equal_a_direct_count(shared_data):
    path = shared_data / "singlecell" / "archr_pbsmall" / "PBSmall.tsv.gz"
    frags = read_fragments(path, HG19)
    with gzip.open(path, "rt") as fh:
        direct = pd.read_csv(fh, sep="\t", header=None, names=["chrom", "start", "end", "barcode", "count"])
    ours = pd.Series(np.bincount(frags.barcode), index=frags.barcodes).sort_index()
    assert len(frags) == 29_399 and len(frags.barcodes) == 150
    assert ours.to_dict() == direct.groupby("barcode").size().sort_index().to_dict()
    reads = pd.Series(np.bincount(frags.barcode, weights=frags.count), index=frags.barcodes).sort_index()
    assert reads.astype(int).to_dict() == direct.groupby("barcode")["count"].sum().sort_index().to_dict()


def _error(path, sizes=SIZES, aliases=ALIASES, **kw) -> str:
    with pytest.raises(CrossglueError) as err:
        read_fragments(path, sizes, aliases, **kw)
    return str(err.value)


def test_missing_index(tmp_path):
    path = write_fragments(tmp_path / "f.tsv.gz", GOOD, index="none")
    assert _error(path) == (
        f"{path}: tabix index {path}.tbi not found; create it with `tabix -p bed {path}` "
        "(the file must be bgzip-compressed and coordinate-sorted)"
    )


def test_truncated_bgzip_without_its_end_block(tmp_path):
    path = write_fragments(tmp_path / "f.tsv.gz", MANY)
    path.write_bytes(path.read_bytes()[:-28])
    assert _error(path) == f"{path}: truncated bgzip file (the end-of-file block is missing); re-copy or regenerate it"


def test_truncated_bgzip_cut_inside_a_block(tmp_path):
    path = write_fragments(tmp_path / "f.tsv.gz", MANY)
    path.write_bytes(path.read_bytes()[:40])
    assert _error(path) == f"{path}: truncated bgzip file (the end-of-file block is missing); re-copy or regenerate it"


def test_plain_gzip_is_not_bgzip(tmp_path):
    path = tmp_path / "f.tsv.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    Path(f"{path}.tbi").write_bytes(b"")
    assert _error(path) == f"{path}: not bgzip-compressed; compress it with `bgzip` (not gzip) and index it with tabix"


def test_unsorted_starts_name_the_line(tmp_path):
    text = HEADER + "1\t10\t60\tA\t1\n1\t50\t90\tA\t1\n1\t20\t90\tB\t1\n"
    path = write_fragments(tmp_path / "f.tsv.gz", text, index="placeholder")
    assert _error(path) == (
        f"{path}:5: file is not coordinate-sorted (start 20 after 50 on 1); sort with `sort -k1,1 -k2,2n` and re-index"
    )


def test_chromosome_coming_back_is_unsorted(tmp_path):
    text = "1\t10\t60\tA\t1\n2\t5\t90\tA\t1\n1\t70\t90\tB\t1\n"
    path = write_fragments(tmp_path / "f.tsv.gz", text, index="placeholder")
    assert _error(path) == (
        f"{path}:3: file is not coordinate-sorted (chromosome 1 appears again after another chromosome); "
        "sort with `sort -k1,1 -k2,2n` and re-index"
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("1\t70\t90\tB\n", "3: expected 5 tab-separated columns (chrom, start, end, barcode, count), got 4"),
        ("1\t70\t90\tB\t1\textra\n", "3: expected 5 tab-separated columns (chrom, start, end, barcode, count), got 6"),
        ("1\t7.5\t90\tB\t1\n", "3: expected a non-negative integer start, got '7.5'"),
        ("1\t70\tend\tB\t1\n", "3: expected a non-negative integer end, got 'end'"),
        ("1\t70\t90\tB\t0\n", "3: expected a positive integer count, got 0"),
        ("1\t-70\t90\tB\t1\n", "3: expected a non-negative integer start, got -70"),
        ("1\t70\t70\tB\t1\n", "3: fragment start 70 is not before its end 70"),
        (
            "1\t70\t20000\tB\t1\n",
            "3: fragment end 20000 lies beyond chr1 (10000 bp in the chrom sizes); wrong assembly?",
        ),
    ],
)
def test_malformed_record_names_the_line(tmp_path, bad, message):
    path = write_fragments(tmp_path / "f.tsv.gz", "# h\n1\t10\t60\tA\t1\n" + bad, index="placeholder")
    assert _error(path) == f"{path}:{message}"


def test_chromosome_absent_after_aliasing_names_it_and_the_alias_table(tmp_path):
    path = write_fragments(tmp_path / "f.tsv.gz", GOOD + "chrUn_1\t1\t50\tA\t1\n")
    message = _error(path, alias_source="genome/toy.chrom_aliases.tsv")
    assert message == (
        f"{path}: chromosome(s) 'chrUn_1' not among the 2 chromosomes of the species' chrom sizes "
        "(e.g. chr1, chr2) nor in alias table genome/toy.chrom_aliases.tsv; "
        "add them to the species' chrom_aliases table"
    )


def test_missing_file(tmp_path):
    assert _error(tmp_path / "nope.tsv.gz") == f"{tmp_path}/nope.tsv.gz: fragments file not found"


def test_chunks_carry_global_barcodes_and_add_up_to_the_whole(tmp_path):
    from crossglue.genomics.fragments import iter_fragments

    path = write_fragments(tmp_path / "f.tsv.gz", HEADER + GOOD)
    chunks = list(iter_fragments(path, SIZES, ALIASES, chunk_rows=1))
    whole = read_fragments(path, SIZES, ALIASES)
    assert len(chunks) == 4
    assert [list(c.barcodes[c.barcode]) for c in chunks] == [[b] for b in whole.barcodes[whole.barcode]]
    assert list(chunks[-1].barcodes) == list(whole.barcodes)


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 100])
def test_unsorted_records_are_found_across_chunk_boundaries(tmp_path, chunk_rows):
    from crossglue.genomics.fragments import iter_fragments

    path = write_fragments(
        tmp_path / "f.tsv.gz", HEADER + "1\t10\t60\tA\t1\n1\t50\t90\tA\t1\n1\t20\t90\tB\t1\n", index="placeholder"
    )
    with pytest.raises(CrossglueError) as err:
        list(iter_fragments(path, SIZES, ALIASES, chunk_rows=chunk_rows))
    assert str(err.value).startswith(f"{path}:5: file is not coordinate-sorted (start 20 after 50 on 1)")
    path = write_fragments(
        tmp_path / "g.tsv.gz", "1\t10\t60\tA\t1\n2\t5\t90\tA\t1\n2\t6\t90\tA\t1\n1\t70\t90\tB\t1\n", index="placeholder"
    )
    with pytest.raises(CrossglueError) as err:
        list(iter_fragments(path, SIZES, ALIASES, chunk_rows=chunk_rows))
    assert str(err.value).startswith(f"{path}:4: file is not coordinate-sorted (chromosome 1 appears again")
