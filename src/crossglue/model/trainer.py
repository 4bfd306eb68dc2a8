"""The training plan: minibatch steps, two stages, validation, early stopping, checkpoints.

One step = one sparse propagation over the whole graph, 128 cells from every domain, one
edge batch (each epoch visits about as many edges as the graph has), one discriminator
update and one generator update. All draws come from one numpy generator and torch's
global generator, both saved in the checkpoint written after every epoch, so a killed fit
resumes exactly where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from crossglue.config import schema_defaults
from crossglue.errors import CrossglueError
from crossglue.io_utils import atomic_path
from crossglue.model.balancing import balancing_weights
from crossglue.model.data import CellBatch, DomainData, DomainTensors, cell_inputs, epoch_draws, make_batch
from crossglue.model.graph import EdgeSampler, GuidanceGraph
from crossglue.model.losses import weighted_domain_ce
from crossglue.model.module import EdgeBatch, GlueModule, LossWeights, encode_cells
from crossglue.model.nets import GlueNetworks

log = logging.getLogger("crossglue.model")

CHECKPOINT = "checkpoint.pt"
# Held-out columns of the training log: the validation loss, then the terms it sums.
VALIDATION_TERMS = ("val", "val_x_nll", "val_x_kl", "val_sup")
# The length of a stage (optimisation steps) when max_epochs is left to the trainer; the
# alignment burn-in and the patience are fractions of it.
AUTO_STEPS = 2000
# A stage stops earlier once validation has not improved for ``patience`` epochs. On the demo
# and realistic presets pretraining was still improving when 2,000 steps ran out (best epoch =
# last epoch); a longer cap is the candidate, but a shorter schedule once swapped two glial
# types across species, so it waits for the cross-species robustness targets.
# Held-out cells per domain that validation scores (evenly spaced over the held-out set):
# its cost stays bounded at atlas scale; the demo holds out about 250 per domain, all scored.
VALIDATION_CELLS = 4096
# Seconds between progress lines on the terminal (the log file gets every epoch).
PROGRESS_SECONDS = 10.0
# An epoch is one pass over the largest domain's training cells, but never fewer steps than
# this: with tiny domains, per-epoch validation, checkpoints and patience would otherwise
# act every couple of steps.
MIN_STEPS_PER_EPOCH = 16
LOSS_TERMS = ("x_nll", "x_kl", "g_nll", "g_kl", "dsc", "sup", "pair", "gen")


# The one home of every default is the schema (config key ``model.train``, with the reason
# for each deviation from the published GLUE defaults in its description).
_DEFAULTS = schema_defaults("model.train")


@dataclass
class TrainConfig:
    """The training plan's options, ``config["model"]["train"]``; ``None`` = automatic."""

    batch_size: int = _DEFAULTS["batch_size"]
    lr: float = _DEFAULTS["lr"]
    lam_data: float = _DEFAULTS["lam_data"]
    lam_kl: float = _DEFAULTS["lam_kl"]
    lam_graph: float = _DEFAULTS["lam_graph"]
    lam_align: float = _DEFAULTS["lam_align"]
    lam_sup: float = _DEFAULTS["lam_sup"]
    lam_pair: float = _DEFAULTS["lam_pair"]
    negatives: int = _DEFAULTS["negatives"]
    burnin_noise: float = _DEFAULTS["burnin_noise"]
    max_epochs: int | None = _DEFAULTS["max_epochs"]
    patience: int | None = _DEFAULTS["patience"]
    reduce_lr_patience: int | None = _DEFAULTS["reduce_lr_patience"]
    align_burnin: int | None = _DEFAULTS["align_burnin"]
    balance_cutoff: float = _DEFAULTS["balance_cutoff"]
    balance_power: float = _DEFAULTS["balance_power"]
    finetune: bool = _DEFAULTS["finetune"]
    # Graph-only training of the feature embeddings before pretraining, so orthologous
    # features start tied. With neither this nor the alignment ramp (Trainer._align_weight),
    # the demo's PVALB and SST interneurons were matched the wrong way round across species
    # in both seeds tried (label transfer 0.57-0.84); with warm-up alone, in one of two.
    graph_warmup: int = _DEFAULTS["graph_warmup"]

    def validate(self) -> None:
        """Refuse counts that would silently train nothing."""
        automatic = ("max_epochs", "patience", "reduce_lr_patience", "align_burnin")
        for name, low in {**dict.fromkeys(automatic, 1), "batch_size": 1, "negatives": 1, "graph_warmup": 0}.items():
            value = getattr(self, name)
            if value is None and name in automatic:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise CrossglueError(
                    f"training option {name}={value!r}; expected a whole number >= {low}"
                    + (" (or None = automatic)" if name in automatic else "")
                )

    def resolved(self, steps_per_epoch: int) -> TrainConfig:
        """Fill the automatic values from the epoch length."""
        cfg = copy.copy(self)
        if cfg.max_epochs is None:
            cfg.max_epochs = int(np.clip(math.ceil(AUTO_STEPS / steps_per_epoch), 30, 500))
        if cfg.patience is None:
            cfg.patience = max(8, cfg.max_epochs // 10)
        if cfg.reduce_lr_patience is None:
            cfg.reduce_lr_patience = max(4, cfg.patience // 2)
        if cfg.align_burnin is None:
            cfg.align_burnin = max(1, cfg.max_epochs // 4)
        return cfg


@dataclass
class StageState:
    """Progress of the current stage, as saved in a checkpoint."""

    stage: str = "pretrain"
    epoch: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Runs both stages on arrays prepared by the user-facing model."""

    def __init__(
        self,
        nets: GlueNetworks,
        domains: dict[str, DomainData],
        graph: GuidanceGraph,
        label_codes: dict[str, np.ndarray],
        pairs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
        config: TrainConfig,
        device: torch.device,
        seed: int,
    ) -> None:
        config.validate()
        self.nets = nets
        self.domains = domains
        self.names = list(domains)
        self.graph = graph
        self.label_codes = label_codes
        self.pairs = {k: v for k, v in pairs.items() if len(v[0]) > 1}
        self.device = device
        self.seed = seed
        self.module = GlueModule(nets, graph, {k: d.feature_nodes for k, d in domains.items()}, device)
        self.sampler = EdgeSampler(graph, config.negatives)
        largest = max(len(d.train) for d in domains.values())
        self.steps_per_epoch = max(MIN_STEPS_PER_EPOCH, math.ceil(largest / config.batch_size))
        self.edges_per_step = max(1, math.ceil(graph.n_edges / self.steps_per_epoch))
        self.config = config.resolved(self.steps_per_epoch)
        self.loss_weights = LossWeights.from_config(self.config)
        self.tensors = {k: DomainTensors.of(d, label_codes[k], device) for k, d in domains.items()}
        self.weights = {k: np.ones(d.n_cells, np.float32) for k, d in domains.items()}
        self.rng = np.random.default_rng(seed)
        self.state = StageState()
        self._digest: str | None = None
        self._last_progress = -math.inf
        self._new_optimisers()

    # ----------------------------------------------------------------- setup
    def _new_optimisers(self) -> None:
        cfg = self.config
        self.vae_optim = torch.optim.RMSprop(self.nets.generator_parameters(), lr=cfg.lr)
        self.dsc_optim = torch.optim.RMSprop(self.nets.discriminator.parameters(), lr=cfg.lr)
        self.schedulers = [
            torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=cfg.reduce_lr_patience)
            for opt in (self.vae_optim, self.dsc_optim)
        ]

    def _restart_schedules(self) -> None:
        """Fine-tuning keeps RMSprop's running averages (a fresh optimiser's first steps are
        about ten times the learning rate and shake the pretrained embedding) but restarts
        the learning rate and its plateau schedule."""
        cfg = self.config
        for opt in (self.vae_optim, self.dsc_optim):
            for group in opt.param_groups:
                group["lr"] = cfg.lr
        self.schedulers = [
            torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=cfg.reduce_lr_patience)
            for opt in (self.vae_optim, self.dsc_optim)
        ]

    def fingerprint(self) -> dict:
        """What a checkpoint must match to be resumed by this trainer: shapes, settings, and
        a digest of the contents (so changed edge weights or counts never resume old state)."""
        if self._digest is None:
            self._digest = content_digest(self.domains, self.graph, self.label_codes, self.pairs)
        return {
            "domains": {k: [d.n_cells, len(d.features), d.n_input] for k, d in self.domains.items()},
            "n_nodes": self.graph.n_nodes,
            "n_edges": self.graph.n_edges,
            "seed": self.seed,
            "config": asdict(self.config),
            "content": self._digest,
        }

    # ------------------------------------------------------------ one step
    def _noise_scale(self) -> float:
        if self.state.stage != "pretrain" or self.config.burnin_noise <= 0:
            return 0.0
        return self.config.burnin_noise * max(0.0, 1.0 - self.state.epoch / self.config.align_burnin)

    def _align_weight(self) -> float:
        """λ_align, ramped up from zero over the pretraining burn-in (this project's addition):
        each species' cells first settle on the shared feature axes the graph gives them,
        and only then does the discriminator pull the distributions together. With graph
        warm-up but full alignment from the first step, seed 0 of the demo still matched
        PVALB and SST interneurons the wrong way round across species."""
        if self.state.stage != "pretrain":
            return self.config.lam_align
        return self.config.lam_align * min(1.0, self.state.epoch / self.config.align_burnin)

    def _adversary(self, noise_scale: float):
        """The discriminator step (on detached, noised posterior means, weighted by the
        balancing weights), then the adversarial loss against the updated discriminator."""

        def step(means: list[torch.Tensor], batches: dict[str, CellBatch]) -> tuple[torch.Tensor, torch.Tensor]:
            nets = self.nets
            u_all = torch.cat(means)
            target = torch.cat(
                [
                    torch.full((len(b.idx),), i, dtype=torch.long, device=self.device)
                    for i, b in enumerate(batches.values())
                ]
            )
            weight = torch.cat([self._device_weights[k][b.idx] for k, b in batches.items()])
            if noise_scale > 0:
                u_all = u_all + noise_scale * u_all.detach().std(dim=0) * torch.randn_like(u_all)
            dsc_loss = weighted_domain_ce(nets.discriminator(u_all.detach()), target, weight)
            self.dsc_optim.zero_grad(set_to_none=True)
            dsc_loss.backward()
            self.dsc_optim.step()
            return dsc_loss, weighted_domain_ce(nets.discriminator(u_all), target, weight)

        return step

    def _step(self, batches: dict, pair_inputs: dict, edges: EdgeBatch, noise_scale: float) -> dict[str, torch.Tensor]:
        loss = self.module.loss(
            self.loss_weights,
            batches,
            self.module.features(sample=True),
            edges,
            pair_inputs,
            adversary=self._adversary(noise_scale),
        )
        gen = loss.vae - self._align_weight() * loss.adversarial
        self.vae_optim.zero_grad(set_to_none=True)
        gen.backward()
        self.vae_optim.step()
        return {
            "x_nll": loss.x_nll,
            "x_kl": loss.x_kl,
            "g_nll": loss.g_nll,
            "g_kl": loss.g_kl,
            "dsc": loss.dsc,
            "sup": loss.sup,
            "pair": loss.pair,
            "gen": gen,
        }

    def _epoch(self) -> dict[str, float]:
        cfg = self.config
        self.nets.train()
        steps = self.steps_per_epoch
        draws = {k: epoch_draws(d.train, steps, cfg.batch_size, self.rng) for k, d in self.domains.items()}
        pair_draws = {
            key: epoch_draws(np.arange(len(ia)), steps, min(cfg.batch_size, len(ia)), self.rng)
            for key, (ia, _) in self.pairs.items()
        }
        # A whole epoch's cell positions go to the device at once; a step then sends only
        # its batches' non-zero counts and edge draws (host to device), and reads nothing back.
        on_device = {k: torch.from_numpy(v).to(self.device) for k, v in draws.items()}
        pair_cells = {
            (a, b): [
                (ia[pair_draws[(a, b)]], torch.from_numpy(ia[pair_draws[(a, b)]]).to(self.device)),
                (ib[pair_draws[(a, b)]], torch.from_numpy(ib[pair_draws[(a, b)]]).to(self.device)),
            ]
            for (a, b), (ia, ib) in self.pairs.items()
        }
        self._device_weights = {k: torch.from_numpy(w).to(self.device) for k, w in self.weights.items()}
        noise = self._noise_scale()
        totals = torch.zeros(len(LOSS_TERMS), device=self.device)
        for step in range(steps):
            batches = {
                k: make_batch(d, draws[k][step], self.tensors[k], self.device, on_device[k][step])
                for k, d in self.domains.items()
            }
            pair_inputs = {
                key: tuple(self._inputs(name, cells[step], at[step]) for name, (cells, at) in zip(key, sides))
                for key, sides in pair_cells.items()
            }
            edges = self.sampler.sample_grouped(self.edges_per_step, self.rng)
            terms = self._step(batches, pair_inputs, edges, noise)
            totals += torch.stack([terms[k].detach().float() for k in LOSS_TERMS]) / steps
        return dict(zip(LOSS_TERMS, totals.tolist(), strict=True))

    def _inputs(self, name: str, idx: np.ndarray, at: torch.Tensor) -> torch.Tensor:
        """Encoder input of cells ``idx`` (``at`` on the device) of domain ``name``."""
        rep = self.tensors[name].rep
        return rep[at] if rep is not None else cell_inputs(self.domains[name], idx, self.device)

    # ------------------------------------------------------------ validation
    def validation_loss(self, chunk: int = 1024) -> float:
        """The objective's data terms (+ classifier loss) on the held-out cells, with posterior
        means (so it draws no random numbers and is the same however often it is computed)."""
        return self.validation_terms(chunk)["val"]

    @torch.no_grad()
    def validation_terms(self, chunk: int = 1024) -> dict[str, float]:
        """:meth:`validation_loss` (``val``) and the held-out terms it sums, per cell-weighted
        domain average as in training: ``val_x_nll``, ``val_x_kl``, ``val_sup`` (the terms
        that exist for held-out cells; the graph is not split, and alignment and pairing are
        adversarial or paired-batch terms)."""
        self.nets.eval()
        features = self.module.features(sample=False)
        totals = dict.fromkeys(VALIDATION_TERMS, 0.0)
        for k, d in self.domains.items():
            held_out = validation_cells(d.val)
            for start in range(0, len(held_out), chunk):
                idx = held_out[start : start + chunk]
                batch = {k: make_batch(d, idx, self.tensors[k], self.device)}
                loss = self.module.loss(self.loss_weights, batch, features, sample=False)
                share = len(idx) / len(held_out)
                totals["val"] += share * float(loss.vae)
                for term in VALIDATION_TERMS[1:]:
                    totals[term] += share * float(getattr(loss, term[len("val_") :]))
        return totals

    def embed(self, domain: DomainData) -> np.ndarray:
        """Posterior means u of every cell of a training domain."""
        return encode_cells(
            self.nets.cell_encoders[domain.name], domain, self.device, self.nets.graph_encoder.embedding.shape[1]
        )

    # ---------------------------------------------------------- checkpoints
    def _snapshot(self) -> dict:
        return {
            "fingerprint": self.fingerprint(),
            "nets": self.nets.state_dict(),
            "best_nets": self._best_nets,
            "vae_optim": self.vae_optim.state_dict(),
            "dsc_optim": self.dsc_optim.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "state": asdict(self.state),
            "weights": {k: torch.from_numpy(np.ascontiguousarray(w)) for k, w in self.weights.items()},
            "splits": {k: (torch.from_numpy(d.train), torch.from_numpy(d.val)) for k, d in self.domains.items()},
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def save_checkpoint(self, directory: Path) -> None:
        """Tensors and plain values only (no numpy objects), so it loads with ``weights_only=True``."""
        with atomic_path(directory / CHECKPOINT) as tmp:
            torch.save(self._snapshot(), tmp)

    def load_checkpoint(self, path: Path, restart_stale: bool = False) -> bool:
        """Restore the state saved in ``path``; False when it was stale and removed instead.

        Read with ``weights_only=True``: a checkpoint can come from elsewhere, and a full
        unpickler would run whatever code it names."""
        try:
            # on the CPU: the RNG states must be CPU tensors; load_state_dict moves the rest
            snap = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            if restart_stale:
                log.warning("%s is not a readable checkpoint of this version (%s); training starts afresh", path, err)
                path.unlink()
                return False
            raise CrossglueError(
                f"{path}: not a readable crossglue checkpoint ({err}); remove it or choose another checkpoint_dir"
            ) from err
        if not isinstance(snap, dict) or "fingerprint" not in snap:
            raise CrossglueError(
                f"{path}: not a crossglue checkpoint (no fingerprint); remove it or choose another checkpoint_dir"
            )
        if snap["fingerprint"] != self.fingerprint():
            if restart_stale:
                log.warning("%s was written for other data or settings; training starts afresh", path)
                path.unlink()
                return False
            raise CrossglueError(
                f"{path}: checkpoint was written for other data or settings "
                f"(differs in {', '.join(fingerprint_differences(snap['fingerprint'], self.fingerprint()))}); "
                "remove it or choose another checkpoint_dir"
            )
        self.nets.load_state_dict(snap["nets"])
        self._best_nets = snap["best_nets"]
        self.state = StageState(**snap["state"])
        self._new_optimisers()
        self.vae_optim.load_state_dict(snap["vae_optim"])
        self.dsc_optim.load_state_dict(snap["dsc_optim"])
        for sched, s in zip(self.schedulers, snap["schedulers"], strict=True):
            sched.load_state_dict(s)
        self.weights = {k: w.cpu().numpy() for k, w in snap["weights"].items()}
        for k, (train, val) in snap["splits"].items():
            self.domains[k].train, self.domains[k].val = train.cpu().numpy(), val.cpu().numpy()
        self.rng.bit_generator.state = snap["numpy_rng"]
        torch.set_rng_state(snap["torch_rng"])
        if snap["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(snap["cuda_rng"])
        return True

    # ------------------------------------------------------------- driving
    def fit(
        self,
        checkpoint_dir: Path | None = None,
        log_path: Path | None = None,
        on_epoch_end: Callable[[dict], None] | None = None,
        restart_stale: bool = False,
    ) -> list[dict]:
        """Train both stages (resuming from ``checkpoint_dir`` when it holds a checkpoint).

        A checkpoint written for other data or settings is an error, or with
        ``restart_stale`` is removed and training starts afresh (a pipeline rerun after a
        parameter change).
        """
        self._best_nets = None
        path = checkpoint_dir / CHECKPOINT if checkpoint_dir is not None else None
        if path is not None and path.exists() and self.load_checkpoint(path, restart_stale):
            log.info("resuming from %s: %s epoch %d", path, self.state.stage, self.state.epoch)
        else:
            torch.manual_seed(self.seed)
            self.rng = np.random.default_rng(self.seed)
            self._graph_warmup()
        log.info(
            "training: %d domains, %d nodes, %d edges, %d steps/epoch, %d edges/step, max %d epochs/stage",
            len(self.names),
            self.graph.n_nodes,
            self.graph.n_edges,
            self.steps_per_epoch,
            self.edges_per_step,
            self.config.max_epochs,
        )
        while self.state.stage != "done":
            self._run_stage(checkpoint_dir, log_path, on_epoch_end)
        if log_path is not None and self.state.history:
            # also when resuming a finished run: the log is an output the caller relies on
            write_log(self.state.history, log_path)
        if self._best_nets is not None:
            self.nets.load_state_dict(self._best_nets)
        return self.state.history

    def _graph_warmup(self) -> None:
        """Fit the graph encoder to the objective's graph term alone (its own short-lived optimiser)."""
        cfg = self.config
        steps = cfg.graph_warmup * self.steps_per_epoch
        if steps == 0:
            return
        self.nets.train()
        optim = torch.optim.RMSprop(self.nets.graph_encoder.parameters(), lr=cfg.lr)
        first = float("nan")
        for step in range(steps):
            features = self.module.features(sample=True)
            g_nll, g_kl = self.module.graph_terms(features, self.sampler.sample_grouped(self.edges_per_step, self.rng))
            loss = self.module.graph_elbo(g_nll, g_kl, self.loss_weights)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            if step == 0:
                first = float(g_nll.detach())
        log.info("graph warm-up: %d steps, graph NLL %.4f -> %.4f", steps, first, float(g_nll.detach()))

    def _run_stage(self, checkpoint_dir, log_path, on_epoch_end) -> None:
        cfg = self.config
        st = self.state
        while st.epoch < cfg.max_epochs and not self._should_stop():
            start = time.perf_counter()
            terms = self._epoch()
            if any(len(d.val) for d in self.domains.values()):
                held_out = self.validation_terms()
                val = held_out.pop("val")
            else:  # nothing held out: monitor the training data ELBO instead
                held_out = {}
                val = cfg.lam_data * (terms["x_nll"] + cfg.lam_kl * terms["x_kl"])
            st.epoch += 1
            for sched in self.schedulers:
                sched.step(val)
            if not math.isfinite(st.best_val) or val < st.best_val - 1e-6 * abs(st.best_val):
                st.best_val, st.best_epoch, st.bad_epochs = val, st.epoch, 0
                self._best_nets = copy.deepcopy(self.nets.state_dict())
            elif st.stage != "pretrain" or st.epoch > cfg.align_burnin:
                st.bad_epochs += 1
            row = {
                "stage": st.stage,
                "epoch": st.epoch,
                **{k: round(v, 6) for k, v in terms.items()},
                "val": round(val, 6),
                **{k: round(v, 6) for k, v in held_out.items()},
                "lr": self.vae_optim.param_groups[0]["lr"],
                "noise": round(self._noise_scale_at(st.epoch - 1), 4),
                "seconds": round(time.perf_counter() - start, 3),
            }
            st.history.append(row)
            self._progress(row, terms)
            if checkpoint_dir is not None:
                self.save_checkpoint(checkpoint_dir)
            if log_path is not None:
                write_log(st.history, log_path)
            if on_epoch_end is not None:
                on_epoch_end(row)
        self._end_stage(checkpoint_dir, log_path)

    def _progress(self, row: dict, terms: dict[str, float]) -> None:
        """Log the epoch; every PROGRESS_SECONDS also print a compact line to the terminal
        when stderr goes to a log file (a pipeline rule), so a user sees training advance."""
        st, cfg = self.state, self.config
        stage_rows = [r for r in st.history if r["stage"] == st.stage]
        per_epoch = sum(r["seconds"] for r in stage_rows) / len(stage_rows)
        left = format_seconds(per_epoch * (cfg.max_epochs - st.epoch))
        log.info(
            "%s epoch %d of at most %d: %s val=%.5f lr=%.1e (%.2fs; stage ends in at most %s, "
            "earlier once validation stops improving for %d epochs, now %d)",
            st.stage,
            st.epoch,
            cfg.max_epochs,
            " ".join(f"{k}={terms[k]:.4f}" for k in LOSS_TERMS),
            row["val"],
            row["lr"],
            row["seconds"],
            left,
            cfg.patience,
            st.bad_epochs,
        )
        now = time.monotonic()
        terminal = sys.__stderr__
        if terminal is None or sys.stderr is terminal or now - self._last_progress < PROGRESS_SECONDS:
            return
        self._last_progress = now
        print(
            f"crossglue model: {st.stage} epoch {st.epoch} of at most {cfg.max_epochs}, "
            f"loss {terms['gen']:.4f}, val {row['val']:.4f}, at most {left} left in this stage",
            file=terminal,
            flush=True,
        )

    def _noise_scale_at(self, epoch: int) -> float:
        if self.state.stage != "pretrain":
            return 0.0
        return self.config.burnin_noise * max(0.0, 1.0 - epoch / self.config.align_burnin)

    def _should_stop(self) -> bool:
        return self.state.bad_epochs >= self.config.patience

    def _end_stage(self, checkpoint_dir, log_path) -> None:
        st = self.state
        if self._best_nets is not None:
            self.nets.load_state_dict(self._best_nets)
        log.info("%s finished after %d epochs (best %d, val %.5f)", st.stage, st.epoch, st.best_epoch, st.best_val)
        if st.stage == "pretrain" and self.config.finetune and len(self.names) > 1:
            embeddings = {k: self.embed(d) for k, d in self.domains.items()}
            self.weights = balancing_weights(
                embeddings, cutoff=self.config.balance_cutoff, power=self.config.balance_power, seed=self.seed
            )
            for k, w in self.weights.items():
                log.info(
                    "balancing %s: weights min %.3f max %.3f, %.1f%% zero", k, w.min(), w.max(), 100 * (w == 0).mean()
                )
            self.state = StageState(stage="finetune", history=st.history)
            self._restart_schedules()
        else:
            self.state = StageState(
                stage="done", epoch=st.epoch, best_val=st.best_val, best_epoch=st.best_epoch, history=st.history
            )
        if checkpoint_dir is not None:
            self.save_checkpoint(checkpoint_dir)


def validation_cells(val: np.ndarray, most: int = VALIDATION_CELLS) -> np.ndarray:
    """The held-out cells validation scores: all of them, or ``most`` evenly spaced ones
    (no random draw, so the figure is the same however often it is computed)."""
    if len(val) <= most:
        return val
    return val[np.linspace(0, len(val) - 1, most).round().astype(np.int64)]


def format_seconds(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def fingerprint_differences(saved: object, current: dict, prefix: str = "") -> list[str]:
    """The keys (dotted, e.g. ``config.max_epochs``; ``content`` = the data) where two fingerprints differ."""
    if not isinstance(saved, dict):
        return [prefix.rstrip(".") or "format"] if saved != current else []
    keys = sorted(set(saved) | set(current), key=str)
    out = []
    for key in keys:
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += fingerprint_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def content_digest(
    domains: dict[str, DomainData],
    graph: GuidanceGraph,
    label_codes: dict[str, np.ndarray],
    pairs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
) -> str:
    """SHA-256 over the values the trainer consumes: the graph's arrays and every domain's
    counts, inputs, batches, label codes, split and multiome pairs.

    Only numeric arrays go in, each tagged with its name, dtype and shape, so the digest is
    the same in every process. (Object arrays, e.g. label strings, would hash the memory
    addresses of their elements: a new process then saw "other data" and never resumed.)
    """
    digest = hashlib.sha256()

    def add(tag: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        if array.dtype.hasobject:
            raise TypeError(f"content_digest: {tag} is an object array; hash its codes, not its addresses")
        digest.update(f"{tag}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())

    for k in ("src", "dst", "weight", "sign"):
        add(f"graph.{k}", getattr(graph, k))
    for name, d in domains.items():
        tag = f"domain[{name}]"
        for k in ("data", "indices", "indptr"):
            add(f"{tag}.counts.{k}", getattr(d.counts, k))
        add(f"{tag}.counts.shape", np.asarray(d.counts.shape, np.int64))
        add(f"{tag}.batch_codes", d.batch_codes)
        add(f"{tag}.labels", label_codes[name])
        add(f"{tag}.feature_nodes", d.feature_nodes)
        add(f"{tag}.train", d.train)
        add(f"{tag}.val", d.val)
        if d.rep is not None:
            add(f"{tag}.rep", d.rep)
    for (a, b), (ia, ib) in sorted(pairs.items()):
        add(f"pairs[{a},{b}].a", ia)
        add(f"pairs[{a},{b}].b", ib)
    return digest.hexdigest()


def write_log(history: list[dict], path: Path) -> None:
    """The whole per-epoch history as TSV (rewritten atomically, so resume never duplicates)."""
    columns = list(history[0])
    lines = ["\t".join(columns)] + ["\t".join(str(row.get(c, "")) for c in columns) for row in history]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
