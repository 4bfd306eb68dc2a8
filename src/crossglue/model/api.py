"""The user-facing model: register AnnData domains and a guidance graph, fit, embed, save.

model = GlueModel.from_anndata(domains, edges, specs)
model.fit(checkpoint_dir="ckpt", log_path="training_log.tsv", threads=1)
cells = model.encode_cells("human:rna"); features = model.encode_features()
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import pickle
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from crossglue.errors import CrossglueError
from crossglue.io_utils import atomic_path
from crossglue.model.data import MODALITIES, DomainData, DomainSpec, build_domain, paired_indices, split_train_val
from crossglue.model.graph import GuidanceGraph
from crossglue.model.module import encode_cells
from crossglue.model.nets import GlueNetworks
from crossglue.model.trainer import TrainConfig, Trainer

log = logging.getLogger("crossglue.model")

# 2: tensors and plain values only, so torch.load(weights_only=True) reads it.
FORMAT_VERSION = 2


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → the first CUDA GPU when torch sees one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise CrossglueError(f"device {device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'") from err


@contextlib.contextmanager
def torch_threads_and_determinism(threads: int | None) -> Iterator[None]:
    """Pin torch threads and ask for deterministic kernels; restore both afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


class GlueModel:
    """GLUE across species: one variational encoder per (species, modality) domain, one
    graph encoder over ``species:feature`` nodes, negative binomial decoders, an adversarial
    discriminator with balancing weights, and optional label and multiome-pairing terms."""

    def __init__(
        self,
        specs: dict[str, DomainSpec],
        nodes: pd.Index,
        features: dict[str, pd.Index],
        batches: dict[str, list[str]],
        inputs: dict[str, int],
        classes: list[str],
        latent_dim: int,
        seed: int,
        device: torch.device,
        config: TrainConfig,
    ) -> None:
        self.specs = specs
        self.nodes = nodes
        self.features = features
        self.batches = batches
        self.inputs = inputs
        self.classes = classes
        self.latent_dim = latent_dim
        self.seed = seed
        self.device = device
        self.config = config
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, caller's RNG untouched
            torch.manual_seed(seed)
            self.nets = GlueNetworks(
                n_nodes=len(nodes),
                latent=latent_dim,
                domain_inputs=inputs,
                domain_features={k: len(f) for k, f in features.items()},
                domain_batches={k: len(b) for k, b in batches.items()},
                n_classes=len(classes),
            ).to(device)
        self.history: list[dict] = []
        self._graph: GuidanceGraph | None = None
        self._domains: dict[str, DomainData] = {}

    # ------------------------------------------------------------ building
    @classmethod
    def setup(
        cls,
        domains: Mapping[str, object],
        edges: pd.DataFrame,
        *,
        use_rep: str | Mapping[str, str | None] | None = None,
        batch_key: str | Mapping[str, str | None] | None = None,
        label_key: str | Mapping[str, str | None] | None = None,
        nucleus_key: str | Mapping[str, str | None] | None = None,
        **kwargs: object,
    ) -> GlueModel:
        """The notebook entry point: AnnData objects in memory, named ``"species:modality"``.

        Each ``*_key`` is one obs/obsm key for every domain or a mapping domain -> key
        (None = not used: counts feed the encoder, one batch, no labels, no pairing). Other
        keywords go to :meth:`from_anndata` (``seed``, ``device``, ``latent_dim``, ...).
        """
        specs = {}
        for name in domains:
            species, _, modality = str(name).partition(":")
            if not species or modality not in MODALITIES:
                raise CrossglueError(
                    f"domain name {name!r}: expected 'species:modality' with modality one of {list(MODALITIES)}"
                )

            def pick(value, name=name):
                return value.get(name) if isinstance(value, Mapping) else value

            specs[name] = DomainSpec(
                species,
                modality,
                use_rep=pick(use_rep),
                batch_key=pick(batch_key),
                label_key=pick(label_key),
                nucleus_key=pick(nucleus_key),
            )
        return cls.from_anndata(domains, edges, specs, **kwargs)

    @classmethod
    def from_anndata(
        cls,
        domains: Mapping[str, object],
        edges: pd.DataFrame,
        specs: Mapping[str, DomainSpec],
        *,
        latent_dim: int = 50,
        seed: int = 0,
        device: str | torch.device = "auto",
        val_fraction: float = 0.1,
        config: TrainConfig | None = None,
        edges_source: str = "guidance graph edge table",
    ) -> GlueModel:
        """Check domains against the graph and set up networks (nothing is trained yet).

        ``domains`` maps a domain name (e.g. ``"human:rna"``) to an AnnData with raw counts in
        X; ``specs`` gives each domain's :class:`DomainSpec`; ``edges`` is the guidance graph
        (source, target, weight, sign[, type]), symmetric and with self-loops; error messages
        about it name ``edges_source`` (e.g. the file it was read from).
        """
        missing = [k for k in domains if k not in specs]
        if missing:
            raise CrossglueError(f"no DomainSpec for domain(s) {missing}; give one per domain")
        if len(domains) == 0:
            raise CrossglueError("no domains given")
        graph = GuidanceGraph.from_edges(edges, source=edges_source)
        data = {k: build_domain(k, adata, specs[k], graph.nodes) for k, adata in domains.items()}
        if not 0 <= val_fraction < 1:
            raise CrossglueError(f"val_fraction={val_fraction}; expected a fraction in [0, 1)")
        rng = np.random.default_rng(seed)
        for d in data.values():
            split_train_val(d, val_fraction, rng)
            if len(d.train) < 2:
                raise CrossglueError(f"domain {d.name}: {len(d.train)} training cell(s); the model needs at least 2")
        classes = sorted({str(x) for d in data.values() for x in d.labels if x is not None})
        model = cls(
            specs={k: specs[k] for k in data},
            nodes=graph.nodes,
            features={k: d.features for k, d in data.items()},
            batches={k: d.batch_categories for k, d in data.items()},
            inputs={k: d.n_input for k, d in data.items()},
            classes=classes,
            latent_dim=latent_dim,
            seed=seed,
            device=resolve_device(device),
            config=config or TrainConfig(),
        )
        model._graph = graph
        model._domains = data
        return model

    def _label_codes(self) -> dict[str, np.ndarray]:
        lookup = {c: i for i, c in enumerate(self.classes)}
        return {
            k: np.array([lookup[str(x)] if x is not None else -1 for x in d.labels], dtype=np.int64)
            for k, d in self._domains.items()
        }

    def _pairs(self) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
        pairs = {}
        paired = [k for k, d in self._domains.items() if d.spec.nucleus_key is not None]
        for a, b in itertools.combinations(paired, 2):
            if self.specs[a].species == self.specs[b].species:
                ia, ib = paired_indices(self._domains[a], self._domains[b])
                if len(ia):
                    pairs[(a, b)] = (ia, ib)
                    log.info("pairing %s with %s: %d shared nuclei in training", a, b, len(ia))
        return pairs

    def _require_data(self) -> None:
        if self._graph is None:
            raise CrossglueError("this model holds no training data (it was loaded); use from_anndata to fit")

    # ------------------------------------------------------------- training
    def fit(
        self,
        max_epochs: int | None = None,
        patience: int | None = None,
        checkpoint_dir: str | Path | None = None,
        log_path: str | Path | None = None,
        threads: int | None = 1,
        on_epoch_end: Callable[[dict], None] | None = None,
        restart_stale: bool = False,
        **config: object,
    ) -> GlueModel:
        """Pretrain, estimate balancing weights, fine-tune; keep the best weights.

        ``max_epochs``/``patience`` apply to each stage (None = automatic). When
        ``checkpoint_dir`` holds a checkpoint of the same data and settings, training resumes
        from it; one of other data or settings is an error, or with ``restart_stale`` is
        replaced by a fresh start. Other keywords override :class:`TrainConfig` fields
        (e.g. ``lam_align``).
        """
        self._require_data()
        unknown = [k for k in config if k not in TrainConfig.__dataclass_fields__]
        if unknown:
            raise CrossglueError(f"unknown training option(s) {unknown}; see crossglue.model.TrainConfig")
        overrides = {"max_epochs": max_epochs, "patience": patience, **config}
        cfg = TrainConfig(**{**asdict(self.config), **{k: v for k, v in overrides.items() if v is not None}})
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        if ckpt is not None:
            ckpt.mkdir(parents=True, exist_ok=True)
        with torch_threads_and_determinism(threads):
            trainer = Trainer(
                self.nets, self._domains, self._graph, self._label_codes(), self._pairs(), cfg, self.device, self.seed
            )
            self.history = trainer.fit(
                ckpt, Path(log_path) if log_path is not None else None, on_epoch_end, restart_stale=restart_stale
            )
            self.balancing_weights = trainer.weights
            self.config = trainer.config
        return self

    # ------------------------------------------------------------ embedding
    @torch.no_grad()
    def encode_features(self) -> pd.DataFrame:
        """Posterior mean embedding of every graph node, indexed by node name."""
        self.nets.eval()
        graph = self._graph_for_encoding()
        v_mean, _ = self.nets.graph_encoder(graph.propagation_matrix(self.device))
        return pd.DataFrame(v_mean.cpu().numpy(), index=self.nodes.copy())

    def _graph_for_encoding(self) -> GuidanceGraph:
        if self._graph is not None:
            return self._graph
        if self._saved_edges is None:
            raise CrossglueError("this model has no guidance graph to encode features with")
        self._graph = GuidanceGraph(**self._saved_edges)
        return self._graph

    @torch.no_grad()
    def encode_cells(self, data: str | object, domain: str | None = None, chunk: int = 4096) -> np.ndarray:
        """Posterior mean u of every cell: of a training domain (by name), or of an AnnData
        read like that domain (``domain`` names it; same features and representation)."""
        if isinstance(data, str):
            if data not in self._domains:
                known = list(self._domains) or "none (loaded model: pass an AnnData and domain=)"
                raise CrossglueError(f"unknown domain {data!r}; known: {known}")
            d = self._domains[data]
        else:
            if domain is None or domain not in self.specs:
                raise CrossglueError(f"encode_cells(adata) needs domain= one of {list(self.specs)}")
            d = self._external_domain(data, domain)
        return encode_cells(self.nets.cell_encoders[d.name], d, self.device, self.latent_dim, chunk)

    def _external_domain(self, adata, domain: str) -> DomainData:
        """Arrays of a new AnnData laid out like a training domain (its features, its rep)."""
        spec = self.specs[domain]
        features = self.features[domain]
        missing = features.difference(adata.var_names)
        if len(missing):
            raise CrossglueError(
                f"AnnData for {domain}: lacks {len(missing)} model feature(s), e.g. {missing[:5].tolist()}"
            )
        reading = DomainSpec(species=spec.species, modality=spec.modality, use_rep=spec.use_rep, batch_key=None)
        return build_domain(domain, adata[:, features], reading, pd.Index(spec.species + ":" + features))

    @torch.no_grad()
    def predict_labels(self, data: str | object, domain: str | None = None) -> pd.DataFrame:
        """Cell types from the semi-supervised classifier: label and probability per cell."""
        if self.nets.classifier is None:
            raise CrossglueError("the model was trained without labels (no DomainSpec.label_key)")
        u = torch.from_numpy(self.encode_cells(data, domain)).to(self.device)
        prob = torch.softmax(self.nets.classifier(u), dim=1).cpu().numpy()
        return pd.DataFrame({"label": np.asarray(self.classes)[prob.argmax(1)], "probability": prob.max(1)})

    # --------------------------------------------------------------- saving
    def save(self, path: str | Path) -> None:
        """Weights, domain layouts and the graph (not the cells), written atomically."""
        graph = self._graph_for_encoding()
        payload = {
            "format": FORMAT_VERSION,
            "specs": {k: s.to_dict() for k, s in self.specs.items()},
            "nodes": self.nodes.astype(str).tolist(),
            "features": {k: f.astype(str).tolist() for k, f in self.features.items()},
            "batches": self.batches,
            "inputs": self.inputs,
            "classes": self.classes,
            "latent_dim": self.latent_dim,
            "seed": self.seed,
            "config": asdict(self.config),
            "nets": {k: v.cpu() for k, v in self.nets.state_dict().items()},
            "edges": {
                k: torch.from_numpy(np.ascontiguousarray(getattr(graph, k))) for k in ("src", "dst", "weight", "sign")
            },
            "history": [
                {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()} for row in self.history
            ],
        }
        with atomic_path(Path(path)) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> GlueModel:
        """Read a model written by :meth:`save`."""
        try:
            payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            raise CrossglueError(f"{path}: not a readable crossglue model file ({err})") from err
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
            raise CrossglueError(f"{path}: not a crossglue model file of format {FORMAT_VERSION}")
        nodes = pd.Index(payload["nodes"], dtype=object).astype(str)
        model = cls(
            specs={k: DomainSpec(**s) for k, s in payload["specs"].items()},
            nodes=nodes,
            features={k: pd.Index(f, dtype=object).astype(str) for k, f in payload["features"].items()},
            batches=payload["batches"],
            inputs=payload["inputs"],
            classes=payload["classes"],
            latent_dim=payload["latent_dim"],
            seed=payload["seed"],
            device=resolve_device(device),
            config=TrainConfig(**payload["config"]),
        )
        model.nets.load_state_dict(payload["nets"])
        model.nets.to(model.device)
        model.history = payload["history"]
        model._saved_edges = {"nodes": nodes, **{k: t.numpy() for k, t in payload["edges"].items()}}
        return model

    _saved_edges: dict | None = None
