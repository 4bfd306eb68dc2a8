"""Species-differential expression and accessibility on pseudobulks, donors as replicates.

Cells of one donor and one cell type are summed into one pseudobulk profile; a negative
binomial GLM (DESeq2's, via pydeseq2) then compares species inside each cell type with the
donors as replicates. Testing cells as if they were replicates inflates significance by
orders of magnitude (Squair et al. 2021), so no test here ever sees single cells.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.errors import CrossglueError
from crossglue.graph.orthologs import one2one_pairs

log = logging.getLogger(__name__)

RESULT_COLUMNS = [
    "species_a",
    "species_b",
    "cell_type",
    "feature",
    "base_mean",
    "log2fc",
    "lfc_se",
    "stat",
    "p_value",
    "q_value",
    "donors_a",
    "donors_b",
]


def pseudobulk(
    counts, obs: pd.DataFrame, keys: list[str], features: pd.Index, min_cells: int = 10
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum raw counts of the cells sharing every value of ``keys`` (e.g. species, donor, cell type).

    Returns (profiles: groups × features, groups: the key values and ``n_cells``), keeping
    groups with at least ``min_cells`` cells. Cells with NA in any key are left out. One sparse
    indicator product does the summing.
    """
    missing = [k for k in keys if k not in obs]
    if missing:
        raise CrossglueError(f"pseudobulk: cell table lacks column(s) {missing}")
    counts = sp.csr_matrix(counts)
    if counts.shape != (len(obs), len(features)):
        raise CrossglueError(
            f"pseudobulk: counts are {counts.shape}, expected {len(obs)} cells × {len(features)} features"
        )
    usable = obs[keys].notna().all(axis=1).to_numpy()
    group_keys = obs.loc[usable, keys].astype(str)
    codes, uniques = pd.MultiIndex.from_frame(group_keys).factorize()
    indicator = sp.csr_matrix((np.ones(codes.size), (codes, np.flatnonzero(usable))), shape=(len(uniques), len(obs)))
    sums = np.asarray((indicator @ counts).todense())
    n_cells = np.bincount(codes, minlength=len(uniques))
    groups = pd.DataFrame(list(uniques), columns=keys)
    groups["n_cells"] = n_cells
    groups.index = ["|".join(v) for v in groups[keys].to_numpy()]
    keep = n_cells >= min_cells
    profiles = pd.DataFrame(sums[keep], index=groups.index[keep], columns=features)
    return profiles, groups[keep]


def _deseq(profiles: pd.DataFrame, species: pd.Series, a: str, b: str, threads: int) -> pd.DataFrame:
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats
    from threadpoolctl import threadpool_limits

    inference = DefaultInference(n_cpus=threads)
    meta = pd.DataFrame({"species": pd.Categorical(species.to_numpy(), categories=[b, a])}, index=profiles.index)
    dds = DeseqDataSet(
        counts=profiles.round().astype(int),
        metadata=meta,
        design="~species",
        refit_cooks=True,
        inference=inference,
        quiet=True,
    )
    # pydeseq2 fits one small model per feature; multithreaded BLAS only adds contention there
    # (4x slower on 2 busy cores), so parallelism comes from n_cpus alone.
    with threadpool_limits(limits=1):
        dds.deseq2()
        stats = DeseqStats(dds, contrast=["species", a, b], inference=inference, quiet=True)
        stats.summary()
    return stats.results_df


def species_differential(
    profiles: pd.DataFrame,
    groups: pd.DataFrame,
    species_a: str,
    species_b: str,
    min_donors: int = 2,
    min_total_count: int = 10,
    threads: int = 1,
) -> pd.DataFrame:
    """DESeq2 Wald test of species_a vs species_b in every cell type with enough donors.

    ``profiles`` (pseudobulk groups × features, features shared by both species) and
    ``groups`` (species, donor, cell_type, n_cells) come from :func:`pseudobulk`. log2fc > 0
    means higher in ``species_a``. Features with fewer than ``min_total_count`` reads in a
    cell type are not tested there. Cell types where a species has fewer than ``min_donors``
    donors are skipped (logged), since there is no replicate variance to estimate.
    """
    results = []
    for cell_type, members in groups.groupby("cell_type", sort=True):
        members = members[members["species"].isin([species_a, species_b])]
        donors = members.groupby("species")["donor"].nunique()
        n_a, n_b = int(donors.get(species_a, 0)), int(donors.get(species_b, 0))
        if min(n_a, n_b) < min_donors:
            log.info(
                "%s: %s %d donor(s), %s %d donor(s): not tested (need %d each)",
                cell_type,
                species_a,
                n_a,
                species_b,
                n_b,
                min_donors,
            )
            continue
        counts = profiles.loc[members.index]
        counts = counts.loc[:, counts.sum(axis=0).to_numpy() >= min_total_count]
        if counts.shape[1] == 0:
            continue
        res = _deseq(counts, members["species"], species_a, species_b, threads)
        results.append(
            pd.DataFrame(
                {
                    "species_a": species_a,
                    "species_b": species_b,
                    "cell_type": cell_type,
                    "feature": res.index.astype(str),
                    "base_mean": res["baseMean"].to_numpy(),
                    "log2fc": res["log2FoldChange"].to_numpy(),
                    "lfc_se": res["lfcSE"].to_numpy(),
                    "stat": res["stat"].to_numpy(),
                    "p_value": res["pvalue"].to_numpy(),
                    "q_value": res["padj"].fillna(1.0).to_numpy(),
                    "donors_a": n_a,
                    "donors_b": n_b,
                }
            )
        )
    return pd.concat(results, ignore_index=True) if results else pd.DataFrame(columns=RESULT_COLUMNS)


PSEUDOBULK_KEYS = ["species", "donor", "cell_type"]


def species_pseudobulk(path: str, species: str, modality: str, cells: pd.DataFrame, min_cells: int):
    """Donor × cell-type pseudobulks of one species' RNA or ATAC AnnData, cell types from the
    annotated cells (``cell_type_annotated``; ``unassigned`` cells are left out). Returns
    ((profiles, groups), var)."""
    from crossglue.analysis.annotate import UNASSIGNED, labels_for
    from crossglue.io_utils import read_h5ad

    data = read_h5ad(path)
    if "donor" not in data.obs:
        raise CrossglueError(f"{path}: obs lacks the donor column (donors are the replicates)")
    cell_type = labels_for(data.obs_names, cells, "cell_type_annotated", modality=modality)
    found = cell_type.notna().mean()
    log.info("%s %s: cell types for %.1f%% of %d cells", species, modality, 100 * found, data.n_obs)
    if found < 0.5:
        raise CrossglueError(
            f"{path}: only {100 * found:.1f}% of cells found in the annotated cells.h5ad (ids differ?)"
        )
    obs = pd.DataFrame(
        {"species": species, "donor": data.obs["donor"].astype(str).to_numpy(), "cell_type": cell_type.to_numpy()},
        index=data.obs_names,
    )
    obs.loc[obs["cell_type"] == UNASSIGNED, "cell_type"] = None
    return pseudobulk(data.X, obs, PSEUDOBULK_KEYS, data.var_names.astype(str), min_cells=min_cells), data.var


def species_pair_tests(
    rna: dict,
    atac: dict,
    orthologs: pd.DataFrame,
    species: list[str],
    min_donors: int,
    min_total_count: int,
    threads: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Species contrasts inside each cell type for every species pair: one-to-one orthologous
    genes and elements present in both species. ``rna``/``atac``: species -> output of
    :func:`species_pseudobulk` (``atac`` without the species that have RNA samples only).
    Returns (genes, elements) result tables."""
    from itertools import combinations

    genes, elements = [], []
    for a, b in combinations(species, 2):
        (pa, ga), var_a = rna[a]
        (pb, gb), _ = rna[b]
        orth = one2one_pairs(orthologs, a, b, source="ortholog links").reset_index(drop=True)
        orth = orth[orth["gene_a"].isin(pa.columns) & orth["gene_b"].isin(pb.columns)]
        shared = orth["gene_a"] + "|" + orth["gene_b"]
        profiles = pd.concat([pa[orth["gene_a"]].set_axis(shared, axis=1), pb[orth["gene_b"]].set_axis(shared, axis=1)])
        res = species_differential(profiles, pd.concat([ga, gb]), a, b, min_donors, min_total_count, threads)
        pair = res["feature"].str.split("|", n=1, expand=True)
        res.insert(4, "gene_a", pair[0] if len(res) else [])
        res.insert(5, "gene_b", pair[1] if len(res) else [])
        name_a = var_a["gene_name"].astype(str) if "gene_name" in var_a else pd.Series(dtype=str)
        res.insert(6, "gene_name", res["gene_a"].map(name_a))
        genes.append(res.drop(columns="feature"))
        log.info("%s vs %s genes: %d one-to-one orthologues, %d tests", a, b, len(orth), len(res))

        if a not in atac or b not in atac:  # a species with RNA samples only has no elements
            continue
        (ea, eg_a), var_ea = atac[a]
        (eb, eg_b), _ = atac[b]
        common = ea.columns.intersection(eb.columns)
        res = species_differential(
            pd.concat([ea[common], eb[common]]), pd.concat([eg_a, eg_b]), a, b, min_donors, min_total_count, threads
        )
        if "class" in var_ea:
            res.insert(4, "class", res["feature"].map(var_ea["class"].astype(str)))
        elements.append(res)
        log.info("%s vs %s elements: %d in both species, %d tests", a, b, len(common), len(res))
    gene_columns = [c for c in RESULT_COLUMNS if c != "feature"]
    gene_table = pd.concat(genes, ignore_index=True) if genes else pd.DataFrame(columns=gene_columns)
    element_table = pd.concat(elements, ignore_index=True) if elements else pd.DataFrame(columns=RESULT_COLUMNS)
    return gene_table, element_table.rename(columns={"feature": "element"})
