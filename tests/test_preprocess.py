"""Per-domain model inputs: RNA PCA on HVGs, ATAC LSI, and the feature-selection rule."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from crossglue.errors import CrossglueError
from crossglue.model import DomainSpec
from crossglue.model.inputs import atac_lsi, rna_pca, select_features
from crossglue.model.synthetic import make_toy


@pytest.fixture(scope="module")
def toy():
    return make_toy(n_cells=200, n_genes=100, seed=0)


def _type_accuracy(x, labels):
    return cross_val_score(KNeighborsClassifier(15), x, labels, cv=5).mean()


def test_rna_pca_uses_hvgs_keeps_counts_and_separates_types(toy):
    adata = toy.domains["human:rna"].copy()
    before = adata.X.copy()
    rna_pca(adata, n_comps=20, n_top_genes=40, batch_key="sample")
    assert adata.var["highly_variable"].sum() == 40
    assert adata.obsm["X_pca"].shape == (200, 20) and adata.obsm["X_pca"].dtype == np.float32
    assert (adata.X != before).nnz == 0  # the model decodes the raw counts
    assert _type_accuracy(adata.obsm["X_pca"], adata.obs["cell_type"]) > 0.9
    again = toy.domains["human:rna"].copy()
    rna_pca(again, n_comps=20, n_top_genes=40, batch_key="sample")
    assert np.array_equal(adata.obsm["X_pca"], again.obsm["X_pca"])


def test_atac_lsi_is_standardised_per_cell_and_separates_types(toy):
    adata = toy.domains["human:atac"].copy()
    atac_lsi(adata, n_comps=20)
    lsi = adata.obsm["X_lsi"]
    assert lsi.shape == (200, 20)
    assert np.allclose(lsi.mean(axis=1), 0, atol=1e-5) and np.allclose(lsi.std(axis=1), 1, atol=1e-4)
    assert _type_accuracy(lsi, adata.obs["cell_type"]) > 0.9


def test_preprocessing_refuses_negative_counts():
    adata = ad.AnnData(sp.csr_matrix(np.array([[1, -2], [3, 4], [0, 1]], dtype=np.float32)))
    with pytest.raises(CrossglueError, match="macaque:atac: X must hold raw non-negative counts"):
        atac_lsi(adata, name="macaque:atac")


def _domain(names):
    return ad.AnnData(sp.csr_matrix(np.ones((3, len(names)), np.float32)), var=pd.DataFrame(index=names))


def test_feature_selection_keeps_elements_tied_to_selected_genes_or_other_species():
    rna = _domain(["g1", "g2", "g3"])
    rna.var["highly_variable"] = [True, True, False]
    h_atac = _domain(["p1", "p2", "p3", "p4"])
    m_rna = _domain(["g1"])
    m_rna.var["highly_variable"] = [False]
    m_atac = _domain(["q3", "q9"])
    rows = [
        ("human:p1", "human:g1"),  # linked to a selected gene -> kept
        ("human:p2", "human:g3"),  # linked only to an unselected gene -> dropped
        ("human:p3", "macaque:q3"),  # lifted to the other species -> kept on both sides
        ("human:g1", "macaque:g1"),  # ortholog: does not select macaque g1 (not an HVG there)
        ("macaque:q9", "macaque:g1"),  # linked to an unselected gene -> dropped
    ]
    edges = pd.DataFrame(rows, columns=["source", "target"])
    edges = pd.concat([edges, edges.rename(columns={"source": "target", "target": "source"})])
    specs = {
        "human:rna": DomainSpec("human", "rna"),
        "human:atac": DomainSpec("human", "atac"),
        "macaque:rna": DomainSpec("macaque", "rna"),
        "macaque:atac": DomainSpec("macaque", "atac"),
    }
    domains = {"human:rna": rna, "human:atac": h_atac, "macaque:rna": m_rna, "macaque:atac": m_atac}
    counts = select_features(domains, specs, edges)
    assert rna.var["selected"].tolist() == [True, True, False]
    assert h_atac.var["selected"].tolist() == [True, False, True, False]
    assert m_rna.var["selected"].tolist() == [False]
    assert m_atac.var["selected"].tolist() == [True, False]
    assert counts == {"human:rna": 2, "human:atac": 2, "macaque:rna": 0, "macaque:atac": 1}


def test_feature_selection_needs_hvgs_first():
    with pytest.raises(CrossglueError, match="domain human:rna: var has no 'highly_variable'; run rna_pca first"):
        select_features(
            {"human:rna": _domain(["g1"])},
            {"human:rna": DomainSpec("human", "rna")},
            pd.DataFrame({"source": [], "target": []}),
        )
