"""Integration metrics checked against values worked out by hand on a few 1-D points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossglue.analysis import metrics
from crossglue.errors import CrossglueError


def col(*values):
    return np.array(values, dtype=float)[:, None]


def test_cell_type_asw_matches_hand_silhouettes():
    # a at 0, 1; b at 10, 11: silhouettes 9.5/10.5, 8.5/9.5, 8.5/9.5, 9.5/10.5
    s = (2 * 9.5 / 10.5 + 2 * 8.5 / 9.5) / 4
    assert metrics.cell_type_asw(col(0, 1, 10, 11), ["a", "a", "b", "b"]) == pytest.approx((s + 1) / 2)


def test_batch_asw_is_one_minus_absolute_batch_silhouette():
    # One type, batches alternate at 0,1,2,3: batch silhouettes 0, -0.5, -0.5, 0 -> 1-|s| mean 0.75
    assert metrics.batch_asw(col(0, 1, 2, 3), ["x", "y", "x", "y"], ["t"] * 4) == pytest.approx(0.75)


def test_batch_asw_skips_types_seen_in_one_batch():
    x = col(0, 1, 2, 3, 50, 51, 52)
    score = metrics.batch_asw(x, ["x", "y", "x", "y", "x", "x", "x"], ["t"] * 4 + ["u"] * 3)
    assert score == pytest.approx(0.75)


def test_nmi_and_ari_on_a_split_cluster():
    # labels aabb, clusters 0,0,1,2: ARI = (1 - 1/3) / (3/2 - 1/3) = 4/7; NMI = ln2 / mean(ln2, 1.5 ln2) = 0.8
    assert metrics.ari([0, 0, 1, 2], ["a", "a", "b", "b"]) == pytest.approx(4 / 7)
    assert metrics.nmi([0, 0, 1, 2], ["a", "a", "b", "b"]) == pytest.approx(0.8)


def test_mean_average_precision_by_hand():
    # points 0,1,3,10, labels a,a,b,b, k=2: APs 1, 1, 0, 1
    assert metrics.mean_average_precision(col(0, 1, 3, 10), ["a", "a", "b", "b"], k=2) == pytest.approx(0.75)
    # labels a,b,a,b: relevant at rank 2 only for three cells (AP 1/2), none for one
    assert metrics.mean_average_precision(col(0, 1, 3, 10), ["a", "b", "a", "b"], k=2) == pytest.approx(0.375)


def test_graph_connectivity_counts_the_largest_piece_per_type():
    # type a in two far pieces (2 + 2 cells) -> 0.5; type b in one piece -> 1
    x = col(0, 1, 100, 101, 50, 51)
    assert metrics.graph_connectivity(x, list("aaaabb"), k=1) == pytest.approx(0.75)


def test_seurat_alignment_zero_when_batches_apart_and_formula_when_mixed():
    assert metrics.seurat_alignment_score(col(0, 1, 100, 101), list("xxyy"), k=1) == pytest.approx(0.0)
    # 0, 1, 2.5, 4.5 in batches x y x y, k=2: same-batch neighbours 1, 0, 0, 1 -> mean 0.5
    # SAS = 1 - (0.5 - 2/2) / (2 - 2/2) = 1.5 (more mixed than chance)
    assert metrics.seurat_alignment_score(col(0, 1, 2.5, 4.5), list("xyxy"), k=2) == pytest.approx(1.5)


def test_seurat_alignment_subsamples_batches_to_equal_size():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    batch = np.array(["big"] * 250 + ["small"] * 50)
    assert metrics.seurat_alignment_score(x, batch, k=10) == pytest.approx(1.0, abs=0.15)


def test_foscttm_by_hand():
    # pairs (0, 0.2), (1, 2), (3, 3): x side 0, 1/3, 0; y side 0, 0, 0 -> (1/9 + 0) / 2
    assert metrics.foscttm(col(0, 1, 3), col(0.2, 2, 3)) == pytest.approx(1 / 18)


def test_foscttm_chunks_agree_with_one_block_and_random_is_near_half():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(500, 5)), rng.normal(size=(500, 5))
    assert metrics.foscttm(x, y, chunk=64) == pytest.approx(metrics.foscttm(x, y, chunk=5000))
    assert metrics.foscttm(x, y) == pytest.approx(0.5, abs=0.05)
    assert metrics.foscttm(x, x + 1e-3) == 0.0


def test_foscttm_rejects_unpaired_rows():
    with pytest.raises(CrossglueError, match="FOSCTTM needs paired rows"):
        metrics.foscttm(np.zeros((3, 2)), np.zeros((4, 2)))


def test_self_projection_and_alcs():
    rng = np.random.default_rng(2)
    labels = np.array(["a"] * 40 + ["b"] * 40)
    separated = np.r_[rng.normal(0, 1, (40, 2)), rng.normal(20, 1, (40, 2))]
    blurred = rng.normal(0, 1, (80, 2))
    assert metrics.self_projection_accuracy(separated, labels) == 1.0
    after_acc = metrics.self_projection_accuracy(blurred, labels)
    assert after_acc < 0.8
    assert metrics.alcs({"s": (separated, labels)}, {"s": (separated, labels)}) == 0.0
    assert metrics.alcs({"s": (separated, labels)}, {"s": (blurred, labels)}) == pytest.approx(1.0 - after_acc)
    # better after than before is no loss
    assert metrics.alcs({"s": (blurred, labels)}, {"s": (separated, labels)}) == 0.0


def test_paired_nuclei_pairs_two_modalities_of_one_nucleus():
    obs = pd.DataFrame(
        {"nucleus": ["n1", "n2", None, "n1", "n2", "n3"], "modality": ["rna", "rna", "rna", "atac", "atac", "atac"]},
        index=[f"c{i}" for i in range(6)],
    )
    a, b = metrics.paired_nuclei(obs)
    assert a.tolist() == [3, 4] and b.tolist() == [0, 1]  # atac sorts before rna


def test_evaluate_embedding_separates_good_from_bad_integration():
    rng = np.random.default_rng(3)
    n = 200
    cell_type = np.repeat(["t1", "t2"], n // 2)
    species = np.tile(["human", "macaque"], n // 2)
    centre = np.where(cell_type == "t1", 0.0, 10.0)[:, None]
    mixed = centre + rng.normal(size=(n, 3))
    split = mixed + np.where(species == "human", 0.0, 30.0)[:, None]
    obs = pd.DataFrame(
        {"species": species, "modality": "rna", "sample": species, "leiden": cell_type},
        index=[f"c{i}" for i in range(n)],
    )
    good = metrics.evaluate_embedding(mixed, obs, pd.Series(cell_type, index=obs.index))
    bad = metrics.evaluate_embedding(split, obs, pd.Series(cell_type, index=obs.index))
    assert good["seurat_alignment_species"] > 0.8 > 0.2 > bad["seurat_alignment_species"]
    assert good["batch_asw_species"] > bad["batch_asw_species"]
    assert good["nmi"] == good["ari"] == 1.0
    assert set(good) == set(metrics.METRIC_CATEGORIES)
