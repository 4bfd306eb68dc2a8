"""Regulatory inference: candidates from the graph, cosine scores, empirical null, truth matching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
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


def planted_embeddings(seed: int = 0, n_genes: int = 100, per_gene: int = 6, dim: int = 16):
    """Each gene has 6 candidate elements; the first 2 are its true regulators, embedded close
    to it; the prior (distance) is uninformative about which."""
    rng = np.random.default_rng(seed)
    emb, pairs = {}, []
    for s in ("human", "macaque"):
        for g in range(n_genes):
            gnode = f"{s}:G{g}"
            emb[gnode] = rng.normal(size=dim)
            for j in range(per_gene):
                enode = f"{s}:el{g:04d}{j}"
                true = j < 2
                emb[enode] = emb[gnode] + rng.normal(scale=0.5, size=dim) if true else rng.normal(size=dim)
                pairs.append((s, enode.split(":")[1], f"G{g}", enode, gnode, rng.uniform(), true))
    table = pd.DataFrame(pairs, columns=["species", "element", "gene", "element_node", "gene_node", "prior", "truth"])
    return table, pd.DataFrame.from_dict(emb, orient="index")


def test_planted_links_score_high_and_null_links_are_uniform():
    pairs, emb = planted_embeddings()
    out = reg.infer_links(pairs.drop(columns="truth"), emb, n_null=20, seed=1)
    truth = pairs["truth"].to_numpy()
    metrics = reg.evaluate_scores(
        truth, {"cosine": out["cosine"].to_numpy(), "prior": out["prior"].to_numpy()}
    ).set_index("score")
    assert metrics.loc["cosine", "auroc"] > 0.95
    assert metrics.loc["prior", "auroc"] == pytest.approx(0.5, abs=0.1)
    # p-values of non-links are roughly uniform; most planted links pass q < 0.05
    null_p = out.loc[~truth, "p_value"]
    assert 0.4 < null_p.mean() < 0.6 and (null_p < 0.05).mean() < 0.09
    assert (out.loc[truth, "q_value"] < 0.05).mean() > 0.8
    assert np.allclose(out["cosine"].abs().max(), 1.0, atol=0.2)


def test_cosine_is_exact_and_shuffle_is_seeded():
    emb = pd.DataFrame([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]], index=["h:e1", "h:g1", "h:e2"])
    pairs = pd.DataFrame(
        {
            "species": "h",
            "element": ["e1", "e2"],
            "gene": "g1",
            "element_node": ["h:e1", "h:e2"],
            "gene_node": "h:g1",
            "prior": 1.0,
        }
    )
    out = reg.infer_links(pairs, emb, n_null=5, seed=0)
    assert out["cosine"].tolist() == pytest.approx([1 / np.sqrt(2), 1 / np.sqrt(2)])
    assert out.equals(reg.infer_links(pairs, emb, n_null=5, seed=0))


def test_centering_removes_a_shared_offset_per_group():
    emb = pd.DataFrame([[1.0, 5.0], [3.0, 5.0], [0.0, 0.0], [2.0, 2.0]], index=list("abcd"))
    centred = reg.center_by_group(emb, pd.Series(["h:element", "h:element", "h:gene", "h:gene"], index=list("abcd")))
    assert centred.values.tolist() == [[-1.0, 0.0], [1.0, 0.0], [-1.0, -1.0], [1.0, 1.0]]


def test_score_weighs_the_prior_by_embedding_agreement():
    emb = pd.DataFrame([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], index=["h:e1", "h:g1", "h:e2"])
    pairs = pd.DataFrame(
        {
            "species": "h",
            "element": ["e1", "e2"],
            "gene": "g1",
            "element_node": ["h:e1", "h:e2"],
            "gene_node": "h:g1",
            "prior": [0.5, 1.0],
        }
    )
    out = reg.infer_links(pairs, emb, n_null=2)
    assert out["score"].tolist() == pytest.approx([0.5, 0.0])  # aligned keeps its prior, opposed gets none


def test_shuffle_stays_inside_species():
    groups = np.array([0, 1, 0, 1, 1, 0, 2])
    perm = reg._shuffle_within(groups, np.random.default_rng(0))
    assert (groups[perm] == groups).all() and sorted(perm) == list(range(7))


def test_missing_embedding_is_named():
    emb = pd.DataFrame([[1.0, 0.0]], index=["h:e1"])
    pairs = pd.DataFrame(
        {"species": "h", "element": ["e1"], "gene": "g1", "element_node": ["h:e1"], "gene_node": ["h:g1"], "prior": 1.0}
    )
    with pytest.raises(CrossglueError, match="without an embedding"):
        reg.infer_links(pairs, emb)


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
