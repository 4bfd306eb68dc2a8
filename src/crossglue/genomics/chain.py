"""UCSC chain files: read, write and build them as two tables (chains and ungapped blocks).

A chain file is parsed in bulk with numpy (no Python loop over alignment blocks), so the
largest assembly-to-assembly chains load in a fraction of a second. Names are translated
through the species' alias tables at read time, so every later step sees canonical names.

Layout of a :class:`ChainSet`:

- ``header``: one row per chain, columns :data:`HEADER_COLUMNS` as the ``chain`` line has
  them (0-based half-open ``t_start``/``t_end``; ``q_start``/``q_end`` in the coordinates of
  ``q_strand``, i.e. counted from the end of the query sequence when it is ``-``).
- ``blocks``: one row per ungapped block: ``chain`` (positional index into ``header``),
  ``t_start``, ``q_start`` (again in ``q_strand`` coordinates) and ``size``; rows are ordered
  by chain, then by ``t_start``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.errors import CrossglueError, where
from crossglue.io_utils import open_output, read_maybe_gzip

HEADER_COLUMNS = [
    "chain_id", "score",
    "t_name", "t_size", "t_strand", "t_start", "t_end",
    "q_name", "q_size", "q_strand", "q_start", "q_end",
]
BLOCK_COLUMNS = ["chain", "t_start", "q_start", "size"]
_INT_HEADER = ["chain_id", "t_size", "t_start", "t_end", "q_size", "q_start", "q_end"]


@dataclass
class ChainSet:
    """All chains of one chain file: ``header`` (one row per chain) and ``blocks``."""

    header: pd.DataFrame
    blocks: pd.DataFrame

    def __len__(self) -> int:
        return len(self.header)

    def equals(self, other: "ChainSet") -> bool:
        """True when both sets hold the same chains and blocks (values and dtypes)."""
        return self.header.equals(other.header) and self.blocks.equals(other.blocks)


def _read_bytes(path: Path) -> bytes:
    try:
        return read_maybe_gzip(path)
    except (OSError, EOFError) as exc:
        raise CrossglueError(f"{path}: cannot read chain file ({exc})") from exc


def _translate(names: pd.Series, aliases: dict[str, str] | None) -> pd.Series:
    """Alias -> canonical; names absent from the table are kept (unplaced contigs etc.)."""
    if not aliases:
        return names
    return names.map(lambda n: aliases.get(n, n))


def read_chains(path: str | Path, t_aliases: dict[str, str] | None = None,
                q_aliases: dict[str, str] | None = None) -> ChainSet:
    """Parse a UCSC chain file (gzip or plain); translate t and q names through the aliases.

    Raises :class:`CrossglueError` naming the file and the 1-based line of the first
    malformed record (bad header, wrong field count, non-numeric value, a chain whose blocks
    do not add up to its header's span).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if raw and not raw.endswith(b"\n"):
        raw += b"\n"
    buf = np.frombuffer(raw, dtype=np.uint8)
    line_end = np.flatnonzero(buf == 10)
    line_start = np.concatenate(([0], line_end[:-1] + 1)).astype(np.int64)
    n_lines = len(line_end)

    # Tokens: maximal runs of non-whitespace; count them per line.
    is_ws = (buf == 32) | (buf == 9) | (buf == 13) | (buf == 10)
    prev_ws = np.concatenate(([True], is_ws[:-1]))
    tok_start = np.flatnonzero(~is_ws & prev_ws)
    tok_line = np.searchsorted(line_end, tok_start)
    n_tok = np.bincount(tok_line, minlength=n_lines)
    first_tok = np.minimum(np.searchsorted(tok_line, np.arange(n_lines)), max(len(tok_start) - 1, 0))
    first = np.where(n_tok > 0, buf[tok_start[first_tok]] if len(tok_start) else 0, 0)
    is_comment = (n_tok > 0) & (first == ord("#"))
    is_header = (n_tok > 0) & (first == ord("c"))
    is_data = (n_tok > 0) & ~is_comment & ~is_header

    header_line = np.flatnonzero(is_header)
    chain_of_line = np.cumsum(is_header) - 1
    data_line = np.flatnonzero(is_data)
    if len(data_line) and chain_of_line[data_line[0]] < 0:
        raise CrossglueError(f"{where(path, int(data_line[0]) + 1)}: alignment block before any 'chain' header line")

    # Headers: few thousand at most, parsed one by one.
    rows = []
    for ln in header_line:
        fields = raw[line_start[ln]:line_end[ln]].decode("ascii", "replace").split()
        if fields[0] != "chain" or len(fields) not in (12, 13):
            raise CrossglueError(f"{where(path, int(ln) + 1)}: expected 'chain score tName tSize tStrand tStart tEnd "
                                 f"qName qSize qStrand qStart qEnd id' (12 or 13 fields), got {len(fields)} fields")
        if len(fields) == 12:
            fields.append(str(len(rows) + 1))
        if fields[4] != "+" or fields[9] not in ("+", "-"):
            raise CrossglueError(f"{where(path, int(ln) + 1)}: expected tStrand '+' and qStrand '+' or '-', "
                                 f"got {fields[4]!r} and {fields[9]!r}")
        rows.append([fields[12], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6],
                     fields[7], fields[8], fields[9], fields[10], fields[11]])
    header = pd.DataFrame(rows, columns=HEADER_COLUMNS)
    score_is_float = header["score"].str.contains(r"[.eEnN]").any()  # keep "1.0" a float on round trip
    for col in HEADER_COLUMNS:
        if col not in _INT_HEADER and col != "score":
            continue
        num = pd.to_numeric(header[col], errors="coerce")
        bad = num.isna() if col == "score" else (num.isna() | (num < 0) | (num != np.floor(num)))
        if bad.any():
            k = int(np.flatnonzero(bad.to_numpy())[0])
            what = "a number" if col == "score" else "a non-negative integer"
            raise CrossglueError(f"{where(path, int(header_line[k]) + 1)}: expected {what} for {col}, "
                                 f"got {header[col].iloc[k]!r}")
        header[col] = num.astype(np.float64 if col == "score" and score_is_float else np.int64)
    if len(header):
        bad = (header["t_start"] > header["t_end"]) | (header["t_end"] > header["t_size"]) | \
              (header["q_start"] > header["q_end"]) | (header["q_end"] > header["q_size"])
        if bad.any():
            k = int(np.flatnonzero(bad.to_numpy())[0])
            raise CrossglueError(f"{where(path, int(header_line[k]) + 1)}: expected start <= end <= size "
                                 f"on both sequences")
    header["t_name"] = _translate(header["t_name"], t_aliases).astype(object)
    header["q_name"] = _translate(header["q_name"], q_aliases).astype(object)

    # Blocks: blank out everything but data lines and parse all numbers at once.
    counts = n_tok[data_line]
    bad = (counts != 3) & (counts != 1)
    chain_idx = chain_of_line[data_line]
    last_of_chain = np.zeros(len(data_line), dtype=bool)
    if len(data_line):
        last_of_chain[:-1] = chain_idx[1:] != chain_idx[:-1]
        last_of_chain[-1] = True
    bad |= (counts == 1) != last_of_chain
    if bad.any():
        ln = int(data_line[np.flatnonzero(bad)[0]])
        raise CrossglueError(f"{where(path, ln + 1)}: expected 'size dt dq' inside a chain and a single 'size' "
                             f"on its last block line")
    empty = np.setdiff1d(np.arange(len(header)), chain_idx)
    if len(empty):
        raise CrossglueError(f"{where(path, int(header_line[empty[0]]) + 1)}: chain has no alignment blocks")
    if not len(data_line):
        return ChainSet(header=header.reset_index(drop=True),
                        blocks=pd.DataFrame({c: np.zeros(0, np.int64) for c in BLOCK_COLUMNS}))
    keep_byte = np.repeat(is_data, line_end - line_start + 1)
    masked = np.where(keep_byte, buf, np.uint8(32)).astype(np.uint8)
    try:  # text-mode fromstring raises (newer numpy) or warns and stops (older) at a non-number
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            values = np.fromstring(masked.tobytes(), dtype=np.int64, sep=" ")
    except ValueError:
        values = np.zeros(0, np.int64)
    if len(values) != counts.sum():
        tokens = masked.tobytes().split()
        ok = np.array([t.isdigit() and len(t) < 19 for t in tokens])
        ok[-1] &= ok.all()  # numbers all look fine yet parsing stopped: blame the last line
        tok_of_data_line = np.repeat(data_line, counts)
        ln = int(tok_of_data_line[np.flatnonzero(~ok)[0]])
        raise CrossglueError(f"{where(path, ln + 1)}: expected non-negative integers 'size dt dq'") from None
    if (values < 0).any():
        tok_of_data_line = np.repeat(data_line, counts)
        ln = int(tok_of_data_line[np.flatnonzero(values < 0)[0]])
        raise CrossglueError(f"{where(path, ln + 1)}: expected non-negative integers 'size dt dq'")

    # Columns: size is each line's first token; dt, dq the next two (0 on a chain's last line).
    offset = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    size = values[offset]
    three = counts == 3
    dt = np.zeros(len(data_line), np.int64)
    dq = np.zeros(len(data_line), np.int64)
    dt[three] = values[offset[three] + 1]
    dq[three] = values[offset[three] + 2]
    if (size <= 0).any():
        ln = int(data_line[np.flatnonzero(size <= 0)[0]])
        raise CrossglueError(f"{where(path, ln + 1)}: expected a positive block size")

    t_first = header["t_start"].to_numpy()[chain_idx]
    q_first = header["q_start"].to_numpy()[chain_idx]
    t_step = size + dt
    q_step = size + dq
    group_first = np.flatnonzero(np.concatenate(([True], chain_idx[1:] != chain_idx[:-1])))
    t_before = _exclusive_group_cumsum(t_step, group_first)
    q_before = _exclusive_group_cumsum(q_step, group_first)
    blocks = pd.DataFrame({
        "chain": chain_idx.astype(np.int64),
        "t_start": t_first + t_before,
        "q_start": q_first + q_before,
        "size": size,
    })
    last = np.flatnonzero(last_of_chain)
    t_end = blocks["t_start"].to_numpy()[last] + size[last]
    q_end = blocks["q_start"].to_numpy()[last] + size[last]
    mism = (t_end != header["t_end"].to_numpy()[chain_idx[last]]) | (q_end != header["q_end"].to_numpy()[chain_idx[last]])
    if mism.any():
        k = int(np.flatnonzero(mism)[0])
        raise CrossglueError(f"{where(path, int(header_line[chain_idx[last[k]]]) + 1)}: blocks of this chain end at "
                             f"t={t_end[k]}, q={q_end[k]}, but its header says tEnd={header['t_end'].iloc[chain_idx[last[k]]]}, "
                             f"qEnd={header['q_end'].iloc[chain_idx[last[k]]]}")
    return ChainSet(header=header.reset_index(drop=True), blocks=blocks)


def _exclusive_group_cumsum(step: np.ndarray, group_first: np.ndarray) -> np.ndarray:
    """Sum of ``step`` over the earlier rows of the same group (groups are contiguous runs)."""
    total = np.cumsum(step) - step
    group_len = np.diff(np.concatenate((group_first, [len(step)])))
    return total - np.repeat(total[group_first], group_len)


def _format_header(header: pd.DataFrame) -> list[str]:
    cols = [header[c].astype(str).to_numpy() for c in HEADER_COLUMNS[1:]]
    ids = header["chain_id"].astype(str).to_numpy()
    return ["chain " + " ".join(f[i] for f in cols) + " " + ids[i] for i in range(len(header))]


def format_chains(chains: ChainSet) -> str:
    """The chain file text for ``chains`` (tab-separated block lines, as UCSC writes them)."""
    header, blocks = chains.header, chains.blocks
    n_chain, n_block = len(header), len(blocks)
    chain = blocks["chain"].to_numpy()
    t_start = blocks["t_start"].to_numpy()
    q_start = blocks["q_start"].to_numpy()
    size = blocks["size"].to_numpy()
    last = np.concatenate((chain[1:] != chain[:-1], [True])) if n_block else np.zeros(0, bool)
    nxt = np.minimum(np.arange(n_block) + 1, max(n_block - 1, 0))
    dt = (t_start[nxt] - t_start - size).astype(str) if n_block else np.zeros(0, str)
    dq = (q_start[nxt] - q_start - size).astype(str) if n_block else np.zeros(0, str)
    size_s = size.astype(str)
    body = np.where(last, size_s, np.char.add(np.char.add(np.char.add(np.char.add(size_s, "\t"), dt), "\t"), dq)) \
        if n_block else np.zeros(0, object)
    # Position of every line: chain c's header, its blocks, then a blank line.
    per_chain = np.bincount(chain, minlength=n_chain)
    header_pos = np.concatenate(([0], np.cumsum(per_chain + 2)[:-1])).astype(np.int64) if n_chain else np.zeros(0, np.int64)
    lines = np.full(int(per_chain.sum() + 2 * n_chain), "", dtype=object)
    lines[header_pos] = _format_header(header)
    first_block = np.concatenate(([0], np.cumsum(per_chain)[:-1])) if n_chain else np.zeros(0, np.int64)
    rank = np.arange(n_block) - np.repeat(first_block, per_chain)
    lines[header_pos[chain] + 1 + rank] = body
    return "\n".join(lines) + ("\n" if len(lines) else "")


def write_chains(chains: ChainSet, path: str | Path) -> None:
    """Write ``chains`` as a UCSC chain file (gzip when ``path`` ends in .gz), atomically."""
    path = Path(path)
    text = format_chains(chains).encode("ascii")
    with open_output(path, "wb") as handle:
        handle.write(text)


def chains_from_blocks(blocks: pd.DataFrame, t_sizes: dict[str, int], q_sizes: dict[str, int]) -> ChainSet:
    """Build a :class:`ChainSet` from a flat block table (one chain per ``chain_id``).

    ``blocks`` has chain_id, t_name, q_name, q_strand, t_start, q_start, size and optionally
    score (taken from each chain's first block; default: the chain's aligned bases). Blocks
    must be ordered by t_start within a chain and must not overlap on either sequence.
    Chains keep the order in which their ids first appear.
    """
    need = ["chain_id", "t_name", "q_name", "q_strand", "t_start", "q_start", "size"]
    missing = [c for c in need if c not in blocks.columns]
    if missing:
        raise CrossglueError(f"chains_from_blocks: block table lacks columns {missing}")
    order = pd.unique(blocks["chain_id"])
    chain = pd.Index(order).get_indexer(blocks["chain_id"])
    sort = np.argsort(chain, kind="stable")
    b = blocks.iloc[sort].reset_index(drop=True)
    chain = chain[sort]
    t_start = b["t_start"].to_numpy(np.int64)
    q_start = b["q_start"].to_numpy(np.int64)
    size = b["size"].to_numpy(np.int64)
    same = chain[1:] == chain[:-1]
    if (size <= 0).any():
        raise CrossglueError(f"chains_from_blocks: block sizes must be positive (chain {b['chain_id'][np.flatnonzero(size <= 0)[0]]})")
    gap_bad = same & ((t_start[1:] < t_start[:-1] + size[:-1]) | (q_start[1:] < q_start[:-1] + size[:-1]))
    if gap_bad.any():
        k = int(np.flatnonzero(gap_bad)[0])
        raise CrossglueError(f"chains_from_blocks: blocks of chain {b['chain_id'][k]} overlap or are not ordered by t_start "
                             f"(t_start {t_start[k]} then {t_start[k + 1]})")
    first = np.flatnonzero(np.concatenate(([True], ~same)))
    last = np.flatnonzero(np.concatenate((~same, [True])))
    for col in ("t_name", "q_name", "q_strand"):
        if (b[col].to_numpy()[1:][same] != b[col].to_numpy()[:-1][same]).any():
            raise CrossglueError(f"chains_from_blocks: column {col} differs between blocks of one chain")
    t_name = b["t_name"].to_numpy()[first]
    q_name = b["q_name"].to_numpy()[first]
    unknown_t = [n for n in pd.unique(t_name) if n not in t_sizes]
    unknown_q = [n for n in pd.unique(q_name) if n not in q_sizes]
    if unknown_t or unknown_q:
        raise CrossglueError(f"chains_from_blocks: no size for target {unknown_t[:5]} / query {unknown_q[:5]}")
    if "score" in b.columns:
        score = b["score"].to_numpy()[first]
    else:
        score = np.add.reduceat(size, first) if len(size) else np.zeros(0, np.int64)
    header = pd.DataFrame({
        "chain_id": np.asarray(order).astype(np.int64),
        "score": score,
        "t_name": t_name.astype(object),
        "t_size": np.array([t_sizes[n] for n in t_name], dtype=np.int64),
        "t_strand": np.full(len(first), "+", dtype=object),
        "t_start": t_start[first],
        "t_end": t_start[last] + size[last],
        "q_name": q_name.astype(object),
        "q_size": np.array([q_sizes[n] for n in q_name], dtype=np.int64),
        "q_strand": b["q_strand"].to_numpy()[first].astype(object),
        "q_start": q_start[first],
        "q_end": q_start[last] + size[last],
    })
    if not header["q_strand"].isin(["+", "-"]).all():
        raise CrossglueError("chains_from_blocks: q_strand must be '+' or '-'")
    over = (header["t_end"] > header["t_size"]) | (header["q_end"] > header["q_size"]) | (header["t_start"] < 0) | (header["q_start"] < 0)
    if over.any():
        raise CrossglueError(f"chains_from_blocks: chain {header['chain_id'][over].iloc[0]} runs past its sequence ends")
    return ChainSet(header=header, blocks=pd.DataFrame({"chain": chain.astype(np.int64), "t_start": t_start,
                                                        "q_start": q_start, "size": size}))
