"""Doublet detection (crossglue.ingest.doublets) on a tiny seeded fixture with planted doublets."""

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.ingest.doublets import DoubletSettings, call_doublets, simulate_doublets


def _two_type_counts(seed: int = 0, n: int = 400, n_doublets: int = 20, n_genes: int = 300):
    """Poisson counts of three cell types with distinct marker genes, plus heterotypic doublets."""
    rng = np.random.default_rng(seed)
    profiles = rng.gamma(0.5, 1.0, (3, n_genes))
    for t in range(3):
        profiles[t, t * 60 : (t + 1) * 60] *= 30  # markers of type t
    profiles /= profiles.sum(axis=1, keepdims=True)
    types = rng.integers(0, 3, n)
    rate = profiles[types] * rng.lognormal(np.log(2000), 0.3, n)[:, None]
    a, b = rng.integers(0, 3, n_doublets), None
    b = (a + rng.integers(1, 3, n_doublets)) % 3
    dbl = (profiles[a] + profiles[b]) * rng.lognormal(np.log(4000), 0.3, n_doublets)[:, None]
    counts = sp.csr_matrix(rng.poisson(np.vstack([rate, dbl])))
    truth = np.r_[np.zeros(n, bool), np.ones(n_doublets, bool)]
    return counts, truth


def test_planted_heterotypic_doublets_found_and_singlets_spared():
    counts, truth = _two_type_counts()
    barcodes = np.array([f"BC{i:04d}" for i in range(counts.shape[0])], dtype=object)
    qc = pd.DataFrame({"pass": True}, index=pd.Index(barcodes, name="barcode"))
    # 20 planted doublets of 420 nuclei: ~4.8 %, the rate a user would configure.
    out = call_doublets(qc, {"rna": (counts, barcodes)}, DoubletSettings(enabled=True, expected_rate=0.05), "s1")
    assert out["doublet"].to_numpy()[truth].mean() >= 0.7
    assert out["doublet"].to_numpy()[~truth].mean() <= 0.03
    assert not out["pass"].to_numpy()[out["doublet"].to_numpy()].any()  # doublets fail pass
    assert out["doublet_score_rna"].notna().all()


def test_disabled_detection_keeps_every_nucleus():
    counts, _ = _two_type_counts()
    barcodes = np.array([f"BC{i:04d}" for i in range(counts.shape[0])], dtype=object)
    qc = pd.DataFrame({"pass": True}, index=pd.Index(barcodes, name="barcode"))
    out = call_doublets(qc, {"rna": (counts, barcodes)}, DoubletSettings(enabled=False), "s1")
    assert not out["doublet"].any() and out["pass"].all()


def test_simulated_doublets_sum_two_different_nuclei():
    counts = sp.csr_matrix(np.eye(5, dtype=np.int64))
    sim = simulate_doublets(counts, 50, np.random.default_rng(0))
    assert (np.asarray(sim.sum(axis=1)).ravel() == 2).all()  # never a nucleus paired with itself


def test_threshold_calls_the_expected_share_of_nuclei():
    from crossglue.ingest.doublets import rate_threshold

    scores = np.arange(1000) / 1000
    threshold = rate_threshold(scores, 0.025)
    assert (scores >= threshold).sum() == 25  # ceil(0.025 x 1000) top-scoring nuclei


def test_multiome_nucleus_is_a_doublet_when_either_modality_calls_it():
    counts, truth = _two_type_counts()
    barcodes = np.array([f"BC{i:04d}" for i in range(counts.shape[0])], dtype=object)
    qc = pd.DataFrame({"pass": True}, index=pd.Index(barcodes, name="barcode"))
    settings = DoubletSettings(enabled=True, expected_rate=0.05)
    half = DoubletSettings(enabled=True, expected_rate=0.025)  # each modality calls half the expected rate
    rna = call_doublets(qc, {"rna": (counts, barcodes)}, half, "s1")["doublet"].to_numpy()
    atac = call_doublets(qc, {"atac": (counts, barcodes)}, half, "s1")["doublet"].to_numpy()
    both = call_doublets(qc, {"rna": (counts, barcodes), "atac": (counts, barcodes)}, settings, "s1")
    assert (both["doublet"].to_numpy() == (rna | atac)).all() and rna.any() and atac.any()
    assert both[["doublet_score_rna", "doublet_score_atac"]].notna().all().all()
    # ATAC scores are mean percentiles of the neighbour score and the depth: in [0, 1].
    assert both["doublet_score_atac"].between(0, 1).all()


def test_too_few_nuclei_are_not_scored(caplog):
    counts, _ = _two_type_counts(n=60, n_doublets=3)
    barcodes = np.array([f"BC{i:04d}" for i in range(counts.shape[0])], dtype=object)
    qc = pd.DataFrame({"pass": True}, index=pd.Index(barcodes, name="barcode"))
    out = call_doublets(qc, {"rna": (counts, barcodes)}, DoubletSettings(enabled=True), "s1")
    assert not out["doublet"].any() and out["doublet_score_rna"].isna().all()
    assert "s1: 63 nuclei pass QC, fewer than ingest.doublets.min_cells = 100; rna doublets not scored" in caplog.text
