"""The whole workflow on the `tiny` simulated dataset, as a user runs it: every output, then
reruns — an edited parameter reruns exactly the affected rules, an unchanged config nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
import yaml
from workflow_runner import planned_rules, run_snakemake, snakemake_command

from crossglue.simulate import simulate

REPO = Path(__file__).resolve().parents[1]


def tiny_config(work: Path) -> Path:
    """Simulate the tiny preset under ``work`` and write a config pointing at it."""
    simulate(work / "demo", preset="tiny", seed=0)
    config = yaml.safe_load((work / "demo" / "config.yaml").read_text())
    config["model"] = {"ablation": True, "train": {"max_epochs": 15, "patience": 5}}
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("tiny_pipeline")
    config = tiny_config(work)
    proc = run_snakemake(work, config)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return work, config


def test_every_cell_of_every_sample_has_an_embedding(tiny_run):
    work, _ = tiny_run
    cells = ad.read_h5ad(work / "results/model/cells.h5ad")
    qc = pd.read_csv(work / "results/ingest/qc.tsv", sep="\t")
    for species in ("human", "macaque"):
        for modality in ("rna", "atac"):
            ingested = ad.read_h5ad(work / f"results/ingest/{species}/{modality}.h5ad", backed="r")
            got = cells.obs.query("species == @species and modality == @modality")["cell_id"]
            assert sorted(got) == sorted(ingested.obs_names), (species, modality)
    assert cells.obsm["X_glue"].shape == (cells.n_obs, 50)
    assert set(cells.obs["sample"]) == set(qc["sample"])
    paired = cells.obs.dropna(subset=["nucleus"]).groupby("nucleus", observed=True)["modality"].nunique()
    assert (paired == 2).sum() > 0, "multiome nuclei keep an RNA and an ATAC embedding"
    # the unlabelled species trained with ortholog anchors, recorded beside the given labels
    anchored = cells.obs.dropna(subset=["anchor_label"])
    assert len(anchored) > 0 and set(anchored["species"]) == {"macaque"}
    assert anchored["cell_type"].isna().all()


def test_every_graph_node_has_a_feature_embedding(tiny_run):
    work, _ = tiny_run
    features = ad.read_h5ad(work / "results/model/features.h5ad")
    edges = pd.read_csv(work / "results/graph/guidance_edges.tsv.gz", sep="\t", usecols=["source"])
    assert set(features.obs_names) == set(edges["source"])
    assert set(features.obs["kind"]) == {"gene", "element"}


def test_user_facing_outputs_exist(tiny_run):
    work, _ = tiny_run
    for path in (
        "results/consensus/union_peaks.tsv",
        "results/consensus/union_elements.human.bed",
        "results/consensus/union_elements.macaque.bed",
        "results/graph/guidance.graphml.gz",
        "results/analysis/regulatory_links.tsv",
        "results/analysis/species_modules.tsv",
        "results/report/report.html",
        "results/model/training_log.tsv",
        "results/model/cells.h5mu",
    ):
        assert (work / path).stat().st_size > 0, path


def test_cells_open_in_scanpy_by_gene_symbol_and_in_mudata(tiny_run):
    import matplotlib
    import mudata
    import scanpy as sc

    matplotlib.use("Agg")
    work, _ = tiny_run
    cells = ad.read_h5ad(work / "results/analysis/cells.h5ad")
    shared = cells.var.index[cells.var["in_human"] & cells.var["in_macaque"]]
    rna_rows = (cells.obs["expression"] == "rna").to_numpy()
    assert set(cells.obs.loc[rna_rows, "modality"]) == {"rna"}
    assert set(cells.obs.loc[~rna_rows, "expression"]) == {"gene_activity"}
    assert cells.layers["counts"][rna_rows].sum() > 0 and cells.layers["counts"][~rna_rows].sum() > 0
    sc.pl.umap(cells, color=str(shared[0]), show=False)  # a gene by its symbol, both species
    mdata = mudata.read_h5mu(work / "results/model/cells.h5mu")
    assert set(mdata.mod) == {f"{s}:{m}" for s in ("human", "macaque") for m in ("rna", "atac")}
    features = ad.read_h5ad(work / "results/model/features.h5ad")
    for mod in mdata.mod.values():
        assert mod.varm["X_glue"].shape == (mod.n_vars, 50) and mod.obsm["X_glue"].shape == (mod.n_obs, 50)
        assert set(mod.var_names) <= set(features.obs_names)


def test_unchanged_config_reruns_nothing(tiny_run):
    work, config = tiny_run
    proc = run_snakemake(work, config, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert planned_rules(proc) == {}, proc.stdout[-3000:]


def test_edited_parameter_reruns_exactly_the_affected_rules(tiny_run):
    work, config = tiny_run
    edited = yaml.safe_load(config.read_text())
    edited.setdefault("graph", {})["peak_gene"] = {"window": 100000}
    new_config = work / "config_window.yaml"
    new_config.write_text(yaml.safe_dump(edited))
    proc = run_snakemake(work, new_config, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert planned_rules(proc) == {
        "peak_gene_links": 2,
        "guidance_graph": 1,
        "train_model": 2,
        "annotate_cells": 1,
        "annotate_cells_ablation": 1,
        "integration_metrics": 1,
        "regulatory_links": 1,
        "species_differential": 1,
        "species_modules": 1,
        "motif_turnover": 1,  # reads differential_elements.tsv
        "report": 1,
    }


def test_run_killed_mid_way_completes_on_rerun_without_cleanup(tiny_run):
    """Kill the run (SIGTERM, what `kill` and a scheduler's time limit send) while the model
    trains; the same command with the local profile (rerun-incomplete) finishes the run,
    and nothing half-written survives."""
    import os
    import signal
    import time

    work, config = tiny_run
    log = work / "logs/model/train_model.log"
    started = time.time()
    proc = subprocess.Popen(
        snakemake_command(work, config, "--forcerun", "guidance_graph", cores=2),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = started + 600
        while not (log.exists() and log.stat().st_mtime > started and "epoch" in log.read_text()):
            assert proc.poll() is None, "the run ended before training started"
            assert time.time() < deadline, "training never started"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    rerun = run_snakemake(work, config, "--profile", str(REPO / "profiles/local"))
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "train_model" in rerun.stdout + rerun.stderr
    assert planned_rules(run_snakemake(work, config, "-n")) == {}
    leftovers = list((work / "results").rglob(".*.tmp*"))
    assert leftovers == [], leftovers
