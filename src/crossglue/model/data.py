"""Per-domain data held as arrays, and the draws that make a training step's minibatch.

A domain is one (species, modality) AnnData. Its counts stay a scipy CSR matrix; a step
slices 128 rows and hands the decoder only their non-zeros, so memory grows with the data's
non-zeros, never with cells × features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from crossglue.analysis.metrics import shared_nuclei
from crossglue.errors import CrossglueError

MODALITIES = ("rna", "atac")


@dataclass(frozen=True)
class DomainSpec:
    """How to read one domain's AnnData.

    ``use_rep``: obsm key of the encoder input (``X_pca`` for RNA, ``X_lsi`` for ATAC); None
    means ``log1p(1e4 · x / library)`` of the counts. ``batch_key``: obs column of batches
    (samples/donors; None = one batch). ``label_key``: obs column of known cell types for the
    semi-supervised classifier (missing values = unlabelled). ``nucleus_key``: obs column
    naming the nucleus of multiome cells, shared with the other modality's domain.
    ``feature_key``: boolean var column choosing the decoded features (None = all).
    """

    species: str
    modality: str
    use_rep: str | None = None
    batch_key: str | None = None
    label_key: str | None = None
    nucleus_key: str | None = None
    feature_key: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class DomainData:
    """One domain's arrays: encoder input, counts, batches, labels, nuclei, split."""

    name: str
    spec: DomainSpec
    obs_names: pd.Index
    features: pd.Index
    feature_nodes: np.ndarray
    counts: sp.csr_matrix
    rep: np.ndarray | None
    batch_codes: np.ndarray
    batch_categories: list[str]
    labels: np.ndarray  # class codes, -1 = unlabelled
    nucleus: np.ndarray  # object array, None = unpaired
    log_library: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    train: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_cells(self) -> int:
        return self.counts.shape[0]

    @property
    def n_input(self) -> int:
        return self.rep.shape[1] if self.rep is not None else self.counts.shape[1]


def domain_features(name: str, adata, spec: DomainSpec) -> pd.Index:
    """The decoded features of a domain (all var, or those flagged by ``feature_key``)."""
    if spec.feature_key is None:
        return pd.Index(adata.var_names.astype(str))
    if spec.feature_key not in adata.var.columns:
        raise CrossglueError(f"domain {name}: var has no column {spec.feature_key!r} (DomainSpec.feature_key)")
    mask = adata.var[spec.feature_key].to_numpy(dtype=bool)
    if not mask.any():
        raise CrossglueError(f"domain {name}: no feature is flagged in var[{spec.feature_key!r}]")
    return pd.Index(adata.var_names[mask].astype(str))


def read_counts(name: str, adata, features: pd.Index) -> sp.csr_matrix:
    """Raw counts of ``features`` as float32 CSR; negative or fractional counts are an error."""
    cols = adata.var_names.get_indexer(features)
    matrix = adata.X
    if matrix is None:
        raise CrossglueError(f"domain {name}: AnnData.X is empty; expected raw counts")
    matrix = sp.csr_matrix(matrix) if not sp.issparse(matrix) else matrix.tocsr()
    if len(cols) != matrix.shape[1] or (cols != np.arange(matrix.shape[1])).any():
        matrix = matrix[:, cols]
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    data = matrix.data
    if data.size and (not np.isfinite(data).all() or data.min() < 0 or not np.array_equal(data, np.round(data))):
        raise CrossglueError(f"domain {name}: AnnData.X must hold raw non-negative integer counts")
    matrix.sort_indices()
    return matrix


def categorical_codes(values: pd.Series, categories: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a column (missing → -1) and the category list used."""
    present = values.dropna().astype(str)
    cats = sorted(present.unique().tolist()) if categories is None else categories
    codes = pd.Categorical(values.astype("object").where(values.notna(), None), categories=cats).codes
    return codes.astype(np.int64), cats


def build_domain(name: str, adata, spec: DomainSpec, nodes: pd.Index) -> DomainData:
    """Turn an AnnData into arrays, checking every feature has a graph node."""
    if spec.modality not in MODALITIES:
        raise CrossglueError(f"domain {name}: modality {spec.modality!r}; expected one of {list(MODALITIES)}")
    features = domain_features(name, adata, spec)
    feature_nodes = nodes.get_indexer(spec.species + ":" + features)
    if (feature_nodes < 0).any():
        missing = (spec.species + ":" + features[feature_nodes < 0])[:5].tolist()
        raise CrossglueError(
            f"domain {name}: {int((feature_nodes < 0).sum())} feature(s) have no node in the guidance graph, "
            f"e.g. {missing}; every feature needs a node named 'species:feature'"
        )
    counts = read_counts(name, adata, features)
    rep = None
    if spec.use_rep is not None:
        if spec.use_rep not in adata.obsm:
            raise CrossglueError(f"domain {name}: obsm has no {spec.use_rep!r} (DomainSpec.use_rep)")
        rep = np.ascontiguousarray(np.asarray(adata.obsm[spec.use_rep], dtype=np.float32))
        if not np.isfinite(rep).all():
            raise CrossglueError(f"domain {name}: obsm[{spec.use_rep!r}] holds NaN or infinite values")
    for key in (spec.batch_key, spec.label_key, spec.nucleus_key):
        if key is not None and key not in adata.obs.columns:
            raise CrossglueError(f"domain {name}: obs has no column {key!r} named in its DomainSpec")
    if spec.batch_key is None:
        batch_codes, batch_cats = np.zeros(adata.n_obs, np.int64), ["all"]
    else:
        batch_codes, batch_cats = categorical_codes(adata.obs[spec.batch_key])
        if (batch_codes < 0).any():
            raise CrossglueError(f"domain {name}: obs[{spec.batch_key!r}] has missing values")
    labels = (
        adata.obs[spec.label_key].astype("object").where(adata.obs[spec.label_key].notna(), None).to_numpy()
        if spec.label_key is not None
        else np.full(adata.n_obs, None, dtype=object)
    )
    nucleus = (
        adata.obs[spec.nucleus_key].astype("object").where(adata.obs[spec.nucleus_key].notna(), None).to_numpy()
        if spec.nucleus_key is not None
        else np.full(adata.n_obs, None, dtype=object)
    )
    log_library = np.log(np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1.0)).astype(np.float32)
    return DomainData(
        name=name,
        spec=spec,
        obs_names=pd.Index(adata.obs_names.astype(str)),
        features=features,
        feature_nodes=feature_nodes.astype(np.int64),
        counts=counts,
        rep=rep,
        batch_codes=batch_codes,
        batch_categories=batch_cats,
        labels=labels,
        nucleus=nucleus,
        log_library=log_library,
    )


def split_train_val(domain: DomainData, val_fraction: float, rng: np.random.Generator) -> None:
    """Hold out ``val_fraction`` of the cells (at least one when there are ten or more)."""
    order = rng.permutation(domain.n_cells)
    n_val = int(round(val_fraction * domain.n_cells))
    n_val = max(n_val, 1) if domain.n_cells >= 10 and val_fraction > 0 else n_val
    domain.val = np.sort(order[:n_val])
    domain.train = np.sort(order[n_val:])


def paired_indices(a: DomainData, b: DomainData) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the nuclei that both domains hold in their training sets."""
    ia, ib = shared_nuclei(a.nucleus[a.train], b.nucleus[b.train])
    return a.train[ia], b.train[ib]


def epoch_draws(pool: np.ndarray, n_steps: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """(n_steps, batch) cell positions: successive permutations of ``pool``, so a small
    domain is resampled while a large one is seen once per epoch."""
    need = n_steps * batch_size
    reps = -(-need // len(pool))
    stream = np.concatenate([pool[rng.permutation(len(pool))] for _ in range(reps)])
    return stream[:need].reshape(n_steps, batch_size)


@dataclass
class CellBatch:
    """Tensors of one minibatch of one domain, on the training device; the counts are the
    non-zeros only, ``flat`` their row-major positions in the (cells, features) block."""

    x: torch.Tensor
    flat: torch.Tensor
    values: torch.Tensor
    batch: torch.Tensor
    log_library: torch.Tensor
    labels: torch.Tensor
    idx: torch.Tensor
    log_factorial: torch.Tensor  # Σ log x! over the batch's counts (a constant of the likelihood)


@dataclass
class DomainTensors:
    """A domain's per-cell arrays on the training device, copied once, so a step only
    sends cell positions and the batch's non-zero counts (counts stay sparse on the host:
    device memory does not grow with the domain)."""

    rep: torch.Tensor | None
    log_library: torch.Tensor
    batch_codes: torch.Tensor
    labels: torch.Tensor
    log_factorial: torch.Tensor  # per cell, Σ_j log x_ij!: computed once, not per step

    @classmethod
    def of(cls, domain: DomainData, label_codes: np.ndarray, device: torch.device) -> DomainTensors:
        return cls(
            rep=torch.from_numpy(domain.rep).to(device) if domain.rep is not None else None,
            log_library=torch.from_numpy(domain.log_library).to(device),
            batch_codes=torch.from_numpy(domain.batch_codes).to(device),
            labels=torch.from_numpy(label_codes).to(device),
            log_factorial=torch.from_numpy(row_log_factorial(domain.counts)).to(device),
        )


def row_log_factorial(counts: sp.csr_matrix) -> np.ndarray:
    """``Σ_j log x_ij!`` per row of a CSR count matrix (float32)."""
    per_value = torch.lgamma(torch.from_numpy(counts.data.astype(np.float64)) + 1).numpy()
    sums = np.zeros(counts.shape[0])
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    np.add.at(sums, rows, per_value)
    return sums.astype(np.float32)


def sparse_rows(domain: DomainData, idx: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``idx`` of the counts as (row-major flat positions, values) on ``device``."""
    sub = domain.counts[idx]
    n_features = domain.counts.shape[1]
    flat = np.repeat(np.arange(len(idx), dtype=np.int64) * n_features, np.diff(sub.indptr)) + sub.indices
    return torch.from_numpy(flat).to(device), torch.from_numpy(sub.data).to(device)


def normalised_counts(
    flat: torch.Tensor, values: torch.Tensor, log_library: torch.Tensor, n_features: int
) -> torch.Tensor:
    """``log1p(1e4 · x / library)`` of a batch given as non-zeros (dense only for the batch)."""
    dense = torch.zeros(len(log_library) * n_features, device=values.device, dtype=values.dtype)
    dense = dense.index_put((flat,), values).view(len(log_library), n_features)
    return torch.log1p(1e4 * dense * torch.exp(-log_library)[:, None])


def cell_inputs(domain: DomainData, idx: np.ndarray, device: torch.device) -> torch.Tensor:
    """The encoder input of rows ``idx``: the representation, or ``log1p(1e4 · x / library)``."""
    if domain.rep is not None:
        return torch.from_numpy(domain.rep[idx]).to(device)
    flat, values = sparse_rows(domain, idx, device)
    log_library = torch.from_numpy(domain.log_library[idx]).to(device)
    return normalised_counts(flat, values, log_library, domain.counts.shape[1])


def make_batch(
    domain: DomainData,
    idx: np.ndarray,
    tensors: DomainTensors,
    device: torch.device,
    idx_device: torch.Tensor | None = None,
) -> CellBatch:
    """Slice rows ``idx`` of a domain into tensors (counts as non-zeros); ``idx_device`` is
    ``idx`` already on the device (the trainer sends a whole epoch's draws at once)."""
    at = torch.from_numpy(idx).to(device) if idx_device is None else idx_device
    flat, values = sparse_rows(domain, idx, device)
    log_library = tensors.log_library[at]
    if tensors.rep is not None:
        x = tensors.rep[at]
    else:
        x = normalised_counts(flat, values, log_library, domain.counts.shape[1])
    return CellBatch(
        x=x,
        flat=flat,
        values=values,
        batch=tensors.batch_codes[at],
        log_library=log_library,
        labels=tensors.labels[at],
        idx=at,
        log_factorial=tensors.log_factorial[at].sum(),
    )
