"""Ortholog tables: BioMart header form, the real headerless Ensembl 102 file, weights, errors."""

from __future__ import annotations

import pandas as pd
import pytest

from crossglue.errors import CrossglueError
from crossglue.graph.orthologs import OrthologParams, ortholog_edges, read_orthologs

REAL_COLUMNS = {"gene_a": 0, "name_a": 1, "gene_b": 2, "name_b": 3, "confidence": 6, "homology_type": 7}

BIOMART_HEADER = [
    "Gene stable ID",
    "Gene stable ID version",
    "Gene name",
    "Macaque gene stable ID",
    "Macaque gene name",
    "Macaque homology type",
    "%id. target Macaque gene identical to query gene",
    "Macaque orthology confidence [0 low, 1 high]",
]


def _biomart(tmp_path, rows, header=BIOMART_HEADER, name="mart.tsv"):
    path = tmp_path / name
    path.write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in rows]) + "\n")
    return path


BIOMART_ROWS = [
    ("ENSG01", "ENSG01.5", "ONE", "ENSMMUG01", "ONE", "ortholog_one2one", "98.1", "1"),
    ("ENSG02", "ENSG02.3", "DUP", "ENSMMUG02", "DUPA", "ortholog_one2many", "90", "1"),
    ("ENSG02", "ENSG02.3", "DUP", "ENSMMUG03", "DUPB", "ortholog_one2many", "88", "0"),
    ("ENSG04", "ENSG04.1", "LONELY", "", "", "", "", ""),  # BioMart lists genes without orthologue
    ("ENSG05", "ENSG05.1", "MM1", "ENSMMUG05", "MM1", "ortholog_many2many", "70", "1"),
    ("ENSG05", "ENSG05.1", "MM1", "ENSMMUG06", "MM2", "ortholog_many2many", "70", "1"),
    ("ENSG06", "ENSG06.1", "MM3", "ENSMMUG05", "MM1", "ortholog_many2many", "70", "1"),
    ("ENSG07", "ENSG07.2", "LOW", "ENSMMUG07.4", "LOW", "ortholog_one2one", "60", "0"),
]


def test_biomart_header_is_recognised_and_partnerless_genes_dropped(tmp_path):
    table = read_orthologs(_biomart(tmp_path, BIOMART_ROWS))
    assert table["gene_a"].tolist() == ["ENSG01", "ENSG02", "ENSG02", "ENSG05", "ENSG05", "ENSG06", "ENSG07"]
    assert table["gene_b"].iloc[-1] == "ENSMMUG07"  # version suffix stripped
    assert table["homology_type"].tolist()[:3] == ["one2one", "one2many", "one2many"]
    assert table["line"].tolist() == [2, 3, 4, 6, 7, 8, 9]


def test_weights_one2one_one_over_n_and_confidence_scaling(tmp_path):
    table = read_orthologs(_biomart(tmp_path, BIOMART_ROWS))
    genes_a = pd.Index(["ENSG01", "ENSG02", "ENSG05", "ENSG06", "ENSG07"])
    genes_b = pd.Index(["ENSMMUG01", "ENSMMUG02", "ENSMMUG03", "ENSMMUG05", "ENSMMUG06", "ENSMMUG07"])
    edges, missing = ortholog_edges(table, genes_a, genes_b, OrthologParams(low_confidence=0.5))
    w = {(a, b): x for a, b, x in edges[["gene_a", "gene_b", "weight"]].itertuples(index=False)}
    assert w[("ENSG01", "ENSMMUG01")] == 1.0
    assert w[("ENSG02", "ENSMMUG02")] == 0.5  # one2many, n = 2, high confidence
    assert w[("ENSG02", "ENSMMUG03")] == 0.25  # n = 2, low confidence halves it
    assert w[("ENSG05", "ENSMMUG05")] == 0.5  # many2many: ENSG05 and ENSMMUG05 have 2 partners each
    assert w[("ENSG05", "ENSMMUG06")] == 0.5
    assert w[("ENSG06", "ENSMMUG05")] == 0.5
    assert w[("ENSG07", "ENSMMUG07")] == 0.5  # low-confidence one2one
    assert missing.empty


def test_genes_absent_from_the_data_are_reported_not_silently_dropped(tmp_path):
    table = read_orthologs(_biomart(tmp_path, BIOMART_ROWS))
    edges, missing = ortholog_edges(table, pd.Index(["ENSG01", "ENSG02"]), pd.Index(["ENSMMUG02", "ENSMMUG05"]))
    assert edges[["gene_a", "gene_b"]].values.tolist() == [["ENSG02", "ENSMMUG02"]]
    assert len(edges) + len(missing) == len(table)
    by_pair = dict(zip(zip(missing["gene_a"], missing["gene_b"], strict=True), missing["missing"], strict=True))
    assert by_pair[("ENSG01", "ENSMMUG01")] == "b"
    assert by_pair[("ENSG06", "ENSMMUG05")] == "a"
    assert by_pair[("ENSG07", "ENSMMUG07")] == "both"
    # 1/n counts partners in the table, not in the data: a missing paralogue does not inflate the weight.
    assert edges["weight"].iloc[0] == 0.5


def test_data_ids_with_version_suffix_still_match_and_keep_their_names(tmp_path):
    table = read_orthologs(_biomart(tmp_path, BIOMART_ROWS))
    edges, _ = ortholog_edges(table, pd.Index(["ENSG01.5"]), pd.Index(["ENSMMUG01.2"]))
    assert edges[["gene_a", "gene_b"]].values.tolist() == [["ENSG01.5", "ENSMMUG01.2"]]


def test_real_ensembl102_headerless_file_loads_with_a_column_mapping(shared_data):
    path = shared_data / "annotation" / "macaque_human_ensembl102_one2one.tsv"
    table = read_orthologs(path, columns=REAL_COLUMNS)
    assert len(table) == 19_077
    assert table["line"].iloc[0] == 1
    first = table.iloc[0]
    assert (first["gene_a"], first["name_a"], first["gene_b"], first["name_b"]) == (
        "ENSMMUG00000000634",
        "ZNF692",
        "ENSG00000171163",
        "ZNF692",
    )
    assert set(table["homology_type"]) == {"one2one"}
    assert (table["confidence"] == 0).sum() == 3205
    edges, missing = ortholog_edges(table, pd.Index(table["gene_a"]), pd.Index(table["gene_b"]))
    assert set(edges["weight"]) == {1.0, 0.5} and missing.empty
    assert (edges["n_partners"] == 1).all()


def test_real_file_without_mapping_explains_what_is_expected(shared_data):
    path = shared_data / "annotation" / "macaque_human_ensembl102_one2one.tsv"
    with pytest.raises(
        CrossglueError,
        match=r"macaque_human_ensembl102_one2one.tsv:1: no 'Gene stable ID' column.*" r"'columns' mapping",
    ):
        read_orthologs(path)


def test_ragged_line_is_named_with_its_number(tmp_path):
    path = tmp_path / "orth.tsv"
    path.write_text("A1\ta\tB1\tb\t1\tortholog_one2one\nA2\ta2\tB2\tb2\t1\nA3\ta3\tB3\tb3\t1\tortholog_one2one\n")
    cols = {"gene_a": 0, "gene_b": 2, "confidence": 4, "homology_type": 5}
    with pytest.raises(CrossglueError, match=r"orth.tsv:2: 5 tab-separated field\(s\); expected 6 like line 1"):
        read_orthologs(path, columns=cols)


def test_unknown_homology_type_and_bad_confidence_are_named(tmp_path):
    rows = [BIOMART_ROWS[0], ("ENSG09", "ENSG09.1", "X", "ENSMMUG09", "X", "within_species_paralog", "1", "1")]
    with pytest.raises(
        CrossglueError,
        match=r"mart.tsv:3: homology type 'within_species_paralog'; expected one of " r"ortholog_one2one",
    ):
        read_orthologs(_biomart(tmp_path, rows))
    rows = [BIOMART_ROWS[0], ("ENSG09", "ENSG09.1", "X", "ENSMMUG09", "X", "ortholog_one2one", "1", "high")]
    with pytest.raises(CrossglueError, match=r"mart.tsv:3: orthology confidence 'high'; expected a number in \[0, 1\]"):
        read_orthologs(_biomart(tmp_path, rows))


def test_mapping_errors_name_the_field(tmp_path):
    path = _biomart(tmp_path, BIOMART_ROWS)
    with pytest.raises(CrossglueError, match="unknown field\\(s\\) gene_c"):
        read_orthologs(path, columns={"gene_a": 0, "gene_b": 3, "gene_c": 4})
    with pytest.raises(CrossglueError, match="field\\(s\\) gene_b are required"):
        read_orthologs(path, columns={"gene_a": 0})
    with pytest.raises(CrossglueError, match=r"mart.tsv:1: header lacks column\(s\) gene_b -> 'Mouse gene stable ID'"):
        read_orthologs(path, columns={"gene_a": "Gene stable ID", "gene_b": "Mouse gene stable ID"})
    with pytest.raises(CrossglueError, match="position\\(s\\) gene_b -> 12 outside the 8 field"):
        read_orthologs(path, columns={"gene_a": 0, "gene_b": 12})


def test_headerless_table_without_type_column_infers_types_from_partners(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("A1\tB1\nA2\tB2\nA2\tB3\n")
    table = read_orthologs(path, columns={"gene_a": 0, "gene_b": 1})
    assert table["homology_type"].tolist() == ["one2one", "one2many", "one2many"]
    edges, _ = ortholog_edges(table, pd.Index(["A1", "A2"]), pd.Index(["B1", "B2", "B3"]))
    assert edges["weight"].tolist() == [1.0, 0.5, 0.5]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CrossglueError, match="ortholog table .*nope.tsv does not exist"):
        read_orthologs(tmp_path / "nope.tsv")


# --- the table against the data: orientation, symbols, no edge (issue 13, item 3) -------------

from crossglue.graph.orthologs import link_orthologs  # noqa: E402


def _features(ids, names):
    return pd.DataFrame({"gene_id": ids, "gene_name": names}, index=pd.Index(ids))


HUMAN = _features(["ENSG01", "ENSG02", "ENSG05", "ENSG06", "ENSG07"], ["ONE", "DUP", "MM1", "MM3", "LOW"])
MACAQUE = _features(
    ["ENSMMUG01", "ENSMMUG02", "ENSMMUG03", "ENSMMUG05", "ENSMMUG06", "ENSMMUG07"],
    ["ONE", "DUPA", "DUPB", "MM1", "MM2", "LOW"],
)


def test_table_matching_the_data_links_without_warning(tmp_path):
    table = read_orthologs(_biomart(tmp_path, BIOMART_ROWS))
    edges, missing, warnings = link_orthologs(table, HUMAN, MACAQUE, "mart.tsv", ("human", "macaque"))
    assert len(edges) == 7 and missing.empty and warnings == []


def test_table_oriented_the_other_way_says_how_to_fix_the_config(tmp_path):
    table = read_orthologs(_biomart(tmp_path, BIOMART_ROWS))
    with pytest.raises(CrossglueError) as err:  # config says species_a: macaque, but gene_a holds human genes
        link_orthologs(table, MACAQUE, HUMAN, "mart.tsv", ("macaque", "human"))
    assert str(err.value) == (
        "mart.tsv: the ortholog table is oriented the other way: 7 of its 7 row(s) have a human gene in gene_a and "
        "a macaque gene in gene_b, only 0 the configured way round (species_a: macaque, species_b: human); swap "
        "species_a and species_b of this table in config 'orthologs' (species_a: human, species_b: macaque)"
    )


def test_symbol_keyed_table_against_ensembl_ids_matches_by_symbol_with_a_warning(tmp_path):
    path = tmp_path / "homologene.tsv"  # HomoloGene-style: Entrez ids and symbols, no Ensembl id
    path.write_text("7157\tONE\t574271\tONE\n1017\tMM1\t100426133\tMM1\n999\tNOPE\t998\tNOPE\n")
    table = read_orthologs(path, columns={"gene_a": 0, "name_a": 1, "gene_b": 2, "name_b": 3})
    edges, missing, warnings = link_orthologs(table, HUMAN, MACAQUE, str(path), ("human", "macaque"))
    assert edges[["gene_a", "gene_b"]].values.tolist() == [["ENSG01", "ENSMMUG01"], ["ENSG05", "ENSMMUG05"]]
    assert missing["gene_a"].tolist() == ["999"]
    assert warnings == [
        f"{path}: no row's gene ids match the RNA features of both human and macaque (table e.g. '7157', '1017', "
        "'999'; human features e.g. 'ENSG01', 'ENSG02', 'ENSG05'); matched 2 of 3 row(s) by gene symbol instead "
        "(symbols naming several genes are left out); a table keyed by the annotation's gene ids links exactly"
    ]
    # Symbols as the ids themselves (no name columns) match the same way.
    path.write_text("ONE\tONE\nMM1\tMM1\n")
    table = read_orthologs(path, columns={"gene_a": 0, "gene_b": 1})
    edges, _, warnings = link_orthologs(table, HUMAN, MACAQUE, str(path), ("human", "macaque"))
    assert len(edges) == 2 and len(warnings) == 1


def test_zero_edges_is_an_error_naming_rows_and_unmatched_ids(tmp_path):
    path = tmp_path / "mouse.tsv"
    path.write_text("ENSMUSG1\tENSRNOG1\nENSMUSG2\tENSRNOG2\n")
    table = read_orthologs(path, columns={"gene_a": 0, "gene_b": 1})
    with pytest.raises(CrossglueError) as err:
        link_orthologs(table, HUMAN, MACAQUE, str(path), ("human", "macaque"))
    assert str(err.value) == (
        f"{path}: 0 ortholog edges between human and macaque from 2 table row(s) with a partner: no row has both "
        "genes among the RNA features. Unmatched human ids e.g. 'ENSMUSG1', 'ENSMUSG2' (human features e.g. "
        "'ENSG01', 'ENSG02', 'ENSG05'); unmatched macaque ids e.g. 'ENSRNOG1', 'ENSRNOG2' (macaque features e.g. "
        "'ENSMMUG01', 'ENSMMUG02', 'ENSMMUG03'). Check the table's columns (config 'orthologs' columns) and that it "
        "names genes by the ids or symbols of the species' annotation"
    )


def test_real_ensembl102_table_configured_human_first_is_caught(shared_data):
    path = shared_data / "annotation" / "macaque_human_ensembl102_one2one.tsv"  # macaque ids in column 1
    table = read_orthologs(path, columns=REAL_COLUMNS)
    human = _features(table["gene_b"].to_numpy(), table["name_b"].to_numpy())
    macaque = _features(table["gene_a"].to_numpy(), table["name_a"].to_numpy())
    with pytest.raises(CrossglueError, match=r"19077 of its 19077 row\(s\) have a macaque gene in gene_a"):
        link_orthologs(table, human, macaque, str(path), ("human", "macaque"))
    edges, _, warnings = link_orthologs(table, macaque, human, str(path), ("macaque", "human"))
    assert len(edges) == 19_077 and warnings == []
