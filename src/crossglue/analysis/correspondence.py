"""Cross-species correspondence of cell groups: by the joint embedding and by ortholog expression.

The joint embedding can be wrong in a way its own losses cannot see: the discriminator only
asks that species be mixed, so two whole types may swap partners across species (every
macaque astrocyte beside human oligodendrocytes) and transfer stays confident. Expression of
one-to-one orthologs is independent evidence. For each pair of species this module sets,
beside each other, the SAMap-style mapping score of two groups (the mean of the two
directions' kNN fractions: how many of a group's cross-species neighbours fall in the other
group) and the Pearson correlation of their pseudobulk expression over one2one orthologs,
each gene centred over the groups of its own species (so genes high in every group do not
make every pair alike; the specificity correlation of Tosches et al. 2018). A pair matched
by the embedding whose ortholog correlation is not the best the group has, while its best
ortholog partner has it as best in return, is a *swap* (a type without counterpart is not).

The same correlations say which clusters of a species have no counterpart: a cluster whose
best partner type correlates with it clearly less than with the species' best cluster for
that type (ratio below ``counterpart_ratio``) is a candidate species-specific type.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.embedding import knn_indices
from crossglue.errors import CrossglueError

log = logging.getLogger(__name__)

CORRESPONDENCE_COLUMNS = [
    "species_a",
    "group_a",
    "species_b",
    "group_b",
    "n_cells_a",
    "n_cells_b",
    "mapping_score",
    "ortholog_correlation",
    "embedding_match",
    "ortholog_best",
    "best_ortholog_partner",
    "swap",
]


def pseudobulk_expression(counts: sp.spmatrix | np.ndarray, genes: pd.Index, groups: np.ndarray) -> pd.DataFrame:
    """Groups x genes mean of log1p(counts per 10,000) over the cells of each group (NA groups
    left out), as one sparse indicator product."""
    x = sp.csr_matrix(counts, dtype=np.float64)
    depth = np.asarray(x.sum(axis=1)).ravel()
    x = sp.diags(1e4 / np.maximum(depth, 1.0)) @ x
    x.data = np.log1p(x.data)
    groups = pd.Series(groups, dtype=object)
    keep = groups.notna().to_numpy()
    names, codes = np.unique(groups[keep].astype(str).to_numpy(), return_inverse=True)
    member = sp.csr_matrix((np.ones(keep.sum()), (codes, np.flatnonzero(keep))), shape=(len(names), x.shape[0]))
    sizes = np.asarray(member.sum(axis=1)).ravel()
    mean = sp.diags(1.0 / np.maximum(sizes, 1.0)) @ (member @ x)
    return pd.DataFrame(mean.toarray(), index=names, columns=pd.Index(genes).astype(str))


def ortholog_correlation(
    profile_a: pd.DataFrame,
    profile_b: pd.DataFrame,
    pairs: pd.DataFrame,
    center_a: pd.Series | None = None,
    center_b: pd.Series | None = None,
) -> pd.DataFrame:
    """Pearson correlation (groups of A x groups of B) of pseudobulk profiles over the one2one
    pairs both profiles hold, each gene centred over its own species' groups (or on
    ``center_a`` / ``center_b``, a per-gene profile: clusters are centred on the mean of the
    species' types, so a type split into many clusters does not become the baseline)."""
    pairs = pairs[pairs["gene_a"].isin(profile_a.columns) & pairs["gene_b"].isin(profile_b.columns)]
    if len(pairs) < 3:
        raise CrossglueError(
            f"ortholog correlation: {len(pairs)} one2one ortholog pair(s) expressed in both species; at least 3 "
            "needed (check that the ortholog table's gene ids match the RNA features)"
        )
    a = profile_a[pairs["gene_a"].to_numpy()].to_numpy()
    b = profile_b[pairs["gene_b"].to_numpy()].to_numpy()
    a = a - (a.mean(axis=0) if center_a is None else center_a[pairs["gene_a"].to_numpy()].to_numpy())
    b = b - (b.mean(axis=0) if center_b is None else center_b[pairs["gene_b"].to_numpy()].to_numpy())
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a @ b.T) / (na * nb.T)
    return pd.DataFrame(np.nan_to_num(r, nan=0.0), index=profile_a.index, columns=profile_b.index)


def mapping_scores(x: np.ndarray, in_a: np.ndarray, in_b: np.ndarray, groups: np.ndarray, k: int = 15) -> pd.DataFrame:
    """SAMap-style mapping score (groups of A x groups of B): the mean of the share of A-group
    cells' ``k`` nearest B cells that lie in the B group and the reverse share."""
    groups = np.asarray(groups, dtype=object)
    valid = pd.notna(groups)

    def fractions(src: np.ndarray, dst: np.ndarray) -> pd.DataFrame:
        src, dst = src & valid, dst & valid
        ref = np.flatnonzero(dst)
        rows = np.flatnonzero(src)
        nbr = knn_indices(np.vstack([x[rows], x[ref]]), k, reference=np.arange(len(rows), len(rows) + len(ref)))
        nbr = ref[nbr[: len(rows)] - len(rows)]
        frame = pd.crosstab(np.repeat(groups[rows].astype(str), nbr.shape[1]), groups[nbr.ravel()].astype(str))
        return frame.div(frame.sum(axis=1), axis=0)

    ab = fractions(in_a, in_b)
    ba = fractions(in_b, in_a).T
    names_a = sorted(set(ab.index) | set(ba.index))
    names_b = sorted(set(ab.columns) | set(ba.columns))
    ab = ab.reindex(index=names_a, columns=names_b, fill_value=0.0).fillna(0.0)
    ba = ba.reindex(index=names_a, columns=names_b, fill_value=0.0).fillna(0.0)
    return (ab + ba) / 2


def correspondence_table(
    mapping: pd.DataFrame, correlation: pd.DataFrame, sizes_a, sizes_b, species_a: str, species_b: str
):
    """One row per group pair of two species: mapping score, ortholog correlation and the flags.

    ``embedding_match``: group_b is group_a's best partner by mapping score (and the reverse
    direction's, so each group of A has one match). ``ortholog_best``: group_b is group_a's
    best-correlated group of B. ``swap``: matched by the embedding, while group_a and another
    group of B are each other's best by orthologs.
    """
    names_a = [g for g in mapping.index if g in correlation.index]
    names_b = [g for g in mapping.columns if g in correlation.columns]
    if not names_a or not names_b:
        return pd.DataFrame(columns=CORRESPONDENCE_COLUMNS)
    m = mapping.loc[names_a, names_b]
    r = correlation.loc[names_a, names_b]
    best_map = m.idxmax(axis=1)
    best_r = r.idxmax(axis=1)
    long = m.stack().rename("mapping_score").reset_index()
    long.columns = ["group_a", "group_b", "mapping_score"]
    long["ortholog_correlation"] = r.stack().to_numpy()
    long["embedding_match"] = long["group_b"].to_numpy() == best_map.reindex(long["group_a"]).to_numpy()
    long["ortholog_best"] = long["group_b"].to_numpy() == best_r.reindex(long["group_a"]).to_numpy()
    long["best_ortholog_partner"] = best_r.reindex(long["group_a"]).to_numpy()
    # Reciprocal: group_a's best ortholog partner also has group_a as its best. A type with
    # no counterpart correlates weakly with everything and is not called a swap.
    best_r_rev = r.idxmax(axis=0)
    reciprocal = best_r_rev.reindex(long["best_ortholog_partner"]).to_numpy() == long["group_a"].to_numpy()
    long["swap"] = long["embedding_match"] & ~long["ortholog_best"] & reciprocal
    long["species_a"], long["species_b"] = species_a, species_b
    long["n_cells_a"] = pd.Series(sizes_a).reindex(long["group_a"]).fillna(0).astype(int).to_numpy()
    long["n_cells_b"] = pd.Series(sizes_b).reindex(long["group_b"]).fillna(0).astype(int).to_numpy()
    return long[CORRESPONDENCE_COLUMNS]


def warn_swaps(table: pd.DataFrame) -> list[str]:
    """Log a WARNING per swapped pair, naming both groups; returns the messages."""
    messages = []
    for row in table[table["swap"]].itertuples():
        best = table[
            (table["species_a"] == row.species_a) & (table["group_a"] == row.group_a) & table["ortholog_best"]
        ]["ortholog_correlation"].max()
        msg = (
            f"possible swap: {row.species_a} {row.group_a} is matched to {row.species_b} {row.group_b} in the joint "
            f"embedding (mapping score {row.mapping_score:.2f}), but its one2one-ortholog expression correlates "
            f"better with {row.species_b} {row.best_ortholog_partner} (r = {best:.2f}) than with "
            f"{row.species_b} {row.group_b} (r = {row.ortholog_correlation:.2f}); "
            "check results/analysis/correspondence.tsv"
        )
        log.warning(msg)
        messages.append(msg)
    return messages


def split_half_reliability(
    profile: pd.DataFrame, half0: pd.DataFrame, half1: pd.DataFrame, genes: list[str], center: pd.Series | None = None
) -> pd.Series:
    """Spearman-Brown reliability of each group's pseudobulk over ``genes``: the correlation of
    the profiles of two random halves of its cells (centred as in :func:`ortholog_correlation`),
    stepped up to the full group. Small groups have noisy profiles that correlate less with
    anything; dividing a correlation by the square root of this undoes that attenuation."""
    center = profile[genes].mean(axis=0) if center is None else center[genes]
    names = [g for g in profile.index if g in half0.index and g in half1.index]
    a = half0.loc[names, genes] - center
    b = half1.loc[names, genes] - center
    a = a.sub(a.mean(axis=1), axis=0).to_numpy()
    b = b.sub(b.mean(axis=1), axis=0).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    r = np.clip(np.nan_to_num(r, nan=0.0), 0.0, 1.0)
    reliability = 2 * r / (1 + r)
    return pd.Series(np.clip(reliability, 0.05, 1.0), index=names).reindex(profile.index).fillna(0.05)


def counterpart_ratio(correlation: pd.DataFrame, candidates: list[str] | None = None) -> pd.DataFrame:
    """Per cluster (row) of one species: its best partner group (column) of the other species,
    the correlation, the best correlation any cluster of its species reaches with that
    partner, and their ratio (1 = the species' best match for the partner). ``candidates``
    restricts which rows may be the species' best (clusters large enough to trust)."""
    pool = correlation if candidates is None else correlation.loc[[c for c in correlation.index if c in candidates]]
    partner = correlation.idxmax(axis=1)
    r = correlation.max(axis=1)
    best_other = pool.max(axis=0).reindex(partner.to_numpy()).to_numpy() if len(pool) else r.to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(best_other > 0, r.to_numpy() / np.maximum(best_other, 1e-12), 0.0)
    return pd.DataFrame(
        {
            "partner": partner.to_numpy(),
            "ortholog_correlation": r.to_numpy(),
            "best_correlation": best_other,
            "ratio": ratio,
        },
        index=correlation.index,
    )


def species_profiles(
    rna: Mapping[str, object], cell_ids: np.ndarray, species: np.ndarray, modality: np.ndarray, groups: np.ndarray
) -> dict[str, pd.DataFrame]:
    """Pseudobulk profile per species of ``groups`` from its RNA AnnData (rows of cells.h5ad
    with modality rna, matched by cell id); species without RNA rows are left out."""
    out = {}
    for s, adata in rna.items():
        rows = (species == s) & (modality == "rna")
        if not rows.any():  # a species without RNA cells has no expression to compare
            log.info("correspondence: %s has no RNA cells; left out of the ortholog comparison", s)
            continue
        table = pd.Series(np.asarray(groups, dtype=object)[rows], index=pd.Index(cell_ids[rows]).astype(str))
        table = table[~table.index.duplicated()]
        per_cell = table.reindex(adata.obs_names.astype(str)).to_numpy()
        if pd.notna(per_cell).sum() == 0:
            raise CrossglueError(
                f"correspondence: no {s} RNA cell of cells.h5ad is in the species' rna.h5ad (cell ids differ?)"
            )
        out[s] = pseudobulk_expression(adata.X, adata.var_names, per_cell)
    return out


def correspondence_figure(table: pd.DataFrame, path) -> None:
    """Per ordered pair of species, two heat maps side by side: the mapping score and the
    ortholog correlation of every type pair; matched pairs are boxed, swaps boxed in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crossglue.io_utils import atomic_path

    pairs = table[["species_a", "species_b"]].drop_duplicates().itertuples(index=False) if len(table) else []
    pairs = list(pairs)
    fig, axes = plt.subplots(max(len(pairs), 1), 2, figsize=(11, 4.8 * max(len(pairs), 1)), squeeze=False)
    if not pairs:
        for ax in axes[0]:
            ax.axis("off")
        axes[0, 0].text(0.5, 0.5, "no species pair with types on both sides", ha="center")
    for row, (a, b) in enumerate(pairs):
        part = table[(table["species_a"] == a) & (table["species_b"] == b)]
        for col, (value, title, cmap) in enumerate(
            [
                ("mapping_score", "kNN mapping score (joint embedding)", "viridis"),
                ("ortholog_correlation", "one2one ortholog correlation", "RdBu_r"),
            ]
        ):
            grid = part.pivot(index="group_a", columns="group_b", values=value)
            ax = axes[row, col]
            kw = {"vmin": -1, "vmax": 1} if value == "ortholog_correlation" else {"vmin": 0, "vmax": 1}
            im = ax.imshow(grid.to_numpy(), cmap=cmap, aspect="auto", **kw)
            ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=90, fontsize=7)
            ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=7)
            ax.set_xlabel(b)
            ax.set_ylabel(a)
            ax.set_title(title, fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.04)
            for r in part[part["embedding_match"]].itertuples():
                i, j = grid.index.get_loc(r.group_a), grid.columns.get_loc(r.group_b)
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="red" if r.swap else "white"))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
