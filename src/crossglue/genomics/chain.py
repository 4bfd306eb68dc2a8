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

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crossglue.errors import CrossglueError, where
from crossglue.io_utils import open_output, read_maybe_gzip

if TYPE_CHECKING:
    import pandas as pd

HEADER_COLUMNS = [
    "chain_id",
    "score",
    "t_name",
    "t_size",
    "t_strand",
    "t_start",
    "t_end",
    "q_name",
    "q_size",
    "q_strand",
    "q_start",
    "q_end",
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

    def equals(self, other: ChainSet) -> bool:
        """True when both sets hold the same chains and blocks (values and dtypes)."""
        return self.header.equals(other.header) and self.blocks.equals(other.blocks)

    def arrays(self) -> ChainArrays:
        """The same chains as numpy columns."""
        return ChainArrays(
            header={c: self.header[c].to_numpy() for c in HEADER_COLUMNS},
            blocks={c: self.blocks[c].to_numpy() for c in BLOCK_COLUMNS},
        )


@dataclass
class ChainArrays:
    """A :class:`ChainSet` as numpy columns (``header``/``blocks``: column name -> array).

    What the liftOver kernels work on; the ``crossglue liftover`` command reads chains this
    way so that it never imports pandas.
    """

    header: dict[str, np.ndarray]
    blocks: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.header["chain_id"])

    def chain_set(self) -> ChainSet:
        import pandas as pd

        return ChainSet(
            header=pd.DataFrame({c: self.header[c] for c in HEADER_COLUMNS}),
            blocks=pd.DataFrame({c: self.blocks[c] for c in BLOCK_COLUMNS}),
        )


def _read_bytes(path: Path) -> bytes:
    try:
        raw = read_maybe_gzip(path)
    except (OSError, EOFError) as exc:
        raise CrossglueError(f"{path}: cannot read chain file ({exc})") from exc
    return raw + b"\n" if raw and not raw.endswith(b"\n") else raw


def _translate(names: np.ndarray, aliases: dict[str, str] | None) -> np.ndarray:
    """Alias -> canonical; names absent from the table are kept (unplaced contigs etc.)."""
    if not aliases:
        return names
    return np.array([aliases.get(n, n) for n in names], dtype=object)


@dataclass
class _Lines:
    """Where every line of a chain file starts and ends, its token count and its kind."""

    buf: np.ndarray  # the file as uint8
    start: np.ndarray  # byte offset of each line
    end: np.ndarray  # byte offset of each line's newline
    n_tok: np.ndarray  # whitespace-separated tokens per line
    is_header: np.ndarray  # first token starts with 'c' (checked to be 'chain' later)
    is_data: np.ndarray  # a block line: neither blank, comment nor header


def _scan_lines(raw: bytes) -> _Lines:
    """Split the file into lines and tokens with numpy (no Python loop over lines)."""
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
    return _Lines(
        buf=buf,
        start=line_start,
        end=line_end,
        n_tok=n_tok,
        is_header=is_header,
        is_data=(n_tok > 0) & ~is_comment & ~is_header,
    )


def _header_numbers(path: Path, column: str, text: np.ndarray, line_no: np.ndarray) -> np.ndarray:
    """One numeric header column: int64 (float64 for a score written with a point or exponent)."""
    if column == "score" and any(re.search(r"[.eEnN]", t) for t in text):  # keep "1.0" a float on round trip
        kind = np.float64
    else:
        kind = np.int64
    try:
        values = text.astype(kind) if len(text) else np.zeros(0, kind)
        bad = values < 0 if column != "score" else np.zeros(len(values), bool)
    except (ValueError, OverflowError):  # slow path: find the first bad value ("1e3" is an integer)
        values, bad = np.zeros(len(text), kind), np.zeros(len(text), bool)
        for k, t in enumerate(text):
            try:
                x = float(t)
            except ValueError:
                bad[k] = True
                continue
            bad[k] = column != "score" and (x < 0 or x != np.floor(x) or np.isinf(x)) or np.isnan(x)
            if not bad[k]:
                values[k] = x
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        what = "a number" if column == "score" else "a non-negative integer"
        raise CrossglueError(f"{where(path, int(line_no[k]) + 1)}: expected {what} for {column}, got {text[k]!r}")
    return values


def _parse_headers(path: Path, lines: list[bytes], line_no: np.ndarray) -> dict[str, np.ndarray]:
    """The ``chain`` lines (``line_no``: their 0-based line numbers) as :data:`HEADER_COLUMNS` arrays.

    Headers are few (thousands at most), so they are split one by one; numbers are then
    checked and converted column by column.
    """
    rows = []
    for ln, text in zip(line_no, lines, strict=True):
        fields = text.decode("ascii", "replace").split()
        if fields[0] != "chain" or len(fields) not in (12, 13):
            raise CrossglueError(
                f"{where(path, int(ln) + 1)}: expected 'chain score tName tSize tStrand tStart tEnd "
                f"qName qSize qStrand qStart qEnd id' (12 or 13 fields), got {len(fields)} fields"
            )
        if len(fields) == 12:
            fields.append(str(len(rows) + 1))
        if fields[4] != "+" or fields[9] not in ("+", "-"):
            raise CrossglueError(
                f"{where(path, int(ln) + 1)}: expected tStrand '+' and qStrand '+' or '-', "
                f"got {fields[4]!r} and {fields[9]!r}"
            )
        rows.append([fields[12], *fields[1:12]])
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(HEADER_COLUMNS)
    header = {}
    for col, values in zip(HEADER_COLUMNS, columns, strict=True):
        text = np.array(values, dtype=object)
        numeric = col == "score" or col in _INT_HEADER
        header[col] = _header_numbers(path, col, text.astype(str), line_no) if numeric else text
    bad = (
        (header["t_start"] > header["t_end"])
        | (header["t_end"] > header["t_size"])
        | (header["q_start"] > header["q_end"])
        | (header["q_end"] > header["q_size"])
    )
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise CrossglueError(f"{where(path, int(line_no[k]) + 1)}: expected start <= end <= size on both sequences")
    return header


def read_chain_headers(path: str | Path) -> pd.DataFrame:
    """Only the ``chain`` lines of a chain file (names untranslated), plus their 1-based ``line``.

    Cheap enough to run when the workflow is parsed: block lines are skipped by a regular
    expression instead of being parsed.
    """
    path = Path(path)
    raw = _read_bytes(path)
    found = list(re.finditer(rb"(?m)^[ \t]*c[^\n]*", raw))
    newlines = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 10)
    line_no = np.searchsorted(newlines, np.array([m.start() for m in found], dtype=np.int64))
    import pandas as pd

    header = pd.DataFrame(_parse_headers(path, [m.group(0) for m in found], line_no))
    return header.assign(line=line_no + 1)


def read_chains(
    path: str | Path, t_aliases: dict[str, str] | None = None, q_aliases: dict[str, str] | None = None
) -> ChainSet:
    """Parse a UCSC chain file (gzip or plain); translate t and q names through the aliases.

    Raises :class:`CrossglueError` naming the file and the 1-based line of the first
    malformed record (bad header, wrong field count, non-numeric value, a chain whose blocks
    do not add up to its header's span).
    """
    return read_chain_arrays(path, t_aliases, q_aliases).chain_set()


def read_chain_arrays(
    path: str | Path, t_aliases: dict[str, str] | None = None, q_aliases: dict[str, str] | None = None
) -> ChainArrays:
    """:func:`read_chains` as numpy columns, without pandas (the liftover command's path)."""
    path = Path(path)
    raw = _read_bytes(path)
    lines = _scan_lines(raw)
    header_line = np.flatnonzero(lines.is_header)
    chain_of_line = np.cumsum(lines.is_header) - 1
    data_line = np.flatnonzero(lines.is_data)
    if len(data_line) and chain_of_line[data_line[0]] < 0:
        raise CrossglueError(f"{where(path, int(data_line[0]) + 1)}: alignment block before any 'chain' header line")
    header = _parse_headers(path, [raw[lines.start[ln] : lines.end[ln]] for ln in header_line], header_line)
    header["t_name"] = _translate(header["t_name"], t_aliases)
    header["q_name"] = _translate(header["q_name"], q_aliases)
    blocks = _parse_blocks(path, lines, header, header_line, data_line, chain_of_line[data_line])
    return ChainArrays(header=header, blocks=blocks)


def _block_numbers(path: Path, lines: _Lines, data_line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All numbers of the block lines at once (everything else blanked out), and their count per line."""
    counts = lines.n_tok[data_line]
    keep_byte = np.repeat(lines.is_data, lines.end - lines.start + 1)
    masked = np.where(keep_byte, lines.buf, np.uint8(32)).astype(np.uint8)
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
    return values, counts


def _parse_blocks(
    path: Path,
    lines: _Lines,
    header: dict[str, np.ndarray],
    header_line: np.ndarray,
    data_line: np.ndarray,
    chain_idx: np.ndarray,
) -> dict[str, np.ndarray]:
    """The :data:`BLOCK_COLUMNS` arrays of every block line, checked against its chain's header."""
    counts = lines.n_tok[data_line]
    bad = (counts != 3) & (counts != 1)
    last_of_chain = np.zeros(len(data_line), dtype=bool)
    if len(data_line):
        last_of_chain[:-1] = chain_idx[1:] != chain_idx[:-1]
        last_of_chain[-1] = True
    bad |= (counts == 1) != last_of_chain
    if bad.any():
        ln = int(data_line[np.flatnonzero(bad)[0]])
        raise CrossglueError(
            f"{where(path, ln + 1)}: expected 'size dt dq' inside a chain and a single 'size' on its last block line"
        )
    empty = np.flatnonzero(np.bincount(chain_idx, minlength=len(header_line)) == 0)
    if len(empty):
        raise CrossglueError(f"{where(path, int(header_line[empty[0]]) + 1)}: chain has no alignment blocks")
    if not len(data_line):
        return {c: np.zeros(0, np.int64) for c in BLOCK_COLUMNS}
    values, counts = _block_numbers(path, lines, data_line)

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

    # Block starts: the chain's start plus the sizes and gaps of the blocks before it.
    group_first = np.flatnonzero(np.concatenate(([True], chain_idx[1:] != chain_idx[:-1])))
    blocks = {
        "chain": chain_idx.astype(np.int64),
        "t_start": header["t_start"][chain_idx] + _exclusive_group_cumsum(size + dt, group_first),
        "q_start": header["q_start"][chain_idx] + _exclusive_group_cumsum(size + dq, group_first),
        "size": size,
    }
    last = np.flatnonzero(last_of_chain)
    t_end = blocks["t_start"][last] + size[last]
    q_end = blocks["q_start"][last] + size[last]
    mism = (t_end != header["t_end"][chain_idx[last]]) | (q_end != header["q_end"][chain_idx[last]])
    if mism.any():
        k = int(np.flatnonzero(mism)[0])
        c = chain_idx[last[k]]
        raise CrossglueError(
            f"{where(path, int(header_line[c]) + 1)}: blocks of this chain end at "
            f"t={t_end[k]}, q={q_end[k]}, but its header says tEnd={header['t_end'][c]}, "
            f"qEnd={header['q_end'][c]}"
        )
    return blocks


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
    body = (
        np.where(last, size_s, np.char.add(np.char.add(np.char.add(np.char.add(size_s, "\t"), dt), "\t"), dq))
        if n_block
        else np.zeros(0, object)
    )
    # Position of every line: chain c's header, its blocks, then a blank line.
    per_chain = np.bincount(chain, minlength=n_chain)
    header_pos = (
        np.concatenate(([0], np.cumsum(per_chain + 2)[:-1])).astype(np.int64) if n_chain else np.zeros(0, np.int64)
    )
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
    import pandas as pd

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
        raise CrossglueError(
            f"chains_from_blocks: block sizes must be positive (chain {b['chain_id'][np.flatnonzero(size <= 0)[0]]})"
        )
    gap_bad = same & ((t_start[1:] < t_start[:-1] + size[:-1]) | (q_start[1:] < q_start[:-1] + size[:-1]))
    if gap_bad.any():
        k = int(np.flatnonzero(gap_bad)[0])
        raise CrossglueError(
            f"chains_from_blocks: blocks of chain {b['chain_id'][k]} overlap or are not ordered by t_start "
            f"(t_start {t_start[k]} then {t_start[k + 1]})"
        )
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
    header = pd.DataFrame(
        {
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
        }
    )
    if not header["q_strand"].isin(["+", "-"]).all():
        raise CrossglueError("chains_from_blocks: q_strand must be '+' or '-'")
    over = (
        (header["t_end"] > header["t_size"])
        | (header["q_end"] > header["q_size"])
        | (header["t_start"] < 0)
        | (header["q_start"] < 0)
    )
    if over.any():
        raise CrossglueError(
            f"chains_from_blocks: chain {header['chain_id'][over].iloc[0]} runs past its sequence ends"
        )
    return ChainSet(
        header=header,
        blocks=pd.DataFrame({"chain": chain.astype(np.int64), "t_start": t_start, "q_start": q_start, "size": size}),
    )


# --- does a chain connect the assemblies it is configured for? ---------------------------------


@dataclass(frozen=True)
class Assembly:
    """One species' chromosomes, as a chain side is checked against them."""

    species: str
    sizes: dict[str, int]
    aliases: dict[str, str] | None = None
    sizes_source: str = "its chrom sizes"
    alias_source: str | None = None

    def canonical(self, names: pd.Series) -> pd.Series:
        """Canonical name of each of ``names`` ('' where it is neither canonical nor an alias)."""

        aliases = self.aliases or {}
        return names.map(lambda n: n if n in self.sizes else aliases.get(n, ""))


@dataclass
class _SideFit:
    known: pd.DataFrame  # the side's distinct chromosomes that are this assembly's, with both sizes
    n_names: int

    @property
    def mismatched(self) -> pd.DataFrame:
        return self.known[self.known["size"] != self.known["assembly_size"]]

    @property
    def matches(self) -> bool:
        return len(self.known) > 0 and self.mismatched.empty


def _side(header: pd.DataFrame, side: str) -> pd.DataFrame:
    """Distinct (name, size) of one side of the chains, with the first line naming each."""
    import pandas as pd

    prefix = "t" if side == "target" else "q"
    table = pd.DataFrame({"name": header[f"{prefix}_name"].astype(str), "size": header[f"{prefix}_size"]})
    table["line"] = header["line"].to_numpy() if "line" in header else pd.NA
    return table.drop_duplicates(["name", "size"]).reset_index(drop=True)


def _fit(side: pd.DataFrame, assembly: Assembly) -> _SideFit:
    canonical = assembly.canonical(side["name"])
    known = side.assign(canonical=canonical)[canonical.isin(list(assembly.sizes)).to_numpy()]
    known = known.assign(assembly_size=known["canonical"].map(assembly.sizes))
    return _SideFit(known=known, n_names=int(side["name"].nunique()))


def _size_twins(side: pd.DataFrame, assembly: Assembly) -> list[str]:
    """``'name' = 'chrom'`` for chain names whose size is that of exactly one of the assembly's chromosomes."""
    import pandas as pd

    by_size = pd.Series(list(assembly.sizes), index=list(assembly.sizes.values()))
    unique = by_size[~by_size.index.duplicated(keep=False)]
    twins = side[side["size"].isin(unique.index)]
    if len(twins) * 2 < len(side):
        return []
    return [f"{n!r} = {unique[s]!r}" for n, s in zip(twins["name"], twins["size"], strict=True)]


def _diagnosis(fits: dict[str, dict[str, _SideFit]], side: str, source: Assembly, target: Assembly) -> str:
    """What the chain seems to be for: swapped paths, another pair, another assembly."""
    arrow = f"{source.species}→{target.species}"
    back = f"{target.species}→{source.species}"
    t_on = [s for s, f in fits["target"].items() if f.matches]
    q_on = [s for s, f in fits["query"].items() if f.matches]
    if target.species in t_on and source.species in q_on:
        return (
            f"its target side matches {target.species}'s chrom sizes and its query side {source.species}'s: "
            f"are the paths of {arrow} and {back} swapped?"
        )
    on = t_on if side == "target" else q_on
    if on:
        return (
            f"its {side} side matches {' and '.join(f'{s}' for s in on)}'s chrom sizes: is it the chain of "
            f"another species pair?"
        )
    expected = source if side == "target" else target
    return (
        f"its {side} side matches no configured species' chrom sizes: is it a chain for another assembly "
        f"than {expected.species}'s ({expected.sizes_source})?"
    )


def check_chain_species(
    path: str | Path, header: pd.DataFrame, source: Assembly, target: Assembly, others: tuple[Assembly, ...] = ()
) -> None:
    """Raise unless the chains' target side is ``source``'s assembly and their query side ``target``'s.

    Every chromosome a side names (through the alias tables) must have the size the
    species' chrom sizes give it (``tSize``/``qSize`` of the chain headers); names unknown to
    the species are allowed (unplaced contigs missing from trimmed chrom sizes) as long as
    some are known. The message says which configured assembly the chain seems to be for.
    ``header`` is :func:`read_chain_headers` (with ``line``) or a :class:`ChainSet` header.
    """
    import pandas as pd

    every = {a.species: a for a in (source, target, *others)}
    sides = {"target": _side(header, "target"), "query": _side(header, "query")}
    fits = {side: {s: _fit(table, a) for s, a in every.items()} for side, table in sides.items()}
    for side, expected in (("target", source), ("query", target)):
        fit = fits[side][expected.species]
        if fit.matches or not len(sides[side]):
            continue
        start = f"{path}: chain file for {source.species} → {target.species}, but"
        if fit.mismatched.empty:  # no name known
            names = sides[side]["name"].drop_duplicates()
            table = f"alias table {expected.alias_source}" if expected.alias_source else "no alias table"
            twins = _size_twins(sides[side], expected)
            hint = (
                (
                    f"their sizes match {expected.species}'s chromosomes ({', '.join(twins[:3])}): add these names "
                    f"to {expected.species}'s chrom_aliases table"
                )
                if twins
                else _diagnosis(fits, side, source, target)
            )
            raise CrossglueError(
                f"{start} none of its {fit.n_names} {side} chromosome name(s) (e.g. "
                f"{', '.join(map(repr, names.iloc[:3]))}) is a chromosome of {expected.species} "
                f"({expected.sizes_source}, e.g. {', '.join(list(expected.sizes)[:3])}) nor in {table}; {hint}"
            )
        bad = fit.mismatched.iloc[0]
        line = f" (line {bad['line']})" if not pd.isna(bad["line"]) else ""
        name = repr(bad["name"]) + (f" ({bad['canonical']!r})" if bad["canonical"] != bad["name"] else "")
        raise CrossglueError(
            f"{start} its {side} chromosome {name} has {'tSize' if side == 'target' else 'qSize'} {bad['size']}"
            f"{line} where {expected.species}'s chrom sizes ({expected.sizes_source}) give {bad['assembly_size']}; "
            + _diagnosis(fits, side, source, target)
        )


def assembly_of(spec: dict) -> Assembly:
    """The :class:`Assembly` of one ``species`` entry of the config (files must exist)."""
    from crossglue.genomics.genome import read_aliases, read_chrom_sizes

    sizes = read_chrom_sizes(spec["chrom_sizes"])
    alias_path = spec.get("chrom_aliases")
    aliases = read_aliases(alias_path, sizes, spec["chrom_sizes"]) if alias_path else None
    return Assembly(spec["name"], sizes, aliases, spec["chrom_sizes"], alias_path)


def check_configured_chains(chains: list[dict], species: list[dict]) -> None:
    """Check every configured chain whose files exist already against the species it connects.

    Meant for workflow parse time, so a swapped or foreign chain stops the run before any
    job; files the workflow writes itself (the demo's) are checked by rule lift_peaks.
    """

    def ready(spec: dict) -> bool:
        return all(Path(spec[k]).is_file() for k in ("chrom_sizes", "chrom_aliases") if spec.get(k))

    assemblies = {s["name"]: assembly_of(s) for s in species if ready(s)}
    for i, entry in enumerate(chains):
        a, b = entry["from"], entry["to"]
        if a not in assemblies or b not in assemblies or not Path(entry["path"]).is_file():
            continue
        others = tuple(x for name, x in assemblies.items() if name not in (a, b))
        try:
            check_chain_species(entry["path"], read_chain_headers(entry["path"]), assemblies[a], assemblies[b], others)
        except CrossglueError as err:
            raise CrossglueError(f"config key 'chains[{i}]': {err}") from None
