"""What a user opens in scanpy or muon: expression in ``cells.h5ad``, one modality per domain
in ``cells.h5mu``.

``cells.h5ad`` (one row per (cell, modality)) has genes as columns, so that
``sc.pl.umap(adata, color="GAD1")`` works on it:

- ``var_names`` are gene symbols (``gene_name``, else the id), made unique within a species
  (``GENE``, ``GENE-1``); a symbol both species share is one column, so orthologues named
  alike plot together. ``var["gene_id_<species>"]`` holds each species' id (NA where the
  species lacks the symbol) and ``var["in_<species>"]`` whether it has the gene; a gene a
  species lacks reads 0 for that species' cells.
- RNA rows: ``layers["counts"]`` the UMI counts, ``X`` = log1p(1e4 · counts / library).
- ATAC rows: gene activity as in Signac's ``GeneActivity``: the counts of the elements that
  overlap the gene body or its 2 kb promoter (the guidance graph's peak–gene edges at
  distance 0, so chromosome aliases are already resolved), normalised the same way.
- ``obs["expression"]`` says which a row holds: ``rna`` or ``gene_activity``.

Both matrices stay sparse (float32); nothing cells × genes is ever dense.

``cells.h5mu`` (MuData): one modality per domain, named as the domain (``human:rna``, …),
with rows named by cell id, so a multiome nucleus is one MuData row present in its RNA and
ATAC modalities; ``mdata.obs`` holds species, assay, sample, donor and cell type. Each
modality has its own features (var names are the guidance-graph nodes ``species:feature``,
unique across modalities; ``var["feature"]`` the plain id, RNA's ``var["gene_symbol"]``),
``obsm["X_glue"]`` (cell embeddings) and ``varm["X_glue"]``
(feature embeddings). RNA: ``layers["counts"]`` and log-normalised ``X``; ATAC: counts in
``X`` (normalisation such as TF-IDF is the user's choice).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.errors import CrossglueError

log = logging.getLogger("crossglue.model.outputs")

# obs columns of cells.h5ad that the per-domain modalities of cells.h5mu carry too.
MODALITY_OBS = ("species", "modality", "assay", "sample", "donor", "cell_type", "nucleus", "domain")
# ... and those that describe the nucleus, not the modality: the MuData's own obs.
NUCLEUS_OBS = ("species", "assay", "sample", "donor", "cell_type")


def log_normalise(counts, target: float = 1e4) -> sp.csr_matrix:
    """log1p(target · counts / library) per row, sparse float32 (an empty row stays 0)."""
    x = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    library = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
    scale = np.divide(target, library, out=np.zeros_like(library), where=library > 0)
    x.data *= np.repeat(scale, np.diff(x.indptr)).astype(np.float32)
    np.log1p(x.data, out=x.data)
    return x


def unique_gene_symbols(var: pd.DataFrame) -> pd.Index:
    """Each gene's symbol (``gene_name``, else its id), made unique within the table."""
    ids = pd.Series(var.index.astype(str), index=var.index)
    names = var["gene_name"].astype("string") if "gene_name" in var else pd.Series(pd.NA, index=var.index)
    names = names.str.strip()
    symbols = names.where(names.notna() & (names != "") & (names != "NA"), ids).astype(str)
    return ad.utils.make_index_unique(pd.Index(symbols.to_numpy()))


def gene_activity(atac: ad.AnnData, species: str, genes: pd.Index, edges: pd.DataFrame) -> sp.csr_matrix:
    """Cells × ``genes`` counts: the sum over the elements overlapping each gene's body + promoter.

    ``edges`` is the guidance-graph edge table (nodes ``species:feature``); its peak–gene
    edges at distance 0 are the overlaps the graph stage found.
    """
    if not {"type", "distance"} <= set(edges.columns):
        raise CrossglueError(
            "guidance edges: columns 'type' and 'distance' are needed for ATAC gene activity "
            "(the edge table the graph stage writes, results/graph/guidance_edges.tsv.gz, has them)"
        )
    overlap = edges[(edges["type"] == "peak_gene") & (pd.to_numeric(edges["distance"], errors="coerce") == 0)]
    elements = pd.Index(species + ":" + atac.var_names.astype(str))
    gene_nodes = pd.Index(species + ":" + genes.astype(str))
    el = elements.get_indexer(overlap["source"])
    gn = gene_nodes.get_indexer(overlap["target"])
    keep = (el >= 0) & (gn >= 0)
    el, gn = el[keep], gn[keep]
    link = sp.csr_matrix((np.ones(len(el), np.float32), (el, gn)), shape=(len(elements), len(gene_nodes)))
    link.data[:] = 1.0  # an element-gene pair listed twice still counts once
    if link.nnz == 0:
        log.warning("%s: no element overlaps a gene body or promoter; gene activity is 0 for its ATAC cells", species)
    counts = sp.csr_matrix(atac.X, dtype=np.float32)
    return sp.csr_matrix(counts @ link)


def expression_matrix(
    domains: Mapping[str, ad.AnnData], edges: pd.DataFrame
) -> tuple[sp.csr_matrix, pd.DataFrame, np.ndarray]:
    """Counts (cells of every domain, in order) × genes by symbol, the gene table and each row's kind.

    A species with ATAC but no RNA domain has no gene annotation here: its rows stay empty
    and are marked ``none``.
    """
    rna = {name.split(":")[0]: adata for name, adata in domains.items() if name.endswith(":rna")}
    symbols = {sp_: unique_gene_symbols(adata.var) for sp_, adata in rna.items()}
    var_names = pd.Index(pd.unique(np.concatenate([s.to_numpy() for s in symbols.values()] or [np.array([], str)])))
    var = pd.DataFrame(index=var_names)
    for sp_, sym in symbols.items():
        ids = pd.Series(rna[sp_].var_names.astype(str), index=sym)
        var[f"gene_id_{sp_}"] = ids.reindex(var_names).to_numpy(dtype=object)
        var[f"in_{sp_}"] = var_names.isin(sym)
    blocks, kinds = [], []
    for name, adata in domains.items():
        species, modality = name.split(":")
        if species not in rna:
            blocks.append(sp.csr_matrix((adata.n_obs, len(var_names)), dtype=np.float32))
            kinds.append(np.full(adata.n_obs, "none", dtype=object))
            continue
        if modality == "rna":
            counts, kind = sp.csr_matrix(adata.X, dtype=np.float32), "rna"
        else:
            counts, kind = gene_activity(adata, species, rna[species].var_names, edges), "gene_activity"
        columns = var_names.get_indexer(symbols[species])
        shape = (adata.n_obs, len(var_names))
        block = sp.csr_matrix((counts.data, columns[counts.indices], counts.indptr), shape=shape)
        block.sort_indices()
        blocks.append(block)
        kinds.append(np.full(adata.n_obs, kind, dtype=object))
    counts = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, len(var_names)), dtype=np.float32)
    return counts, var, np.concatenate(kinds) if kinds else np.array([], dtype=object)


def with_expression(cells: ad.AnnData, domains: Mapping[str, ad.AnnData], edges: pd.DataFrame) -> ad.AnnData:
    """``cells`` (rows in the order of ``domains``, as :func:`crossglue.model.stage.cell_table`
    writes them) with genes as columns: counts layer, log-normalised X, obs ``expression``."""
    order = np.concatenate([np.full(a.n_obs, n, dtype=object) for n, a in domains.items()])
    if not np.array_equal(cells.obs["domain"].astype(str).to_numpy(), order.astype(str)):
        raise CrossglueError("cells.h5ad: rows are not in domain order; build them with cell_table(domains, model)")
    counts, var, kinds = expression_matrix(domains, edges)
    obs = cells.obs.copy()
    obs["expression"] = pd.Categorical(kinds)
    out = ad.AnnData(X=log_normalise(counts), obs=obs, var=var, obsm=dict(cells.obsm), layers={"counts": counts})
    for kind in ("rna", "gene_activity"):
        rows = kinds == kind
        if rows.any():
            log.info(
                "cells.h5ad: %d %s rows x %d genes, %.1f non-zero genes per row",
                int(rows.sum()),
                kind,
                out.n_vars,
                counts[rows].nnz / rows.sum(),
            )
    return out


def cells_mudata(domains: Mapping[str, ad.AnnData], cells: ad.AnnData, features: ad.AnnData):
    """A MuData with one modality per domain: raw features, cell and feature embeddings."""
    import mudata as md

    md.set_options(pull_on_update=False)
    node_row = pd.Index(features.obs_names.astype(str))
    mods = {}
    for name, adata in domains.items():
        species, modality = name.split(":")
        rows = (cells.obs["domain"].astype(str) == name).to_numpy()
        obs = cells.obs.loc[rows, [c for c in MODALITY_OBS if c in cells.obs]].copy()
        obs.index = pd.Index(cells.obs.loc[rows, "cell_id"].astype(str).to_numpy())
        var = adata.var.copy()
        var.insert(0, "feature", adata.var_names.astype(str))
        if modality == "rna":
            var.insert(1, "gene_symbol", unique_gene_symbols(adata.var).to_numpy())
        var.index = pd.Index(species + ":" + adata.var_names.astype(str))
        at = node_row.get_indexer(var.index)
        if (at < 0).any():
            missing = var.index[at < 0][:3].tolist()
            raise CrossglueError(
                f"features.h5ad: no embedding for {int((at < 0).sum())} {name} feature(s), e.g. {missing}"
            )
        counts = sp.csr_matrix(adata.X, dtype=np.float32)
        mod = ad.AnnData(
            X=log_normalise(counts) if modality == "rna" else counts,
            obs=obs,
            var=var,
            obsm={"X_glue": np.asarray(cells.obsm["X_glue"][rows])},
            varm={"X_glue": np.asarray(features.obsm["X_glue"][at])},
            layers={"counts": counts} if modality == "rna" else None,
        )
        mods[name] = mod
    mdata = md.MuData(mods)
    # The nucleus-level columns once per MuData row (a multiome nucleus's two rows agree).
    shared = pd.concat([m.obs[list(NUCLEUS_OBS)] for m in mods.values()])
    mdata.obs = shared[~shared.index.duplicated()].reindex(mdata.obs_names)
    return mdata
