"""Label transfer and joint-space annotation on small seeded embeddings."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from crossglue.analysis.annotate import UNASSIGNED, annotate_cells, has_label, transfer_labels
from crossglue.errors import CrossglueError


def three_types(seed: int = 0, n: int = 60, c_centre=(5.0, 0.0), c_spread=(0.02, 0.5)):
    """Types A, B labelled in 'human'; the same types unlabelled in 'macaque'; plus an
    unlabelled type C (macaque only), by default on the line halfway between A and B."""
    rng = np.random.default_rng(seed)
    centres = {"A": (0.0, 0.0), "B": (10.0, 0.0), "C": c_centre}
    rows, labels, species, truth = [], [], [], []
    for sp, types in (("human", "AB"), ("macaque", "ABC")):
        for t in types:
            rows.append(rng.normal(centres[t], c_spread if t == "C" else 0.5, size=(n, 2)))
            labels += [t if sp == "human" else None] * n
            species += [sp] * n
            truth += [t] * n
    x = np.vstack(rows)
    index = [f"c{i}" for i in range(len(x))]
    return x, pd.Series(labels, index=index, dtype=object), np.array(species), np.array(truth)


def test_has_label_treats_na_spellings_as_missing():
    assert has_label(pd.Series(["A", None, "NA", "", "nan", "B"])).tolist() == [True, False, False, False, False, True]


def test_transfer_recovers_shared_types_and_leaves_novel_type_unassigned():
    x, labels, species, truth = three_types()
    out = transfer_labels(x, labels, k=15, min_confidence=0.8)
    shared = (species == "macaque") & (truth != "C")
    assert (out["label"].to_numpy()[shared] == truth[shared]).mean() > 0.97
    novel = truth == "C"
    assert (out["label"].to_numpy()[novel] == UNASSIGNED).mean() > 0.5
    assert out["confidence"].between(0, 1).all()
    assert out.index.equals(labels.index)


def test_labelled_cells_do_not_vote_for_themselves():
    # One labelled 'X' cell inside a cloud of 'A' cells: its neighbours say A.
    x = np.vstack([np.zeros((1, 2)), np.random.default_rng(1).normal(0, 0.1, size=(20, 2))])
    labels = pd.Series(["X"] + ["A"] * 20)
    out = transfer_labels(x, labels, k=5, min_confidence=0.5)
    assert out["label"].iloc[0] == "A" and out["confidence"].iloc[0] == pytest.approx(1.0)


def test_transfer_needs_labels():
    with pytest.raises(CrossglueError, match="at least 2 needed"):
        transfer_labels(np.zeros((5, 2)), pd.Series([None] * 5))


def test_annotate_cells_adds_clusters_umap_and_labels():
    x, labels, species, truth = three_types(n=40, c_centre=(5.0, 20.0), c_spread=(0.5, 0.5))
    adata = ad.AnnData(obs=pd.DataFrame({"species": species, "cell_type": labels.to_numpy()}, index=labels.index))
    adata.obsm["X_glue"] = x
    annotate_cells(adata, resolution=0.05, transfer_k=15, min_confidence=0.8)
    assert adata.obsm["X_umap"].shape == (adata.n_obs, 2)
    assert {"leiden", "cell_type_transferred", "cell_type_confidence", "cell_type_annotated"} <= set(adata.obs)
    given = labels.notna().to_numpy()
    assert (adata.obs["cell_type_annotated"].to_numpy()[given] == labels.to_numpy()[given]).all()
    # Leiden finds the three blobs: clusters agree with the truth
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, adata.obs["leiden"]) > 0.9


def test_annotate_rejects_non_finite_embedding():
    adata = ad.AnnData(obs=pd.DataFrame({"cell_type": ["A", "B", None]}, index=["a", "b", "c"]))
    adata.obsm["X_glue"] = np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]])
    with pytest.raises(CrossglueError, match="NaN or infinite"):
        annotate_cells(adata)


def test_annotate_cells_above_scanpys_approximate_knn_threshold():
    """Above 8,192 cells scanpy's default neighbours switch to pynndescent, whose output its
    own code cannot read with the pinned scipy ('csr_array' has no 'getnnz'): the realistic
    preset (about 14,000 rows) crashed there. Annotation must take one path at every size."""
    x, labels, species, truth = three_types(n=1_700)  # 8,500 cells
    adata = ad.AnnData(np.zeros((len(x), 1), np.float32), obs=pd.DataFrame({"cell_type": labels}))
    adata.obsm["X_glue"] = x
    annotate_cells(adata, resolution=0.2)
    assert adata.n_obs > 8_192 and adata.obsm["X_umap"].shape == (len(x), 2)
    shared = (species == "macaque") & (truth != "C")
    assert (adata.obs["cell_type_transferred"].to_numpy()[shared] == truth[shared]).mean() > 0.97
