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
        "chr1": "chr1", "1": "chr1", "NC_041754.1": "chr1",
        "chr2a": "chr2a", "2a": "chr2a", "NC_041755.1": "chr2a",
        "chrM": "chrM", "MT": "chrM",
    }


def test_canonical_names_translate_mixed_namings(genome):
    sizes, aliases = read_chrom_sizes(genome[0]), read_aliases(genome[1])
    names = pd.Series(["NC_041754.1", "chr2a", "MT", "1", "1"])
    assert list(canonical_names(names, aliases, sizes, source="x")) == ["chr1", "chr2a", "chrM", "chr1", "chr1"]


def test_unknown_chromosome_names_source_and_table(genome):
    sizes, aliases = read_chrom_sizes(genome[0]), read_aliases(genome[1])
    with pytest.raises(CrossglueError) as err:
        canonical_names(np.array(["chr1", "chrUn_x", "chr9"]), aliases, sizes, source="frags.tsv.gz", alias_source="al.txt")
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
