"""Regulatory inference: candidates from the graph, cosine scores, empirical null, truth matching."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests

from crossglue.analysis import regulatory as reg
from crossglue.errors import CrossglueError
from crossglue.stats import benjamini_hochberg


def test_bh_qvalues_match_statsmodels():
    p = np.random.default_rng(0).uniform(size=200) ** 3
    assert np.allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])
    assert benjamini_hochberg(np.array([])).size == 0


def feature_table(species_elements: dict[str, int], species_genes: dict[str, int]) -> pd.DataFrame:
    rows = []
    for s, n in species_elements.items():
        rows += [(f"{s}:el{i:07d}", s, f"el{i:07d}", "element") for i in range(n)]
    for s, n in species_genes.items():
        rows += [(f"{s}:G{s[0].upper()}{i}", s, f"G{s[0].upper()}{i}", "gene") for i in range(n)]
    return pd.DataFrame(rows, columns=["node", "species", "feature", "kind"]).set_index("node")


def test_candidate_pairs_keep_one_element_to_gene_row_per_edge():
    features = feature_table({"human": 2}, {"human": 1})
    edges = pd.DataFrame(
        {
            "source": ["human:el0000000", "human:GH0", "human:el0000001", "human:el0000000"],
            "target": ["human:GH0", "human:el0000000", "human:GH0", "human:el0000000"],
            "weight": [0.5, 0.5, 1.0, 1.0],
            "sign": 1,
            "type": ["peak_gene", "peak_gene", "peak_gene", "self"],
        }
    )
    pairs = reg.candidate_pairs(edges, features)
    assert pairs[["element", "gene", "prior"]].values.tolist() == [["el0000000", "GH0", 0.5], ["el0000001", "GH0", 1.0]]


def test_distance_prior_ranks_near_pairs_first():
    pairs = pd.DataFrame({"prior": [0.2, 1.0, 0.5], "distance": [30000, 0, 2000]})
    assert np.argsort(-reg.distance_prior(pairs)).tolist() == [1, 2, 0]
    assert reg.distance_prior(pairs.drop(columns="distance")).tolist() == [0.2, 1.0, 0.5]


def test_candidate_pairs_without_peak_gene_edges_is_explained():
    with pytest.raises(CrossglueError, match="no peak_gene edges"):
        reg.candidate_pairs(
            pd.DataFrame({"source": [], "target": [], "weight": [], "sign": [], "type": []}), feature_table({}, {})
        )


def test_embedding_cosine_is_exact_after_centring_per_species_and_kind():
    features = ad.AnnData(
        obs=pd.DataFrame(
            {"species": "h", "feature": ["e1", "e2", "g1", "g2"], "kind": ["element", "element", "gene", "gene"]},
            index=["h:e1", "h:e2", "h:g1", "h:g2"],
        ),
        obsm={"X_glue": np.array([[2.0, 1.0], [0.0, 1.0], [1.0, 3.0], [1.0, 1.0]])},
    )
    pairs = pd.DataFrame({"element_node": ["h:e1", "h:e2"], "gene_node": ["h:g1", "h:g1"]})
    # centred: e1 (1, 0), e2 (-1, 0), g1 (0, 1), g2 (0, -1)
    assert reg.embedding_cosine(pairs, features).tolist() == pytest.approx([0.0, 0.0])
    pairs = pd.DataFrame({"element_node": ["h:e1"], "gene_node": ["h:g9"]})
    with pytest.raises(CrossglueError, match="1 candidate\\(s\\) name nodes without an embedding, e.g. h:e1"):
        reg.embedding_cosine(pairs, features)


def test_trans_pairs_never_share_a_chromosome():
    chrom_e = np.array(["chr1", "chr1", "chr2", "chr3"])
    chrom_g = np.array(["chr1", "chr2", "chr2"])
    el, gene = reg.trans_pairs(chrom_e, chrom_g, 500, np.random.default_rng(0))
    assert len(el) == len(gene) == 500 and (chrom_e[el] != chrom_g[gene]).all()
    assert set(el) == {0, 1, 2, 3}  # every element can be drawn


def test_one_chromosome_has_no_trans_null():
    with pytest.raises(CrossglueError, match="all elements and genes lie on one chromosome"):
        reg.trans_pairs(np.array(["chr1"]), np.array(["chr1", "chr1"]), 10, np.random.default_rng(0))


def test_combined_evidence_ignores_a_score_that_does_not_move_the_candidates():
    rng = np.random.default_rng(0)
    n = 4000
    linked = rng.random(n) < 0.3
    candidates = pd.DataFrame({"signal": rng.normal(size=n) + 2.0 * linked, "noise": rng.normal(size=n)})
    null = pd.DataFrame({"signal": rng.normal(size=5 * n), "noise": rng.normal(size=5 * n)})
    t, p, weights = reg.combine_evidence(candidates, null)
    assert weights["signal"] > 0.9 and weights["noise"] < 0.1
    # p of unlinked candidates is uniform: their scores are drawn like the null's
    assert abs(p[~linked].mean() - 0.5) < 0.03 and abs((p[~linked] <= 0.05).mean() - 0.05) < 0.015
    assert np.median(p[linked]) < 0.1


def test_links_stand_out_of_their_window_once_scores_are_standardised_per_feature():
    rng = np.random.default_rng(0)
    n_el, n_gene, window, n_null = 300, 400, 8, 40_000
    hub = np.arange(n_el) < 30  # elements that co-vary with every gene (a broad programme)

    def table(el, gene, linked):
        score = rng.normal(size=el.size) + 2.5 * hub[el] + 2.5 * linked
        return pd.DataFrame({"element_index": el, "gene_index": gene, "corr_joint": score})

    # each gene's window holds 8 elements, the first its link
    gene = np.repeat(np.arange(n_gene), window)
    el = rng.integers(0, n_el, gene.size)
    linked = np.tile(np.arange(window) == 0, n_gene) & ~hub[el]
    candidates = table(el, gene, linked)
    null = table(rng.integers(0, n_el, n_null), rng.integers(0, n_gene, n_null), np.zeros(n_null, bool))
    raw_p = reg.combine_evidence(candidates[["corr_joint"]], null[["corr_joint"]])[1]
    cand, nul = reg.feature_standardised(candidates, null, ["corr_joint"])
    p = reg.combine_evidence(cand[["corr_joint"]], nul[["corr_joint"]])[1]
    # Raw, hub pairs crowd the null's tail and links drown in it; standardised against their
    # windows, links stand out: more of them at the same p, unlinked pairs still called no
    # more often than p says, and a better ranking.
    assert (p[linked] <= 0.05).mean() > (raw_p[linked] <= 0.05).mean() + 0.1
    assert abs((p[~linked] <= 0.05).mean() - 0.05) < 0.01
    assert roc_auc_score(linked, -p) > roc_auc_score(linked, -raw_p) + 0.01
    assert (cand["element_index"] == candidates["element_index"]).all()


def planted_p(seed: int = 0, n: int = 20000):
    """Candidates at distances 0-150 kb; links are likelier near the gene (pi1 = 0.6 at 0 falling
    to 0.02) and have small p (Beta(0.2, 1)); the rest uniform p."""
    rng = np.random.default_rng(seed)
    distance = np.where(rng.random(n) < 0.05, 0, rng.uniform(0, 150_000, n)).astype(int)
    pi1 = np.where(distance == 0, 0.6, 0.02 + 0.4 * np.exp(-distance / 10_000))
    linked = rng.random(n) < pi1
    p = np.where(linked, rng.beta(0.2, 1.0, n), rng.random(n))
    return distance, p, linked, pi1


def test_link_prior_follows_the_share_of_links_by_distance_conservatively_and_never_rises_with_it():
    distance, p, _, pi1 = planted_p()
    prior = reg.link_prior(p, distance)
    order = np.argsort(distance, kind="stable")
    assert (np.diff(prior[order][distance[order] > 0]) <= 1e-12).all()
    # Storey's pi0 counts the links' p above 0.5 (13 % of Beta(0.2, 1)) as null: pi1 a bit low
    for mask in (distance == 0, (distance > 0) & (distance < 5_000), distance > 100_000):
        assert 0.6 * pi1[mask].mean() - 0.01 < prior[mask].mean() < pi1[mask].mean() + 0.02


def test_posterior_rises_with_evidence_and_with_nearness():
    distance, p, linked, _ = planted_p()
    post = reg.distance_posterior(p, distance)
    assert ((post >= 0) & (post <= 1)).all()
    near, far = distance < 5_000, distance > 100_000
    assert post[near & (p < 0.01)].mean() > post[far & (p < 0.01)].mean()
    assert post[near & (p < 0.01)].mean() > post[near & (p > 0.5)].mean()
    assert (
        reg.evaluate_scores(linked, {"post": post}).loc[0, "auroc"]
        > reg.evaluate_scores(linked, {"p": -p}).loc[0, "auroc"]
    )


def test_weighted_q_controls_the_fdr_and_finds_more_than_plain_bh():
    for seed in range(3):
        distance, p, linked, _ = planted_p(seed)
        prior = reg.link_prior(p, distance)
        called = reg.weighted_q(p, prior) <= 0.1
        plain = benjamini_hochberg(p) <= 0.1
        assert 1 - linked[called].mean() <= 0.12 and called.sum() > plain.sum()
    flat = np.full(p.size, 0.2)
    assert np.allclose(reg.weighted_q(p, flat), benjamini_hochberg(p))


def test_codivergence_is_the_correlation_of_species_fold_changes_across_cell_types():
    element = np.array([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    gene = np.array([[1.0, -0.5, -0.5], [-1.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    assert reg.codivergence(element, gene).tolist() == pytest.approx([1.0, -1.0, 0.0])  # untested element: 0


def test_species_divergence_reads_both_sides_of_the_differential_tables():
    elements = pd.DataFrame(
        {
            "species_a": "human",
            "species_b": "macaque",
            "cell_type": ["Ex", "In", "Ex"],
            "element": ["el1", "el1", "el2"],
            "log2fc": [1.0, -1.0, 0.5],
        }
    )
    genes = pd.DataFrame(
        {
            "species_a": "human",
            "species_b": "macaque",
            "cell_type": ["Ex", "In"],
            "gene_a": ["GH1", "GH1"],
            "gene_b": ["GM1", "GM1"],
            "log2fc": [2.0, 0.0],
        }
    )
    el_div, gene_div = reg.species_divergence(elements, genes, "macaque")
    assert el_div.loc["el2"].tolist() == [0.5, 0.0]  # untested in In: 0
    assert gene_div.index.tolist() == ["GM1"] and gene_div.loc["GM1"].tolist() == [2.0, 0.0]


def test_joint_metacells_take_k_neighbours_of_each_modality():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(60, 3))
    is_rna = np.arange(60) < 35
    agg_rna, agg_atac = reg.joint_metacells(emb, is_rna, n_metacells=10, k=5, seed=0)
    assert agg_rna.shape == (10, 35) and agg_atac.shape == (10, 25)
    assert (np.asarray(agg_rna.sum(axis=1)).ravel() == 5).all()
    assert (np.asarray(agg_atac.sum(axis=1)).ravel() == 5).all()


def test_match_to_truth_nearest_centre_within_distance_on_same_chromosome():
    ids = reg.match_to_truth(
        np.array(["chr1", "chr1", "chr2", "chr1"]),
        np.array([1000, 5000, 1000, 1600]),
        np.array(["chr1", "chr1", "chr2"]),
        np.array([1100, 1500, 1300]),
        np.array(["c1", "c2", "c3"]),
        max_distance=250,
    )
    assert ids.tolist() == ["c1", None, None, "c2"]


def test_truth_link_labels_through_union_coordinates():
    union = pd.DataFrame(
        {
            "element_id": ["el1", "el2"],
            "human_chrom": ["chr1", "chr1"],
            "human_start": [750, 9750],
            "human_end": [1251, 10251],
            "macaque_chrom": ["chr1", None],
            "macaque_start": [2750, None],
            "macaque_end": [3251, None],
        }
    )
    cres = pd.DataFrame(
        {
            "cre": ["cre1"],
            "human_chrom": ["chr1"],
            "human_centre": [1000],
            "macaque_chrom": ["chr1"],
            "macaque_centre": [3000],
        }
    )
    element_truth = reg.union_element_truth(union, cres, ["human", "macaque"])
    assert element_truth.loc["el1"].tolist() == ["cre1", "cre1"] and element_truth.loc["el2", "human"] is None
    links = pd.DataFrame(
        {"species": ["human", "macaque", "human"], "element": ["el1", "el1", "el2"], "gene": ["GH1", "GM1", "GH1"]}
    )
    truth_links = pd.DataFrame({"species": ["human"], "cre": ["cre1"], "gene_id": ["GH1"]})
    assert reg.truth_link_labels(links, element_truth, truth_links).tolist() == [True, False, False]


def multiome_species(seed: int = 0, n_cells: int = 400, n_genes: int = 40, per_gene: int = 4):
    """One species of paired nuclei in 8 cell types: each gene's expression follows the
    accessibility of its first candidate element (the link); the other candidates have their own,
    unrelated, cell-type patterns, and distances say nothing. Half the genes lie on chr2."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, 8, n_cells)
    n_el = n_genes * per_gene
    open_p = rng.beta(0.6, 1.5, size=(8, n_el))
    atac_x = rng.binomial(2, open_p[types])
    linked = np.arange(n_genes) * per_gene
    rate = np.exp(0.5 + 2.5 * open_p[types][:, linked]) * rng.lognormal(0, 0.2, (n_cells, 1))
    rna_x = rng.poisson(rate)
    nuclei = [f"n{i}" for i in range(n_cells)]
    chrom_g = np.where(np.arange(n_genes) < n_genes // 2, "chr1", "chr2")
    rna = ad.AnnData(
        sp.csr_matrix(rna_x.astype(float)),
        obs=pd.DataFrame({"nucleus": nuclei}, index=[f"r_{n}" for n in nuclei]),
        var=pd.DataFrame({"chrom": chrom_g}, index=[f"g{i}" for i in range(n_genes)]),
    )
    atac = ad.AnnData(
        sp.csr_matrix(atac_x.astype(float)),
        obs=pd.DataFrame({"nucleus": nuclei}, index=[f"a_{n}" for n in nuclei]),
        var=pd.DataFrame({"chrom": np.repeat(chrom_g, per_gene)}, index=[f"el{i}" for i in range(n_el)]),
    )
    rep = np.eye(8)[types] + rng.normal(scale=0.1, size=(n_cells, 8))
    cells = ad.AnnData(
        obs=pd.DataFrame(
            {
                "species": "h",
                "modality": ["rna"] * n_cells + ["atac"] * n_cells,
                "cell_id": list(rna.obs_names) + list(atac.obs_names),
            },
            index=[f"c{i}" for i in range(2 * n_cells)],
        ),
        obsm={"X_glue": np.vstack([rep, rep + rng.normal(scale=0.05, size=rep.shape)])},
    )
    nodes = [f"h:g{i}" for i in range(n_genes)] + [f"h:el{i}" for i in range(n_el)]
    features = ad.AnnData(
        obs=pd.DataFrame(
            {"species": "h", "feature": [n[2:] for n in nodes], "kind": ["gene"] * n_genes + ["element"] * n_el},
            index=nodes,
        ),
        obsm={"X_glue": rng.normal(size=(len(nodes), 4))},
    )
    el = np.arange(n_el)
    pairs = pd.DataFrame(
        {
            "species": "h",
            "element": [f"el{i}" for i in el],
            "gene": [f"g{i // per_gene}" for i in el],
            "element_node": [f"h:el{i}" for i in el],
            "gene_node": [f"h:g{i // per_gene}" for i in el],
            "prior": 1.0,
            "distance": rng.choice([5_000, 20_000], size=n_el),  # says nothing about the link
        }
    )
    return pairs, cells, features, rna, atac, el % per_gene == 0


def test_score_links_finds_the_element_that_drives_expression_beyond_distance():
    pairs, cells, features, rna, atac, truth = multiome_species()
    settings = {"n_null": 20, "seed": 0, "n_metacells": 60, "k": 10, "min_paired_cells": 100}
    settings["evidence"] = ["corr_paired", "corr_joint"]
    links, variants = reg.score_links(pairs, cells, features, {"h": rna}, {"h": atac}, settings)
    metrics = reg.evaluate_scores(
        truth, {"score": links["score"].to_numpy(), "distance": -links["distance"].to_numpy(dtype=float)}
    ).set_index("score")
    assert metrics.loc["score", "auroc"] > 0.95 and metrics.loc["distance", "auroc"] < 0.7
    called = links["q_value"].to_numpy() <= 0.1
    assert truth[called].mean() >= 0.9 and truth[called].sum() >= 0.7 * truth.sum()
    assert {"without_corr_paired", "distance+corr_joint", "with_cosine", "evidence_alone"} <= set(variants)
    assert links["corr_paired"].between(-1, 1).all() and links["corr_joint"].between(-1, 1).all()


def test_no_usable_evidence_is_explained():
    pairs, cells, features, rna, atac, _ = multiome_species(n_cells=120)
    settings = {"n_null": 2, "seed": 0, "n_metacells": 20, "k": 10, "min_paired_cells": 1000}
    settings["evidence"] = ["corr_paired"]  # too few paired nuclei for it
    with pytest.raises(CrossglueError, match="none of the evidence scores corr_paired"):
        reg.score_links(pairs, cells, features, {"h": rna}, {"h": atac}, settings)
