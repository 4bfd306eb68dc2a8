"""The device code path, checked on the CPU: device selection, and a training step that
never reads a tensor back to the host (on a GPU every such read waits for the device)."""

from __future__ import annotations

import io
import logging
import sys

import numpy as np
import pytest
import torch

from crossglue.errors import CrossglueError
from crossglue.model import GlueModel
from crossglue.model import trainer as trainer_module
from crossglue.model.api import resolve_device
from crossglue.model.synthetic import add_representations, make_toy
from crossglue.model.trainer import TrainConfig, Trainer, format_seconds

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def small():
    return add_representations(make_toy(n_cells=60, n_genes=40, seed=3), n_comps=10)


def test_auto_picks_cuda_exactly_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(CrossglueError, match="device 'gpu0' is not a torch device; use 'auto', 'cpu' or 'cuda'"):
        resolve_device("gpu0")


def _trainer(toy, **labels):
    model = GlueModel.from_anndata(toy.domains, toy.edges, toy.specs, seed=0, device="cpu")
    cfg = TrainConfig(max_epochs=2)
    return Trainer(model.nets, model._domains, model._graph, model._label_codes(), model._pairs(), cfg, model.device, 0)


def test_training_steps_read_nothing_back_from_the_device(small, monkeypatch):
    trainer = _trainer(small)
    assert trainer.pairs, "the fixture must exercise the pairing term"
    reads = []
    for name in ("cpu", "item", "tolist", "numpy", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    original_step = trainer._step
    in_step = []

    def step(*args, **kwargs):
        before = len(reads)
        out = original_step(*args, **kwargs)
        in_step.append(reads[before:])
        return out

    trainer._step = step
    trainer._epoch()
    assert len(in_step) == trainer.steps_per_epoch
    assert all(r == [] for r in in_step), sorted({n for r in in_step for n in r})


def test_one_epoch_sends_cells_in_one_copy_per_domain(small):
    """The epoch's draws go to the device once; the step gathers inputs there."""
    trainer = _trainer(small)
    rep = trainer.tensors["human:rna"].rep
    assert rep is not None and rep.device == trainer.device
    assert np.isfinite(list(trainer._epoch().values())).all()


def test_time_left_reads_like_a_clock():
    assert [format_seconds(s) for s in (42.2, 185, 3720)] == ["42s", "3m05s", "1h02m"]


def test_progress_reaches_the_terminal_when_stderr_goes_to_a_log(small, monkeypatch, caplog):
    """A pipeline rule sends stderr to its log; the terminal still sees a throttled line."""
    terminal, logfile = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", terminal)
    monkeypatch.setattr(sys, "stderr", logfile)
    monkeypatch.setattr(trainer_module, "PROGRESS_SECONDS", 1e9)  # the first line only
    model = GlueModel.from_anndata(small.domains, small.edges, small.specs, seed=0, device="cpu")
    with caplog.at_level(logging.INFO, logger="crossglue.model"):
        model.fit(max_epochs=2, threads=1, finetune=False, graph_warmup=0)
    lines = terminal.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crossglue model: pretrain epoch 1 of at most 2, loss ")
    assert lines[0].endswith("left in this stage")
    assert "pretrain epoch 2 of at most 2: x_nll=" in caplog.text and "stage ends in at most 0s" in caplog.text
