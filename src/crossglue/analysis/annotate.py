"""Cell annotation in the joint space: clusters, a 2-D map, and labels carried to every cell.

Labels given for some samples (usually one species) are transferred to all cells by a
k-nearest-neighbour vote in ``X_glue``; a cell whose winning label holds less than
``min_confidence`` of the (distance-weighted) vote is called ``unassigned`` rather than
forced into a type, so species-specific or novel types are not hidden.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from crossglue.embedding import knn_indices
from crossglue.errors import CrossglueError

log = logging.getLogger(__name__)

UNASSIGNED = "unassigned"


def has_label(labels: pd.Series) -> np.ndarray:
    """True where a label is given (not NA, empty, 'NA' or 'nan')."""
    text = labels.astype("string")
    return (text.notna() & ~text.str.strip().isin(["", "NA", "nan", "NaN", "None"])).to_numpy(dtype=bool)


def transfer_labels(x: np.ndarray, labels: pd.Series, k: int = 30, min_confidence: float = 0.5) -> pd.DataFrame:
    """Label every cell by a distance-weighted vote of its ``k`` nearest labelled cells.

    Returns a frame aligned to ``labels`` with ``label`` (the winner, or ``unassigned``
    below ``min_confidence``) and ``confidence`` (the winner's share of the vote). A labelled
    cell does not vote for itself, so its confidence measures agreement with its neighbours.
    Weights are 1 / (1 + distance / median neighbour distance), so near cells count more
    without a single near duplicate deciding alone.
    """
    labels = pd.Series(labels)
    given = has_label(labels)
    if given.sum() < 2:
        raise CrossglueError(
            f"label transfer: {given.sum()} labelled cell(s); at least 2 needed. Give cell_type labels "
            "for some samples (metadata column cell_type in the sample sheet)"
        )
    names, ref_codes = np.unique(labels[given].astype(str).to_numpy(), return_inverse=True)
    # A labelled cell does not vote for itself (knn_indices excludes it).
    nbr, dist = knn_indices(x, k, reference=np.flatnonzero(given), return_distance=True)
    k_eff = nbr.shape[1]
    ref_pos = np.full(len(x), -1)
    ref_pos[given] = np.arange(int(given.sum()))
    nbr = ref_pos[nbr]
    scale = np.median(dist) or 1.0
    weight = 1.0 / (1.0 + dist / scale)
    votes = np.zeros((len(x), len(names)))
    np.add.at(votes, (np.repeat(np.arange(len(x)), k_eff), ref_codes[nbr].ravel()), weight.ravel())
    share = votes / votes.sum(axis=1, keepdims=True)
    best = share.argmax(axis=1)
    confidence = share[np.arange(len(x)), best]
    label = np.where(confidence >= min_confidence, names[best], UNASSIGNED)
    return pd.DataFrame({"label": label, "confidence": confidence}, index=labels.index)


def annotate_cells(
    adata,
    use_rep: str = "X_glue",
    label_key: str = "cell_type",
    n_neighbors: int = 15,
    resolution: float = 1.0,
    transfer_k: int = 30,
    min_confidence: float = 0.5,
    seed: int = 0,
) -> None:
    """Leiden clusters, UMAP and transferred labels of ``adata`` (in place).

    Adds obs ``leiden``, ``cell_type_transferred``, ``cell_type_confidence`` and
    ``cell_type_annotated`` (the given label where there is one, else the transferred one),
    and obsm ``X_umap``.
    """
    import scanpy as sc

    if use_rep not in adata.obsm:
        raise CrossglueError(f"annotation: cells lack obsm['{use_rep}'] (the joint embedding written by the model)")
    if label_key not in adata.obs:
        raise CrossglueError(f"annotation: cells lack obs['{label_key}'] (given labels, NA where none)")
    x = np.asarray(adata.obsm[use_rep], dtype=np.float64)
    if not np.isfinite(x).all():
        raise CrossglueError(f"annotation: obsm['{use_rep}'] holds NaN or infinite values")
    # Exact kNN (sklearn) at every size: scanpy's default switches to pynndescent at 8,192
    # cells, whose csr_array output its own neighbour code cannot read with scipy >= 1.14
    # ('csr_array' object has no attribute 'getnnz').
    sc.pp.neighbors(
        adata, n_neighbors=min(n_neighbors, adata.n_obs - 1), use_rep=use_rep, random_state=seed, transformer="sklearn"
    )
    sc.tl.leiden(adata, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2, directed=False)
    sc.tl.umap(adata, random_state=seed)
    labels = adata.obs[label_key]
    transferred = transfer_labels(x, labels, k=transfer_k, min_confidence=min_confidence)
    adata.obs["cell_type_transferred"] = pd.Categorical(transferred["label"].to_numpy())
    adata.obs["cell_type_confidence"] = transferred["confidence"].to_numpy()
    given = has_label(labels)
    final = np.where(given, labels.astype(str).to_numpy(), transferred["label"].to_numpy())
    adata.obs["cell_type_annotated"] = pd.Categorical(final)
    log.info(
        "annotated %d cells: %d labelled, %d transferred, %d unassigned, %d Leiden clusters",
        adata.n_obs,
        given.sum(),
        (~given).sum(),
        int((final == UNASSIGNED).sum()),
        adata.obs["leiden"].nunique(),
    )


def source_cell_ids(obs: pd.DataFrame) -> pd.Series:
    """The id each row of cells.h5ad has in its per-species RNA / ATAC AnnData
    (``"{sample}#{barcode}"``): obs ``cell_id`` when the model wrote one (multiome nuclei appear
    twice in cells.h5ad, so its row names may be made unique), else the row name."""
    ids = obs["cell_id"] if "cell_id" in obs else pd.Series(obs.index, index=obs.index)
    return ids.astype(str)


def labels_for(ids: pd.Index, cells_obs: pd.DataFrame, column: str, modality: str | None = None) -> pd.Series:
    """``column`` of cells.h5ad for the cells ``ids`` of one per-species AnnData (NA where the
    cell is not in cells.h5ad). With ``modality``, rows of another modality are ignored, so a
    multiome nucleus takes the label of its own profile."""
    rows = cells_obs
    if modality is not None and "modality" in rows and (rows["modality"].astype(str) == modality).any():
        rows = rows[rows["modality"].astype(str) == modality]
    table = pd.Series(rows[column].astype(object).to_numpy(), index=source_cell_ids(rows).to_numpy())
    table = table[~table.index.duplicated()]
    return table.reindex(pd.Index(ids).astype(str))
