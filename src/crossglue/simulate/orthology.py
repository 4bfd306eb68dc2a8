"""Base-level orthology between two evolved species, and the chain blocks it implies.

Two species' pieces that cover the same ancestral bases are orthologous there; each such
overlap is one ungapped block. Collinear blocks on the same chromosome pair, strand and
copy pair (a segmental duplication is its own copy layer in its lineage; with one in each
lineage, every copy aligns to every copy: many-to-many chains) become one UCSC chain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossglue.simulate.intervals import concat_ranges


def orthologous_blocks(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Ungapped blocks between species pieces ``a`` and ``b`` (forward-strand coordinates).

    Columns: a_chrom, a_start, b_chrom, b_start, size, strand (+1 when both run the same
    way), a_layer, b_layer, anc_chrom, anc_start.
    """
    out = []
    a = a[a.novel < 0]
    b = b[b.novel < 0]
    for (ac, la), pa in a.groupby(["anc_chrom", "layer"], sort=True):
        for lb, pb in b[b.anc_chrom == ac].groupby("layer", sort=True):
            pa_s = pa.sort_values("anc_start")
            pb_s = pb.sort_values("anc_start")
            bs, be = pb_s.anc_start.to_numpy(), pb_s.anc_end.to_numpy()
            # Pieces of one layer never overlap in ancestral coordinates: the b pieces that
            # overlap an a piece are a contiguous run of the sorted b pieces.
            first = np.searchsorted(be, pa_s.anc_start.to_numpy(), side="right")
            last = np.searchsorted(bs, pa_s.anc_end.to_numpy(), side="left")
            counts = np.maximum(last - first, 0)
            ia = np.repeat(np.arange(len(pa_s)), counts)
            ib = concat_ranges(first, counts)
            lo = np.maximum(pa_s.anc_start.to_numpy()[ia], bs[ib])
            hi = np.minimum(pa_s.anc_end.to_numpy()[ia], be[ib])
            keep = hi > lo
            ia, ib, lo, hi = ia[keep], ib[keep], lo[keep], hi[keep]

            def place(p, i):
                s, e, a0, st = (
                    p.start.to_numpy()[i],
                    p.end.to_numpy()[i],
                    p.anc_start.to_numpy()[i],
                    p.strand.to_numpy()[i],
                )
                return np.where(st > 0, s + (lo - a0), e - (hi - a0)), st

            a_start, a_strand = place(pa_s, ia)
            b_start, b_strand = place(pb_s, ib)
            out.append(
                pd.DataFrame(
                    {
                        "a_chrom": pa_s.chrom.to_numpy()[ia],
                        "a_start": a_start,
                        "b_chrom": pb_s.chrom.to_numpy()[ib],
                        "b_start": b_start,
                        "size": hi - lo,
                        "strand": a_strand * b_strand,
                        "a_layer": la,
                        "b_layer": lb,
                        "anc_chrom": ac,
                        "anc_start": lo,
                    }
                )
            )
    return pd.concat(out, ignore_index=True)


def chain_blocks(blocks: pd.DataFrame, a_sizes: dict[str, int], b_sizes: dict[str, int]) -> pd.DataFrame:
    """Blocks for ``chains_from_blocks``: target = a, query = b, one chain per collinear run.

    Output columns chain_id, t_name, q_name, q_strand, t_start, q_start (in the query
    strand's own coordinates, as UCSC writes them), size, score; ordered by chain then t_start.
    """
    q_size = blocks.b_chrom.map(b_sizes).to_numpy()
    q_start = np.where(blocks.strand > 0, blocks.b_start, q_size - (blocks.b_start + blocks["size"]))
    t = pd.DataFrame(
        {
            "t_name": blocks.a_chrom,
            "q_name": blocks.b_chrom,
            "q_strand": np.where(blocks.strand > 0, "+", "-"),
            "t_start": blocks.a_start.to_numpy(),
            "q_start": q_start,
            "size": blocks["size"].to_numpy(),
            "copy": blocks.a_layer.astype(str) + "/" + blocks.b_layer.astype(str),
        }
    )
    t = t.sort_values(["t_name", "q_name", "q_strand", "copy", "t_start"], kind="stable").reset_index(drop=True)
    group = (
        t[["t_name", "q_name", "q_strand", "copy"]].ne(t[["t_name", "q_name", "q_strand", "copy"]].shift()).any(axis=1)
    )
    prev_q_end = (t.q_start + t["size"]).shift()
    prev_t_end = (t.t_start + t["size"]).shift()
    broken = (t.q_start < prev_q_end) | (t.t_start < prev_t_end)  # not collinear: start a new chain
    t["chain_id"] = (group | broken).cumsum()
    # Merge blocks that touch in both species (split only by an event in a third genome).
    touching = (t.chain_id == t.chain_id.shift()) & (t.t_start == prev_t_end) & (t.q_start == prev_q_end)
    run = (~touching).cumsum()
    t = (
        t.groupby(run, sort=False)
        .agg(
            t_name=("t_name", "first"),
            q_name=("q_name", "first"),
            q_strand=("q_strand", "first"),
            t_start=("t_start", "first"),
            q_start=("q_start", "first"),
            size=("size", "sum"),
            chain_id=("chain_id", "first"),
        )
        .reset_index(drop=True)
    )
    score = t.groupby("chain_id")["size"].transform("sum") * 100
    t["score"] = score
    # Highest-scoring chains first, as UCSC lists them; ids renumbered in that order.
    rank = t.groupby("chain_id")["score"].first().sort_values(ascending=False, kind="stable")
    new_id = pd.Series(np.arange(1, len(rank) + 1), index=rank.index)
    t["chain_id"] = t.chain_id.map(new_id)
    t = t.sort_values(["chain_id", "t_start"], kind="stable").reset_index(drop=True)
    return t[["chain_id", "t_name", "q_name", "q_strand", "t_start", "q_start", "size", "score"]]
