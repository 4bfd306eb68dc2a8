"""The integration-metrics table of the pipeline: every metric of the main (and ablation)
embedding, against the given labels and, on the demo, against the true cell types.

The metrics themselves are plain-array functions in :mod:`crossglue.analysis.metrics`; this
module lines the cells, their labels and each species' unintegrated RNA view up for them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd

from crossglue.analysis.annotate import has_label, labels_for, source_cell_ids
from crossglue.analysis.metrics import METRIC_CATEGORIES, evaluate_embedding
from crossglue.errors import CrossglueError
from crossglue.model.inputs import rna_pca

log = logging.getLogger("crossglue.analysis.evaluation")

# The unintegrated view of one species' RNA (ALCS): the model's own PCA recipe on this many HVGs.
UNINTEGRATED_TOP_GENES = 2000


def truth_labels(obs: pd.DataFrame, truth: pd.DataFrame, source: str) -> pd.Series:
    """The true cell type of every row of ``obs`` (NA where the truth table has none)."""
    if not {"cell", "cell_type"} <= set(truth.columns):
        raise CrossglueError(f"{source}: expected columns cell and cell_type")
    by_cell = truth.drop_duplicates("cell").set_index("cell")["cell_type"]
    labels = by_cell.reindex(source_cell_ids(obs).to_numpy())
    log.info("truth cell types found for %d of %d cells", labels.notna().sum(), len(obs))
    return pd.Series(labels.to_numpy(), index=obs.index)


def unintegrated_views(
    rna: Mapping[str, ad.AnnData], cells: ad.AnnData, label_key: str, n_pcs: int, seed: int
) -> dict[str, tuple[pd.Index, np.ndarray]]:
    """species -> (row names in ``cells``, PCA of its labelled RNA cells) for ALCS."""
    views = {}
    for species, adata in rna.items():
        given = labels_for(adata.obs_names, cells.obs, label_key, modality="rna")
        keep = has_label(given.reset_index(drop=True))
        if keep.sum() < 10:
            continue
        rows = labels_for(adata.obs_names, cells.obs.assign(_row=cells.obs_names), "_row", "rna")
        work = adata[keep].copy()
        rna_pca(work, n_comps=n_pcs, n_top_genes=UNINTEGRATED_TOP_GENES, seed=seed, name=f"{species} RNA")
        views[species] = (pd.Index(rows[keep].to_numpy()), np.asarray(work.obsm["X_pca"]))
    return views


def integration_table(
    runs: Mapping[str, ad.AnnData],
    rna: Mapping[str, ad.AnnData],
    label_key: str,
    k: int = 15,
    n_pcs: int = 30,
    seed: int = 0,
    truth: pd.DataFrame | None = None,
    truth_source: str = "truth cell table",
) -> pd.DataFrame:
    """One row per metric; a column per run (``main``, ``ablation``) and, with ``truth``, a
    ``{run}_truth`` column scored against the true cell types (NA without truth)."""
    main = runs["main"]
    unintegrated = unintegrated_views(rna, main, label_key, n_pcs, seed)
    table = pd.DataFrame({"metric": list(METRIC_CATEGORIES), "category": list(METRIC_CATEGORIES.values())})
    for name, cells in runs.items():
        x = np.asarray(cells.obsm["X_glue"], dtype=float)
        given = cells.obs[label_key].where(has_label(cells.obs[label_key]))
        scores = evaluate_embedding(x, cells.obs, given, unintegrated=unintegrated, k=k, seed=seed)
        table[name] = table["metric"].map(scores)
        if truth is None:
            table[f"{name}_truth"] = np.nan
            continue
        true = truth_labels(cells.obs, truth, truth_source)
        transferred = cells.obs["cell_type_annotated"].astype(str).where(~has_label(cells.obs[label_key]))
        scores = evaluate_embedding(x, cells.obs, true, unintegrated=unintegrated, k=k, seed=seed)
        # annotation accuracy on the cells whose label was transferred, not given
        unlabelled = transferred.notna().to_numpy() & true.notna().to_numpy()
        scores["label_transfer_accuracy"] = (
            float((transferred[unlabelled] == true[unlabelled]).mean()) if unlabelled.any() else np.nan
        )
        table[f"{name}_truth"] = table["metric"].map(scores)
    log.info("metrics on %d labelled cells:\n%s", has_label(main.obs[label_key]).sum(), table.to_string(index=False))
    return table
