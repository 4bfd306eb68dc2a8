"""Rule integration_metrics: every metric for the main and the ablation embedding, against the
given labels and (demo) against the true cell types."""

import logging

import anndata as ad
import numpy as np
import pandas as pd

from crossglue.analysis.annotate import has_label, labels_for, source_cell_ids
from crossglue.errors import CrossglueError
from crossglue.io_utils import atomic_path
from crossglue.analysis.metrics import METRIC_CATEGORIES, evaluate_embedding, rna_pca
from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.integration_metrics")


def truth_labels(obs: pd.DataFrame, path: str) -> pd.Series:
    truth = pd.read_csv(path, sep="\t", dtype=str)
    if not {"cell", "cell_type"} <= set(truth.columns):
        raise CrossglueError(f"{path}: expected columns cell and cell_type")
    by_cell = truth.drop_duplicates("cell").set_index("cell")["cell_type"]
    labels = by_cell.reindex(source_cell_ids(obs).to_numpy())
    log.info("truth cell types found for %d of %d cells", labels.notna().sum(), len(obs))
    return pd.Series(labels.to_numpy(), index=obs.index)


def main(smk) -> None:
    cfg = smk.params.metrics
    label_key = smk.params.label_key
    runs = {"main": ad.read_h5ad(smk.input.cells), "ablation": ad.read_h5ad(smk.input.ablation)}
    labelled = has_label(runs["main"].obs[label_key])
    unintegrated = {}
    for species, path in zip(smk.params.species, smk.input.rna, strict=True):
        rna = ad.read_h5ad(path)
        given = labels_for(rna.obs_names, runs["main"].obs, label_key, modality="rna")
        keep = has_label(given.reset_index(drop=True))
        if keep.sum() >= 10:
            rows = labels_for(rna.obs_names, runs["main"].obs.assign(_row=runs["main"].obs_names), "_row", "rna")
            unintegrated[species] = (pd.Index(rows[keep].to_numpy()), rna_pca(rna[keep], cfg["n_pcs"], cfg["seed"]))
    table = pd.DataFrame({"metric": list(METRIC_CATEGORIES), "category": list(METRIC_CATEGORIES.values())})
    for name, cells in runs.items():
        x = np.asarray(cells.obsm["X_glue"], dtype=float)
        given = cells.obs[label_key].where(has_label(cells.obs[label_key]))
        scores = evaluate_embedding(x, cells.obs, given, unintegrated=unintegrated, k=cfg["k"], seed=cfg["seed"])
        table[name] = table["metric"].map(scores)
        if smk.input.get("truth_cells"):
            truth = truth_labels(cells.obs, smk.input.truth_cells)
            transferred = cells.obs["cell_type_annotated"].astype(str).where(~has_label(cells.obs[label_key]))
            scores = evaluate_embedding(x, cells.obs, truth, unintegrated=unintegrated, k=cfg["k"], seed=cfg["seed"])
            # annotation accuracy on the cells whose label was transferred, not given
            unl = transferred.notna().to_numpy() & truth.notna().to_numpy()
            scores["label_transfer_accuracy"] = float((transferred[unl] == truth[unl]).mean()) if unl.any() else np.nan
            table[f"{name}_truth"] = table["metric"].map(scores)
        else:
            table[f"{name}_truth"] = np.nan
    log.info("metrics on %d labelled cells:\n%s", labelled.sum(), table.to_string(index=False))
    with atomic_path(smk.output.metrics) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.4f")


run(main, snakemake)  # noqa: F821 - injected by Snakemake
