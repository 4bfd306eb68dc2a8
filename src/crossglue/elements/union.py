"""Union element table across N species from every peak set lifted to every other species.

Lifting is :mod:`crossglue.elements.recipes`. Peaks
of two species that overlap after lifting become one element (one-to-one, largest overlap
first); every other peak is an element of its own. Classes (a contract, see DESIGN.md):
``conserved``, ``{s}_accessible``, ``{s}_sequence``, ``ambiguous``.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from crossglue.elements.recipes import AMBIGUOUS, PASS, UNMAPPED
from crossglue.errors import CrossglueError
from crossglue.genomics.intervals import overlapping_elements

log = logging.getLogger(__name__)

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
    With the peaks of one species only (the others have RNA samples only) every peak is an
    element of its own, with no class: there is no other species to compare it with.
    """
    species = list(peaks)
    if not species:
        raise CrossglueError("union: no species with peaks; at least one species needs ATAC samples")
    offsets = np.cumsum([0] + [len(peaks[s]) for s in species])
    node_species = np.repeat(np.arange(len(species)), np.diff(offsets))
    node_peak = np.concatenate([peaks[s]["peak_id"].astype(str).to_numpy() for s in species])
    n_nodes = int(offsets[-1])
    pos = {s: pd.Index(peaks[s]["peak_id"].astype(str)) for s in species}

    edges = _overlap_edges(peaks, lifts, species, offsets, pos)
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

    coords = _element_coordinates(peaks, lifts, lifted, species, offsets, member, node_peak)
    called = member >= 0
    pair_class = _pair_classes(species, member, status)
    overall, reason = _overall_classes(species, member, lifted, n_nodes)
    order = _genome_order(species, called, coords, chrom_order)
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


def _overlap_edges(peaks: dict, lifts: dict, species: list[str], offsets: np.ndarray, pos: dict) -> pd.DataFrame:
    """(pair, u, v, overlap): a's passing lifted peak u overlaps b's peak v (node indices, u < v by species)."""
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
    if not edge_parts:
        return pd.DataFrame({"pair": [], "u": [], "v": [], "overlap": []}, dtype=np.int64)
    return pd.concat(edge_parts, ignore_index=True).groupby(["pair", "u", "v"], as_index=False)["overlap"].max()


def _element_coordinates(
    peaks: dict,
    lifts: dict,
    lifted: dict,
    species: list[str],
    offsets: np.ndarray,
    member: np.ndarray,
    node_peak: np.ndarray,
) -> dict[str, tuple]:
    """Per species: (chrom, start, end, peak) of every element; from its own peak where called,
    else lifted from the first species whose peak passes."""
    n_nodes = len(node_peak)
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

    return coords


def _pair_classes(species: list[str], member: np.ndarray, status: dict) -> dict[str, np.ndarray]:
    """``class_{a}_{b}`` of every element for each species pair."""
    n_el = len(member)
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

    return pair_class


def _overall_classes(
    species: list[str], member: np.ndarray, lifted: dict, n_nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class over all species (conserved when called in two or more) and the unmapped reason."""
    n_el = len(member)
    called = member >= 0
    n_called = called.sum(axis=1)
    overall = np.full(n_el, None, dtype=object)
    if len(species) == 1:  # nothing lifted: neither conserved nor specific to the species
        return overall, np.full(n_el, None, dtype=object)
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

    return overall, reason


def _genome_order(species: list[str], called: np.ndarray, coords: dict, chrom_order: dict) -> np.ndarray:
    """Elements ordered by the genome position of their first called species."""
    n_el = len(called)
    primary = np.argmax(called, axis=1)
    sort_chrom = np.zeros(n_el, np.int64)
    sort_start = np.zeros(n_el, np.int64)
    for j, s in enumerate(species):
        rank = {c: i for i, c in enumerate(chrom_order[s])}
        sel = primary == j
        sort_chrom[sel] = pd.Series(coords[s][0][sel]).map(rank).fillna(len(rank)).to_numpy(np.int64)
        sort_start[sel] = coords[s][1][sel]
    order = np.lexsort((sort_start, sort_chrom, primary))

    return order


def class_summary(union: pd.DataFrame, species: list[str]) -> pd.DataFrame:
    """Elements per class for every species pair (the report's main table)."""
    rows = [pd.DataFrame(columns=["species_a", "species_b", "class", "n_elements"])]  # one species: no pair
    for a, b in itertools.combinations(sorted(species), 2):
        counts = union[f"class_{a}_{b}"].fillna("none").value_counts()
        rows.append(pd.DataFrame({"species_a": a, "species_b": b, "class": counts.index, "n_elements": counts.values}))
    return pd.concat(rows, ignore_index=True).astype({"n_elements": np.int64})


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
        {
            "peak_id": table.index.to_numpy(),
            "chrom": table["chrom"].to_numpy(),
            "start": table["start"].to_numpy(),
            "end": table["end"].to_numpy(),
        }
    )
