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

log = logging.getLogger(__name__)

RESULT_COLUMNS = [
    "species_a", "species_b", "cell_type", "feature", "base_mean", "log2fc", "lfc_se", "stat",
    "p_value", "q_value", "donors_a", "donors_b",
]


def pseudobulk(counts, obs: pd.DataFrame, keys: list[str], features: pd.Index, min_cells: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
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
        raise CrossglueError(f"pseudobulk: counts are {counts.shape}, expected {len(obs)} cells × {len(features)} features")
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
        counts=profiles.round().astype(int), metadata=meta, design="~species", refit_cooks=True,
        inference=inference, quiet=True,
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
            log.info("%s: %s %d donor(s), %s %d donor(s): not tested (need %d each)", cell_type, species_a, n_a, species_b, n_b, min_donors)
            continue
        counts = profiles.loc[members.index]
        counts = counts.loc[:, counts.sum(axis=0).to_numpy() >= min_total_count]
        if counts.shape[1] == 0:
            continue
        res = _deseq(counts, members["species"], species_a, species_b, threads)
        results.append(
            pd.DataFrame(
                {
                    "species_a": species_a, "species_b": species_b, "cell_type": cell_type,
                    "feature": res.index.astype(str), "base_mean": res["baseMean"].to_numpy(),
                    "log2fc": res["log2FoldChange"].to_numpy(), "lfc_se": res["lfcSE"].to_numpy(),
                    "stat": res["stat"].to_numpy(), "p_value": res["pvalue"].to_numpy(),
                    "q_value": res["padj"].fillna(1.0).to_numpy(), "donors_a": n_a, "donors_b": n_b,
                }
            )
        )
    return pd.concat(results, ignore_index=True) if results else pd.DataFrame(columns=RESULT_COLUMNS)


def one_to_one_orthologs(edges: pd.DataFrame, species_a: str, species_b: str) -> pd.DataFrame:
    """Gene pairs (gene_a, gene_b) linked by exactly one ortholog edge on each side, from the
    guidance edge table (nodes ``species:gene_id``)."""
    orth = edges[edges["type"] == "ortholog"]
    src = orth["source"].str.split(":", n=1, expand=True)
    dst = orth["target"].str.split(":", n=1, expand=True)
    if src.shape[1] < 2 or dst.shape[1] < 2:
        return pd.DataFrame(columns=["gene_a", "gene_b"])
    pairs = pd.DataFrame({"gene_a": src[1].to_numpy(), "gene_b": dst[1].to_numpy()})[
        (src[0] == species_a).to_numpy() & (dst[0] == species_b).to_numpy()
    ].drop_duplicates()
    unique_a = pairs["gene_a"].map(pairs["gene_a"].value_counts()) == 1
    unique_b = pairs["gene_b"].map(pairs["gene_b"].value_counts()) == 1
    return pairs[unique_a & unique_b].reset_index(drop=True)
