"""The swap check and species-only types: cross-species correspondence by the joint embedding
beside ortholog expression, on a small seeded two-species set with known truth.

Species ``a`` is labelled and has a type of its own (``Ta``); species ``b`` is unlabelled and
has a type of its own (``Tb``), which the joint embedding puts beside its sibling ``T0`` (as an
alignment does) while its expression lacks T0's markers and has markers of its own.
"""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from crossglue.analysis.annotate import UNASSIGNED, annotate_cells, type_correspondence
from crossglue.analysis.correspondence import (
    mapping_scores,
    ortholog_correlation,
    pseudobulk_expression,
)
from crossglue.graph.orthologs import one2one_pairs

N_GENES = 300
SHARED = ["T0", "T1", "T2", "T3"]
# type -> (subclass, own marker block); species-only types sit under an existing subclass.
TYPES = {"T0": ("S01", 0), "T1": ("S01", 1), "T2": ("S23", 2), "T3": ("S23", 3), "Ta": ("S23", 4), "Tb": ("S01", 5)}
SUBCLASS_BLOCK = {"S01": 6, "S23": 7}
BLOCK = 20  # genes per marker block


def _profiles(rng: np.random.Generator) -> dict[str, np.ndarray]:
    base = rng.normal(0.0, 1.0, N_GENES)
    out = {}
    for t, (sub, own) in TYPES.items():
        p = base.copy()
        p[own * BLOCK : (own + 1) * BLOCK] += 2.0
        p[SUBCLASS_BLOCK[sub] * BLOCK : (SUBCLASS_BLOCK[sub] + 1) * BLOCK] += 1.5
        out[t] = p
    return out


def make_run(seed: int = 0, n: int = 80, broken: tuple[str, str] | None = None):
    """cells (obsm X_glue; species a labelled), per-species RNA AnnData and an ortholog table.
    ``broken``: the embedding puts species b's cells of these two types at each other's place."""
    rng = np.random.default_rng(seed)
    profiles = _profiles(rng)
    centroid = {t: rng.normal(0.0, 4.0, 8) for t in TYPES}
    centroid["Tb"] = centroid["T0"] + 1.6 * np.eye(8)[0] + 1.6 * np.eye(8)[1]
    rows, rna = [], {}
    for species, types in (("a", SHARED + ["Ta"]), ("b", SHARED + ["Tb"])):
        drift = rng.normal(0.0, 0.15, N_GENES)  # species divergence of expression
        counts, ids, truth = [], [], []
        for t in types:
            m = n // 2 if t in ("Ta", "Tb") else n
            logit = profiles[t] + drift
            p = np.exp(logit) / np.exp(logit).sum()
            counts.append(rng.poisson(1500 * p, size=(m, N_GENES)))
            ids += [f"{species}_s1#{t}_{i}" for i in range(m)]
            truth += [t] * m
        truth = np.array(truth)
        place = truth.copy()
        if species == "b" and broken:
            x, y = broken
            place = np.where(truth == x, y, np.where(truth == y, x, truth))
        emb = np.stack([centroid[t] for t in place]) + rng.normal(0.0, 0.5, (len(place), 8))
        genes = [f"{species}{g}" for g in range(N_GENES)]
        rna[species] = ad.AnnData(
            X=np.vstack(counts).astype(np.float32), obs=pd.DataFrame(index=ids), var=pd.DataFrame(index=genes)
        )
        for modality in ("rna", "atac"):
            keep = slice(None) if modality == "rna" else slice(0, None, 2)  # multiome: every second nucleus
            rows.append(
                pd.DataFrame(
                    {
                        "species": species,
                        "modality": modality,
                        "cell_id": np.array(ids)[keep],
                        "cell_type": truth[keep] if species == "a" else None,
                        "true_type": truth[keep],
                    }
                ).assign(x=list(emb[keep] + (0 if modality == "rna" else rng.normal(0, 0.2, emb[keep].shape))))
            )
    obs = pd.concat(rows, ignore_index=True)
    x = np.stack(obs.pop("x").to_numpy())
    obs.index = obs["modality"] + ":" + obs["cell_id"]
    cells = ad.AnnData(obs=obs, obsm={"X_glue": x})
    orthologs = pd.DataFrame(
        {
            "species_a": "a",
            "species_b": "b",
            "gene_a": [f"a{g}" for g in range(N_GENES)],
            "gene_b": [f"b{g}" for g in range(N_GENES)],
            "homology_type": "one2one",
        }
    )
    return cells, rna, orthologs


def annotate(cells, rna, orthologs):
    return annotate_cells(cells, rna=rna, orthologs=orthologs, min_cluster_cells=20, seed=0)


@pytest.fixture(scope="module")
def correct_run():
    cells, rna, orthologs = make_run()
    tables = annotate(cells, rna, orthologs)
    return cells, tables


def test_correct_run_matches_every_shared_type_to_itself_and_warns_of_no_swap(correct_run, caplog):
    cells, tables = correct_run
    table = tables["correspondence"]
    matched = table[table["embedding_match"] & (table["species_a"] == "b")]
    shared = matched[matched["group_a"].isin(SHARED)]
    assert (shared["group_a"] == shared["group_b"]).all() and len(shared) == len(SHARED)
    assert not table["swap"].any()
    with caplog.at_level(logging.WARNING):
        type_correspondence(cells.obs, cells.obsm["X_glue"], cells.obs["cell_type_annotated"].to_numpy(), *_inputs())
    assert not [r for r in caplog.records if "possible swap" in r.getMessage()]
    assert not tables["species_clusters"]["label_mismatch"].any()


def _inputs():
    _, rna, orthologs = make_run()
    return rna, orthologs


def test_broken_embedding_is_a_warned_swap_naming_both_types(caplog):
    cells, rna, orthologs = make_run(broken=("T1", "T2"))
    with caplog.at_level(logging.WARNING, logger="crossglue.analysis.correspondence"):
        tables = annotate(cells, rna, orthologs)
    swaps = tables["correspondence"]
    swaps = swaps[swaps["swap"] & (swaps["species_a"] == "b")]
    assert sorted(zip(swaps["group_a"], swaps["best_ortholog_partner"])) == [("T1", "T2"), ("T2", "T1")]
    messages = [r.getMessage() for r in caplog.records if "possible swap" in r.getMessage()]
    assert any(
        m.startswith("possible swap: b T1 is matched to a T1 in the joint embedding") and "better with a T2" in m
        for m in messages
    )
    assert any(m.startswith("possible swap: b T2 is matched to a T2") and "better with a T1" in m for m in messages)
    mismatch = tables["species_clusters"]
    mismatch = mismatch[mismatch["label_mismatch"]]
    assert set(zip(mismatch["top_label"], mismatch["partner"])) == {("T1", "T2"), ("T2", "T1")}


def test_swapped_labels_in_one_species_pseudobulk_warn_naming_the_two_types(correct_run, caplog):
    """Species b's expression of two types exchanged (its pseudobulk labels swapped), the
    embedding left right: the check sees the swap from the ortholog side too."""
    cells, _ = correct_run
    rna, orthologs = _inputs()
    b = rna["b"].copy()
    t0 = np.flatnonzero(b.obs_names.str.startswith("b_s1#T0_"))
    t3 = np.flatnonzero(b.obs_names.str.startswith("b_s1#T3_"))
    x = b.X.copy()
    x[t0], x[t3] = b.X[t3], b.X[t0]
    b.X = x
    rna["b"] = b
    with caplog.at_level(logging.WARNING, logger="crossglue.analysis.correspondence"):
        table = type_correspondence(
            cells.obs, cells.obsm["X_glue"], cells.obs["cell_type_annotated"].to_numpy(), rna, orthologs
        )
    flagged = table[table["swap"] & (table["species_a"] == "b")]
    assert sorted(zip(flagged["group_a"], flagged["best_ortholog_partner"])) == [("T0", "T3"), ("T3", "T0")]
    messages = [r.getMessage() for r in caplog.records if "possible swap" in r.getMessage()]
    assert any(m.startswith("possible swap: b T0 is matched to a T0") and "better with a T3" in m for m in messages)


def test_type_only_the_unlabelled_species_has_is_unassigned(correct_run, caplog):
    cells, tables = correct_run
    obs = cells.obs
    b = (obs["species"] == "b").to_numpy()
    novel = b & (obs["true_type"] == "Tb").to_numpy()
    label = obs["cell_type_transferred"].astype(str).to_numpy()
    assert (label[novel] == UNASSIGNED).mean() >= 0.8
    shared = b & ~novel
    assert (label[shared] == obs["true_type"].to_numpy()[shared]).mean() >= 0.95
    clusters = tables["species_clusters"]
    specific = clusters[clusters["species_specific"]]
    # both species-only types are reported; only the unlabelled species' one is unassigned
    assert set(zip(specific["species"], specific["top_label"])) == {("a", "Ta"), ("b", "T0")}
    assert any("candidate b-specific type" in r.getMessage() for r in caplog.records) or len(specific) == 2
    assert "counterpart_ratio" in obs and obs["cell_type_confidence"].between(0, 1).all()


def test_type_only_the_unlabelled_species_has_is_unassigned_even_where_the_embedding_merges_it():
    """Training can pull a species-only type onto its nearest shared type (ortholog anchors
    do): its own expression still sets it apart."""
    cells, rna, orthologs = make_run()
    obs = cells.obs
    b = (obs["species"] == "b").to_numpy()
    novel = b & (obs["true_type"] == "Tb").to_numpy()
    x = cells.obsm["X_glue"]
    t0 = x[b & (obs["true_type"] == "T0").to_numpy()]
    rng = np.random.default_rng(3)
    rna_rows = np.flatnonzero(novel & (obs["modality"] == "rna").to_numpy())
    x[rna_rows] = t0[rng.integers(0, len(t0), len(rna_rows))] + rng.normal(0, 0.3, (len(rna_rows), 8))
    obs["nucleus"] = obs["cell_id"]  # every ATAC row is a multiome nucleus
    # each multiome ATAC row stays beside its RNA partner (same cell id), as training keeps it
    position = pd.Series(rna_rows, index=obs["cell_id"].to_numpy()[rna_rows])
    atac_rows = np.flatnonzero(novel & (obs["modality"] == "atac").to_numpy())
    x[atac_rows] = x[position[obs["cell_id"].to_numpy()[atac_rows]].to_numpy()] + rng.normal(
        0, 0.05, (len(atac_rows), 8)
    )
    annotate(cells, rna, orthologs)
    label = cells.obs["cell_type_transferred"].astype(str).to_numpy()
    assert (label[novel] == UNASSIGNED).mean() >= 0.8
    shared = b & ~novel
    assert (label[shared] == obs["true_type"].to_numpy()[shared]).mean() >= 0.95


def test_type_only_the_labelled_species_has_is_not_given_to_the_other(correct_run):
    cells, tables = correct_run
    obs = cells.obs
    b = (obs["species"] == "b").to_numpy()
    assert (obs["cell_type_transferred"].astype(str).to_numpy()[b] == "Ta").mean() <= 0.05
    # the labelled species' own type keeps its given name (it is reported, not unassigned)
    a_ta = (obs["species"] == "a").to_numpy() & (obs["true_type"] == "Ta").to_numpy()
    assert (obs["cell_type_annotated"].astype(str).to_numpy()[a_ta] == "Ta").all()


def test_pseudobulk_is_mean_log_cp10k_per_group():
    counts = np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 4.0]])
    got = pseudobulk_expression(counts, pd.Index(["g1", "g2"]), np.array(["x", "x", None], dtype=object))
    expect = np.log1p(counts[:2] / counts[:2].sum(1, keepdims=True) * 1e4).mean(0)
    assert list(got.index) == ["x"] and np.allclose(got.loc["x"].to_numpy(), expect)


def test_ortholog_correlation_uses_one2one_pairs_either_way_round():
    table = pd.DataFrame(
        {
            "species_a": ["b", "a", "a"],
            "species_b": ["a", "b", "b"],
            "gene_a": ["b1", "a2", "a3"],
            "gene_b": ["a1", "b2", "b3"],
            "homology_type": ["one2one", "one2one", "one2many"],
        }
    )
    pairs = one2one_pairs(table, "a", "b")
    assert sorted(zip(pairs["gene_a"], pairs["gene_b"])) == [("a1", "b1"), ("a2", "b2")]
    with pytest.raises(Exception, match="at least 3 needed"):
        ortholog_correlation(pd.DataFrame([[1.0, 2.0]], columns=["a1", "a2"]), pd.DataFrame(), pairs)


def test_mapping_score_is_the_mean_of_both_directions():
    x = np.array([[0.0], [0.1], [5.0], [5.1], [0.05], [5.05]])
    sp = np.array(["a", "a", "a", "a", "b", "b"])
    groups = np.array(["P", "P", "Q", "Q", "P", "Q"], dtype=object)
    m = mapping_scores(x, sp == "a", sp == "b", groups, k=1)
    assert m.loc["P", "P"] == 1.0 and m.loc["Q", "Q"] == 1.0 and m.loc["P", "Q"] == 0.0
