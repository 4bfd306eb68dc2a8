"""Chrom sizes, UCSC-style alias tables and the translation of foreign chromosome names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossglue.errors import CrossglueError
from crossglue.genomics.genome import canonical_names, mito_chromosomes, read_aliases, read_chrom_sizes


@pytest.fixture()
def genome(tmp_path):
    sizes = tmp_path / "rm.chrom.sizes"
    sizes.write_text("chr1\t1000\nchr2a\t500\nchrM\t16\n")
    aliases = tmp_path / "chromAlias.txt"
    aliases.write_text("# ucsc\tensembl\trefseq\nchr1\t1\tNC_041754.1\nchr2a\t2a\tNC_041755.1\nchrM\tMT\t\n")
    return sizes, aliases


def test_chrom_sizes_keep_file_order(genome):
    assert list(read_chrom_sizes(genome[0]).items()) == [("chr1", 1000), ("chr2a", 500), ("chrM", 16)]


def test_every_alias_column_maps_to_the_first(genome):
    aliases = read_aliases(genome[1])
    assert aliases == {
        "chr1": "chr1",
        "1": "chr1",
        "NC_041754.1": "chr1",
        "chr2a": "chr2a",
        "2a": "chr2a",
        "NC_041755.1": "chr2a",
        "chrM": "chrM",
        "MT": "chrM",
    }


def test_canonical_names_translate_mixed_namings(genome):
    sizes, aliases = read_chrom_sizes(genome[0]), read_aliases(genome[1])
    names = pd.Series(["NC_041754.1", "chr2a", "MT", "1", "1"])
    assert list(canonical_names(names, aliases, sizes, source="x")) == ["chr1", "chr2a", "chrM", "chr1", "chr1"]


def test_unknown_chromosome_names_source_and_table(genome):
    sizes, aliases = read_chrom_sizes(genome[0]), read_aliases(genome[1])
    with pytest.raises(CrossglueError) as err:
        canonical_names(
            np.array(["chr1", "chrUn_x", "chr9"]), aliases, sizes, source="frags.tsv.gz", alias_source="al.txt"
        )
    assert str(err.value) == (
        "frags.tsv.gz: chromosome(s) 'chr9', 'chrUn_x' not among the 3 chromosomes of the species' chrom sizes "
        "(e.g. chr1, chr2a, chrM) nor in alias table al.txt; add them to the species' chrom_aliases table"
    )


def test_alias_claimed_by_two_chromosomes_is_an_error(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("chr1\tX1\nchr2\tX1\n")
    with pytest.raises(CrossglueError, match=r"a.tsv:2: alias 'X1' names both 'chr1' and 'chr2'"):
        read_aliases(path)


def test_malformed_sizes_line_is_named(tmp_path):
    path = tmp_path / "s.sizes"
    path.write_text("chr1\t100\nchr2\tlots\n")
    with pytest.raises(CrossglueError, match=r"s.sizes:2: expected 'name<TAB>length' with an integer length"):
        read_chrom_sizes(path)


def test_mito_chromosome_found_by_name_or_alias(genome):
    assert mito_chromosomes(read_chrom_sizes(genome[0])) == {"chrM"}
    assert mito_chromosomes({"NC_012920.1": 16569, "chr1": 10}, {"MT": "NC_012920.1"}) == {"NC_012920.1"}


# --- alias table layouts, decided by the chrom sizes (issue 13, item 4) -----------------------

RHEMAC10 = [  # UCSC name, RefSeq accession (the names of the NCBI chrom sizes), GenBank, Ensembl
    ("chr1", "NC_041754.1", "CM014336.1", "1"),
    ("chr2", "NC_041755.1", "CM014337.1", "2"),
    ("chrX", "NC_041774.1", "CM014356.1", "X"),
    ("chrM", "NC_005943.1", "", "MT"),
]


def _ncbi_sizes(shared_data):
    path = shared_data / "annotation" / "rheMac10_ncbi_accessions.chrom.sizes"
    return path, read_chrom_sizes(path)


def _expected(sizes):
    expected = {}
    for row in RHEMAC10:
        for name in filter(None, row):
            expected[name] = row[1]
    assert all(c in sizes for c in set(expected.values()))
    return expected


@pytest.mark.parametrize("header", ["ucsc\trefseq\tgenbank\tensembl\n", "# ucsc\trefseq\tgenbank\tensembl\n", ""])
def test_hub_style_table_canonical_column_is_the_one_matching_the_sizes(shared_data, tmp_path, header):
    sizes_path, sizes = _ncbi_sizes(shared_data)
    table = tmp_path / "chromAlias.txt"
    table.write_text(header + "".join("\t".join(r) + "\n" for r in RHEMAC10))
    aliases = read_aliases(table, sizes, str(sizes_path))
    assert aliases == _expected(sizes)
    assert "ucsc" not in aliases and "refseq" not in aliases  # a header without '#' is not a chromosome
    assert mito_chromosomes(sizes, aliases) == {"NC_005943.1"}  # mitochondrial QC finds chrM through the table


def test_legacy_ucsc_table_alias_first_ucsc_name_second(shared_data, tmp_path):
    sizes_path, sizes = _ncbi_sizes(shared_data)
    rows = []
    for ucsc, refseq, genbank, ensembl in RHEMAC10:
        rows += [f"{refseq}\t{ucsc}\trefseq", f"{ensembl}\t{ucsc}\tensembl"]
        if genbank:
            rows.append(f"{genbank}\t{ucsc}\tgenbank")
    table = tmp_path / "chromAlias.txt"
    table.write_text("\n".join(rows) + "\n")
    aliases = read_aliases(table, sizes, str(sizes_path))
    assert aliases == _expected(sizes)
    assert "refseq" not in aliases  # the source column holds labels, not names


def test_two_column_table_either_way_round_against_ucsc_sizes(tmp_path):
    sizes = {"chr1": 1000, "chrM": 16}
    reversed_table = tmp_path / "rev.tsv"
    reversed_table.write_text("1\tchr1\nMT\tchrM\n")  # alias first: read right, chrM still found for QC
    aliases = read_aliases(reversed_table, sizes)
    assert aliases == {"1": "chr1", "chr1": "chr1", "MT": "chrM", "chrM": "chrM"}
    assert mito_chromosomes(sizes, aliases) == {"chrM"}
    assert list(canonical_names(pd.Series(["1", "MT"]), aliases, sizes, source="genes.gtf")) == ["chr1", "chrM"]


def test_table_matching_neither_side_of_the_sizes_is_refused(shared_data, tmp_path):
    sizes_path, sizes = _ncbi_sizes(shared_data)
    table = tmp_path / "hg38.chromAlias.txt"
    table.write_text("# ucsc\tensembl\nchr1\t1\nchr2\t2\nchrM\tMT\n")
    with pytest.raises(CrossglueError) as err:
        read_aliases(table, sizes, str(sizes_path))
    assert str(err.value) == (
        f"{table}: no name in this alias table is a chromosome of {sizes_path} (alias table e.g. 'chr1', '1', 'chr2', "
        "'2'; chrom sizes e.g. 'NC_041754.1', 'NC_041755.1', 'NC_041758.1', 'NC_041756.1'); expected one column to "
        "hold the chrom sizes' names: is the table for another assembly?"
    )


def test_row_joining_two_chromosomes_of_the_sizes_is_refused(tmp_path):
    table = tmp_path / "a.tsv"
    table.write_text("chr1\t1\nchr2\t1\n")
    with pytest.raises(CrossglueError) as err:
        read_aliases(table, {"chr1": 10, "chr2": 10}, "s.sizes")
    assert str(err.value) == (
        f"{table}:2: alias '1' names both 'chr1' and 'chr2', two chromosomes of s.sizes; a row of an alias table "
        "lists names of one chromosome"
    )
