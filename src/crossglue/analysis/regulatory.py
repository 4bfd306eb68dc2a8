"""Regulatory inference from feature embeddings: which candidate element–gene links does the
trained model support?

Every peak–gene edge of the guidance graph is a candidate (an element and a gene of one
species inside the linking window). Its score is the cosine similarity of the two feature
embeddings. The null is the same score for shuffled pairs — each candidate's element and
gene replaced by those of random other candidates of the same species — so it keeps the
embedding geometry and degree distribution but breaks the link. p is the upper tail of the
pooled null; q is Benjamini–Hochberg over all candidates.

Embeddings are centred per species and feature kind first: every element (or gene) of a
species shares an offset direction, which otherwise makes all pairs look alike (on the demo,
centring lifts the AUROC of the cosine against planted links from 0.67 to 0.70). The
``score`` column weighs the graph's prior by the embedding agreement, prior × (1 + cos) / 2:
the model's evidence applied to the prior it was given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from crossglue.errors import CrossglueError
from crossglue.stats import benjamini_hochberg


def candidate_pairs(edges: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Element -> gene candidates from the edge table's ``peak_gene`` rows (one per pair).

    ``features`` is the feature table (obs of features.h5ad: index = node, columns species,
    feature, kind). Returns species, element, gene (feature ids), element_node, gene_node,
    prior (the graph's edge weight), and distance / corr when the table has them.
    """
    pg = edges[edges["type"] == "peak_gene"]
    kind = features["kind"].reindex(pg["source"]).to_numpy()
    pg = pg[kind == "element"]
    if pg.empty:
        raise CrossglueError("regulatory inference: the edge table has no peak_gene edges from an element to a gene")
    unknown = ~pg["target"].isin(features.index)
    if unknown.any():
        raise CrossglueError(
            f"regulatory inference: {unknown.sum()} peak_gene target(s) are not model features, "
            f"e.g. {pg['target'][unknown].iloc[0]}"
        )
    out = pd.DataFrame(
        {
            "species": features["species"].reindex(pg["source"]).astype(str).to_numpy(),
            "element": features["feature"].reindex(pg["source"]).astype(str).to_numpy(),
            "gene": features["feature"].reindex(pg["target"]).astype(str).to_numpy(),
            "element_node": pg["source"].to_numpy(),
            "gene_node": pg["target"].to_numpy(),
            "prior": pg["weight"].astype(float).to_numpy(),
        }
    )
    for column in ("distance", "corr"):
        if column in pg:
            out[column] = pg[column].to_numpy()
    return out.drop_duplicates(["element_node", "gene_node"]).reset_index(drop=True)


def center_by_group(embeddings: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Subtract from every row the mean row of its group (e.g. species:kind)."""
    groups = groups.reindex(embeddings.index).astype(str).to_numpy()
    means = embeddings.groupby(groups).transform("mean")
    return embeddings - means.to_numpy()


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _shuffle_within(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation of positions that only moves each position inside its own group."""
    order = np.lexsort((rng.random(groups.size), groups))  # positions grouped, random inside
    by_group = np.argsort(groups, kind="stable")  # positions grouped, original order inside
    perm = np.empty(groups.size, dtype=int)
    perm[by_group] = order
    return perm


def infer_links(
    pairs: pd.DataFrame,
    embeddings: pd.DataFrame | np.ndarray,
    node_index: pd.Index | None = None,
    n_null: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """Cosine score, empirical p and BH q of every candidate pair.

    ``embeddings`` holds one row per node (a DataFrame indexed by node, or an array with
    ``node_index``). The null pools ``n_null`` shuffles of all candidates within species;
    p = (1 + #null >= score) / (1 + #null), the usual add-one empirical p-value.
    """
    if isinstance(embeddings, pd.DataFrame):
        node_index, emb = embeddings.index, embeddings.to_numpy(dtype=float)
    else:
        emb = np.asarray(embeddings, dtype=float)
    emb = _unit_rows(emb)
    lookup = pd.Series(np.arange(len(node_index)), index=node_index)
    missing = ~pairs["element_node"].isin(node_index) | ~pairs["gene_node"].isin(node_index)
    if missing.any():
        raise CrossglueError(
            f"regulatory inference: {missing.sum()} candidate(s) name nodes without an embedding, "
            f"e.g. {pairs.loc[missing, 'element_node'].iloc[0]}"
        )
    el = lookup[pairs["element_node"]].to_numpy()
    gene = lookup[pairs["gene_node"]].to_numpy()
    score = np.einsum("ij,ij->i", emb[el], emb[gene])
    rng = np.random.default_rng(seed)
    groups = pd.factorize(pairs["species"])[0]
    null = np.concatenate(
        [
            np.einsum("ij,ij->i", emb[el[_shuffle_within(groups, rng)]], emb[gene[_shuffle_within(groups, rng)]])
            for _ in range(n_null)
        ]
    )
    null.sort()
    n_ge = null.size - np.searchsorted(null, score - 1e-12, side="left")
    p = (1 + n_ge) / (1 + null.size)
    out = pairs.copy()
    out["cosine"] = score
    out["p_value"] = p
    out["q_value"] = benjamini_hochberg(p)
    out["score"] = out["prior"].to_numpy(dtype=float) * (1 + score) / 2
    return out


def distance_prior(pairs: pd.DataFrame) -> np.ndarray:
    """The distance-only prior as a score: minus the element–gene distance (any decreasing
    distance weight, such as the graph's, ranks pairs the same way); the graph weight where
    the edge table has no distances."""
    if "distance" in pairs and pairs["distance"].notna().all():
        return -pairs["distance"].to_numpy(dtype=float)
    return pairs["prior"].to_numpy(dtype=float)


def evaluate_scores(truth: np.ndarray, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """AUROC and AUPRC of each named score against boolean truth (NaN when one class is absent)."""
    truth = np.asarray(truth, dtype=bool)
    rows = []
    for name, s in scores.items():
        ok = truth.any() and (~truth).any()
        rows.append(
            {
                "score": name,
                "auroc": float(roc_auc_score(truth, s)) if ok else float("nan"),
                "auprc": float(average_precision_score(truth, s)) if ok else float("nan"),
                "positives": int(truth.sum()),
                "candidates": int(truth.size),
            }
        )
    return pd.DataFrame(rows)


def match_to_truth(
    chrom: np.ndarray,
    centre: np.ndarray,
    truth_chrom: np.ndarray,
    truth_centre: np.ndarray,
    truth_ids: np.ndarray,
    max_distance: int = 250,
) -> np.ndarray:
    """For each query position, the id of the nearest truth element on the same chromosome
    whose centre lies within ``max_distance`` bp, else None (vectorised with searchsorted on
    a genome-wide coordinate: chromosome offset + position)."""
    chrom = np.asarray(chrom).astype(str)
    truth_chrom = np.asarray(truth_chrom).astype(str)
    names = np.unique(np.concatenate([chrom, truth_chrom]))
    span = int(max(np.max(centre, initial=0), np.max(truth_centre, initial=0))) + 10 * max_distance + 1
    offset = pd.Series(np.arange(len(names)) * span, index=names)
    q = offset[chrom].to_numpy() + np.asarray(centre, dtype=np.int64)
    t = offset[truth_chrom].to_numpy() + np.asarray(truth_centre, dtype=np.int64)
    order = np.argsort(t)
    t_sorted, ids_sorted = t[order], np.asarray(truth_ids, dtype=object)[order]
    out = np.full(len(q), None, dtype=object)
    if t_sorted.size == 0:
        return out
    right = np.clip(np.searchsorted(t_sorted, q), 0, t_sorted.size - 1)
    left = np.clip(right - 1, 0, t_sorted.size - 1)
    d_right, d_left = np.abs(t_sorted[right] - q), np.abs(t_sorted[left] - q)
    best = np.where(d_left <= d_right, left, right)
    hit = np.minimum(d_left, d_right) <= max_distance
    out[hit] = ids_sorted[best[hit]]
    return out


def union_element_truth(
    union: pd.DataFrame, truth_cres: pd.DataFrame, species: list[str], max_distance: int = 250
) -> pd.DataFrame:
    """Truth CRE id of each union element in each species (column per species, None if none).

    ``union`` has element_id and {s}_chrom/{s}_start/{s}_end; ``truth_cres`` has cre and
    {s}_chrom/{s}_centre (the simulator's truth/cres.tsv)."""
    out = pd.DataFrame(index=union["element_id"].astype(str).to_numpy())
    for s in species:
        here = union[f"{s}_chrom"].notna().to_numpy()
        t_here = truth_cres[f"{s}_chrom"].notna().to_numpy()
        col = np.full(len(union), None, dtype=object)
        if here.any() and t_here.any():
            centre = (
                (union.loc[here, f"{s}_start"].astype(np.int64) + union.loc[here, f"{s}_end"].astype(np.int64)) // 2
            ).to_numpy()
            col[here] = match_to_truth(
                union.loc[here, f"{s}_chrom"].to_numpy(),
                centre,
                truth_cres.loc[t_here, f"{s}_chrom"].to_numpy(),
                truth_cres.loc[t_here, f"{s}_centre"].astype(np.int64).to_numpy(),
                truth_cres.loc[t_here, "cre"].to_numpy(),
                max_distance,
            )
        out[s] = col
    return out


def truth_link_labels(links: pd.DataFrame, element_truth: pd.DataFrame, truth_links: pd.DataFrame) -> np.ndarray:
    """True where a candidate (species, element, gene) is a planted CRE -> gene link."""
    cre = element_truth.reindex(links["element"].astype(str).to_numpy())
    species = links["species"].astype(str).to_numpy()
    cre_of = np.full(len(links), None, dtype=object)
    for s in np.unique(species):
        if s in cre.columns:
            mask = species == s
            cre_of[mask] = cre[s].to_numpy()[mask]
    key = pd.MultiIndex.from_arrays([species, cre_of.astype(str), links["gene"].astype(str).to_numpy()])
    planted = pd.MultiIndex.from_arrays(
        [truth_links["species"].astype(str), truth_links["cre"].astype(str), truth_links["gene_id"].astype(str)]
    )
    return key.isin(planted) & (cre_of != None)  # noqa: E711 - element-wise comparison on an object array


EVALUATION_COLUMNS = ["run", "score", "auroc", "auprc", "positives", "candidates"]


def score_runs(edges: pd.DataFrame, features: dict, n_null: int, seed: int) -> pd.DataFrame:
    """Candidate links scored in each run's feature embeddings (``features``: run -> AnnData of
    features.h5ad; ``main`` first). Columns of other runs get the run's name as prefix."""
    scored = {}
    for name, adata in features.items():
        pairs = candidate_pairs(edges, adata.obs)
        emb = pd.DataFrame(np.asarray(adata.obsm["X_glue"], dtype=float), index=adata.obs_names.astype(str))
        groups = adata.obs["species"].astype(str) + ":" + adata.obs["kind"].astype(str)
        scored[name] = infer_links(pairs, center_by_group(emb, groups.set_axis(emb.index)), n_null=n_null, seed=seed)
    links = scored.pop("main").drop(columns=["element_node", "gene_node"])
    for name, other in scored.items():
        for column in ("cosine", "q_value", "score"):
            links[f"{name}_{column}"] = other[column].to_numpy()
    return links


def evaluate_against_truth(
    links: pd.DataFrame, union: pd.DataFrame, cres: pd.DataFrame, truth_links: pd.DataFrame, species: list[str]
) -> pd.DataFrame:
    """AUROC / AUPRC of every score column against the planted links (adds ``truth`` to ``links``)."""
    truth = truth_link_labels(links, union_element_truth(union, cres, species), truth_links)
    links["truth"] = truth
    main_scores = {
        "score": links["score"].to_numpy(),
        "cosine": links["cosine"].to_numpy(),
        "distance_prior": distance_prior(links),
        "graph_weight": links["prior"].to_numpy(),
    }
    if "corr" in links and links["corr"].notna().all():
        main_scores["metacell_corr"] = links["corr"].to_numpy(dtype=float)
    parts = [evaluate_scores(truth, main_scores).assign(run="main")]
    if "ablation_score" in links:
        ablation = {"score": links["ablation_score"].to_numpy(), "cosine": links["ablation_cosine"].to_numpy()}
        parts.append(evaluate_scores(truth, ablation).assign(run="ablation"))
    return pd.concat(parts, ignore_index=True)[EVALUATION_COLUMNS]
