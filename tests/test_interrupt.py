"""Ctrl-C of Snakemake stops the running jobs too (here the model training)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from workflow_runner import run_snakemake, snakemake_command

from crossglue.graph.files import write_edge_table
from crossglue.model.synthetic import make_toy
from crossglue.simulate import simulate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def train_inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A run folder holding only what rule train_model reads (toy counts and graph), and a
    config (the tiny simulated dataset's, so that it validates) that trains for minutes."""
    work = tmp_path_factory.mktemp("interrupt")
    simulate(work / "demo", preset="tiny", seed=0)
    config = yaml.safe_load((work / "demo" / "config.yaml").read_text())
    config["model"] = {
        "ablation": False,
        "threads": 1,
        "n_pcs": 10,
        "n_lsi": 10,
        "train": {"max_epochs": 500, "patience": 500},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    toy = make_toy(n_cells=80, n_genes=40, seed=0)
    for name, adata in toy.domains.items():
        species, modality = name.split(":")
        adata.obs["modality"] = modality
        adata.obs["donor"] = adata.obs["sample"]
        adata.obs["nucleus"] = adata.obs["nucleus"].astype(object)
        folder = "ingest" if modality == "rna" else "counts"
        path = work / "results" / folder / species / f"{modality}.h5ad"
        path.parent.mkdir(parents=True, exist_ok=True)
        adata.write_h5ad(path)
    write_edge_table(
        toy.edges.assign(weight=lambda e: e["weight"].astype(np.float64)), work / "results/graph/guidance_edges.tsv.gz"
    )
    # no one2one pairs: the run trains without ortholog anchors (a warning says so)
    pd.DataFrame(columns=["species_a", "species_b", "gene_a", "gene_b", "homology_type"]).to_csv(
        work / "results/graph/ortholog_links.tsv.gz", sep="\t", index=False
    )
    return work, work / "config.yaml"


def _default_sigint() -> None:
    """SIGINT as in an interactive shell: CI may start the tests with it ignored (a shell's
    background job), and an ignored SIGINT stays ignored, on purpose, in Snakemake too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_training(work: Path, config: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """Snakemake running only train_model, in its own session (as in a terminal), once an
    epoch is logged; with its descendant processes at that moment."""
    log = work / "logs/model/train_model.log"
    log.unlink(missing_ok=True)
    proc = subprocess.Popen(
        snakemake_command(
            work,
            config,
            "results/model/model.pt",
            "--rerun-incomplete",
            "--allowed-rules",
            "train_model",
            "--forcerun",
            "train_model",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 300
    while not (log.exists() and " epoch " in log.read_text()):
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended before training started:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("training did not start within 300 s")
        time.sleep(0.2)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert any("python" in p.name() for p in children), [p.cmdline() for p in children]
    return proc, children


def _stopped(
    proc: subprocess.Popen, children: list[psutil.Process], seconds: float, work: Path, config: Path
) -> list[str]:
    """Wait for Snakemake to exit; the command lines of the processes still alive after."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(1)
    described = []
    for p in [*children, *([] if proc.returncode is not None else [psutil.Process(proc.pid)])]:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                described.append(" ".join(p.cmdline())[:200])
                p.kill()  # clean up whatever the test found running
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=30)
    if described:  # a killed Snakemake leaves its lock
        run_snakemake(work, config, "--unlock", timeout=120)
    return described


# The process-group case worked before the fix (each job got the terminal's SIGINT); slow.
@pytest.mark.parametrize("target", ["snakemake", pytest.param("process group", marks=pytest.mark.slow)])
def test_ctrl_c_stops_the_training_job(train_inputs, target):
    """A terminal's Ctrl-C signals the whole foreground group; a wrapper, an IDE or `kill -INT`
    signals Snakemake alone, and Snakemake 9 then waits for its running jobs to end."""
    work, config = train_inputs
    proc, children = _start_training(work, config)
    if target == "snakemake":
        os.kill(proc.pid, signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    survivors = _stopped(proc, children, 30, work, config)
    assert survivors == []
    assert proc.returncode != 0
    assert not (work / "results/model/model.pt").exists()
    leftovers = list((work / "results").rglob(".*.tmp*"))
    assert leftovers == [], leftovers
    assert (work / "results/checkpoints/model/checkpoint.pt").is_file()  # a rerun resumes from it
    assert list((work / ".snakemake/locks").glob("*")) == []  # no `snakemake --unlock` needed
