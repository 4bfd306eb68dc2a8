"""End-to-end behaviour of GlueModel on a seeded two-species × two-modality fixture."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from crossglue.analysis.metrics import foscttm, knn_transfer_accuracy, species_mixing
from crossglue.errors import CrossglueError
from crossglue.model import DomainSpec, GlueModel
from crossglue.model.synthetic import add_representations, make_toy

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def toy():
    return add_representations(make_toy(n_cells=200, n_genes=100, seed=0), n_comps=30)


@pytest.fixture(scope="module")
def trained(toy):
    model = GlueModel.from_anndata(toy.domains, toy.edges, toy.specs, seed=0, device="cpu")
    model.fit(max_epochs=20, threads=1)
    return model


@pytest.fixture(scope="module")
def small():
    """A smaller fixture for the bookkeeping tests (determinism, resume, save/load)."""
    return add_representations(make_toy(n_cells=60, n_genes=30, seed=1), n_comps=10)


def _labels(toy, name):
    return toy.domains[name].obs["cell_type"].to_numpy()


def _paired_rows(toy, species):
    rna, atac = toy.domains[f"{species}:rna"], toy.domains[f"{species}:atac"]
    ids = rna.obs["nucleus"].dropna().index
    return rna.obs_names.get_indexer(ids), atac.obs_names.get_indexer(ids)


def test_cell_types_transfer_across_species_and_modalities(toy, trained):
    emb = {k: trained.encode_cells(k) for k in toy.domains}
    # Five types with unequal proportions: chance is at most ~0.4.
    for ref, query in [
        ("human:rna", "macaque:rna"),
        ("human:atac", "macaque:atac"),
        ("human:rna", "macaque:atac"),
        ("macaque:rna", "macaque:atac"),
    ]:
        acc = knn_transfer_accuracy(emb[ref], _labels(toy, ref), emb[query], _labels(toy, query))
        assert acc > 0.8, (ref, query, acc)


def test_cell_types_stay_separated_and_species_mix(toy, trained):
    emb = np.concatenate([trained.encode_cells(k) for k in toy.domains])
    labels = np.concatenate([_labels(toy, k) for k in toy.domains])
    species = np.concatenate([toy.domains[k].obs["species"].to_numpy() for k in toy.domains])
    # Leave-one-out kNN within the joint embedding: types form their own neighbourhoods ...
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    assert cross_val_score(KNeighborsClassifier(15), emb, labels, cv=5).mean() > 0.9
    # ... while the two species share them (1 = perfect mixing, 0 = separate clouds).
    assert species_mixing(emb, species) > 0.4


def test_paired_nuclei_land_next_to_each_other(toy, trained):
    for species in ("human", "macaque"):
        rna_rows, atac_rows = _paired_rows(toy, species)
        score = foscttm(
            trained.encode_cells(f"{species}:rna")[rna_rows], trained.encode_cells(f"{species}:atac")[atac_rows]
        )
        assert score < 0.05, (species, score)


def test_training_log_has_one_row_per_epoch_with_finite_losses(trained):
    history = pd.DataFrame(trained.history)
    assert set(history["stage"]) == {"pretrain", "finetune"}
    assert (history.groupby("stage")["epoch"].apply(lambda e: (np.diff(e) == 1).all())).all()
    assert np.isfinite(history[["x_nll", "g_nll", "dsc", "val", "val_x_nll", "val_x_kl", "val_sup"]].to_numpy()).all()
    # held-out reconstruction is on the training term's scale (both sum the domains' NLL)
    ratio = history["val_x_nll"] / history["x_nll"]
    assert ((ratio > 0.5) & (ratio < 2)).all(), ratio.describe()
    assert np.isfinite(trained.balancing_weights["human:rna"]).all()


def test_feature_embeddings_cover_every_graph_node(toy, trained):
    features = trained.encode_features()
    nodes = set(toy.edges["source"])
    assert set(features.index) == nodes
    assert features.shape[1] == 50 and np.isfinite(features.to_numpy()).all()
    # Orthologous genes, tied by an edge, end up closer than unrelated genes.
    unit = features.to_numpy() / np.linalg.norm(features.to_numpy(), axis=1, keepdims=True)
    unit = pd.DataFrame(unit, index=features.index)
    h = unit.loc[[f"human:human_g{i:04d}" for i in range(100)]].to_numpy()
    m = unit.loc[[f"macaque:macaque_g{i:04d}" for i in range(100)]].to_numpy()
    assert (h * m).sum(1).mean() > (h * np.roll(m, 7, axis=0)).sum(1).mean() + 0.2


def _short_fit(toy, seed=0, max_epochs=2, **kw):
    model = GlueModel.from_anndata(toy.domains, toy.edges, toy.specs, seed=seed, device="cpu")
    return model.fit(max_epochs=max_epochs, threads=1, **kw)


def test_same_seed_gives_identical_embeddings_and_other_seed_does_not(small):
    toy = small
    a, b, c = (_short_fit(toy, seed, max_epochs=1) for seed in (0, 0, 1))
    for name in toy.domains:
        assert np.array_equal(a.encode_cells(name), b.encode_cells(name))
    assert np.array_equal(a.encode_features().to_numpy(), b.encode_features().to_numpy())
    assert not np.allclose(a.encode_cells("human:rna"), c.encode_cells("human:rna"))


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def reference_fit(small, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("reference") / "log.tsv"
    return _short_fit(small, log_path=log_path), log_path


@pytest.mark.parametrize("kill_at", [("pretrain", 1), ("pretrain", 2), ("finetune", 1)])
def test_resumed_fit_equals_uninterrupted_fit(small, reference_fit, tmp_path, kill_at):
    toy = small
    reference, ref_log_path = reference_fit

    def kill(row):
        if (row["stage"], row["epoch"]) == kill_at:
            raise Killed

    with pytest.raises(Killed):
        _short_fit(toy, checkpoint_dir=tmp_path / "ckpt", log_path=tmp_path / "log.tsv", on_epoch_end=kill)
    resumed = _short_fit(toy, checkpoint_dir=tmp_path / "ckpt", log_path=tmp_path / "log.tsv")
    # Exact: every draw (numpy generator, torch RNG) and optimiser state is in the checkpoint.
    for name in toy.domains:
        assert np.array_equal(reference.encode_cells(name), resumed.encode_cells(name))
    log = pd.read_csv(tmp_path / "log.tsv", sep="\t")
    ref_log = pd.read_csv(ref_log_path, sep="\t")
    assert len(log) == len(ref_log) == 4
    assert np.array_equal(log[["x_nll", "val"]].to_numpy(), ref_log[["x_nll", "val"]].to_numpy())


def test_checkpoint_of_other_data_is_refused(small, tmp_path):
    toy = small
    _short_fit(toy, checkpoint_dir=tmp_path)
    # another seed draws another train/validation split: the content differs too
    with pytest.raises(
        CrossglueError,
        match=r"checkpoint was written for other data or settings \(differs in content, seed\); remove it",
    ):
        _short_fit(toy, seed=5, checkpoint_dir=tmp_path)


def test_save_load_round_trip_gives_identical_embeddings(small, tmp_path):
    toy = small
    model = _short_fit(toy)
    model.save(tmp_path / "model.pt")
    loaded = GlueModel.load(tmp_path / "model.pt", device="cpu")
    for name, adata in toy.domains.items():
        assert np.array_equal(model.encode_cells(name), loaded.encode_cells(adata, domain=name))
    pd.testing.assert_frame_equal(model.encode_features(), loaded.encode_features())
    with pytest.raises(CrossglueError, match="unknown domain"):
        loaded.encode_cells("human:rna")


def test_feature_without_graph_node_is_an_error(toy):
    edges = toy.edges[(toy.edges["source"] != "human:human_p5") & (toy.edges["target"] != "human:human_p5")]
    with pytest.raises(CrossglueError, match=r"domain human:atac: 1 feature\(s\) have no node .*human:human_p5"):
        GlueModel.from_anndata(toy.domains, edges, toy.specs, device="cpu")


def test_counts_must_be_raw_integers(toy):
    domains = dict(toy.domains)
    bad = domains["human:rna"].copy()
    bad.X = bad.X * 0.5
    domains["human:rna"] = bad
    with pytest.raises(CrossglueError, match="human:rna: AnnData.X must hold raw non-negative integer counts"):
        GlueModel.from_anndata(domains, toy.edges, toy.specs, device="cpu")


def test_labels_train_a_classifier_that_predicts_unlabelled_domains(toy):
    specs = dict(toy.specs)
    specs["human:rna"] = dataclasses.replace(specs["human:rna"], label_key="cell_type")
    model = GlueModel.from_anndata(toy.domains, toy.edges, specs, seed=0, device="cpu")
    model.fit(max_epochs=12, threads=1, finetune=False)
    assert model.classes == [f"type{i}" for i in range(5)]
    predicted = model.predict_labels("human:atac")
    assert (predicted["label"].to_numpy() == _labels(toy, "human:atac")).mean() > 0.8
    assert predicted["probability"].between(0, 1).all()


def test_counts_alone_can_feed_the_encoder(small):
    specs = {k: dataclasses.replace(s, use_rep=None) for k, s in small.specs.items()}
    model = GlueModel.from_anndata(small.domains, small.edges, specs, seed=0, device="cpu")
    model.fit(max_epochs=1, threads=1)
    assert model.encode_cells("human:atac").shape == (60, 50)
    assert model.inputs["human:atac"] == small.domains["human:atac"].n_vars


def test_domain_spec_must_name_known_columns(toy):
    specs = dict(toy.specs)
    specs["human:rna"] = DomainSpec(species="human", modality="rna", use_rep="X_pca", batch_key="donor")
    with pytest.raises(CrossglueError, match="domain human:rna: obs has no column 'donor'"):
        GlueModel.from_anndata(toy.domains, toy.edges, specs, device="cpu")


def test_resuming_a_finished_fit_rewrites_the_training_log(small, tmp_path):
    """A rerun after a job lost its outputs finds a finished checkpoint: the log comes back."""
    log = tmp_path / "training_log.tsv"
    _short_fit(small, checkpoint_dir=tmp_path / "ckpt", log_path=log)
    expected = log.read_text()
    log.unlink()
    _short_fit(small, checkpoint_dir=tmp_path / "ckpt", log_path=log)
    assert log.read_text() == expected


def _median_cosine(features: pd.DataFrame, edges: pd.DataFrame) -> float:
    unit = features.to_numpy() / np.linalg.norm(features.to_numpy(), axis=1, keepdims=True)
    a, b = features.index.get_indexer(edges["source"]), features.index.get_indexer(edges["target"])
    return float(np.median((unit[a] * unit[b]).sum(axis=1)))


def test_graph_warmup_ties_cross_species_features_before_the_cells_train(toy):
    """Graph warm-up is what keeps similar cell types from being matched the wrong way round
    across species: ortholog and liftOver partners start with nearly the same embedding."""
    cross = toy.edges[toy.edges["source"].str.split(":").str[0] != toy.edges["target"].str.split(":").str[0]]
    assert len(cross) > 0
    shuffled = cross.assign(target=np.random.default_rng(0).permutation(cross["target"].to_numpy()))
    margin = {}
    for warmup in (0, 30):
        model = GlueModel.from_anndata(toy.domains, toy.edges, toy.specs, seed=0, device="cpu")
        model.fit(max_epochs=1, threads=1, finetune=False, graph_warmup=warmup)
        features = model.encode_features()
        margin[warmup] = _median_cosine(features, cross) - _median_cosine(features, shuffled)
    # partners closer than random cross-species pairs, by far more with warm-up
    assert margin[30] > 0.5 and margin[30] > margin[0] + 0.3, margin


def test_graph_warmup_must_be_a_count(small):
    model = GlueModel.from_anndata(small.domains, small.edges, small.specs, seed=0, device="cpu")
    with pytest.raises(CrossglueError, match=r"graph_warmup=-1; expected a whole number >= 0"):
        model.fit(max_epochs=1, graph_warmup=-1)


def test_stale_checkpoint_is_replaced_when_asked(small, tmp_path):
    """What a pipeline rerun after a parameter change does: start afresh, as without it."""
    _short_fit(small, checkpoint_dir=tmp_path)
    rerun = _short_fit(small, seed=5, checkpoint_dir=tmp_path, restart_stale=True)
    fresh = _short_fit(small, seed=5)
    assert np.array_equal(rerun.encode_cells("human:rna"), fresh.encode_cells("human:rna"))


def test_changed_edge_weights_never_resume_an_old_checkpoint(small, tmp_path):
    """Same shapes, other content (a graph weight edited in the config): not the old state."""
    _short_fit(small, checkpoint_dir=tmp_path)
    edges = small.edges.copy()
    edges.loc[edges["source"] != edges["target"], "weight"] *= 0.5
    model = GlueModel.from_anndata(small.domains, edges, small.specs, seed=0, device="cpu")
    with pytest.raises(
        CrossglueError, match=r"checkpoint was written for other data or settings \(differs in content\); remove it"
    ):
        model.fit(max_epochs=2, threads=1, checkpoint_dir=tmp_path)
