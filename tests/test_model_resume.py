"""A fit killed with SIGKILL resumes in a new process, and checkpoints hold no code."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from crossglue.errors import CrossglueError
from crossglue.model import GlueModel
from crossglue.model.synthetic import add_representations, make_toy
from crossglue.model.trainer import CHECKPOINT, content_digest

SCRIPT = Path(__file__).with_name("fit_toy.py")
SRC = Path(__file__).resolve().parents[1] / "src"


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env


def _fit(tmp: Path, name: str, ckpt: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Fit in a new process with checkpoints in ``ckpt``, log ``tmp/{name}.tsv``, embeddings ``tmp/{name}.npz``."""
    out = tmp / f"{name}.npz"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(ckpt), str(tmp / f"{name}.tsv"), str(out)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, out


@pytest.mark.slow  # three fresh processes: about 20 s of CPU, 45 s on a busy 2-core machine
def test_fit_killed_in_one_process_resumes_in_another_and_matches_an_uninterrupted_fit(tmp_path):
    ckpt = tmp_path / "ckpt"
    victim = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            str(ckpt),
            str(tmp_path / "log.tsv"),
            str(tmp_path / "unused.npz"),
            "--hang-after-first-epoch",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 240
        while not (ckpt / CHECKPOINT).exists():
            assert victim.poll() is None, "the fit ended before writing its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.1)
        assert victim.stdout.readline().strip() == "HANGING"  # checkpoint of epoch 1 is complete
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    assert victim.returncode == -signal.SIGKILL

    resumed, resumed_out = _fit(tmp_path, "log", ckpt)  # the killed run's log and checkpoints
    assert f"resuming from {ckpt / CHECKPOINT}: pretrain epoch 1" in resumed.stderr
    assert "pretrain epoch 1 of" not in resumed.stderr  # epoch 1 is not trained again
    assert "pretrain epoch 2 of" in resumed.stderr

    _, reference_out = _fit(tmp_path, "reference", tmp_path / "reference_ckpt")
    resumed_emb, reference_emb = np.load(resumed_out), np.load(reference_out)
    assert sorted(resumed_emb.files) == sorted(reference_emb.files)
    for key in reference_emb.files:  # bit-identical: every draw and optimiser state was restored
        assert np.array_equal(resumed_emb[key], reference_emb[key]), key
    log = pd.read_csv(tmp_path / "log.tsv", sep="\t")
    ref_log = pd.read_csv(tmp_path / "reference.tsv", sep="\t")
    assert list(zip(log["stage"], log["epoch"])) == list(zip(ref_log["stage"], ref_log["epoch"]))
    assert np.array_equal(log[["x_nll", "val"]].to_numpy(), ref_log[["x_nll", "val"]].to_numpy())


@pytest.fixture(scope="module")
def small():
    return add_representations(make_toy(n_cells=60, n_genes=30, seed=1), n_comps=10)


def _model(toy, seed=0):
    return GlueModel.from_anndata(toy.domains, toy.edges, toy.specs, seed=seed, device="cpu")


def test_content_digest_is_the_same_in_a_new_process(small):
    """Labels and nuclei are object arrays: the digest must hash their codes, not their addresses."""
    code = (
        "from crossglue.model import GlueModel\n"
        "from crossglue.model.synthetic import add_representations, make_toy\n"
        "from crossglue.model.trainer import Trainer, TrainConfig\n"
        "import torch\n"
        "toy = add_representations(make_toy(n_cells=60, n_genes=30, seed=1), n_comps=10)\n"
        "m = GlueModel.from_anndata(toy.domains, toy.edges, toy.specs, seed=0, device='cpu')\n"
        "t = Trainer(m.nets, m._domains, m._graph, m._label_codes(), m._pairs(), TrainConfig(), m.device, 0)\n"
        "print(t.fingerprint()['content'])\n"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    model = _model(small)
    here = content_digest(model._domains, model._graph, model._label_codes(), model._pairs())
    assert there.stdout.strip() == here


def test_content_digest_sees_one_changed_label(small):
    specs = {k: dataclasses.replace(s, label_key="cell_type") for k, s in small.specs.items()}
    domains = dict(small.domains)

    def digest(domains):
        model = GlueModel.from_anndata(domains, small.edges, specs, seed=0, device="cpu")
        return content_digest(model._domains, model._graph, model._label_codes(), model._pairs())

    before = digest(domains)
    assert digest(domains) == before
    relabelled = domains["human:rna"].copy()
    types = relabelled.obs["cell_type"].astype(str).to_numpy()
    types[0] = next(t for t in np.unique(types) if t != types[0])
    relabelled.obs["cell_type"] = types
    assert digest({**domains, "human:rna": relabelled}) != before


def test_checkpoint_of_other_settings_names_what_differs(small, tmp_path):
    _model(small).fit(max_epochs=1, threads=1, checkpoint_dir=tmp_path)
    with pytest.raises(
        CrossglueError, match=r"\(differs in config\.lam_align, config\.max_epochs\); remove it or choose"
    ):
        _model(small).fit(max_epochs=2, threads=1, checkpoint_dir=tmp_path, lam_align=0.1)


def test_checkpoint_loads_with_weights_only(small, tmp_path):
    model = _model(small).fit(max_epochs=1, threads=1, checkpoint_dir=tmp_path)
    snap = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert snap["state"]["stage"] == "done"
    assert all(isinstance(w, torch.Tensor) for w in snap["weights"].values())
    assert model.history


def test_checkpoint_that_needs_the_full_unpickler_is_refused(small, tmp_path):
    class Payload:  # what a shared checkpoint could smuggle in
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"fingerprint": Payload()}, tmp_path / CHECKPOINT)
    with pytest.raises(CrossglueError, match=r"checkpoint\.pt: not a readable crossglue checkpoint \("):
        _model(small).fit(max_epochs=1, threads=1, checkpoint_dir=tmp_path)
    assert not (tmp_path / "pwned").exists()
    rerun = _model(small).fit(max_epochs=1, threads=1, checkpoint_dir=tmp_path, restart_stale=True)
    assert rerun.history and not (tmp_path / "pwned").exists()
