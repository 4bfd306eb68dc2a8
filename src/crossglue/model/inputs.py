"""Per-domain inputs of the model: PCA for RNA, LSI for ATAC, and feature selection.

RNA: counts normalised to 1e4 per cell, log1p, highly variable genes (Seurat flavour,
per batch when a batch column is given), scaled (clipped at 10), PCA on the HVGs only.
ATAC: TF-IDF, log1p, truncated SVD, then per-cell standardisation of the components
(so sequencing depth, which dominates raw LSI, does not dominate the encoder input).
Raw counts in X are left untouched: the model decodes them.

Feature selection (which features the decoders reconstruct): genes are each species'
HVGs; an element is kept when the guidance graph links it to a selected gene of its species
or to an element of another species. Elements with neither kind of tie cannot inform
alignment and only add decoder cost. Unselected features stay graph nodes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from crossglue import embedding
from crossglue.errors import CrossglueError


def _counts(adata, name: str) -> sp.csr_matrix:
    x = adata.X
    x = sp.csr_matrix(x) if not sp.issparse(x) else x.tocsr()
    if x.nnz and (x.data.min() < 0 or not np.isfinite(x.data).all()):
        raise CrossglueError(f"{name}: X must hold raw non-negative counts")
    return x.astype(np.float32)


def rna_pca(
    adata,
    n_comps: int = 100,
    n_top_genes: int = 2000,
    batch_key: str | None = None,
    key_added: str = "X_pca",
    seed: int = 0,
    name: str = "RNA domain",
) -> None:
    """Add ``var['highly_variable']`` and ``obsm[key_added]`` (PCA of scaled log data on HVGs)."""
    counts = _counts(adata, name)
    if adata.n_obs < 3:
        raise CrossglueError(f"{name}: {adata.n_obs} cells; PCA needs at least 3")
    library = np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1.0)
    lognorm = sp.csr_matrix(counts.multiply(1e4 / library[:, None]))
    lognorm.data = np.log1p(lognorm.data)
    tmp = sc.AnnData(lognorm, obs=adata.obs[[batch_key]] if batch_key else None)
    tmp.var_names = adata.var_names
    n_top = min(n_top_genes, adata.n_vars)
    if batch_key is not None and adata.obs[batch_key].nunique() < 2:
        batch_key = None
    sc.pp.highly_variable_genes(tmp, flavor="seurat", n_top_genes=n_top, batch_key=batch_key)
    hvg = tmp.var["highly_variable"].to_numpy(dtype=bool)
    adata.var["highly_variable"] = hvg
    x = lognorm[:, hvg].toarray()
    x -= x.mean(axis=0)
    sd = x.std(axis=0)
    x /= np.where(sd > 0, sd, 1.0)
    np.clip(x, -10, 10, out=x)
    k = max(1, min(n_comps, x.shape[0] - 1, x.shape[1] - 1))
    u, s, _ = randomized_svd(x, n_components=k, n_iter=7, random_state=seed)
    adata.obsm[key_added] = (u * s).astype(np.float32)


def atac_lsi(adata, n_comps: int = 100, key_added: str = "X_lsi", seed: int = 0, name: str = "ATAC domain") -> None:
    """Add ``obsm[key_added]``: TF-IDF → log1p(1e4 ·) → truncated SVD → per-cell z-score."""
    counts = _counts(adata, name)
    if adata.n_obs < 3:
        raise CrossglueError(f"{name}: {adata.n_obs} cells; LSI needs at least 3")
    lsi = embedding.lsi(counts, n_comps, seed)
    lsi -= lsi.mean(axis=1, keepdims=True)
    sd = lsi.std(axis=1, keepdims=True)
    lsi /= np.where(sd > 0, sd, 1.0)
    adata.obsm[key_added] = lsi.astype(np.float32)


def select_features(
    domains: Mapping[str, object],
    specs: Mapping[str, object],
    edges: pd.DataFrame,
    key_added: str = "selected",
    gene_key: str = "highly_variable",
) -> dict[str, int]:
    """Flag ``var[key_added]`` in every domain by the rule in the module docstring.

    RNA domains need ``var[gene_key]`` (from :func:`rna_pca`). Returns the number of
    selected features per domain.
    """
    selected_nodes: set[str] = set()
    element_species: dict[str, str] = {}
    for name, adata in domains.items():
        spec = specs[name]
        if spec.modality == "rna":
            if gene_key not in adata.var.columns:
                raise CrossglueError(f"domain {name}: var has no {gene_key!r}; run rna_pca first")
            hvg = adata.var_names[adata.var[gene_key].to_numpy(dtype=bool)]
            selected_nodes.update(spec.species + ":" + hvg.astype(str))
        else:
            element_species.update(dict.fromkeys(spec.species + ":" + adata.var_names.astype(str), spec.species))
    src = edges["source"].astype(str).to_numpy()
    dst = edges["target"].astype(str).to_numpy()
    src_species = pd.Series(src).map(element_species).to_numpy()
    dst_species = pd.Series(dst).map(element_species).to_numpy()
    to_gene = np.isin(dst, list(selected_nodes))
    to_other_element = pd.notna(dst_species) & (dst_species != src_species)
    keep_elements = set(src[pd.notna(src_species) & (to_gene | to_other_element)])
    counts = {}
    for name, adata in domains.items():
        spec = specs[name]
        nodes = spec.species + ":" + adata.var_names.astype(str)
        chosen = np.isin(nodes, list(selected_nodes if spec.modality == "rna" else keep_elements))
        adata.var[key_added] = chosen
        counts[name] = int(chosen.sum())
    return counts
