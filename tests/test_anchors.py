"""Ortholog anchors: the unlabelled species' nuclei labelled from ortholog expression."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from crossglue.model.anchors import (
    AnchorSettings,
    Standardiser,
    anchor_labels,
    predict_types,
    supported_labels,
    with_paired,
)
from crossglue.model.data import DomainSpec
from crossglue.model.stage import MODEL_LABEL, ModelSettings, add_anchors

N_GENES = 200
BLOCK = 12  # marker genes per type
SHARED = ["T0", "T1", "T2", "T3"]


def species_rna(
    rng, species: str, types: list[str], base: np.ndarray, n: int = 60, capture: float = 1.0, echo: dict | None = None
):
    """Two samples; the second captures the first marker block ``capture`` times as well
    (a sample-specific bias the per-sample standardisation must absorb). ``echo`` maps a
    type to (another type, shift): it also expresses that type's markers, raised by shift."""
    drift = rng.normal(0.0, 0.2, N_GENES)
    counts, ids, truth, sample = [], [], [], []
    for t in types:
        logit = base + drift
        k = int(t[1:]) if t[1:].isdigit() else 5
        logit[k * BLOCK : (k + 1) * BLOCK] += 2.2
        if echo and t in echo:
            other, shift = echo[t]
            logit[int(other[1:]) * BLOCK : (int(other[1:]) + 1) * BLOCK] += shift
        for s, bias in (("s1", 1.0), ("s2", capture)):
            p = np.exp(logit)
            p[:BLOCK] *= bias
            p /= p.sum()
            m = n // 2
            counts.append(rng.poisson(rng.uniform(800, 2500, (m, 1)) * p))
            ids += [f"{species}_{s}#{t}_{i}" for i in range(m)]
            truth += [t] * m
            sample += [f"{species}_{s}"] * m
    obs = pd.DataFrame({"sample": sample, "true": truth}, index=ids)
    obs["cell_type"] = pd.Series(truth, index=ids, dtype=object) if species == "a" else None
    obs["nucleus"] = [i if j % 2 == 0 else None for j, i in enumerate(ids)]  # every second one is multiome
    var = pd.DataFrame(index=[f"{species}g{g}" for g in range(N_GENES)])
    return ad.AnnData(X=np.vstack(counts).astype(np.float32), obs=obs, var=var)


def one2one() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "species_a": "a",
            "species_b": "b",
            "gene_a": [f"ag{g}" for g in range(N_GENES)],
            "gene_b": [f"bg{g}" for g in range(N_GENES)],
            "homology_type": "one2one",
        }
    )


@pytest.fixture(scope="module")
def rna():
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.0, N_GENES)
    # species b: the shared types plus Tb, which species a lacks; its second sample is biased
    return {"a": species_rna(rng, "a", SHARED, base), "b": species_rna(rng, "b", SHARED + ["Tb"], base, capture=4.0)}


def pairs_for(rna_by_species):
    table = one2one()
    return {
        ("a", "b"): table[["gene_a", "gene_b"]],
        ("b", "a"): table[["gene_b", "gene_a"]].set_axis(["gene_a", "gene_b"], axis=1),
    }


def test_unlabelled_species_is_anchored_to_its_true_types_and_its_own_type_stays_free(rna):
    anchors = anchor_labels(rna, pairs_for(rna), AnchorSettings(min_confidence=0.9))
    assert set(anchors) == {"b"}  # species a has given labels; it anchors b and is not anchored itself
    frame = anchors["b"]
    true = rna["b"].obs["true"]
    shared = true.isin(SHARED)
    got = frame["anchor_label"]
    assert got[shared].notna().mean() >= 0.8
    assert (got[shared & got.notna()] == true[shared & got.notna()]).mean() >= 0.98
    assert got[true == "Tb"].notna().mean() <= 0.1  # a type without counterpart rarely reaches the confidence
    assert ((frame["anchor_confidence"] >= 0.9) == got.notna()).all()


def test_standardisation_folded_into_the_linear_map_equals_the_dense_product():
    rng = np.random.default_rng(1)
    x = sp.random(50, 30, density=0.3, format="csr", random_state=2) * 5
    batch = np.array(["s2", "s1"] * 25)
    scale = Standardiser.fit(x, batch)
    coef, intercept = rng.normal(size=(4, 30)), rng.normal(size=4)
    np.testing.assert_allclose(scale.logits(x, batch, coef, intercept), scale.dense(x, batch) @ coef.T + intercept)
    dense = scale.dense(x, batch)
    for s in ("s1", "s2"):  # standardised within each sample
        np.testing.assert_allclose(dense[batch == s].mean(axis=0), 0, atol=1e-9)


def test_a_reference_capped_at_a_few_labelled_nuclei_still_fits(rna):
    pairs = pairs_for(rna)[("a", "b")]
    labels, conf = predict_types(rna["a"], rna["a"].obs["cell_type"].to_numpy(), rna["b"], pairs, AnchorSettings())
    assert labels.shape == (rna["b"].n_obs,) and np.all((conf > 0) & (conf <= 1))
    small = AnchorSettings(max_reference_cells=10)
    _, few = predict_types(rna["a"], rna["a"].obs["cell_type"].to_numpy(), rna["b"], pairs, small)
    assert few.mean() < conf.mean()


def test_paired_atac_nuclei_take_their_rna_partners_anchor(rna):
    frame = anchor_labels(rna, pairs_for(rna), AnchorSettings())["b"]
    rna_obs = rna["b"].obs
    atac_obs = pd.DataFrame(
        {"nucleus": list(rna_obs["nucleus"].dropna()) + [None]},
        index=[f"atac{i}" for i in range(rna_obs["nucleus"].notna().sum() + 1)],
    )
    paired = with_paired(frame, rna_obs, atac_obs)
    expect = frame["anchor_label"][rna_obs["nucleus"].notna()].to_numpy()
    assert list(paired.iloc[:-1].to_numpy()) == list(expect)
    assert paired.iloc[-1] is None or pd.isna(paired.iloc[-1])


def test_disabled_or_without_any_labels_nothing_is_anchored(rna):
    assert anchor_labels(rna, pairs_for(rna), AnchorSettings(enabled=False)) == {}
    unlabelled = {s: a.copy() for s, a in rna.items()}
    unlabelled["a"].obs["cell_type"] = None
    assert anchor_labels(unlabelled, pairs_for(unlabelled), AnchorSettings()) == {}


def test_too_few_shared_genes_warns_and_anchors_nothing(rna, caplog):
    few = {("a", "b"): one2one()[["gene_a", "gene_b"]].head(5)}
    with caplog.at_level(logging.WARNING):
        anchors = anchor_labels(rna, few, AnchorSettings())
    assert anchors["b"]["anchor_label"].isna().all()
    assert "anchors: 5 one2one genes shared by a and b (fewer than 10); no b anchors from a" in caplog.text


def test_stage_gives_anchors_to_the_classifier_and_keeps_the_given_labels(rna):
    domains = {f"{s}:rna": a.copy() for s, a in rna.items()}
    specs = {
        "a:rna": DomainSpec("a", "rna", label_key="cell_type"),
        "b:rna": DomainSpec("b", "rna", label_key=None),
    }
    table = add_anchors(domains, specs, one2one(), ModelSettings())
    assert specs["b:rna"].label_key == MODEL_LABEL and specs["a:rna"].label_key == MODEL_LABEL
    b = domains["b:rna"].obs
    assert b["cell_type"].isna().all()  # the given label column is untouched
    assert b[MODEL_LABEL].notna().sum() == table["anchor_label"].notna().sum() > 0
    assert (domains["a:rna"].obs[MODEL_LABEL] == domains["a:rna"].obs["cell_type"]).all()
    assert set(table.columns) == {"cell_id", "anchor_label", "anchor_confidence", "species"}


def test_a_type_the_classifier_doubts_is_anchored_by_its_cluster_and_the_own_type_stays_free():
    # species b's T3 also expresses T2's markers: the classifier's best guess is right, but
    # it often stays below min_confidence; its cluster carries enough confident T3 nuclei
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.0, N_GENES)
    rna = {
        "a": species_rna(rng, "a", SHARED, base),
        "b": species_rna(rng, "b", SHARED + ["Tb"], base, capture=4.0, echo={"T3": ("T2", 2.2)}),
    }
    true = rna["b"].obs["true"]
    by_confidence = anchor_labels(rna, pairs_for(rna), AnchorSettings(cluster_support=1.0))["b"]["anchor_label"]
    got = anchor_labels(rna, pairs_for(rna), AnchorSettings())["b"]["anchor_label"]
    t3 = true == "T3"
    assert by_confidence[t3].notna().mean() <= 0.85
    assert got[t3].notna().mean() >= 0.95
    assert (got[t3 & got.notna()] == "T3").mean() >= 0.98
    assert got[true == "Tb"].notna().mean() <= 0.1


def test_cluster_support_counts_confident_nuclei_of_the_same_label_in_the_same_cluster():
    label = np.array(["A", "A", "A", "B", "B", "A", "A", "B"], dtype=object)
    confidence = np.array([0.95, 0.5, 0.4, 0.3, 0.2, 0.95, 0.6, 0.5])
    clusters = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    # cluster 0: 1 of 5 confidently A (20 %), no confident B; cluster 1: 1 of 3 confidently A
    got = supported_labels(label, confidence, clusters, min_confidence=0.9, support=0.2)
    assert list(got) == ["A", "A", "A", None, None, "A", "A", None]
    strict = supported_labels(label, confidence, clusters, min_confidence=0.9, support=0.25)
    assert list(strict) == ["A", None, None, None, None, "A", "A", None]
