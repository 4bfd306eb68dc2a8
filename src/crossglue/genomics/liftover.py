"""Vectorised liftOver through a :class:`~crossglue.genomics.chain.ChainSet`, with UCSC semantics.

Peaks are lifted between species with the rules of UCSC ``liftOver`` (kent
``src/hg/lib/liftOver.c``, ``remapRange``) so that results match what the field publishes,
but all intervals at once with numpy (sorted block starts + running maximum of block ends
+ ``searchsorted``), instead of one interval at a time.

:func:`lift_intervals` and :func:`lift_points` take and return data frames;
:func:`block_index` + :func:`lift_arrays` are the same kernel on numpy arrays, which the
``crossglue liftover`` command uses so that it never imports pandas.

Rules reproduced from UCSC liftOver (BED without blocks):

- For each chain touching the interval ``[s, e)``, ``intersect`` = bases of the interval
  inside that chain's aligned blocks. A chain is a *hit* when
  ``intersect >= minMatch * (e - s)`` (with ``-multiple``: ``minMatch`` times the part of the
  interval inside the chain's target span), else *partial*.
- No hit: ``#Deleted in new`` (no chain touches it), ``#Partially deleted in new`` (one
  partial chain), ``#Split in new`` (several partial chains). Several hits without
  ``-multiple``: ``#Duplicated in new``. A chromosome absent from the chain file is
  ``#Deleted in new`` in UCSC too; ``reason_code`` says ``chrom_not_in_chain`` there.
- A hit maps to the query span from the first to the last aligned base inside the interval
  (gaps inside are absorbed); on a ``-`` chain that span is converted back to ``+``
  coordinates (``qSize - end``, ``qSize - start``) and the strand flips.
- With ``-multiple`` every hit is reported, ordered by the chain's target start.

Deliberate differences:

- from UCSC: ``mapped_fraction`` is always ``intersect / (e - s)``; a chain must share at
  least one aligned base to count as a hit even with ``min_match=0`` (UCSC would abort on
  such a chain); zero-length intervals are ``Deleted in new``; BED columns 7–8
  (thickStart/thickEnd) and BED12 blocks are carried through unchanged by the CLI instead
  of being lifted; the ``-minSizeQ``/``-minChainT``/``-minChainQ``/``-minBlocks`` options
  are not offered.
- from CrossMap ``region`` mode: CrossMap pools the aligned bases of *all* chains touching
  an interval into one ratio and reports the outermost target coordinates, whereas UCSC
  (and this module) judges each chain on its own. The two therefore agree exactly on
  intervals whose aligned bases all come from one chain and differ where several chains
  meet (UCSC: split/duplicated; CrossMap: mapped when the pooled ratio passes and the
  pieces lie on one chromosome). CrossMap also reports an interval that touches a single
  aligned block as ``map_ratio=1.0000`` whatever its coverage (clipped to the block), where
  UCSC says ``Partially deleted in new``. CrossMap compares ``mapped / length >= ratio``,
  UCSC ``mapped >= minMatch * length``; on the exact boundary rounding can differ, and this
  module follows UCSC. CrossMap's default ratio is 0.85, UCSC's 0.95.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crossglue.errors import CrossglueError
from crossglue.genomics.chain import ChainArrays, ChainSet

if TYPE_CHECKING:
    import pandas as pd

_SHIFT = np.int64(1) << np.int64(40)  # chromosome code * 2**40 + position: one sorted line

REASON_CODES = ["", "deleted", "partially_deleted", "split", "duplicated", "chrom_not_in_chain"]
REASONS = {
    "deleted": "Deleted in new",
    "partially_deleted": "Partially deleted in new",
    "split": "Split in new",
    "duplicated": "Duplicated in new",
    "chrom_not_in_chain": "Deleted in new",
}


@dataclass
class LiftResult:
    """Lifted rows (several per input row only with ``multiple``) and unlifted rows with reasons."""

    mapped: pd.DataFrame
    unmapped: pd.DataFrame


@dataclass
class BlockIndex:
    """Every aligned block of a chain set on one global target line, sorted by start.

    Build it once with :func:`block_index` and lift many interval sets through it.
    """

    chains: ChainArrays
    chroms: dict[str, int]  # target chromosome -> code (order of first appearance)
    start: np.ndarray  # global target start
    end: np.ndarray  # global target end
    reach: np.ndarray  # running maximum of ``end``: blocks before i end by reach[i-1]
    q_start: np.ndarray  # query start in q_strand coordinates
    chain: np.ndarray  # positional index into the header


@dataclass
class ArrayLift:
    """:func:`lift_arrays`' result: mapped pieces in input-row order, and a reason per input row."""

    row: np.ndarray  # input row of each mapped piece (pieces of one row by chain target start)
    start: np.ndarray  # lifted start, + strand coordinates of the query
    end: np.ndarray
    chain: np.ndarray  # positional chain index
    minus: np.ndarray  # the chain reverses the sequence
    mapped_fraction: np.ndarray  # aligned bases of the piece's chain / interval length
    reason: np.ndarray  # per input row: index into REASON_CODES, 0 = lifted


def _arrays(chains: ChainSet | ChainArrays) -> ChainArrays:
    return chains if isinstance(chains, ChainArrays) else chains.arrays()


def block_index(chains: ChainSet | ChainArrays) -> BlockIndex:
    """The sorted block line of ``chains`` (what every lift searches)."""
    arrays = _arrays(chains)
    header, blocks = arrays.header, arrays.blocks
    chroms = {name: k for k, name in enumerate(dict.fromkeys(header["t_name"].tolist()))}
    code = np.array([chroms[n] for n in header["t_name"].tolist()], dtype=np.int64)
    chain = blocks["chain"].astype(np.int64)
    start = code[chain] * _SHIFT + blocks["t_start"].astype(np.int64)
    order = np.argsort(start, kind="stable")
    start = start[order]
    end = start + blocks["size"].astype(np.int64)[order]
    return BlockIndex(
        chains=arrays,
        chroms=chroms,
        start=start,
        end=end,
        reach=np.maximum.accumulate(end) if len(end) else end,
        q_start=blocks["q_start"].astype(np.int64)[order],
        chain=chain[order],
    )


def _overlaps(index: BlockIndex, code: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (row, block) pairs where block and ``[start, end)`` share at least one base.

    Pairs of one row are contiguous and in block (target) order; rows come in the order of
    their global start (sorted queries make ``searchsorted`` cache friendly). Candidates are
    the blocks between the last one ending before the start and the first one starting after
    the end; they are all real overlaps unless blocks overlap on the target (duplications),
    which UCSC/Ensembl assembly chains never do.
    """
    if len(end) and (end.max(initial=0) >= _SHIFT or start.min(initial=0) < 0):
        raise CrossglueError("liftover: coordinates must lie in [0, 2**40)")
    known = np.flatnonzero(code >= 0)
    gs = code[known] * _SHIFT + start[known]
    if len(gs) > 1 and (gs[1:] < gs[:-1]).any():  # a sorted BED needs no sort
        by_start = np.argsort(gs)
        known, gs = known[by_start], gs[by_start]
    ge = code[known] * _SHIFT + end[known]
    hi = np.searchsorted(index.start, ge, side="left")  # blocks starting before the end
    lo = np.searchsorted(index.reach, gs, side="right")  # earlier blocks all end by the start
    count = np.clip(hi - lo, 0, None)
    total = int(count.sum())
    rows = np.repeat(known, count)
    offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    blk = np.repeat(lo, count) + offset
    keep = (index.end[blk] > np.repeat(gs, count)) & (index.start[blk] < np.repeat(ge, count))
    return rows[keep], blk[keep]


def chrom_codes(index: BlockIndex, names: list[str]) -> np.ndarray:
    """Code of each chromosome name in ``index`` (-1: not in the chain file)."""
    return np.array([index.chroms.get(n, -1) for n in names], dtype=np.int64)


def _chrom_codes(index: BlockIndex, chrom: np.ndarray) -> np.ndarray:
    import pandas as pd

    cat = pd.Categorical(chrom)
    return (
        chrom_codes(index, list(cat.categories))[cat.codes]
        if len(cat.categories)
        else np.full(len(chrom), -1, np.int64)
    )


def lift_points(chrom: np.ndarray, pos: np.ndarray, chains: ChainSet) -> pd.DataFrame:
    """Lift 0-based positions; one row per (point, chain block) hit, none for points in gaps.

    Columns: ``query`` (index into the input arrays), ``chrom``, ``pos`` (0-based, + strand
    coordinates), ``strand`` (``-`` where the chain reverses the sequence), ``chain``
    (chain_id). Agrees with ``pyliftover.LiftOver.convert_coordinate``.
    """
    import pandas as pd

    chrom = np.asarray(chrom, dtype=object)
    pos = np.asarray(pos, dtype=np.int64)
    if chrom.shape != pos.shape:
        raise CrossglueError(f"lift_points: chrom and pos differ in length ({len(chrom)} vs {len(pos)})")
    index = block_index(chains)
    rows, blk = _overlaps(index, _chrom_codes(index, chrom), pos, pos + 1)
    in_input_order = np.argsort(rows, kind="stable")
    rows, blk = rows[in_input_order], blk[in_input_order]
    header = index.chains.header
    ch = index.chain[blk]
    q = index.q_start[blk] + (pos[rows] - _local(index.start[blk]))
    minus = (header["q_strand"] == "-")[ch]
    q = np.where(minus, header["q_size"].astype(np.int64)[ch] - 1 - q, q)
    return pd.DataFrame(
        {
            "query": rows,
            "chrom": header["q_name"][ch],
            "pos": q,
            "strand": np.array(["+", "-"], dtype=object)[minus.astype(np.int8)],
            "chain": header["chain_id"][ch],
        }
    )


def _local(global_pos: np.ndarray) -> np.ndarray:
    return global_pos % _SHIFT


def _check_intervals(intervals: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in ("chrom", "start", "end", "name") if c not in intervals.columns]
    if missing:
        raise CrossglueError(f"lift_intervals: interval table lacks columns {missing} (needs chrom, start, end, name)")
    try:
        start = intervals["start"].to_numpy(np.int64)
        end = intervals["end"].to_numpy(np.int64)
    except (TypeError, ValueError) as exc:
        raise CrossglueError(f"lift_intervals: start and end must be integers ({exc})") from None
    bad = (start < 0) | (end < start)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise CrossglueError(
            f"lift_intervals: row {k} ({intervals['name'].iloc[k]}): expected 0 <= start <= end, "
            f"got start={start[k]} end={end[k]}"
        )
    return intervals["chrom"].to_numpy(dtype=object), start, end


def lift_arrays(
    index: BlockIndex,
    code: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    min_match: float = 0.95,
    multiple: bool = False,
) -> ArrayLift:
    """UCSC ``liftOver [-minMatch=..] [-multiple]`` of intervals given as arrays (no pandas).

    ``code`` is each interval's target chromosome code in ``index`` (:func:`chrom_codes`; -1
    when the chain file lacks it); ``start``/``end`` 0-based half-open, checked by the caller.
    """
    if not 0.0 <= min_match <= 1.0:
        raise CrossglueError(f"lift_intervals: min_match must lie in [0, 1], got {min_match}")
    n = len(code)
    header = index.chains.header
    n_chains = len(header["chain_id"])
    rows, blk = _overlaps(index, code, start, end)
    ch = index.chain[blk]
    b_start = _local(index.start[blk])
    ov_s = np.maximum(start[rows], b_start)
    ov_e = np.minimum(end[rows], _local(index.end[blk]))

    # One group per (interval, chain), blocks in target order inside it. A row's pairs are
    # contiguous already; only rows where chains alternate along the target need a sort.
    pair_rank = np.cumsum(np.concatenate(([False], rows[1:] != rows[:-1])))
    key = pair_rank * np.int64(n_chains) + ch
    if len(key) and (key[1:] < key[:-1]).any():
        order = np.argsort(key, kind="stable")
        rows, blk, ch, b_start, ov_s, ov_e, key = (a[order] for a in (rows, blk, ch, b_start, ov_s, ov_e, key))
    del pair_rank
    new = np.ones(len(rows), dtype=bool)
    new[1:] = key[1:] != key[:-1]
    first = np.flatnonzero(new)
    last = np.concatenate((first[1:] - 1, [len(rows) - 1])) if len(first) else first
    g_row, g_chain = rows[first], ch[first]
    inter = np.add.reduceat(ov_e - ov_s, first) if len(first) else np.zeros(0, np.int64)
    q_lo = index.q_start[blk[first]] + (ov_s[first] - b_start[first])
    q_hi = index.q_start[blk[last]] + (ov_e[last] - b_start[last])
    del rows, blk, ch, b_start, ov_s, ov_e, key, new

    ct_start = header["t_start"][g_chain]
    g_s, g_e = start[g_row], end[g_row]
    if multiple:
        span = np.minimum(g_e, header["t_end"][g_chain]) - np.maximum(g_s, ct_start)
    else:
        span = g_e - g_s
    hit = inter >= min_match * span.astype(np.float64)
    n_hit = np.bincount(g_row[hit], minlength=n)
    n_part = np.bincount(g_row[~hit], minlength=n)

    reason = np.zeros(n, dtype=np.int8)  # index into REASON_CODES; 0 = lifted
    none = n_hit == 0
    reason[none & (n_part == 0)] = 1
    reason[none & (n_part == 1)] = 2
    reason[none & (n_part > 1)] = 3
    if not multiple:
        reason[n_hit > 1] = 4
    reason[code < 0] = 5

    if multiple:
        sel = np.flatnonzero(hit)
        sel = sel[np.lexsort((ct_start[sel], g_row[sel]))]
    else:  # at most one hit per row: scatter by row instead of sorting
        by_row = np.full(n, -1, dtype=np.int64)
        one = np.flatnonzero(hit & (n_hit[g_row] == 1))
        by_row[g_row[one]] = one
        sel = by_row[by_row >= 0]
    sc = g_chain[sel]
    minus = (header["q_strand"] == "-")[sc]
    q_size = header["q_size"].astype(np.int64)[sc]
    src = g_row[sel]
    length = (g_e[sel] - g_s[sel]).astype(np.float64)
    return ArrayLift(
        row=src,
        start=np.where(minus, q_size - q_hi[sel], q_lo[sel]),
        end=np.where(minus, q_size - q_lo[sel], q_hi[sel]),
        chain=sc,
        minus=minus,
        mapped_fraction=np.divide(inter[sel], length, out=np.zeros(len(sel)), where=length > 0),
        reason=reason,
    )


def lift_intervals(
    intervals: pd.DataFrame, chains: ChainSet | ChainArrays, min_match: float = 0.95, multiple: bool = False
) -> LiftResult:
    """Lift BED-like intervals as UCSC ``liftOver [-minMatch=..] [-multiple]`` does.

    ``intervals`` has chrom, start, end, name and any further columns (carried through); a
    ``strand`` column, if present, is flipped on ``-`` chains, otherwise the output strand is
    the orientation of the match (``+``/``-``). ``mapped`` keeps the input's index labels
    (repeated with ``multiple``); ``unmapped`` is the input rows plus ``reason`` (UCSC text)
    and ``reason_code``.
    """
    import pandas as pd

    if not 0.0 <= min_match <= 1.0:
        raise CrossglueError(f"lift_intervals: min_match must lie in [0, 1], got {min_match}")
    chrom, start, end = _check_intervals(intervals)
    index = block_index(chains)
    lifted = lift_arrays(index, _chrom_codes(index, chrom), start, end, min_match, multiple)
    header = index.chains.header
    src, sc, minus = lifted.row, lifted.chain, lifted.minus
    if "strand" in intervals.columns:
        in_strand = intervals["strand"].to_numpy(dtype=object)[src]
        flipped = np.where(in_strand == "+", "-", np.where(in_strand == "-", "+", in_strand))
        strand = np.where(minus, flipped, in_strand)
    else:
        strand = np.array(["+", "-"], dtype=object)[minus.astype(np.int8)]
    extra = [c for c in intervals.columns if c not in ("chrom", "start", "end", "name", "strand")]
    # Numeric columns first, object columns inserted: avoids pandas copying them into one block.
    mapped = pd.DataFrame(
        {
            "start": lifted.start,
            "end": lifted.end,
            "chain": header["chain_id"][sc],
            "mapped_fraction": lifted.mapped_fraction,
        },
        index=intervals.index[src],
    )
    mapped.insert(0, "name", intervals["name"].to_numpy()[src])
    mapped.insert(1, "chrom", header["q_name"][sc])
    mapped.insert(4, "strand", strand.astype(object))
    for col in extra:
        mapped[col] = intervals[col].to_numpy()[src]

    reason = lifted.reason
    failed = np.flatnonzero(reason)
    unmapped = intervals.iloc[failed].copy()
    codes = np.asarray(REASON_CODES, dtype=object)[reason[failed]]
    unmapped["reason"] = pd.Series(codes, dtype=object).map(REASONS).to_numpy(dtype=object)
    unmapped["reason_code"] = codes
    return LiftResult(mapped=mapped, unmapped=unmapped)
