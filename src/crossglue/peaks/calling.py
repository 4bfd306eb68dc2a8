"""Per-species peak set: pseudobulk MACS2 calls per cell group, fixed-width, iteratively merged.

Follows the ArchR / SnapATAC2 recipe: Tn5 insertions of each group are pooled, MACS2 calls
summits on them (``--nomodel --shift -100 --extsize 200``: each cut site becomes a 200 bp
pileup centred on it), summits are widened to 501 bp, and groups are merged by iterative
overlap removal on scores normalised per group (score per million), so that a deeply
sequenced group does not win every overlap.
"""

from __future__ import annotations

import hashlib
import logging
import re
import resource
import shutil
import subprocess
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.config import schema_defaults, settings_from
from crossglue.errors import CrossglueError
from crossglue.genomics.fragments import cell_index, iter_fragments
from crossglue.genomics.genome import canonical_names, mito_chromosomes
from crossglue.genomics.intervals import expand_ranges, insertion_sites, overlaps_any

log = logging.getLogger(__name__)

PEAK_COLUMNS = [
    "peak_id",
    "chrom",
    "start",
    "end",
    "summit",
    "score",
    "neg_log10_p",
    "neg_log10_q",
    "group",
    "n_groups",
]


_DEFAULTS = schema_defaults("peaks")


@dataclass(frozen=True)
class PeakParams:
    """Settings of peak calling (config ``peaks``)."""

    half_width: int = _DEFAULTS["half_width"]  # summit ± 250 -> 501 bp (ArchR default)
    q_value: float = _DEFAULTS["q_value"]
    shift: int = _DEFAULTS["shift"]
    extsize: int = _DEFAULTS["extsize"]
    min_cells_per_group: int = _DEFAULTS["min_cells_per_group"]
    macs2: str = _DEFAULTS["macs2"]
    leiden_resolution: float = _DEFAULTS["leiden_resolution"]
    lsi_components: int = _DEFAULTS["lsi_components"]
    n_neighbors: int = _DEFAULTS["n_neighbors"]
    n_top_tiles: int = _DEFAULTS["n_top_tiles"]
    seed: int = _DEFAULTS["seed"]

    @classmethod
    def from_config(cls, cfg: dict | None) -> PeakParams:
        return settings_from(cls, "peaks", cfg)


# --- cell groups -----------------------------------------------------------------------------


def given_labels(obs: pd.DataFrame) -> pd.Series:
    """The given cell type of each cell, missing (NaN, empty or the text 'NA') as NA."""
    labels = obs["cell_type"] if "cell_type" in obs else pd.Series(pd.NA, index=obs.index)
    text = labels.astype(str)
    return labels.astype(object).where(labels.notna() & ~text.isin(["", "NA", "nan"]))


def every_cell_labelled(obs: pd.DataFrame) -> bool:
    """Whether peaks can be called per given cell type (else per cluster)."""
    return len(obs) > 0 and bool(given_labels(obs).notna().all())


def labels_by_cluster(labels: pd.Series, clusters: pd.Series, min_share: float = 0.5) -> pd.Series:
    """Given labels kept; an unlabelled cell takes the label most of its cluster's labelled
    cells carry (at least ``min_share`` of them), else its cluster's name: where only some
    samples are labelled, their labels still name the groups (``cluster<n>`` only for
    clusters the labelled cells do not explain)."""
    labels = labels.astype(object).where(labels.notna(), None)
    name = "cluster" + clusters.astype(str)
    have = labels.notna()
    votes = pd.crosstab(name[have], labels[have].astype(str))
    top = votes.idxmax(axis=1)
    share = votes.max(axis=1) / votes.sum(axis=1)
    by_cluster = top.where(share >= min_share)
    filled = name.map(by_cluster).where(lambda v: v.notna(), name)
    return labels.where(have, filled).astype(str)


def cell_groups(obs: pd.DataFrame, cluster_labels: pd.Series | None = None, min_cells: int = 20) -> pd.Series:
    """Group name per cell: the given cell type where every cell has one; where only some
    have one, the given labels plus, for unlabelled cells, their cluster's majority label or
    the cluster itself (:func:`labels_by_cluster`); without labels, the cluster.

    Groups smaller than ``min_cells`` are pooled into ``other`` (too few insertions for MACS2
    to estimate a local background); if that pool is itself small it still gets called.
    """
    labels = given_labels(obs)
    if every_cell_labelled(obs):
        groups = labels.astype(str)
    elif cluster_labels is not None and labels.notna().any():
        groups = labels_by_cluster(labels, cluster_labels)
        log.info(
            "%d of %d cells labelled; the others grouped by their cluster's label or cluster",
            int(labels.notna().sum()),
            len(labels),
        )
    elif cluster_labels is not None:
        groups = "cluster" + cluster_labels.astype(str)
    else:
        raise CrossglueError("cell groups: some cells have no cell_type and no clusters were given")
    sizes = groups.value_counts()
    small = groups.isin(sizes.index[sizes < min_cells])
    if small.any() and (~small).any():
        groups = groups.where(~small, "other")
    return pd.Series(groups.to_numpy(), index=obs.index, name="group")


# A label kept as its own file name: ASCII letters, digits, '_' and '-', not leading '-'.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,59}")
# The shape of a hashed name; a label that looks like one is hashed too, so a plain label
# can never equal another label's hashed name.
_HASHED_NAME = re.compile(r".*-[0-9a-f]{10}")


def safe_group_name(group: object, hashed: bool = False) -> str:
    """A file name for a group label: the label itself when it is plain (ASCII letters,
    digits, '_' and '-', at most 60 characters), else a readable slug plus 10 hex digits of
    the label's SHA-256, so ``InN/PVALB`` (``InN_PVALB-…``) and ``InN_PVALB`` never share
    a file, and '..', '', '/' or unicode never reach a path. ``hashed`` forces the hash."""
    label = str(group)
    if not hashed and _PLAIN_NAME.fullmatch(label) and not _HASHED_NAME.fullmatch(label):
        return label
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9]+", "_", ascii_text).strip("_")[:40] or "group"
    return f"{slug}-{hashlib.sha256(label.encode('utf-8')).hexdigest()[:10]}"


def group_file_names(groups: Iterable[object]) -> dict[str, str]:
    """:func:`safe_group_name` of every distinct label, collision-free also on a
    case-insensitive file system (``Astro`` and ``astro`` both get a hash)."""
    labels = sorted({str(g) for g in groups})
    names = {g: safe_group_name(g) for g in labels}
    folded = pd.Series([n.casefold() for n in names.values()])
    clash = set(folded[folded.duplicated(keep=False)])
    names = {g: safe_group_name(g, hashed=n.casefold() in clash) for g, n in names.items()}
    if len({n.casefold() for n in names.values()}) < len(names):  # a 40-bit hash collision
        raise CrossglueError(f"cell groups {labels}: two labels map to the same file name; rename one")
    return names


# --- pseudobulk -------------------------------------------------------------------------------


def write_pseudobulk_insertions(
    fragments: dict[str, str | Path],
    groups: pd.Series,
    aliases: dict[str, str],
    sizes: dict[str, int],
    outdir: str | Path,
) -> dict[str, Path]:
    """One 6-column BED of Tn5 insertions (1 bp, '+') per group, from every sample's fragments.

    ``fragments`` maps sample -> fragments path; ``groups`` is indexed by ``{sample}#{barcode}``.
    Returns group -> BED path. Each fragments file is read once. Insertions on the
    mitochondrial chromosome are left out, as ArchR leaves chrM out of its peak set: its
    reads are organelle DNA, not chromatin, and its "peaks" linked mitochondrial genes to
    themselves at the top of the regulatory links.
    """
    mito = mito_chromosomes(sizes, aliases)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    names = pd.Index(sorted(groups.unique()))
    files = group_file_names(names)
    paths = {g: outdir / f"{files[str(g)]}.insertions.bed" for g in names}
    handles = {g: open(p, "w") for g, p in paths.items()}  # noqa: SIM115 - closed below
    try:
        for sample, path in fragments.items():
            barcodes, rows = cell_index(groups.index, sample)
            if not len(rows):
                continue
            group_code = names.get_indexer(groups.to_numpy()[rows])
            for chunk in iter_fragments(path, sizes, aliases):
                cell = barcodes.get_indexer(chunk.barcodes)[chunk.barcode]
                nuclear = ~np.isin(np.asarray(chunk.chrom_names, dtype=object), list(mito))
                keep = (cell >= 0) & nuclear[chunk.chrom]
                pos, frag = insertion_sites(chunk.start[keep], chunk.end[keep])
                code = group_code[cell[keep]][frag]
                chrom = np.asarray(chunk.chrom_names, dtype=object)[chunk.chrom[keep][frag]]
                for g in np.unique(code):  # groups, not insertions
                    sel = code == g
                    bed = pd.DataFrame({"c": chrom[sel], "s": pos[sel], "e": pos[sel] + 1, "n": ".", "v": 0, "t": "+"})
                    bed.to_csv(handles[names[g]], sep="\t", header=False, index=False)
    finally:
        for handle in handles.values():
            handle.close()
    return paths


# --- MACS2 -----------------------------------------------------------------------------------


def genome_size(sizes: dict[str, int]) -> int:
    """Effective genome size for MACS2: the total length of the canonical chromosomes."""
    return int(sum(sizes.values()))


def call_group_summits(
    bed: Path, group: str, gsize: int, params: PeakParams, workdir: Path, name: str | None = None
) -> pd.DataFrame:
    """MACS2 summits of one group's insertions: chrom, summit, -log10 p and q, group, MACS2 peak region.

    ``name`` prefixes MACS2's files (default :func:`safe_group_name` of the group)."""
    if shutil.which(params.macs2) is None:
        raise CrossglueError(f"peak calling needs the '{params.macs2}' program on PATH (MACS2 or MACS3)")
    name = safe_group_name(group) if name is None else name
    cmd = [
        params.macs2,
        "callpeak",
        "-t",
        str(bed),
        "-f",
        "BED",
        "-n",
        name,
        "--outdir",
        str(workdir),
        "-g",
        str(gsize),
        "--nomodel",
        "--shift",
        str(params.shift),
        "--extsize",
        str(params.extsize),
        "--keep-dup",
        "all",
        "-q",
        str(params.q_value),
        "--call-summits",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CrossglueError(f"MACS2 failed on group '{group}' ({bed}):\n{proc.stderr[-2000:]}")
    narrow = workdir / f"{name}_peaks.narrowPeak"
    if not narrow.is_file() or narrow.stat().st_size == 0:
        return pd.DataFrame(
            columns=["chrom", "summit", "neg_log10_p", "neg_log10_q", "group", "macs_start", "macs_end"]
        )
    table = pd.read_csv(narrow, sep="\t", header=None, dtype={0: str})
    return pd.DataFrame(
        {
            "chrom": table[0].to_numpy(),
            "summit": (table[1] + table[9]).to_numpy(np.int64),
            "neg_log10_p": table[7].to_numpy(np.float64),
            "neg_log10_q": table[8].to_numpy(np.float64),
            "group": group,
            "macs_start": table[1].to_numpy(np.int64),
            "macs_end": table[2].to_numpy(np.int64),
        }
    )


# --- fixed width and merging ------------------------------------------------------------------


def score_per_million(summits: pd.DataFrame) -> pd.Series:
    """-log10 p of each summit divided by its group's total, times 1e6 (ArchR/SnapATAC2 style)."""
    total = summits.groupby("group")["neg_log10_p"].transform("sum")
    return summits["neg_log10_p"] / total.where(total > 0, 1.0) * 1e6


def fixed_width(
    summits: pd.DataFrame, sizes: dict[str, int], half_width: int, blacklist: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Summit ± ``half_width`` (2·half_width + 1 bp); drop peaks past a chromosome end or on the blacklist."""
    out = summits.copy()
    out["start"] = out["summit"] - half_width
    out["end"] = out["summit"] + half_width + 1
    length = out["chrom"].map(sizes)
    inside = length.notna() & (out["start"] >= 0) & (out["end"] <= length.fillna(0))
    out = out[inside.to_numpy()]
    if blacklist is not None and len(blacklist) and len(out):
        out = out[~overlaps_any(out, blacklist)]
    return out.reset_index(drop=True)


def iterative_overlap_merge(peaks: pd.DataFrame, score: str = "score") -> pd.DataFrame:
    """Keep the best-scoring peak, drop those overlapping it, repeat (ArchR's iterative overlap).

    Done in rounds, each vectorised: a peak whose rank beats every remaining peak it overlaps
    is kept (the sequential greedy would keep it too), its overlapping peaks are dropped.
    Also counts, per kept peak, how many distinct groups had a summit overlapping it.
    """
    if not len(peaks):
        return peaks.assign(n_groups=pd.Series(dtype=np.int64))
    peaks = peaks.sort_values(["chrom", "start", "end"], kind="stable").reset_index(drop=True)
    # strict priority: higher score first, ties by position (deterministic)
    rank = np.empty(len(peaks), np.int64)
    rank[np.lexsort((np.arange(len(peaks)), -peaks[score].to_numpy()))] = np.arange(len(peaks))
    chrom_code = pd.factorize(peaks["chrom"])[0].astype(np.int64)
    # all overlapping pairs, on one coordinate line with chromosomes far apart
    offset = chrom_code * (int(peaks["end"].max()) + 1)
    starts = peaks["start"].to_numpy(np.int64) + offset
    ends = peaks["end"].to_numpy(np.int64) + offset
    reach = np.maximum.accumulate(ends)
    lo = np.searchsorted(reach, starts, side="right")
    hi = np.searchsorted(starts, ends, side="left")
    qi, ej = expand_ranges(lo, hi)
    pair = (ends[ej] > starts[qi]) & (qi != ej)
    qi, ej = qi[pair], ej[pair]

    alive = np.ones(len(peaks), bool)
    kept = np.zeros(len(peaks), bool)
    while alive.any():
        live = alive[qi] & alive[ej]
        best_rival = np.full(len(peaks), np.iinfo(np.int64).max)
        np.minimum.at(best_rival, qi[live], rank[ej[live]])
        winners = alive & (rank < best_rival)
        kept |= winners
        alive &= ~winners
        alive[ej[winners[qi]]] = False
    groups = peaks["group"].to_numpy()
    kept_idx = np.flatnonzero(kept)
    near = kept[qi]
    covering = pd.DataFrame(
        {"peak": np.concatenate([kept_idx, qi[near]]), "group": np.concatenate([groups[kept_idx], groups[ej[near]]])}
    )
    n_groups = covering.drop_duplicates().groupby("peak").size()
    out = peaks[kept].copy()
    out["n_groups"] = n_groups.reindex(np.flatnonzero(kept)).to_numpy(np.int64)
    return out.reset_index(drop=True)


def finalise_peaks(merged: pd.DataFrame, species: str, chrom_order: list[str]) -> pd.DataFrame:
    """Sort by genome order and name peaks ``{species}_p{n}`` (n from 1)."""
    order = {c: i for i, c in enumerate(chrom_order)}
    out = merged.assign(_o=merged["chrom"].map(order)).sort_values(["_o", "start"], kind="stable")
    out = out.drop(columns="_o").reset_index(drop=True)
    out.insert(0, "peak_id", [f"{species}_p{i}" for i in range(1, len(out) + 1)])
    return out[PEAK_COLUMNS]


def _children_cpu_seconds() -> float:
    """User + system CPU of every child process waited for so far (MACS2 runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _size(path: Path) -> str:
    size = Path(path).stat().st_size
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"


def call_species_peaks(
    species: str,
    fragments: dict[str, str | Path],
    groups: pd.Series,
    aliases: dict[str, str],
    sizes: dict[str, int],
    workdir: str | Path,
    params: PeakParams = PeakParams(),
    blacklist: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The merged fixed-width peaks of one species and all per-group summits (for the report)."""
    workdir = Path(workdir)
    beds = write_pseudobulk_insertions(fragments, groups, aliases, sizes, workdir)
    gsize = genome_size(sizes)
    files = group_file_names(beds)
    calls, macs_cpu = [], 0.0
    for i, (g, bed) in enumerate(beds.items(), start=1):  # a few groups: MACS2 runs dominate
        log.info("%s: MACS2 group %d of %d: '%s' (%s of insertions)", species, i, len(beds), g, _size(bed))
        wall, cpu = time.perf_counter(), _children_cpu_seconds()
        calls.append(call_group_summits(bed, g, gsize, params, workdir, files[str(g)]))
        cpu = _children_cpu_seconds() - cpu
        macs_cpu += cpu
        log.info(
            "%s: MACS2 group '%s': %d summits in %.1f s wall, %.1f s CPU (MACS2 child process)",
            species,
            g,
            len(calls[-1]),
            time.perf_counter() - wall,
            cpu,
        )
    summits = pd.concat(calls, ignore_index=True) if calls else pd.DataFrame()
    # Snakemake's benchmark samples the rule's process tree now and then and misses most of
    # these short-lived children; this line is where peak calling's CPU goes.
    log.info(
        "%s: %d summits from %d groups; MACS2 children %.1f s CPU, this rule's own process %.1f s CPU so far",
        species,
        len(summits),
        len(beds),
        macs_cpu,
        time.process_time(),
    )
    if not len(summits):
        raise CrossglueError(f"{species}: MACS2 found no peak in any of {len(beds)} groups")
    summits["score"] = score_per_million(summits)
    widened = fixed_width(summits, sizes, params.half_width, blacklist)
    merged = iterative_overlap_merge(widened)
    return finalise_peaks(merged, species, list(sizes)), summits


def read_blacklist(path: str | Path, aliases: dict[str, str], sizes: dict[str, int]) -> pd.DataFrame:
    """A BED of excluded regions (chrom, start, end), chromosome names made canonical."""
    try:
        table = pd.read_csv(path, sep="\t", header=None, comment="#", usecols=[0, 1, 2], dtype={0: str})
    except (ValueError, pd.errors.ParserError) as err:
        raise CrossglueError(f"blacklist {path}: expected a BED file (chrom, start, end): {err}") from None
    table.columns = ["chrom", "start", "end"]
    known = table["chrom"].isin(list(sizes) + list(aliases))
    table = table[known]  # blacklists often list contigs the assembly of the run lacks
    table["chrom"] = canonical_names(table["chrom"].to_numpy(), aliases, sizes, source=str(path))
    return table.reset_index(drop=True)


def peaks_bed(peaks: pd.DataFrame) -> pd.DataFrame:
    """BED6 view of a peak table (score = rounded normalised score, capped at 1000)."""
    return pd.DataFrame(
        {
            "chrom": peaks["chrom"],
            "start": peaks["start"],
            "end": peaks["end"],
            "name": peaks["peak_id"],
            "score": np.minimum(np.round(peaks["score"]).astype(np.int64), 1000),
            "strand": ".",
        }
    )


def read_peaks(path: str | Path) -> pd.DataFrame:
    """Read a ``peaks.tsv`` written by :func:`call_species_peaks`, checking its columns."""
    table = pd.read_csv(path, sep="\t", dtype={"peak_id": str, "chrom": str, "group": str})
    missing = [c for c in ("peak_id", "chrom", "start", "end", "summit", "score") if c not in table]
    if missing:
        raise CrossglueError(f"{path}: missing column(s) {', '.join(missing)}; expected a crossglue peaks.tsv")
    return table
