"""liftOver recipes for peaks between two species, and the per-peak lift table.

Two published recipes (:class:`LiftRecipe`): Caglayan et al. (Konopka lab; liftOver
``-multiple -minMatch=0.5``, multi-mappers dropped, lifted/original length in [0.5, 2],
≥ 50 % reciprocal overlap after lifting back) or Yuan et al. 2024 (``-minMatch=0.95``,
single mapping). A lifted peak is re-centred on its lifted summit at the peak width.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from crossglue.config import section_settings
from crossglue.errors import CrossglueError

# status of one peak lifted to one other species
PASS, AMBIGUOUS, UNMAPPED = "pass", "ambiguous", "unmapped"
LIFT_COLUMNS = [
    "peak_id",
    "status",
    "reason",
    "reason_code",
    "chrom",
    "start",
    "end",
    "summit",
    "lifted_chrom",
    "lifted_start",
    "lifted_end",
    "n_mappings",
    "length_ratio",
    "reciprocal_overlap",
]


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
    from crossglue.genomics.liftover import lift_intervals

    peaks = peaks.reset_index(drop=True)
    out = pd.DataFrame({c: pd.Series(pd.NA, index=range(len(peaks)), dtype=object) for c in LIFT_COLUMNS})
    out["peak_id"] = peaks["peak_id"].to_numpy()
    out["n_mappings"] = 0
    for c in ("length_ratio", "reciprocal_overlap"):
        out[c] = np.nan
    index = pd.Index(peaks["peak_id"])
    intervals = peaks[["chrom", "start", "end"]].assign(name=peaks["peak_id"].to_numpy())
    result = lift_intervals(intervals, chains_to, min_match=recipe.min_match, multiple=recipe.multiple)
    _record_unmapped(out, index, result.unmapped)
    single, srows = _record_mapped(out, index, result.mapped.reset_index(drop=True))
    _check_length_ratio(out, peaks, single, srows, recipe)
    if recipe.min_reciprocal_overlap is not None:
        if chains_back is None:
            raise CrossglueError("liftover: the reciprocal-overlap check needs the chain file back to the source")
        _check_reciprocal(out, peaks, index, single[(out.loc[srows, "status"] == PASS).to_numpy()], chains_back, recipe)
    _recentre_on_summits(out, peaks, chains_to, target_sizes)
    missing = out["status"].isna()
    if missing.any():
        raise CrossglueError(
            f"liftover returned neither a mapping nor a reason for {int(missing.sum())} peak(s), "
            f"e.g. {out.loc[missing, 'peak_id'].iloc[0]}"
        )
    return out


def _record_unmapped(out: pd.DataFrame, index: pd.Index, unmapped: pd.DataFrame) -> None:
    """Unmapped peaks cannot lift (lineage-specific sequence) unless duplicated (multi-mappers)."""
    rows = index.get_indexer(unmapped["name"])
    is_dup = (unmapped["reason_code"] == "duplicated").to_numpy()
    out.loc[rows, "status"] = np.where(is_dup, AMBIGUOUS, UNMAPPED)
    out.loc[rows, "reason"] = unmapped["reason"].astype(str).to_numpy()
    out.loc[rows, "reason_code"] = unmapped["reason_code"].astype(str).to_numpy()


def _record_mapped(out: pd.DataFrame, index: pd.Index, mapped: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Multi-mapped peaks are ambiguous; single mappings pass for now. Returns them and their rows."""
    counts = mapped["name"].value_counts()
    out.loc[index.get_indexer(counts.index), "n_mappings"] = counts.to_numpy()
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
    return single, srows


def _check_length_ratio(
    out: pd.DataFrame, peaks: pd.DataFrame, single: pd.DataFrame, srows: np.ndarray, recipe: LiftRecipe
) -> None:
    """Lifted/original length outside the recipe's range makes a peak ambiguous."""
    orig_len = (peaks["end"] - peaks["start"]).to_numpy(np.int64)
    ratio = (single["end"] - single["start"]).to_numpy(np.int64) / np.maximum(orig_len[srows], 1)
    out.loc[srows, "length_ratio"] = ratio
    if recipe.min_length_ratio is None and recipe.max_length_ratio is None:
        return
    lo = recipe.min_length_ratio if recipe.min_length_ratio is not None else 0.0
    hi = recipe.max_length_ratio if recipe.max_length_ratio is not None else np.inf
    bad = (ratio < lo) | (ratio > hi)
    out.loc[srows[bad], ["status", "reason_code"]] = [AMBIGUOUS, "length_ratio"]
    out.loc[srows[bad], "reason"] = [f"lifted/original length {r:.2f} outside [{lo:g}, {hi:g}]" for r in ratio[bad]]


def _check_reciprocal(
    out: pd.DataFrame,
    peaks: pd.DataFrame,
    index: pd.Index,
    check: pd.DataFrame,
    chains_back: object,
    recipe: LiftRecipe,
) -> None:
    """Lift the passing peaks back: their best overlap with the original must reach the recipe's share."""
    from crossglue.genomics.liftover import lift_intervals

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
    crows = index.get_indexer(check["name"])
    recip = best.reindex(crows, fill_value=0.0).to_numpy()
    out.loc[crows, "reciprocal_overlap"] = recip
    bad = recip < recipe.min_reciprocal_overlap
    out.loc[crows[bad], ["status", "reason_code"]] = [AMBIGUOUS, "reciprocal"]
    out.loc[crows[bad], "reason"] = [
        f"reciprocal overlap {r:.2f} < {recipe.min_reciprocal_overlap:g} after lifting back" for r in recip[bad]
    ]


def _recentre_on_summits(
    out: pd.DataFrame, peaks: pd.DataFrame, chains_to: object, target_sizes: dict[str, int] | None
) -> None:
    """Passing peaks: the source width around the lifted summit, kept inside the target chromosome."""
    from crossglue.genomics.liftover import lift_points

    ok = np.flatnonzero((out["status"] == PASS).to_numpy())
    if not len(ok):
        return
    half_left = (peaks["summit"] - peaks["start"]).to_numpy(np.int64)[ok]
    width = (peaks["end"] - peaks["start"]).to_numpy(np.int64)[ok]
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


def check_lifted_fraction(
    lifted: pd.DataFrame, floor: float, source: str, target: str, chain: str, recipe: str = "caglayan"
) -> None:
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
