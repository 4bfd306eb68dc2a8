"""Cell annotation in the joint space: clusters, a 2-D map, and labels carried to every cell.

Labels given for some samples (usually one species) are transferred to all cells by a
k-nearest-neighbour vote in ``X_glue``; a cell whose winning label holds less than
``min_confidence`` of the (distance-weighted) vote is called ``unassigned`` rather than
forced into a type, so species-specific or novel types are not hidden.

A species-only type sits, in the joint space, on top of its nearest shared type (the
alignment pulls every species' cells onto the others'), so the vote alone labels it as that
type with full confidence. :func:`find_species_specific_clusters` looks at ortholog expression
instead: each species' cells are clustered on their own, and a cluster whose best partner
type of another species correlates with it clearly less than the species' best cluster for
that type has no counterpart; where the species gave no labels in that cluster, its cells
are ``unassigned``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from crossglue.analysis.correspondence import (
    CORRESPONDENCE_COLUMNS,
    correspondence_table,
    counterpart_ratio,
    mapping_scores,
    ortholog_correlation,
    species_profiles,
    split_half_reliability,
    warn_swaps,
)
from crossglue.embedding import knn_indices, knn_leiden
from crossglue.errors import CrossglueError
from crossglue.graph.orthologs import one2one_pairs

log = logging.getLogger(__name__)

# Principal components of a species' own expression that its clusters are found in.
EXPRESSION_PCS = 50

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
    rna: Mapping[str, ad.AnnData] | None = None,
    orthologs: pd.DataFrame | None = None,
    species_resolution: float = 1.5,
    min_counterpart_ratio: float = 0.87,
    min_cluster_cells: int = 30,
    mapping_k: int = 15,
) -> dict[str, pd.DataFrame]:
    """Leiden clusters, UMAP and transferred labels of ``adata`` (in place).

    Adds obs ``leiden``, ``cell_type_transferred``, ``cell_type_confidence`` and
    ``cell_type_annotated`` (the given label where there is one, else the transferred one),
    and obsm ``X_umap``. With ``rna`` (species -> its rna.h5ad) and ``orthologs`` (the
    ortholog edge table) also obs ``species_cluster`` and ``counterpart_ratio`` (see
    :func:`find_species_specific_clusters`; transferred labels of cells in a cluster without
    counterpart become ``unassigned``, their vote share kept as confidence), and returns the
    tables ``species_clusters`` and ``correspondence`` (:func:`type_correspondence`);
    else returns no tables.
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
    tables: dict[str, pd.DataFrame] = {}
    if rna is not None and orthologs is not None:
        clusters = find_species_specific_clusters(
            adata.obs,
            x,
            labels.to_numpy(),
            given,
            transferred["label"].to_numpy(),
            rna,
            orthologs,
            resolution=species_resolution,
            min_ratio=min_counterpart_ratio,
            min_cells=min_cluster_cells,
            n_neighbors=n_neighbors,
            seed=seed,
        )
        tables["species_clusters"] = clusters["table"]
        adata.obs["species_cluster"] = pd.Categorical(clusters["cluster"])
        adata.obs["counterpart_ratio"] = clusters["ratio"]
        no_counterpart = clusters["unassign"]
        transferred.loc[no_counterpart, "label"] = UNASSIGNED
        adata.obs["cell_type_transferred"] = pd.Categorical(transferred["label"].to_numpy())
    final = np.where(given, labels.astype(str).to_numpy(), transferred["label"].to_numpy())
    adata.obs["cell_type_annotated"] = pd.Categorical(final)
    if rna is not None and orthologs is not None:
        tables["correspondence"] = type_correspondence(adata.obs, x, final, rna, orthologs, k=mapping_k)
    log.info(
        "annotated %d cells: %d labelled, %d transferred, %d unassigned, %d Leiden clusters",
        adata.n_obs,
        given.sum(),
        (~given).sum(),
        int((final == UNASSIGNED).sum()),
        adata.obs["leiden"].nunique(),
    )
    return tables


def _obs_arrays(obs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if "species" not in obs or "modality" not in obs:
        raise CrossglueError("annotation: cells lack obs 'species' / 'modality' (written by the model stage)")
    ids = source_cell_ids(obs).to_numpy()
    return ids, obs["species"].astype(str).to_numpy(), obs["modality"].astype(str).to_numpy()


def find_species_specific_clusters(
    obs: pd.DataFrame,
    x: np.ndarray,
    labels: np.ndarray,
    given: np.ndarray,
    transferred: np.ndarray,
    rna: Mapping[str, ad.AnnData],
    orthologs: pd.DataFrame,
    resolution: float = 1.5,
    min_ratio: float = 0.87,
    min_cells: int = 30,
    n_neighbors: int = 15,
    seed: int = 0,
) -> dict:
    """Clusters of each species (Leiden on its RNA nuclei's own expression, see
    :func:`_species_clusters`) and whether each has a counterpart in the other species,
    judged by one2one-ortholog expression.

    A cluster's partner in another species is that species' type (given or transferred label)
    its pseudobulk correlates with best; its ratio is that correlation over the best any
    cluster of its own species reaches with the partner (clusters of at least ``min_cells``
    RNA cells, whose pseudobulk is trusted). A cluster of ``min_cells`` or more RNA cells
    whose ratio is below ``min_ratio`` towards every other species has no counterpart: a
    candidate species-specific type. Its cells that were given no label and whose cluster
    holds no given label are to be ``unassigned`` (a species-only type the species named
    itself keeps its name).

    Both profiles are centred on the mean of the species' type profiles (not of its
    clusters, so a type split into many clusters does not become the baseline), and the
    cluster's correlations are divided by the square root of its split-half reliability.
    Clusters come from the species' own expression, not the joint embedding: with ortholog
    anchors (:mod:`crossglue.model.anchors`) training pulls the macaque-only type of the
    realistic preset onto its nearest shared type, and clusters of the embedding then
    unassigned none of it (seed 0); clusters of expression unassign 95 %. Measured on the
    realistic preset (seeds 0-2, resolution 1.5), expression clusters find the macaque-only
    type as the one candidate per seed (ratio 0.76-0.81).
    """
    ids, species, modality = _obs_arrays(obs)
    has_rna = set(species[modality == "rna"])
    names = [s for s in pd.unique(species) if s in rna and s in has_rna]
    nucleus = obs["nucleus"].astype(object).where(obs["nucleus"].notna(), None).to_numpy() if "nucleus" in obs else None
    cluster = _species_clusters(x, species, names, n_neighbors, resolution, seed, ids, modality, rna, nucleus)
    label_col = np.where(given, np.asarray(labels, dtype=object).astype(str), transferred).astype(object)
    label_col[label_col == UNASSIGNED] = None
    rows, rna_sizes = _counterpart_rows(
        _Cells(ids, species, modality, cluster, label_col, given), names, rna, orthologs, min_cells, seed
    )
    table = pd.DataFrame(rows)
    if table.empty:
        return {"cluster": cluster, "ratio": np.ones(len(obs)), "unassign": np.zeros(len(obs), bool), "table": table}
    per_cluster = table.groupby("cluster")["ratio"].max()  # a counterpart in any other species suffices
    big_enough = table.groupby("cluster")["n_rna_cells"].first() >= min_cells
    specific = (per_cluster < min_ratio) & big_enough
    table["species_specific"] = table["cluster"].map(specific).astype(bool)
    labelled_clusters = set(table.loc[table["n_labelled"] > 0, "cluster"])
    unassign_clusters = [c for c in specific.index[specific] if c not in labelled_clusters]
    _warn_species_specific(table, specific.index[specific], unassign_clusters)
    table["label_mismatch"] = _label_mismatches(table, big_enough, min_ratio)
    unassign = np.isin(cluster.astype(str), unassign_clusters) & ~given
    ratio_per_cell = pd.Series(cluster).map(per_cluster).fillna(1.0).to_numpy(dtype=float)
    cols = [
        "species",
        "cluster",
        "n_cells",
        "n_rna_cells",
        "n_labelled",
        "top_label",
        "other_species",
        "partner",
        "ortholog_correlation",
        "best_correlation",
        "reliability",
        "ratio",
        "species_specific",
        "label_mismatch",
    ]
    return {"cluster": cluster, "ratio": ratio_per_cell, "unassign": unassign, "table": table[cols]}


def _species_clusters(
    x: np.ndarray,
    species: np.ndarray,
    names: list[str],
    n_neighbors: int,
    resolution: float,
    seed: int,
    ids: np.ndarray | None = None,
    modality: np.ndarray | None = None,
    rna: Mapping[str, ad.AnnData] | None = None,
    nucleus: np.ndarray | None = None,
) -> np.ndarray:
    """Leiden clusters of each species ('<species>:c<k>').

    With ``rna``, a species' RNA nuclei are clustered in its own expression (PCA of its
    rna.h5ad), independent of the joint embedding, and every other row of the species takes
    the majority cluster of its ``n_neighbors`` nearest RNA rows of the species in the joint
    embedding: a type only this species has stays a cluster of its own even where training
    pulled it onto a shared type (ortholog anchors do, for its nearest shared type); a
    multiome row (``nucleus``) takes its RNA partner's cluster. Without
    ``rna``, each species' rows of the joint embedding are clustered.
    """
    cluster = np.full(len(species), None, dtype=object)
    for s in names:
        rows = np.flatnonzero(species == s)
        if rna is None or s not in rna:
            codes = knn_leiden(x[rows], n_neighbors=n_neighbors, resolution=resolution, seed=seed)
            cluster[rows] = np.char.add(f"{s}:c", codes.astype(str)).astype(object)
            continue
        from crossglue.model.inputs import rna_pca

        rna_rows = rows[modality[rows] == "rna"]
        adata = rna[s]
        position = adata.obs_names.get_indexer(pd.Index(ids[rna_rows]).astype(str))
        if (position < 0).any():
            raise CrossglueError(f"species clusters: {int((position < 0).sum())} {s} RNA rows are not in its rna.h5ad")
        batch = "sample" if "sample" in adata.obs else None
        expr = ad.AnnData(adata.X, obs=adata.obs[[batch]] if batch else None)
        n_comps = min(EXPRESSION_PCS, expr.n_obs - 1, expr.n_vars - 1)
        rna_pca(expr, n_comps=n_comps, batch_key=batch, seed=seed, name=f"{s} RNA")
        codes = knn_leiden(expr.obsm["X_pca"][position], n_neighbors=n_neighbors, resolution=resolution, seed=seed)
        labels = np.char.add(f"{s}:c", codes.astype(str)).astype(object)
        cluster[rna_rows] = labels
        other = rows[modality[rows] != "rna"]
        if nucleus is not None and len(other):  # a multiome row takes its RNA partner's cluster
            by_nucleus = pd.Series(labels, index=nucleus[rna_rows])
            by_nucleus = by_nucleus[pd.notna(by_nucleus.index) & ~by_nucleus.index.duplicated()]
            partner = by_nucleus.reindex(nucleus[other]).to_numpy()
            found = pd.notna(partner) & pd.notna(nucleus[other])
            cluster[other[found]] = partner[found]
            other = other[~found]
        if len(other):
            reference = np.arange(len(other), len(other) + len(rna_rows))
            nbr = knn_indices(np.vstack([x[other], x[rna_rows]]), n_neighbors, reference=reference)
            names, codes = np.unique(labels.astype(str), return_inverse=True)
            votes = codes[nbr[: len(other)] - len(other)]
            tally = np.zeros((len(other), len(names)), np.int64)
            np.add.at(tally, (np.repeat(np.arange(len(other)), votes.shape[1]), votes.ravel()), 1)
            cluster[other] = names[tally.argmax(axis=1)].astype(object)  # ties: the first cluster name
    return cluster


@dataclass(frozen=True)
class _Cells:
    """Per-cell arrays of the joint embedding's rows that the counterpart search reads."""

    ids: np.ndarray
    species: np.ndarray
    modality: np.ndarray
    cluster: np.ndarray
    label: np.ndarray  # the given label, else the transferred one; None where unassigned
    given: np.ndarray


def _counterpart_rows(
    cells: _Cells, names: list[str], rna: Mapping[str, ad.AnnData], orthologs: pd.DataFrame, min_cells: int, seed: int
) -> tuple[list[dict], pd.Series]:
    """One row per (cluster, other species): the partner type, correlations and ratio that
    :func:`find_species_specific_clusters` describes; and each cluster's RNA cell count."""
    ids, species, modality, cluster = cells.ids, cells.species, cells.modality, cells.cluster
    label_col, given = cells.label, cells.given
    cluster_profiles = species_profiles(rna, ids, species, modality, cluster)
    half = np.random.default_rng(seed).integers(0, 2, len(ids)).astype(str)
    half_groups = np.where(pd.notna(cluster), cluster.astype(str) + "|" + half, None).astype(object)
    half_profiles = species_profiles(rna, ids, species, modality, half_groups)
    type_profiles = species_profiles(rna, ids, species, modality, label_col)
    rna_sizes = pd.Series(cluster[modality == "rna"]).value_counts()
    rows = []
    for s in names:
        prof = cluster_profiles[s]
        big = [c for c in prof.index if rna_sizes.get(c, 0) >= min_cells]
        for t in names:
            if t == s or type_profiles[t].empty:
                continue
            pairs = one2one_pairs(orthologs, s, t)
            center = type_profiles[s].mean(axis=0) if not type_profiles[s].empty else None
            corr = ortholog_correlation(prof, type_profiles[t], pairs, center_a=center)
            # Undo the attenuation of small clusters' noisy profiles (split-half reliability).
            used = pairs["gene_a"].isin(prof.columns) & pairs["gene_b"].isin(type_profiles[t].columns)
            genes = list(pairs.loc[used, "gene_a"])
            halves = half_profiles[s]
            h0 = halves[halves.index.str.endswith("|0")].rename(index=lambda g: g[:-2])
            h1 = halves[halves.index.str.endswith("|1")].rename(index=lambda g: g[:-2])
            reliability = split_half_reliability(prof, h0, h1, genes, center)
            corrected = corr.div(np.sqrt(reliability.reindex(corr.index).to_numpy()), axis=0)
            ratio = counterpart_ratio(corrected, big)
            ratio["ortholog_correlation"] = corr.max(axis=1).reindex(ratio.index).to_numpy()
            ratio["reliability"] = reliability.reindex(ratio.index).to_numpy()
            for c, r in ratio.iterrows():
                rows.append({"species": s, "cluster": c, "other_species": t, **r.to_dict()})
        for c in prof.index:
            in_c = cluster == c
            rows_c = [r for r in rows if r["cluster"] == c]
            for r in rows_c:
                r["n_cells"] = int(in_c.sum())
                r["n_rna_cells"] = int(rna_sizes.get(c, 0))
                r["n_labelled"] = int((given & in_c).sum())
                top = pd.Series(label_col[in_c]).value_counts()
                r["top_label"] = top.index[0] if len(top) else ""
    return rows, rna_sizes


def _warn_species_specific(table: pd.DataFrame, specific: pd.Index, unassign_clusters: list) -> None:
    """One warning per candidate species-specific cluster: its best partner, and what becomes of its labels."""
    for c in specific:
        r = table[table["cluster"] == c].iloc[0]
        log.warning(
            "candidate %s-specific type: cluster %s (%d cells, mostly %s) has no counterpart: its best partner "
            "%s %s correlates r = %.2f with it; corrected for noise, %.2f of the best %s cluster's (r = %.2f); %s",
            r["species"],
            c,
            r["n_cells"],
            r["top_label"] or "unlabelled",
            r["other_species"],
            r["partner"],
            r["ortholog_correlation"],
            r["ratio"],
            r["species"],
            r["best_correlation"],
            "its transferred labels become unassigned"
            if c in unassign_clusters
            else f"its {r['n_labelled']} given labels are kept",
        )


def _label_mismatches(table: pd.DataFrame, big_enough: pd.Series, min_ratio: float) -> pd.Series:
    """Clusters with a counterpart whose majority transferred label is not their best partner (warned)."""
    # A merge or swap the type-level check cannot see (two types of one species transferred
    # as one): a cluster with a counterpart whose majority transferred label is not the type
    # its ortholog expression correlates best with.
    mismatch = (
        ~table["species_specific"]
        & table["cluster"].map(big_enough).astype(bool)
        & (table["n_labelled"] == 0)
        & (table["top_label"].astype(str) != table["partner"].astype(str))
        & (table["ratio"] >= min_ratio)
    )
    for r in table[mismatch].itertuples():
        log.warning(
            "cluster %s (%d cells) is labelled %s by transfer, but its one2one-ortholog expression correlates best "
            "with %s %s (r = %.2f): a possible merge or swap of types; check results/analysis/species_clusters.tsv",
            r.cluster,
            r.n_cells,
            r.top_label,
            r.other_species,
            r.partner,
            r.ortholog_correlation,
        )
    return mismatch


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


def type_correspondence(
    obs: pd.DataFrame,
    x: np.ndarray,
    types: np.ndarray,
    rna: Mapping[str, ad.AnnData],
    orthologs: pd.DataFrame,
    k: int = 15,
) -> pd.DataFrame:
    """The swap check on the annotated types: for each ordered pair of species, every pair of
    types with its mapping score in the joint embedding and its ortholog correlation (see
    :mod:`crossglue.analysis.correspondence`); a WARNING is logged per swapped pair."""
    ids, species, modality = _obs_arrays(obs)
    groups = np.asarray(types, dtype=object).copy()
    groups[groups == UNASSIGNED] = None
    names = [s for s in pd.unique(species) if s in rna and s in set(species[modality == "rna"])]
    profiles = species_profiles(rna, ids, species, modality, groups)
    parts = []
    for a in names:
        for b in names:
            if a == b:
                continue
            in_a, in_b = species == a, species == b
            if pd.isna(groups[in_a]).all() or pd.isna(groups[in_b]).all():
                continue
            mapping = mapping_scores(x, in_a, in_b, groups, k=k)
            corr = ortholog_correlation(profiles[a], profiles[b], one2one_pairs(orthologs, a, b))
            sizes_a = pd.Series(groups[in_a]).value_counts()
            sizes_b = pd.Series(groups[in_b]).value_counts()
            parts.append(correspondence_table(mapping, corr, sizes_a, sizes_b, a, b))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CORRESPONDENCE_COLUMNS)
    warn_swaps(table)
    return table
