"""The guidance graph: element edges, assembly, validation, GraphML/edge-table files, summary."""

from __future__ import annotations

import gzip

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from workflow_runner import run_script

from crossglue.elements.union import element_coordinates, read_union_table
from crossglue.errors import CrossglueError
from crossglue.graph.assembly import assemble, node_table
from crossglue.graph.element_edges import ElementParams, element_edges
from crossglue.graph.files import read_edge_table, read_graph, write_edge_table, write_graphml
from crossglue.graph.summary import plot_degrees, summarise
from crossglue.graph.validate import validate

NA = np.nan


def _union(rows, species=("human", "macaque")):
    cols = ["element_id", "class"] + [f"{s}_{c}" for s in species for c in ("chrom", "start", "end")]
    return pd.DataFrame(rows, columns=cols)


UNION = _union(
    [
        ("el0000001", "conserved", "chr1", 100, 601, "chr1", 90, 591),
        ("el0000002", "human_accessible", "chr1", 900, 1401, "chr1", 880, 1381),
        ("el0000003", "macaque_accessible", "chr1", 2000, 2501, "chr1", 1990, 2491),
        ("el0000004", "human_sequence", "chr1", 5000, 5501, NA, NA, NA),
        ("el0000005", "ambiguous", "chr2", 100, 601, "chr3", 100, 601),
        ("el0000006", "macaque_sequence", NA, NA, NA, "chr2", 7000, 7501),
    ]
)


def test_element_weights_follow_the_class_and_skip_sequence_and_ambiguous():
    edges = element_edges(UNION, ["human", "macaque"])
    assert dict(zip(edges["element"], edges["weight"], strict=True)) == {
        "el0000001": 1.0,
        "el0000002": 0.5,
        "el0000003": 0.5,
    }


def test_element_weights_are_configurable_and_the_ablation_switch_drops_them_all():
    edges = element_edges(UNION, ["human", "macaque"], ElementParams(conserved=0.9, accessible=0.0))
    assert edges[["element", "weight"]].values.tolist() == [["el0000001", 0.9]]
    assert element_edges(UNION, ["human", "macaque"], ElementParams(enabled=False)).empty


def test_three_species_use_the_pair_class_column():
    three = _union(
        [
            ("el0000001", "conserved", "chr1", 0, 501, "chr1", 0, 501, "chr1", 0, 501),
            ("el0000002", "ambiguous", "chr1", 900, 1401, "chr1", 900, 1401, "chr1", 900, 1401),
        ],
        species=("chimp", "human", "macaque"),
    )
    three["class_chimp_human"] = ["conserved", "human_accessible"]
    three["class_chimp_macaque"] = ["chimp_sequence", "ambiguous"]
    three["class_human_macaque"] = ["conserved", "macaque_accessible"]
    edges = element_edges(three, ["human", "macaque", "chimp"])
    got = {
        (e, a, b): w for e, a, b, w in edges[["element", "species_a", "species_b", "weight"]].itertuples(index=False)
    }
    assert got == {
        ("el0000001", "chimp", "human"): 1.0,
        ("el0000001", "human", "macaque"): 1.0,
        ("el0000002", "chimp", "human"): 0.5,
        ("el0000002", "human", "macaque"): 0.5,
    }
    with pytest.raises(CrossglueError, match="no column 'class_chimp_human'"):
        element_edges(three.drop(columns="class_chimp_human"), ["human", "macaque", "chimp"])


def test_unknown_class_is_named_with_its_row():
    bad = UNION.copy()
    bad.loc[2, "class"] = "mouse_accessible"
    with pytest.raises(CrossglueError, match=r"row 4 \(element el0000003\), column 'class': class 'mouse_accessible'"):
        element_edges(bad, ["human", "macaque"])


def test_union_table_reader_checks_columns(tmp_path):
    path = tmp_path / "union_peaks.tsv"
    UNION.drop(columns="macaque_end").to_csv(path, sep="\t", index=False, na_rep="NA")
    with pytest.raises(CrossglueError, match="union_peaks.tsv: missing column\\(s\\) macaque_end"):
        read_union_table(path, ["human", "macaque"])
    UNION.to_csv(path, sep="\t", index=False, na_rep="NA")
    coords = element_coordinates(read_union_table(path, ["human", "macaque"]), "macaque")
    assert coords["peak_id"].tolist() == ["el0000001", "el0000002", "el0000003", "el0000005", "el0000006"]
    assert coords["start"].dtype == np.int64


def _small_graph():
    nodes = node_table(
        {
            "human": {"rna": ["G1", "G2", "G3"], "atac": ["el1", "el2"]},
            "macaque": {"rna": ["M1", "M2"], "atac": ["el1"]},
        }
    )
    undirected = [
        pd.DataFrame(
            {
                "source": ["human:el1", "human:el2"],
                "target": ["human:G1", "human:G1"],
                "weight": [1.0, 0.2],
                "sign": 1,
                "type": "peak_gene",
                "distance": [0, 5000],
            }
        ),
        pd.DataFrame(
            {"source": ["macaque:M1"], "target": ["human:G1"], "weight": [1.0], "sign": 1, "type": "ortholog"}
        ),
        pd.DataFrame(
            {"source": ["human:el1"], "target": ["macaque:el1"], "weight": [1.0], "sign": 1, "type": "element"}
        ),
        # the same pair again, lighter, in the other direction: kept once, at the heavier weight
        pd.DataFrame(
            {"source": ["human:G1"], "target": ["human:el2"], "weight": [0.1], "sign": 1, "type": "peak_gene"}
        ),
    ]
    return nodes, assemble(nodes, undirected)


def test_assembled_graph_is_symmetric_with_a_self_loop_on_every_node():
    nodes, edges = _small_graph()
    validate(edges, nodes)
    assert (edges["type"] == "self").sum() == len(nodes)
    assert len(edges) == len(nodes) + 2 * 4
    pair = edges[(edges["source"] == "human:el2") & (edges["target"] == "human:G1")]
    assert pair["weight"].tolist() == [0.2] and pair["distance"].tolist() == [5000]
    assert list(edges.columns[:5]) == ["source", "target", "weight", "sign", "type"]


def _drop_reverse(e):
    return e.drop(index=e[(e["source"] == "human:G1") & (e["target"] == "macaque:M1")].index)


def _set(e, mask_fn, col, value):
    e = e.copy()
    e[col] = e[col].astype(object)
    e.loc[mask_fn(e), col] = value
    return e


def _ortholog_edge(e):
    return (e["source"] == "human:G1") & (e["target"] == "macaque:M1")


MALFORMED = {
    "asymmetric": (_drop_reverse, r"edge macaque:M1 -> human:G1 \(type ortholog\) has no reverse edge"),
    "reverse_weight_differs": (
        lambda e: _set(e, _ortholog_edge, "weight", 0.5),
        r"human:G1 -> macaque:M1 \(type ortholog\) has weight 0.5, sign \+1 but its reverse " r"has weight 1.0",
    ),
    "missing_self_loop": (
        lambda e: e[~((e["source"] == "human:G1") & (e["target"] == "human:G1"))],
        r"1 node\(s\) without a self-loop, e.g. \['human:G1'\]",
    ),
    "self_loop_not_one": (
        lambda e: _set(e, lambda x: (x["source"] == x["target"]) & (x["source"] == "human:G2"), "weight", 0.5),
        r"human:G2 -> human:G2 \(type self\) is a self-loop of weight 0.5",
    ),
    "zero_weight": (
        lambda e: _set(e, lambda x: x["type"] == "element", "weight", 0.0),
        r"type element\) has weight 0.0; expected a number in \(0, 1\] \(2 edge",
    ),
    "weight_above_one": (
        lambda e: _set(e, lambda x: x["type"] == "ortholog", "weight", 1.5),
        r"has weight 1.5; expected a number in \(0, 1\]",
    ),
    "nan_weight": (
        lambda e: _set(e, lambda x: x["type"] == "ortholog", "weight", np.nan),
        r"has weight nan; expected a number in \(0, 1\]",
    ),
    "bad_sign": (lambda e: _set(e, lambda x: x["type"] == "element", "sign", 0), r"has sign 0; expected \+1 or -1"),
    "duplicate_edge": (lambda e: pd.concat([e, e.iloc[[0]]]), r"is listed more than once"),
    "missing_column": (lambda e: e.drop(columns="sign"), r"missing column\(s\) sign"),
    "empty": (lambda e: e.iloc[:0], r"the graph has no edges"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_validation_rejects_each_malformed_graph(case):
    nodes, edges = _small_graph()
    breaker, message = MALFORMED[case]
    with pytest.raises(CrossglueError, match=message):
        validate(breaker(edges), nodes)


def test_validation_rejects_a_data_feature_without_node():
    nodes, edges = _small_graph()
    more = pd.concat([nodes, pd.DataFrame({"node": ["macaque:M9"], "species": "macaque", "modality": "rna"})])
    with pytest.raises(CrossglueError, match=r"1 data feature\(s\) have no node, e.g. 'macaque:M9' \(macaque rna\)"):
        validate(edges, more)


def _check_graph_like_scglue(graph: nx.Graph) -> None:
    """scglue.graph.check_graph's requirements, asserted attribute by attribute."""
    for u, v, attrs in graph.edges(data=True):
        assert 0 < attrs["weight"] <= 1 and attrs["sign"] in (-1, 1)
        assert graph.has_edge(v, u)
    assert all(graph.has_edge(n, n) for n in graph.nodes)


def test_graphml_loads_in_networkx_with_every_attribute(tmp_path):
    nodes, edges = _small_graph()
    path = tmp_path / "guidance.graphml.gz"
    write_graphml(edges, nodes, path)
    with gzip.open(path, "rt") as fh:
        assert fh.readline().startswith("<?xml")
    graph = read_graph(path)
    assert graph.is_directed() and not graph.is_multigraph()
    assert graph.number_of_nodes() == len(nodes) and graph.number_of_edges() == len(edges)
    _check_graph_like_scglue(graph)
    assert graph.nodes["macaque:el1"] == {"species": "macaque", "modality": "atac"}
    assert graph.edges["human:el2", "human:G1"] == {"weight": 0.2, "sign": 1, "type": "peak_gene", "distance": 5000.0}
    assert "distance" not in graph.edges["human:G1", "macaque:M1"]
    round_trip = sorted((u, v, d["weight"], d["sign"], d["type"]) for u, v, d in graph.edges(data=True))
    expected = sorted(edges[["source", "target", "weight", "sign", "type"]].itertuples(index=False, name=None))
    assert round_trip == expected


def test_graphml_escapes_xml_characters_in_feature_names(tmp_path):
    nodes = node_table({"human": {"rna": ['A&B<"x">'], "atac": []}, "macaque": {"rna": ["M'1"], "atac": []}})
    edges = assemble(
        nodes,
        [
            pd.DataFrame(
                {
                    "source": ['human:A&B<"x">'],
                    "target": ["macaque:M'1"],
                    "weight": [1.0],
                    "sign": [-1],
                    "type": ["ortholog"],
                }
            )
        ],
    )
    write_graphml(edges, nodes, tmp_path / "g.graphml")
    graph = read_graph(tmp_path / "g.graphml")
    assert graph.edges['human:A&B<"x">', "macaque:M'1"]["sign"] == -1


def test_edge_table_round_trip_keeps_the_contract_columns(tmp_path):
    nodes, edges = _small_graph()
    path = tmp_path / "guidance_edges.tsv.gz"
    write_edge_table(edges, path)
    back = read_edge_table(path)
    assert list(back.columns) == ["source", "target", "weight", "sign", "type", "distance", "corr"]
    validate(back, nodes)
    pd.testing.assert_frame_equal(
        back[["source", "target", "weight", "type"]], edges[["source", "target", "weight", "type"]]
    )


def test_summary_counts_edges_once_and_measures_cross_species_reach(tmp_path):
    nodes, edges = _small_graph()
    summary = summarise(edges, nodes).set_index(["metric", "group"])["value"]
    assert summary[("nodes", "human:rna")] == 3 and summary[("nodes", "macaque:atac")] == 1
    assert summary[("edges", "peak_gene")] == 2 and summary[("edges", "ortholog")] == 1
    assert summary[("edges", "self")] == len(nodes)
    assert summary[("degree_max", "human:rna")] == 3  # G1: el1, el2, M1
    assert summary[("degree_isolated", "human:rna")] == 2  # G2, G3
    # human genes reaching macaque: G1 directly (1 hop); G2, G3 never
    assert summary[("genes_reaching_macaque_1hop", "human")] == pytest.approx(1 / 3)
    assert summary[("genes_reaching_macaque_any", "human")] == pytest.approx(1 / 3)
    # macaque genes reaching human: M1 directly; M2 isolated
    assert summary[("genes_reaching_human_3hop", "macaque")] == pytest.approx(1 / 2)
    plot_degrees(edges, nodes, tmp_path / "degree.png")
    assert (tmp_path / "degree.png").read_bytes()[:4] == b"\x89PNG"


# --- the simulated demo (tiny preset): truth recovered --------------------------------------
# The union table is built from the simulator's truth CRE coordinates and classes (one
# element per CRE), so these tests do not depend on the peak and consensus stages.

SPECIES = ["human", "macaque"]


def _build_demo(root, settings=None):
    from crossglue.elements.union import element_coordinates
    from crossglue.graph.assembly import build_guidance
    from crossglue.graph.orthologs import ortholog_edges, read_orthologs
    from crossglue.graph.peak_gene import link_species
    from crossglue.graph.settings import GraphSettings

    settings = settings or GraphSettings()
    cres = pd.read_csv(root / "truth" / "cres.tsv", sep="\t")
    union = pd.DataFrame({"element_id": [f"el{i:07d}" for i in range(len(cres))], "class": cres["class"]})
    for s in SPECIES:
        for c in ("chrom", "start", "end"):
            union[f"{s}_{c}"] = cres[f"{s}_{c}"]
    union["class_human_macaque"] = union["class"]
    truth_genes = pd.read_csv(root / "truth" / "genes.tsv", sep="\t")
    truth_genes["strand"] = np.where(truth_genes["strand"] > 0, "+", "-")
    features, peak_gene = {}, {}
    for s in SPECIES:
        genes = truth_genes[truth_genes["species"] == s]
        data_genes = pd.DataFrame(
            {"gene_id": genes["gene_id"] + "." + genes["version"].astype(str), "gene_name": genes["gene_name"]}
        )
        data_genes["gene_id"] = data_genes["gene_id"].str.replace(r"\.\d+$", "", regex=True)
        peaks = element_coordinates(union, s)
        peak_gene[s] = link_species(genes, peaks, settings.peak_gene)
        features[s] = {"rna": data_genes["gene_id"], "atac": peaks["peak_id"]}
    table = read_orthologs(root / "orthologs" / "human_macaque.orthologs.tsv", species_b="macaque")
    orth, missing = ortholog_edges(
        table, pd.Index(features["human"]["rna"]), pd.Index(features["macaque"]["rna"]), settings.orthologs
    )
    assert missing.empty
    orth = orth.assign(species_a="human", species_b="macaque")
    nodes, edges = build_guidance(features, peak_gene, orth, union, settings)
    return cres.assign(element_id=union["element_id"]), nodes, edges


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    simulate = pytest.importorskip("crossglue.simulate").simulate
    root = tmp_path_factory.mktemp("demo")
    simulate(root, "tiny", 0)
    cres, nodes, edges = _build_demo(root)
    return root, cres, nodes, edges


def test_demo_peak_gene_edges_recall_truth_links(demo):
    root, cres, _, edges = demo
    links = pd.read_csv(root / "truth" / "links.tsv", sep="\t")
    element = dict(zip(cres["cre"], cres["element_id"], strict=True))
    truth = set(
        zip(links["species"] + ":" + links["cre"].map(element), links["species"] + ":" + links["gene_id"], strict=True)
    )
    pg = edges[edges["type"] == "peak_gene"]
    found = set(zip(pg["source"], pg["target"], strict=True))
    recall = len(truth & found) / len(truth)
    overlap = set(zip(pg.loc[pg["distance"] == 0, "source"], pg.loc[pg["distance"] == 0, "target"], strict=True))
    print(
        f"\ndemo (tiny): {len(truth)} truth links; recall {recall:.3f} among {len(pg) // 2} peak-gene edges; "
        f"recall with overlap only {len(truth & overlap) / len(truth):.3f}"
    )
    # Links are drawn within 150 kb in the ancestor; species insertions can stretch a few
    # beyond the window, and those are the only ones allowed to be missed.
    missed = [(src, tgt) not in found for src, tgt in sorted(truth)]
    far = links.assign(
        key=list(
            zip(
                links["species"] + ":" + links["cre"].map(element),
                links["species"] + ":" + links["gene_id"],
                strict=True,
            )
        )
    )
    far = far[far["key"].isin({k for k, m in zip(sorted(truth), missed, strict=True) if m})]
    assert (far["distance"] > 150_000).all(), far
    assert recall >= 0.99
    # Weights decay with distance: a truth link is heavier on average than a random candidate.
    w = pg.set_index(["source", "target"])["weight"]
    assert w[w.index.isin(truth)].mean() > w[~w.index.isin(truth)].mean()


def test_demo_every_one2one_truth_pair_is_connected(demo):
    root, _, _, edges = demo
    truth = pd.read_csv(root / "truth" / "orthologs.tsv", sep="\t")
    one2one = truth[truth["homology_type"] == "ortholog_one2one"]
    pairs = set(zip(edges["source"], edges["target"], strict=True))
    wanted = set(
        zip(one2one["species_a"] + ":" + one2one["gene_a"], one2one["species_b"] + ":" + one2one["gene_b"], strict=True)
    )
    assert len(wanted) > 50 and wanted <= pairs
    many = truth[truth["homology_type"] != "ortholog_one2one"]
    w = edges.set_index(["source", "target"])["weight"]
    assert (
        w[list(zip(many["species_a"] + ":" + many["gene_a"], many["species_b"] + ":" + many["gene_b"], strict=True))]
        < 1
    ).all()


def test_demo_no_cross_species_edge_touches_a_sequence_or_ambiguous_element(demo):
    _, cres, _, edges = demo
    free = set(cres.loc[cres["class"].str.endswith("_sequence") | (cres["class"] == "ambiguous"), "element_id"])
    assert len(free) > 5
    species_of = edges["source"].str.split(":").str[0], edges["target"].str.split(":").str[0]
    cross = edges[species_of[0] != species_of[1]]
    touched = set(cross["source"].str.split(":").str[1]) | set(cross["target"].str.split(":").str[1])
    assert not touched & free
    tied = set(cross.loc[cross["type"] == "element", "source"].str.split(":").str[1])
    assert tied == set(
        cres.loc[cres["class"].isin(["conserved", "human_accessible", "macaque_accessible"]), "element_id"]
    )


def test_demo_ablation_switch_drops_only_element_edges(demo):
    from crossglue.graph.settings import graph_settings

    root, _, _, edges = demo
    _, nodes, ablated = _build_demo(root, graph_settings({"element_edges": False}))
    assert (ablated["type"] == "element").sum() == 0
    kept = edges[edges["type"] != "element"].reset_index(drop=True)
    pd.testing.assert_frame_equal(ablated.reset_index(drop=True), kept, check_dtype=False)
    full = summarise(edges, nodes).set_index(["metric", "group"])["value"]
    cut = summarise(ablated, nodes).set_index(["metric", "group"])["value"]
    assert ("edges", "element") in full.index and ("edges", "element") not in cut.index
    cross = ablated["source"].str.split(":").str[0] != ablated["target"].str.split(":").str[0]
    assert set(ablated.loc[cross, "type"]) == {"ortholog"}


def test_demo_graph_files_load_and_pass_scglue_style_checks(demo, tmp_path):
    _, _, nodes, edges = demo
    write_graphml(edges, nodes, tmp_path / "guidance.graphml.gz")
    graph = read_graph(tmp_path / "guidance.graphml.gz")
    _check_graph_like_scglue(graph)
    assert set(graph.nodes) == set(nodes["node"])
    assert graph.number_of_edges() == len(edges)
    summary = summarise(edges, nodes).set_index(["metric", "group"])["value"]
    assert summary[("genes_reaching_macaque_1hop", "human")] > 0.9


# --- rule scripts, run as Snakemake would (without Snakemake) --------------------------------


def _h5ad(path, var_names, gene_names=None, placed=None):
    """An empty-count AnnData with these features; ``placed``: chrom, start, end, strand per
    feature (as ingest writes into rna.var)."""
    import anndata as ad
    import scipy.sparse as sp

    var = pd.DataFrame(index=pd.Index(var_names, dtype=str))
    if gene_names is not None:
        var["gene_name"] = gene_names
    if placed is not None:
        for column in ("chrom", "start", "end", "strand"):
            var[column] = placed[column].to_numpy()
        var["in_annotation"] = True
    ad.AnnData(sp.csr_matrix((3, len(var_names)), dtype=np.float32), var=var).write_h5ad(path)


def test_ortholog_and_graph_scripts_write_every_output(tmp_path):
    union_path = tmp_path / "union_peaks.tsv"
    UNION.assign(class_human_macaque=UNION["class"]).to_csv(union_path, sep="\t", index=False, na_rep="NA")
    _h5ad(tmp_path / "h_rna.h5ad", ["ENSG01", "ENSG02", "ENSG07"], ["ONE", "DUP", "LOW"])
    _h5ad(tmp_path / "m_rna.h5ad", ["ENSMMUG01", "ENSMMUG02", "ENSMMUG03"], ["ONE", "DUPA", "DUPB"])
    _h5ad(tmp_path / "h_atac.h5ad", ["el0000001", "el0000002", "el0000003", "el0000004", "el0000005"])
    _h5ad(tmp_path / "m_atac.h5ad", ["el0000001", "el0000002", "el0000003", "el0000005", "el0000006"])
    mart = tmp_path / "mart.tsv"
    from test_orthologs import BIOMART_HEADER, BIOMART_ROWS

    mart.write_text("\n".join(["\t".join(BIOMART_HEADER)] + ["\t".join(r) for r in BIOMART_ROWS]) + "\n")
    graph_cfg = {"orthologs": {"low_confidence": 0.2}}
    run_script(
        "ortholog_links.py",
        input={"tables": [str(mart)], "rna": [tmp_path / "h_rna.h5ad", tmp_path / "m_rna.h5ad"]},
        output={"links": tmp_path / "ortholog_links.tsv.gz", "missing": tmp_path / "orthologs_missing.tsv"},
        params={
            "graph": graph_cfg,
            "species": SPECIES,
            "tables": [{"species_a": "human", "species_b": "macaque", "path": str(mart)}],
        },
        log=[str(tmp_path / "orth.log")],
    )
    links = pd.read_csv(tmp_path / "ortholog_links.tsv.gz", sep="\t")
    assert links[["gene_a", "gene_b", "weight"]].values.tolist() == [
        ["ENSG01", "ENSMMUG01", 1.0],
        ["ENSG02", "ENSMMUG02", 0.5],
        ["ENSG02", "ENSMMUG03", 0.1],
    ]
    missing = pd.read_csv(tmp_path / "orthologs_missing.tsv", sep="\t")
    assert set(missing["gene_a"]) == {"ENSG05", "ENSG06", "ENSG07"} and "table" in missing.columns

    for s, rows in (("human", [("el0000001", "ENSG01", 0, 1.0)]), ("macaque", [("el0000006", "ENSMMUG03", 800, 0.6)])):
        pd.DataFrame(rows, columns=["peak", "gene", "distance", "weight"]).assign(corr=np.nan).to_csv(
            tmp_path / f"{s}_pg.tsv.gz", sep="\t", index=False, na_rep="NA"
        )
        pd.DataFrame(
            {"species": [s], "gene_id": ["X"], "gene_name": ["X"], "reason": ["id and symbol not in annotation"]}
        ).to_csv(tmp_path / f"{s}_unmatched.tsv", sep="\t", index=False)
    out = {
        k: tmp_path / "graph" / v
        for k, v in {
            "edges": "guidance_edges.tsv.gz",
            "graphml": "guidance.graphml.gz",
            "summary": "summary.tsv",
            "degree_plot": "degree_distribution.png",
            "unmatched": "unmatched_genes.tsv",
        }.items()
    }
    run_script(
        "build_graph.py",
        input={
            "rna": [tmp_path / "h_rna.h5ad", tmp_path / "m_rna.h5ad"],
            "atac": [tmp_path / "h_atac.h5ad", tmp_path / "m_atac.h5ad"],
            "peak_gene": [tmp_path / "human_pg.tsv.gz", tmp_path / "macaque_pg.tsv.gz"],
            "unmatched": [tmp_path / "human_unmatched.tsv", tmp_path / "macaque_unmatched.tsv"],
            "orthologs": tmp_path / "ortholog_links.tsv.gz",
            "union": union_path,
        },
        output=out,
        params={"graph": graph_cfg, "species": SPECIES, "atac_species": SPECIES},
        log=[str(tmp_path / "graph.log")],
    )
    edges = read_edge_table(out["edges"])
    nodes = node_table(
        {
            "human": {"rna": ["ENSG01", "ENSG02", "ENSG07"], "atac": [f"el000000{i}" for i in (1, 2, 3, 4, 5)]},
            "macaque": {
                "rna": ["ENSMMUG01", "ENSMMUG02", "ENSMMUG03"],
                "atac": [f"el000000{i}" for i in (1, 2, 3, 5, 6)],
            },
        }
    )
    validate(edges, nodes)
    assert edges.groupby("type").size().to_dict() == {"element": 6, "ortholog": 6, "peak_gene": 4, "self": 16}
    assert read_graph(out["graphml"]).number_of_edges() == len(edges)
    assert len(pd.read_csv(out["unmatched"], sep="\t")) == 2
    assert out["degree_plot"].read_bytes()[:4] == b"\x89PNG"
    summary = pd.read_csv(out["summary"], sep="\t")
    assert list(summary.columns) == ["metric", "group", "value"]


def test_graph_script_stops_with_one_line_on_a_bad_setting(tmp_path, capfd):
    with pytest.raises(SystemExit) as stop:
        run_script(
            "build_graph.py",
            input={"rna": [], "atac": []},
            output={},
            params={"graph": {"element_weights": {"conserved": 2.0}}, "species": SPECIES, "atac_species": SPECIES},
            log=[str(tmp_path / "g.log")],
        )
    assert stop.value.code == 1
    message = "config key 'graph.element_weights.conserved': 2.0 is greater than the maximum of 1"
    assert message in capfd.readouterr().err
    assert message in (tmp_path / "g.log").read_text()


def _multiome_counts(root, sample, elements):
    """RNA counts (10x h5) and Tn5 insertions per element of one multiome sample's nuclei."""
    import h5py
    import scipy.sparse as sp

    with h5py.File(root / "samples" / sample / "filtered_feature_bc_matrix.h5") as f:
        m = f["matrix"]
        barcodes = m["barcodes"][:].astype(str)
        gene_ids = pd.Index(pd.Series(m["features/id"][:].astype(str)).str.replace(r"\.\d+$", "", regex=True))
        rna = sp.csc_matrix((m["data"][:], m["indices"][:], m["indptr"][:]), shape=tuple(m["shape"][:])).T.tocsr()
    frags = pd.read_csv(
        root / "samples" / sample / "fragments.tsv.gz",
        sep="\t",
        header=None,
        names=["chrom", "start", "end", "barcode", "n"],
    )
    frags = frags[frags["barcode"].isin(barcodes) & frags["chrom"].isin(elements["chrom"])]
    chroms = pd.Index(sorted(elements["chrom"].unique()))
    offset = np.int64(1) << np.int64(40)
    starts = chroms.get_indexer(elements["chrom"]) * offset + elements["start"].to_numpy(np.int64)
    order = np.argsort(starts)
    ends = (chroms.get_indexer(elements["chrom"]) * offset + elements["end"].to_numpy(np.int64))[order]
    cells = pd.Index(barcodes).get_indexer(frags["barcode"])
    rows, cols = [], []
    for pos in (frags["start"].to_numpy(), frags["end"].to_numpy() - 1):  # both Tn5 insertions
        key = chroms.get_indexer(frags["chrom"]) * offset + pos
        i = np.searchsorted(starts[order], key, side="right") - 1
        hit = (i >= 0) & (key < ends[np.maximum(i, 0)])
        rows.append(cells[hit])
        cols.append(order[i[hit]])
    atac = sp.csr_matrix(
        (np.ones(sum(map(len, rows))), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(barcodes), len(elements)),
    )
    return rna, gene_ids, atac


def test_demo_metacell_correlation_ranks_truth_links_and_travels_with_the_edges(demo, tmp_path):
    from sklearn.metrics import roc_auc_score

    from crossglue.elements.union import element_coordinates
    from crossglue.graph.assembly import peak_gene_layer
    from crossglue.graph.peak_gene import CorrelationParams, PairedCounts, link_species

    root, cres, nodes, _ = demo
    elements = element_coordinates(cres, "human")
    rna, gene_ids, atac = _multiome_counts(root, "human_multiome1", elements)
    genes = pd.read_csv(root / "truth" / "genes.tsv", sep="\t").query("species == 'human'")
    genes["strand"] = np.where(genes["strand"] > 0, "+", "-")
    paired = PairedCounts(rna, gene_ids, atac, pd.Index(elements["peak_id"]))
    links = link_species(genes, elements, paired=paired)
    links_truth = pd.read_csv(root / "truth" / "links.tsv", sep="\t").query("species == 'human'")
    element = dict(zip(cres["cre"], cres["element_id"], strict=True))
    truth = set(zip(links_truth["cre"].map(element), links_truth["gene_id"], strict=True))
    is_true = [k in truth for k in zip(links["peak"], links["gene"], strict=True)]
    auroc = roc_auc_score(is_true, links["corr"])
    print(
        f"\ndemo (tiny, {rna.shape[0]} paired nuclei): metacell correlation AUROC for truth links {auroc:.3f}, "
        f"distance weight {roc_auc_score(is_true, links['weight']):.3f}"
    )
    assert auroc > 0.58 and links["fdr"].between(0, 1).all()

    human = nodes[nodes["species"] == "human"]
    edges = assemble(human, [peak_gene_layer("human", links)])
    pair = edges[
        edges["source"].isin(["human:" + links["peak"].iloc[0], "human:" + links["gene"].iloc[0]])
        & edges["target"].isin(["human:" + links["peak"].iloc[0], "human:" + links["gene"].iloc[0]])
        & (edges["type"] == "peak_gene")
    ]
    assert pair["corr"].tolist() == pytest.approx([links["corr"].iloc[0]] * 2)
    write_graphml(edges, human, tmp_path / "g.graphml")
    u, v = pair["source"].iloc[0], pair["target"].iloc[0]
    assert read_graph(tmp_path / "g.graphml").edges[u, v]["corr"] == pytest.approx(links["corr"].iloc[0])
    # Too few paired nuclei: no scores, but the links are all there.
    few = link_species(genes, elements, paired=paired, correlation=CorrelationParams(min_paired_cells=rna.shape[0] + 1))
    assert few["corr"].isna().all() and len(few) == len(links)


def test_graph_settings_defaults_follow_the_design_and_typos_are_named():
    from crossglue.graph.settings import graph_settings

    settings = graph_settings(None)
    assert (settings.peak_gene.promoter, settings.peak_gene.window, settings.peak_gene.extension) == (
        2000,
        150_000,
        True,
    )
    assert (settings.element_weights.conserved, settings.element_weights.accessible) == (1.0, 0.5)
    assert (settings.element_weights.sequence, settings.element_weights.ambiguous) == (0.0, 0.0)
    assert settings.orthologs.one2one == 1.0 and settings.element_edges and settings.element_weights.enabled
    assert not graph_settings({"element_edges": False}).element_weights.enabled
    assert graph_settings({"element_weights": {"accessible": 1}}).element_weights.accessible == 1.0
    for bad, message in (
        ({"window": 1}, "config key 'graph.window' is not a known key; expected one of: correlation, element_edges"),
        ({"peak_gene": {"windw": 1}}, "config key 'graph.peak_gene.windw' is not a known key"),
        ({"peak_gene": {"window": "150kb"}}, "config key 'graph.peak_gene.window': '150kb' is not of type 'integer'"),
        ({"peak_gene": {"promoter": -5}}, "config key 'graph.peak_gene.promoter': -5 is less than the minimum of 0"),
        ({"element_edges": "no"}, "config key 'graph.element_edges': 'no' is not of type 'boolean'"),
        ({"element_weights": {"enabled": False}}, "config key 'graph.element_weights.enabled' is not a known key"),
        (
            {"orthologs": {"low_confidence": 1.5}},
            "config key 'graph.orthologs.low_confidence': 1.5 is greater than the maximum of 1",
        ),
        ({"correlation": {"k": 1}}, "config key 'graph.correlation.k': 1 is less than the minimum of 2"),
    ):
        with pytest.raises(CrossglueError) as err:
            graph_settings(bad)
        assert message in str(err.value)


def test_peak_gene_script_on_genes_placed_by_the_demo_gtf_recovers_truth_links(demo, tmp_path):
    """The links stage reads gene coordinates from rna.var, where ingest placed them with the
    species' GTF (RefSeq chromosome names, through the alias table)."""
    from crossglue.elements.union import element_coordinates
    from crossglue.genomics.genome import read_aliases, read_chrom_sizes
    from crossglue.genomics.gtf import match_genes, read_genes

    root, cres, _, _ = demo
    union = cres[["element_id", "class"]].copy()
    for s in SPECIES:
        for c in ("chrom", "start", "end"):
            union[f"{s}_{c}"] = cres[f"{s}_{c}"]
    union["class_human_macaque"] = union["class"]
    union.to_csv(tmp_path / "union_peaks.tsv", sep="\t", index=False, na_rep="NA")
    genes = pd.read_csv(root / "truth" / "genes.tsv", sep="\t").query("species == 'macaque'")
    genome = root / "genome"
    sizes = read_chrom_sizes(genome / "macaque.chrom.sizes")
    annotation = read_genes(genome / "macaque.gtf.gz", read_aliases(genome / "macaque.chrom_aliases.tsv"), sizes)
    matched, unmatched_at_ingest = match_genes(genes[["gene_id", "gene_name"]], annotation)
    assert not unmatched_at_ingest
    _h5ad(
        tmp_path / "rna.h5ad",
        genes["gene_id"].tolist(),
        genes["gene_name"].tolist(),
        placed=matched[["chrom", "start", "end", "strand"]].reset_index(drop=True),
    )
    _h5ad(tmp_path / "atac.h5ad", element_coordinates(union, "macaque")["peak_id"].tolist())
    out = {k: tmp_path / f"{k}.tsv" for k in ("links", "genes", "unmatched")}
    run_script(
        "peak_gene_links.py",
        input={"rna": tmp_path / "rna.h5ad", "atac": tmp_path / "atac.h5ad", "union": tmp_path / "union_peaks.tsv"},
        output=out,
        params={"graph": {}, "species": SPECIES},
        log=[str(tmp_path / "pg.log")],
        wildcards={"species": "macaque"},
    )
    assert pd.read_csv(out["unmatched"], sep="\t").empty  # GTF (RefSeq chromosome names) matched every gene
    links = pd.read_csv(out["links"], sep="\t")
    truth = pd.read_csv(root / "truth" / "links.tsv", sep="\t").query("species == 'macaque'")
    element = dict(zip(cres["cre"], cres["element_id"], strict=True))
    found = set(zip(links["peak"], links["gene"], strict=True))
    keys = list(zip(truth["cre"].map(element), truth["gene_id"], strict=True))
    assert np.mean([k in found for k in keys]) >= 0.99
