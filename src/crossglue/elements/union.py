"""Union element table across N species: lift every peak set to every other species, classify.

Lifting follows one of two published recipes (``LiftRecipe``): Caglayan et al. (Konopka
lab; liftOver ``-multiple -minMatch=0.5``, multi-mappers dropped, lifted/original length in
[0.5, 2], ≥ 50 % reciprocal overlap after lifting back) or Yuan et al. 2024 (``-minMatch=0.95``,
single mapping). A lifted peak is re-centred on its lifted summit at the peak width. Peaks
of two species that overlap after lifting become one element (one-to-one, largest overlap
first); every other peak is an element of its own. Classes (a contract, see DESIGN.md):
``conserved``, ``{s}_accessible``, ``{s}_sequence``, ``ambiguous``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from crossglue.genomics.intervals import overlapping_elements
from crossglue.config import section_settings
from crossglue.errors import CrossglueError

log = logging.getLogger(__name__)

# status of one peak lifted to one other species
PASS, AMBIGUOUS, UNMAPPED = "pass", "ambiguous", "unmapped"
LIFT_COLUMNS = [
    "peak_id", "status", "reason", "reason_code", "chrom", "start", "end", "summit",
    "lifted_chrom", "lifted_start", "lifted_end", "n_mappings", "length_ratio", "reciprocal_overlap",
]  # fmt: skip


@dataclass(frozen=True)
class LiftRecipe:
    """liftOver settings and the checks a lifted peak must pass (None = check off)."""

    name: str = "caglayan"
    min_match: float = 0.5
    multiple: bool = True
    min_length_ratio: float | None = 0.5
    max_length_ratio: float | None = 2.0
    min_reciprocal_overlap: float | None = 0.5


LIFT_CHECKS = ("min_lifted_fraction",)  # liftover keys that check a result instead of shaping the recipe

RECIPES = {
    "caglayan": LiftRecipe(),
    "yuan": LiftRecipe("yuan", 0.95, False, None, None, None),
}


def recipe_from_config(cfg: dict | None) -> LiftRecipe:
    """``liftover: {recipe: caglayan|yuan, min_match: ..., ...}``; keys given override the recipe."""
    cfg = {k: v for k, v in section_settings("liftover", cfg).items() if k not in LIFT_CHECKS}
    return replace(RECIPES[cfg.pop("recipe")], **cfg)


# --- lifting one species' peaks to another ------------------------------------------------------


def _reciprocal(a_start, a_end, b_start, b_end) -> np.ndarray:
    """Overlap as a fraction of the longer interval (≥ x means ≥ x of both)."""
    overlap = np.maximum(0, np.minimum(a_end, b_end) - np.maximum(a_start, b_start))
    return overlap / np.maximum(np.maximum(a_end - a_start, b_end - b_start), 1)


def lift_peaks(
    peaks: pd.DataFrame,
    chains_to: object,
    chains_back: object | None,
    recipe: LiftRecipe = LiftRecipe(),
    target_sizes: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Status of every peak lifted to the other species, one row per peak (``LIFT_COLUMNS``).

    ``peaks`` has peak_id, chrom, start, end, summit. Mapped peaks are re-centred on the
    lifted summit (the lifted interval's centre when the summit itself does not lift into
    it) and keep the source width, shifted inside the target chromosome if needed.
    """
    from crossglue.genomics.liftover import lift_intervals, lift_points

    peaks = peaks.reset_index(drop=True)
    n = len(peaks)
    out = pd.DataFrame({c: pd.Series(pd.NA, index=range(n), dtype=object) for c in LIFT_COLUMNS})
    out["peak_id"] = peaks["peak_id"].to_numpy()
    out["n_mappings"] = 0
    for c in ("length_ratio", "reciprocal_overlap"):
        out[c] = np.nan
    index = pd.Index(peaks["peak_id"])
    intervals = peaks[["chrom", "start", "end"]].assign(name=peaks["peak_id"].to_numpy())
    result = lift_intervals(intervals, chains_to, min_match=recipe.min_match, multiple=recipe.multiple)

    # unmapped: cannot lift (sequence) unless the reason is a duplication (multi-mapper)
    un = result.unmapped
    rows = index.get_indexer(un["name"])
    is_dup = (un["reason_code"] == "duplicated").to_numpy()
    out.loc[rows, "status"] = np.where(is_dup, AMBIGUOUS, UNMAPPED)
    out.loc[rows, "reason"] = un["reason"].astype(str).to_numpy()
    out.loc[rows, "reason_code"] = un["reason_code"].astype(str).to_numpy()

    mapped = result.mapped.reset_index(drop=True)
    counts = mapped["name"].value_counts()
    mrows = index.get_indexer(counts.index)
    out.loc[mrows, "n_mappings"] = counts.to_numpy()
    multi = counts.index[counts > 1]
    out.loc[index.get_indexer(multi), ["status", "reason", "reason_code"]] = [
        AMBIGUOUS,
        "Multiple mappings in new",
        "multiple",
    ]
    single = mapped[~mapped["name"].isin(multi)].reset_index(drop=True)
    srows = index.get_indexer(single["name"])
    out.loc[srows, "status"] = PASS
    out.loc[srows, "lifted_chrom"] = single["chrom"].astype(str).to_numpy()
    out.loc[srows, "lifted_start"] = single["start"].to_numpy(np.int64)
    out.loc[srows, "lifted_end"] = single["end"].to_numpy(np.int64)
    orig_len = (peaks["end"] - peaks["start"]).to_numpy(np.int64)
    lifted_len = (single["end"] - single["start"]).to_numpy(np.int64)
    ratio = lifted_len / np.maximum(orig_len[srows], 1)
    out.loc[srows, "length_ratio"] = ratio
    if recipe.min_length_ratio is not None or recipe.max_length_ratio is not None:
        lo = recipe.min_length_ratio if recipe.min_length_ratio is not None else 0.0
        hi = recipe.max_length_ratio if recipe.max_length_ratio is not None else np.inf
        bad = (ratio < lo) | (ratio > hi)
        out.loc[srows[bad], ["status", "reason_code"]] = [AMBIGUOUS, "length_ratio"]
        out.loc[srows[bad], "reason"] = [f"lifted/original length {r:.2f} outside [{lo:g}, {hi:g}]" for r in ratio[bad]]

    if recipe.min_reciprocal_overlap is not None:
        if chains_back is None:
            raise CrossglueError("liftover: the reciprocal-overlap check needs the chain file back to the source")
        check = single[(out.loc[srows, "status"] == PASS).to_numpy()]
        back = lift_intervals(
            check[["chrom", "start", "end", "name"]], chains_back, min_match=recipe.min_match, multiple=recipe.multiple
        ).mapped
        crow = index.get_indexer(back["name"])
        same_chrom = back["chrom"].astype(str).to_numpy() == peaks["chrom"].astype(str).to_numpy()[crow]
        frac = np.where(
            same_chrom,
            _reciprocal(
                back["start"].to_numpy(np.int64),
                back["end"].to_numpy(np.int64),
                peaks["start"].to_numpy(np.int64)[crow],
                peaks["end"].to_numpy(np.int64)[crow],
            ),
            0.0,
        )
        best = pd.Series(frac).groupby(crow).max()
        recip = best.reindex(index.get_indexer(check["name"]), fill_value=0.0).to_numpy()
        crows = index.get_indexer(check["name"])
        out.loc[crows, "reciprocal_overlap"] = recip
        bad = recip < recipe.min_reciprocal_overlap
        out.loc[crows[bad], ["status", "reason_code"]] = [AMBIGUOUS, "reciprocal"]
        out.loc[crows[bad], "reason"] = [
            f"reciprocal overlap {r:.2f} < {recipe.min_reciprocal_overlap:g} after lifting back" for r in recip[bad]
        ]

    # re-centre passing peaks on the lifted summit
    ok = np.flatnonzero((out["status"] == PASS).to_numpy())
    if len(ok):
        half_left = (peaks["summit"] - peaks["start"]).to_numpy(np.int64)[ok]
        width = orig_len[ok]
        l_chrom = out["lifted_chrom"].to_numpy()[ok].astype(str)
        l_start = out["lifted_start"].to_numpy()[ok].astype(np.int64)
        l_end = out["lifted_end"].to_numpy()[ok].astype(np.int64)
        centre = (l_start + l_end) // 2
        pts = lift_points(peaks["chrom"].to_numpy()[ok].astype(str), peaks["summit"].to_numpy(np.int64)[ok], chains_to)
        if len(pts):
            q = pts["query"].to_numpy(np.int64)
            inside = (
                (pts["chrom"].astype(str).to_numpy() == l_chrom[q])
                & (pts["pos"].to_numpy() >= l_start[q])
                & (pts["pos"].to_numpy() < l_end[q])
            )
            hit = pts[inside].drop_duplicates("query")
            centre[hit["query"].to_numpy(np.int64)] = hit["pos"].to_numpy(np.int64)
        start = centre - half_left
        if target_sizes is not None:
            size = pd.Series(l_chrom).map(target_sizes).to_numpy(np.float64)
            size = np.where(np.isnan(size), np.inf, size)
            start = np.minimum(start, size - width).astype(np.int64)
        start = np.maximum(start, 0)
        out.loc[ok, "chrom"] = l_chrom
        out.loc[ok, "start"] = start
        out.loc[ok, "end"] = start + width
        out.loc[ok, "summit"] = start + half_left
    missing = out["status"].isna()
    if missing.any():
        raise CrossglueError(
            f"liftover returned neither a mapping nor a reason for {int(missing.sum())} peak(s), "
            f"e.g. {out.loc[missing, 'peak_id'].iloc[0]}"
        )
    return out


def check_lifted_fraction(lifted: pd.DataFrame, floor: float, source: str, target: str, chain: str,
                          recipe: str = "caglayan") -> None:
    """Raise when fewer than ``floor`` of the peaks pass the lift: a wrong or foreign chain file.

    ``lifted`` is :func:`lift_peaks`' table; the message names the pair, the fraction, the
    chain file and the commonest reasons (config ``liftover.min_lifted_fraction``).
    """
    n = len(lifted)
    passed = int((lifted["status"] == PASS).sum())
    if not n or passed >= floor * n:
        return
    reasons = lifted.loc[lifted["status"] != PASS, "reason_code"].astype(str).value_counts()
    top = ", ".join(f"{code} {count}" for code, count in reasons.iloc[:3].items())
    raise CrossglueError(
        f"liftover {source} → {target}: only {passed} of {n} peaks ({100 * passed / n:.1f} %) pass the {recipe} "
        f"recipe with chain file {chain}, below liftover.min_lifted_fraction = {floor:g} (failed: {top}); check "
        f"that this chain connects {source}'s assembly to {target}'s and that its chromosome names are the peaks' "
        "(through the species' chrom_aliases)"
    )


# --- union -------------------------------------------------------------------------------------


def _mutual_best(edges: pd.DataFrame) -> pd.DataFrame:
    """One-to-one matching, largest overlap first: rounds of mutually best edges (vectorised)."""
    edges = edges.sort_values(["overlap", "u", "v"], ascending=[False, True, True], kind="stable")
    chosen = []
    while len(edges):
        best_u = edges.drop_duplicates("u")  # first = largest overlap for each u
        best_v = edges.drop_duplicates("v")
        mutual = best_u.merge(best_v, on=["u", "v", "overlap"])
        chosen.append(mutual)
        edges = edges[~edges["u"].isin(mutual["u"]) & ~edges["v"].isin(mutual["v"])]
    return pd.concat(chosen, ignore_index=True) if chosen else edges


def _split_same_species(labels: np.ndarray, node_species: np.ndarray, edges: pd.DataFrame) -> np.ndarray:
    """Break components holding two peaks of one species (possible for N ≥ 3): greedy union-find.

    Only the few offending components are revisited, edges by decreasing overlap; a merge
    that would put two peaks of one species in one element is skipped.
    """
    n_species = int(node_species.max()) + 1 if len(node_species) else 0
    key = labels.astype(np.int64) * max(n_species, 1) + node_species
    dup_comp = np.unique(labels[pd.Series(key).duplicated().to_numpy()])
    if not len(dup_comp):
        return labels
    bad_nodes = np.isin(labels, dup_comp)
    sub = edges[bad_nodes[edges["u"].to_numpy()]].sort_values("overlap", ascending=False, kind="stable")
    parent = {int(x): int(x) for x in np.flatnonzero(bad_nodes)}
    members = {x: {int(node_species[x])} for x in parent}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in zip(sub["u"].to_numpy(), sub["v"].to_numpy(), strict=True):  # few, rare edges
        ru, rv = find(int(u)), find(int(v))
        if ru != rv and not (members[ru] & members[rv]):
            parent[rv] = ru
            members[ru] |= members.pop(rv)
    out = labels.copy()
    fresh = labels.max() + 1
    for x in parent:
        out[x] = fresh + find(x)
    return pd.factorize(out)[0]


def _mark_many_to_one(
    lifts: dict[tuple[str, str], pd.DataFrame],
    edges: pd.DataFrame,
    matched: pd.DataFrame,
    species: list[str],
    offsets: np.ndarray,
    node_peak: np.ndarray,
) -> dict[tuple[str, str], pd.DataFrame]:
    """A passing peak whose lifted copy lands on a peak already matched to another peak is ambiguous.

    Two peaks of one species competing for one orthologous peak is the signature of a
    duplication that liftOver does not see as a multi-mapping (the extra copy has no chain).
    """
    node_species = np.searchsorted(offsets, np.arange(offsets[-1]), side="right") - 1
    losers = []
    for pair, e in edges.groupby("pair"):
        m = matched[matched["pair"] == pair]
        lose_u = e[~e["u"].isin(m["u"]) & e["v"].isin(m["v"])]
        lose_v = e[~e["v"].isin(m["v"]) & e["u"].isin(m["u"])]
        losers.append(pd.DataFrame({"node": lose_u["u"], "partner": lose_u["v"]}))
        losers.append(pd.DataFrame({"node": lose_v["v"], "partner": lose_v["u"]}))
    if not losers:
        return lifts
    losers = pd.concat(losers, ignore_index=True).drop_duplicates("node")
    out = dict(lifts)
    src = node_species[losers["node"].to_numpy()]
    dst = node_species[losers["partner"].to_numpy()]
    for (ia, ib), sub in losers.groupby([src, dst]):  # species pairs
        a, b = species[ia], species[ib]
        lift = out[(a, b)].copy()
        row = pd.Index(lift["peak_id"].astype(str)).get_indexer(node_peak[sub["node"].to_numpy()])
        passing = lift["status"].to_numpy()[row] == PASS
        row, partner = row[passing], sub["partner"].to_numpy()[passing]
        lift.loc[row, "status"] = AMBIGUOUS
        lift.loc[row, "reason_code"] = "many_to_one"
        lift.loc[row, "reason"] = [f"lands on {b} peak {node_peak[p]}, matched to another {a} peak" for p in partner]
        out[(a, b)] = lift
    return out


def build_union(
    peaks: dict[str, pd.DataFrame], lifts: dict[tuple[str, str], pd.DataFrame], chrom_order: dict[str, list[str]]
) -> pd.DataFrame:
    """The union element table from each species' peaks and every ordered pair's lift table.

    ``lifts[(a, b)]`` is :func:`lift_peaks` of a's peaks to b. Columns: element_id, class,
    per species ``{s}_chrom/_start/_end/_peak``, unmapped_reason, ``class_{a}_{b}`` per pair.
    """
    species = list(peaks)
    if len(species) < 2:
        raise CrossglueError(f"union: need peaks of at least two species, got {species}")
    offsets = np.cumsum([0] + [len(peaks[s]) for s in species])
    node_species = np.repeat(np.arange(len(species)), np.diff(offsets))
    node_peak = np.concatenate([peaks[s]["peak_id"].astype(str).to_numpy() for s in species])
    n_nodes = int(offsets[-1])
    pos = {s: pd.Index(peaks[s]["peak_id"].astype(str)) for s in species}

    # edges: a's passing lifted peak overlaps one of b's peaks (either direction)
    edge_parts = []
    for (a, b), lift in lifts.items():
        ia, ib = species.index(a), species.index(b)
        ok = lift[lift["status"] == PASS]
        target = peaks[b].sort_values(["chrom", "start"], kind="stable")
        for chrom, sub in ok.groupby("chrom", sort=False):  # chromosomes
            tb = target[target["chrom"] == chrom]
            if not len(tb):
                continue
            qs, qe = sub["start"].to_numpy(np.int64), sub["end"].to_numpy(np.int64)
            q, e = overlapping_elements(tb["start"].to_numpy(np.int64), tb["end"].to_numpy(np.int64), qs, qe)
            overlap = np.minimum(qe[q], tb["end"].to_numpy()[e]) - np.maximum(qs[q], tb["start"].to_numpy()[e])
            u = offsets[ia] + pos[a].get_indexer(sub["peak_id"].to_numpy()[q])
            v = offsets[ib] + pos[b].get_indexer(tb["peak_id"].to_numpy()[e])
            lo_first = ia < ib
            edge_parts.append(
                pd.DataFrame(
                    {
                        "u": np.where(lo_first, u, v),
                        "v": np.where(lo_first, v, u),
                        "overlap": overlap,
                        "pair": min(ia, ib) * len(species) + max(ia, ib),
                    }
                )
            )
    edges = (
        pd.concat(edge_parts, ignore_index=True).groupby(["pair", "u", "v"], as_index=False)["overlap"].max()
        if edge_parts
        else pd.DataFrame({"pair": [], "u": [], "v": [], "overlap": []}, dtype=np.int64)
    )
    matched = pd.concat(
        [_mutual_best(e[["u", "v", "overlap"]]).assign(pair=p) for p, e in edges.groupby("pair")]
        or [edges[["u", "v", "overlap", "pair"]]],
        ignore_index=True,
    )
    lifts = _mark_many_to_one(lifts, edges, matched, species, offsets, node_peak)
    graph = sp.coo_matrix(
        (np.ones(len(matched)), (matched["u"].to_numpy(np.int64), matched["v"].to_numpy(np.int64))),
        shape=(n_nodes, n_nodes),
    )
    _, labels = connected_components(graph, directed=False)
    labels = _split_same_species(labels, node_species, matched)

    # one column of member peak (node index or -1) per species
    n_el = int(labels.max()) + 1 if n_nodes else 0
    member = np.full((n_el, len(species)), -1, np.int64)
    member[labels, node_species] = np.arange(n_nodes)

    # lift lookups per ordered pair, aligned to node index of the source
    status = {}
    lifted = {}
    for (a, b), lift in lifts.items():
        ia = species.index(a)
        idx = offsets[ia] + pos[a].get_indexer(lift["peak_id"].astype(str))
        st = np.full(n_nodes, "", dtype=object)
        st[idx] = lift["status"].to_numpy()
        status[(a, b)] = st
        lifted[(a, b)] = (idx, lift)

    table = {"element_id": None, "class": None}
    coords = {}
    for j, s in enumerate(species):
        has = member[:, j] >= 0
        node = member[:, j]
        local = np.where(has, node - offsets[j], 0)
        p = peaks[s]
        chrom = np.where(has, p["chrom"].astype(str).to_numpy()[local] if len(p) else "", None).astype(object)
        start = np.where(has, p["start"].to_numpy()[local] if len(p) else 0, -1).astype(np.int64)
        end = np.where(has, p["end"].to_numpy()[local] if len(p) else 0, -1).astype(np.int64)
        # elements without a peak in s: coordinates lifted from the first species whose peak passes
        for a in species:
            if a == s or (a, s) not in lifts:
                continue
            ia = species.index(a)
            idx, lift = lifted[(a, s)]
            node_row = np.full(n_nodes, -1, np.int64)
            node_row[idx] = np.arange(len(lift))
            src = member[:, ia]
            row = np.where(src >= 0, node_row[np.maximum(src, 0)], -1)
            take = (chrom == None) & (row >= 0)  # noqa: E711 - object array
            take &= np.where(row >= 0, (lift["status"].to_numpy()[np.maximum(row, 0)] == PASS), False)
            chrom[take] = lift["chrom"].to_numpy()[row[take]]
            start[take] = lift["start"].to_numpy()[row[take]].astype(np.int64)
            end[take] = lift["end"].to_numpy()[row[take]].astype(np.int64)
        coords[s] = (chrom, start, end, np.where(has, node_peak[np.maximum(node, 0)], None))

    # pair classes
    called = member >= 0
    pair_class = {}
    for a, b in itertools.combinations(sorted(species), 2):
        ia, ib = species.index(a), species.index(b)
        cls = np.full(n_el, None, dtype=object)
        both = called[:, ia] & called[:, ib]
        cls[both] = "conserved"
        for x, y, ix in ((a, b, ia), (b, a, ib)):
            only = called[:, ix] & ~both
            st = status[(x, y)][np.maximum(member[:, ix], 0)] if (x, y) in status else np.full(n_el, "")
            cls[only & (st == PASS)] = f"{x}_accessible"
            cls[only & (st == AMBIGUOUS)] = "ambiguous"
            cls[only & (st == UNMAPPED)] = f"{x}_sequence"
        pair_class[f"class_{a}_{b}"] = cls

    # overall class and reason
    n_called = called.sum(axis=1)
    overall = np.full(n_el, None, dtype=object)
    overall[n_called >= 2] = "conserved"
    reason = np.full(n_el, None, dtype=object)
    for j, s in enumerate(species):
        single = (n_called == 1) & called[:, j]
        sts, reasons = [], []
        for b in species:
            if b == s:
                continue
            idx, lift = lifted[(s, b)]
            row = np.full(n_nodes, -1, np.int64)
            row[idx] = np.arange(len(lift))
            r = row[np.maximum(member[:, j], 0)]
            sts.append(np.where(r >= 0, lift["status"].to_numpy()[np.maximum(r, 0)], ""))
            txt = lift["reason"].astype(object).where(lift["reason"].notna(), "").to_numpy()[np.maximum(r, 0)]
            reasons.append((b, np.where((r >= 0) & (sts[-1] != PASS), txt, "")))
        sts = np.array(sts)
        any_pass = (sts == PASS).any(axis=0)
        any_amb = (sts == AMBIGUOUS).any(axis=0)
        overall[single & any_pass] = f"{s}_accessible"
        overall[single & ~any_pass & any_amb] = "ambiguous"
        overall[single & ~any_pass & ~any_amb] = f"{s}_sequence"
        if len(species) == 2:
            text = reasons[0][1]
        else:
            text = pd.Series([""] * n_el, dtype=object)
            for b, t in reasons:
                part = pd.Series(t, dtype=object)
                part = part.where(part == "", f"to {b}: " + part)
                text = text.where(part == "", text.where(text == "", text + "; ") + part)
            text = text.to_numpy()
        reason[single & ~any_pass] = text[single & ~any_pass]
        reason[single & any_pass & (len(species) > 2)] = text[single & any_pass & (len(species) > 2)]
    reason = np.where(reason == "", None, reason)

    # order elements by the genome position of their first called species
    primary = np.argmax(called, axis=1)
    sort_chrom = np.zeros(n_el, np.int64)
    sort_start = np.zeros(n_el, np.int64)
    for j, s in enumerate(species):
        rank = {c: i for i, c in enumerate(chrom_order[s])}
        sel = primary == j
        sort_chrom[sel] = pd.Series(coords[s][0][sel]).map(rank).fillna(len(rank)).to_numpy(np.int64)
        sort_start[sel] = coords[s][1][sel]
    order = np.lexsort((sort_start, sort_chrom, primary))

    out = pd.DataFrame({"element_id": [f"el{i:07d}" for i in range(1, n_el + 1)]})
    out["class"] = overall[order]
    for s in species:
        chrom, start, end, peak = coords[s]
        exists = chrom[order] != None  # noqa: E711
        out[f"{s}_chrom"] = pd.Series(chrom[order], dtype=object)
        out[f"{s}_start"] = pd.array(np.where(exists, start[order], 0), dtype="Int64").astype("Int64")
        out[f"{s}_end"] = pd.array(np.where(exists, end[order], 0), dtype="Int64")
        out.loc[~exists, [f"{s}_start", f"{s}_end"]] = pd.NA
        out[f"{s}_peak"] = pd.Series(peak[order], dtype=object)
    out["unmapped_reason"] = pd.Series(reason[order], dtype=object)
    for column, cls in pair_class.items():
        out[column] = pd.Series(cls[order], dtype=object)
    if len(species) == 2:
        only = next(iter(pair_class))
        mismatch = out[only].fillna("") != out["class"].fillna("")
        if mismatch.any():
            raise AssertionError("union: pair class differs from class with two species")  # internal invariant
    return out


def class_summary(union: pd.DataFrame, species: list[str]) -> pd.DataFrame:
    """Elements per class for every species pair (the report's main table)."""
    rows = []
    for a, b in itertools.combinations(sorted(species), 2):
        counts = union[f"class_{a}_{b}"].fillna("none").value_counts()
        rows.append(pd.DataFrame({"species_a": a, "species_b": b, "class": counts.index, "n_elements": counts.values}))
    return pd.concat(rows, ignore_index=True)


def read_lift_table(path) -> pd.DataFrame:
    """Read a lift table written by rule lift_peaks (``LIFT_COLUMNS``), checking its columns."""
    table = pd.read_csv(
        path, sep="\t", dtype={"peak_id": str, "status": str, "reason": object, "chrom": object, "lifted_chrom": object}
    )
    missing = [c for c in LIFT_COLUMNS if c not in table]
    if missing:
        raise CrossglueError(f"{path}: missing column(s) {', '.join(missing)}; expected a crossglue lift table")
    bad = ~table["status"].isin([PASS, AMBIGUOUS, UNMAPPED])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise CrossglueError(
            f"{path}:{i + 2}: status '{table['status'].iloc[i]}'; expected {PASS}, {AMBIGUOUS} or {UNMAPPED}"
        )
    return table


# --- reading the union table back ---------------------------------------------------------


def read_union_table(path: str | Path, species: list[str]) -> pd.DataFrame:
    """Read ``union_peaks.tsv`` and check the columns every graph step relies on."""
    path = Path(path)
    if not path.is_file():
        raise CrossglueError(f"union peak table {path} does not exist")
    table = pd.read_csv(path, sep="\t", dtype={"element_id": str, "class": str}, low_memory=False)
    needed = ["element_id", "class"] + [f"{s}_{c}" for s in species for c in ("chrom", "start", "end")]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise CrossglueError(
            f"{path}: missing column(s) {', '.join(missing)}; expected element_id, class and "
            "<species>_chrom/_start/_end for every species"
        )
    dup = table["element_id"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise CrossglueError(f"{path}:{i + 2}: element '{table['element_id'].iloc[i]}' appears more than once")
    return table


def species_elements(union: pd.DataFrame, species: str) -> pd.DataFrame:
    """Elements with coordinates in ``species``: index element_id; class, chrom, start, end, peak."""
    present = union[f"{species}_chrom"].notna().to_numpy()
    table = pd.DataFrame(
        {
            "class": union["class"].to_numpy()[present],
            "chrom": union[f"{species}_chrom"].to_numpy()[present].astype(str),
            "start": union[f"{species}_start"].to_numpy()[present].astype(np.int64),
            "end": union[f"{species}_end"].to_numpy()[present].astype(np.int64),
            "peak": union[f"{species}_peak"].to_numpy()[present] if f"{species}_peak" in union else pd.NA,
        },
        index=pd.Index(union["element_id"].to_numpy()[present].astype(str), name="element_id"),
    )
    pair_cols = [c for c in union.columns if c.startswith("class_") and species in c[len("class_") :].split("_")]
    for column in pair_cols:
        table[column] = union[column].to_numpy()[present]
    table["peak"] = table["peak"].astype(object).where(table["peak"].notna(), "")
    return table


def element_coordinates(union: pd.DataFrame, species: str) -> pd.DataFrame:
    """peak_id, chrom, start, end of the elements that have coordinates in ``species``."""
    table = species_elements(union, species)
    return pd.DataFrame(
        {"peak_id": table.index.to_numpy(), "chrom": table["chrom"].to_numpy(), "start": table["start"].to_numpy(),
         "end": table["end"].to_numpy()}
    )  # fmt: skip
