"""Demo-scale model run with the automatic schedule (CI runs it with ``-m slow``)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from crossglue.analysis.metrics import foscttm, knn_transfer_accuracy
from crossglue.model import GlueModel
from crossglue.model.synthetic import add_representations, make_toy

pytestmark = pytest.mark.slow


def test_automatic_schedule_aligns_four_domains_within_minutes(tmp_path):
    torch.set_num_threads(1)
    toy = add_representations(make_toy(n_cells=1000, n_genes=1000, seed=2), n_comps=50)
    model = GlueModel.from_anndata(toy.domains, toy.edges, toy.specs, seed=0, device="cpu")
    start = time.perf_counter()
    model.fit(threads=1, checkpoint_dir=tmp_path / "ckpt", log_path=tmp_path / "training_log.tsv")
    elapsed = time.perf_counter() - start
    emb = {k: model.encode_cells(k) for k in toy.domains}
    labels = {k: a.obs["cell_type"].to_numpy() for k, a in toy.domains.items()}
    for mod in ("rna", "atac"):
        a, b = f"human:{mod}", f"macaque:{mod}"
        assert knn_transfer_accuracy(emb[a], labels[a], emb[b], labels[b]) > 0.95
    rna, atac = toy.domains["human:rna"], toy.domains["human:atac"]
    ids = rna.obs["nucleus"].dropna().index
    assert (
        foscttm(emb["human:rna"][rna.obs_names.get_indexer(ids)], emb["human:atac"][atac.obs_names.get_indexer(ids)])
        < 0.02
    )
    # scglue 0.4.1 needs several seconds per epoch here; the whole fit must stay in minutes.
    assert elapsed < 600, elapsed
    assert np.isfinite(model.encode_features().to_numpy()).all()
