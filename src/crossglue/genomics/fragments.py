"""10x ``fragments.tsv.gz`` read into columnar numpy arrays, validated on the way in.

Columns: chrom, start (0-based), end (exclusive), barcode, count (PCR duplicates collapsed
into one record). Cell Ranger ATAC already shifts read ends for Tn5 (+4 on the plus strand,
-5 on the minus strand), so the two Tn5 insertion sites of a fragment are ``start`` and
``end - 1``; no further shift is applied here.

The fast path is a vectorised pandas read with explicit dtypes, in chunks of bounded size. Only when it fails does a
second, still vectorised, pass find the first offending line to name in the error.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pysam

from crossglue.errors import CrossglueError, where
from crossglue.genomics.genome import canonical_names

# Every BGZF file ends with this empty block; its absence means the file was cut short.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
COLUMNS = ["chrom", "start", "end", "barcode", "count"]
DTYPES = {"chrom": "category", "start": np.int64, "end": np.int64, "barcode": "category", "count": np.int32}
CHUNK_ROWS = 5_000_000


@dataclass(frozen=True)
class Fragments:
    """Fragments of one file as parallel arrays; chromosomes and barcodes as codes.

    ``chrom`` indexes ``chrom_names`` (canonical, in the species' chrom sizes order);
    ``barcode`` indexes ``barcodes`` (in the order the file's chunks introduce them).
    """

    chrom_names: list[str]
    barcodes: np.ndarray
    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray
    barcode: np.ndarray
    count: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def insertions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chrom codes, 0-based positions, barcode codes) of both Tn5 insertions of each fragment."""
        return (
            np.concatenate([self.chrom, self.chrom]),
            np.concatenate([self.start, self.end - 1]),
            np.concatenate([self.barcode, self.barcode]),
        )


def check_fragments_file(path: str | Path) -> None:
    """Raise unless ``path`` exists, has a tabix index, and is a complete bgzip file."""
    path = Path(path)
    if not path.is_file():
        raise CrossglueError(f"{path}: fragments file not found")
    index = Path(f"{path}.tbi")
    if not index.is_file() and not Path(f"{path}.csi").is_file():
        raise CrossglueError(
            f"{path}: tabix index {index} not found; create it with `tabix -p bed {path}` "
            "(the file must be bgzip-compressed and coordinate-sorted)"
        )
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(0, path.stat().st_size - len(BGZF_EOF)))
        tail = fh.read()
    if head[:2] != b"\x1f\x8b" or head[3] & 4 == 0:
        raise CrossglueError(
            f"{path}: not bgzip-compressed; compress it with `bgzip` (not gzip) and index it with tabix"
        )
    if tail != BGZF_EOF:
        raise CrossglueError(
            f"{path}: truncated bgzip file (the end-of-file block is missing); re-copy or regenerate it"
        )


def _header_lines(path: Path) -> int:
    """Number of leading '#' comment lines (Cell Ranger writes its metadata there)."""
    n = 0
    with gzip.open(path, "rt") as fh:
        for line in fh:  # stops at the first record: only the short header is read
            if not line.startswith("#"):
                break
            n += 1
    return n


def _first_bad_line(path: Path, skip: int, chunk_lines: int = 1_000_000) -> str:
    """Diagnose a file the fast reader rejected: the first line that breaks the format.

    Reads the text in bounded chunks of lines; each chunk is checked column-wise.
    """
    with gzip.open(path, "rt") as fh:
        for _ in range(skip):
            fh.readline()
        first = skip
        while True:
            block = list(itertools.islice(fh, chunk_lines))
            if not block:
                return f"{path}: cannot parse the fragments file"
            message = _bad_line_in(pd.Series(block).str.rstrip("\n"), path, first)
            if message:
                return message
            first += len(block)


def _bad_line_in(lines: pd.Series, path: Path, first: int) -> str | None:
    ncol = lines.str.count("\t").to_numpy() + 1
    bad = np.flatnonzero(ncol != 5)
    if len(bad):
        i = int(bad[0])
        return (
            f"{where(path, first + i + 1)}: expected 5 tab-separated columns "
            f"(chrom, start, end, barcode, count), got {ncol[i]}"
        )
    fields = lines.str.split("\t", expand=True)
    for col, name in ((1, "start"), (2, "end"), (4, "count")):
        ok = fields[col].str.fullmatch(r"\d+").to_numpy(dtype=bool)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            return f"{where(path, first + i + 1)}: expected a non-negative integer {name}, got {fields.at[i, col]!r}"
    return None


@contextlib.contextmanager
def _inflated(path: Path) -> Iterator[IO[bytes] | Path]:
    """The file's inflated bytes from a ``gzip -dc`` process when there is one, so that
    decompression runs on another core beside parsing; else the path for pandas to inflate."""
    gunzip = shutil.which("gzip")
    if gunzip is None:
        yield path
        return
    proc = subprocess.Popen([gunzip, "-dc", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc.stdout
        if proc.wait() != 0:
            message = proc.stderr.read().decode(errors="replace").strip()
            raise CrossglueError(f"{path}: truncated or corrupt bgzip file ({message})")
    finally:
        if proc.poll() is None:  # left early (error or consumer stopped)
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _chunks(path: Path, skip: int, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The records in tables of at most ``chunk_rows`` rows (bounded memory)."""
    try:
        with (
            _inflated(path) as source,
            pd.read_csv(
                source,
                sep="\t",
                header=None,
                names=COLUMNS,
                skiprows=skip,
                dtype=DTYPES,
                compression="gzip" if isinstance(source, Path) else None,
                engine="c",
                na_filter=False,
                chunksize=chunk_rows,
            ) as reader,
        ):
            yield from reader
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise CrossglueError(f"{path}: truncated or corrupt bgzip file ({err})") from None
    except (ValueError, pd.errors.ParserError, OverflowError, IndexError):
        raise CrossglueError(_first_bad_line(path, skip)) from None


@dataclass
class _SortState:
    """What sortedness checks carry from one chunk to the next."""

    last_chrom: str | None = None
    last_start: int = -1
    finished: set[str] = field(default_factory=set)


def iter_fragments(
    path: str | Path,
    sizes: dict[str, int],
    aliases: dict[str, str] | None = None,
    alias_source: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Fragments]:
    """The whole file as consecutive validated chunks (memory bounded by ``chunk_rows``).

    Barcode codes are global to the file: each chunk's ``barcodes`` lists every barcode
    seen so far (earlier chunks' first), so per-cell sums over chunks simply add up.
    """
    path = Path(path)
    check_fragments_file(path)
    skip = _header_lines(path)
    state = _SortState()
    known = pd.Index([], dtype=object)
    for table in _chunks(path, skip, chunk_rows):
        categories = pd.Index(np.asarray(table["barcode"].cat.categories, dtype=object))
        code_of_category = known.get_indexer(categories)
        new = code_of_category < 0
        code_of_category[new] = len(known) + np.arange(int(new.sum()))
        known = known.append(categories[new])
        codes = code_of_category[table["barcode"].cat.codes.to_numpy()].astype(np.int32)
        yield _validated(table, codes, np.asarray(known, dtype=object), path, skip, sizes, aliases, alias_source, state)
        skip += len(table)


def read_fragments(
    path: str | Path,
    sizes: dict[str, int],
    aliases: dict[str, str] | None = None,
    chrom: str | None = None,
    alias_source: str | None = None,
) -> Fragments:
    """All fragments of ``path`` (or of one canonical chromosome ``chrom``, via tabix).

    Validates: index present, bgzip complete, 5 integer-coordinate columns, start < end,
    coordinate-sorted (each chromosome one block, starts non-decreasing), chromosomes known
    to the species after aliasing, ends within the chromosome.
    """
    path = Path(path)
    if chrom is None:
        return concat_fragments(list(iter_fragments(path, sizes, aliases, alias_source)), sizes)
    check_fragments_file(path)
    table = _fetch_chromosome(path, chrom, aliases)
    codes, barcodes = pd.factorize(table["barcode"].astype(object), sort=False)
    # line numbers are unknown for records fetched through the index: name the region instead
    return _validated(
        table,
        codes.astype(np.int32),
        np.asarray(barcodes, dtype=object),
        Path(f"{path} ({chrom})"),
        None,
        sizes,
        aliases,
        alias_source,
        _SortState(),
    )


def concat_fragments(chunks: list[Fragments], sizes: dict[str, int]) -> Fragments:
    """One table from consecutive chunks of one file."""
    if not chunks:
        empty = (np.zeros(0, t) for t in (np.int32, np.int64, np.int64, np.int32, np.int32))
        return Fragments(list(sizes), np.array([], dtype=object), *empty)
    return Fragments(
        chrom_names=chunks[-1].chrom_names,
        barcodes=chunks[-1].barcodes,
        **{k: np.concatenate([getattr(c, k) for c in chunks]) for k in ("chrom", "start", "end", "barcode", "count")},
    )


def _fetch_chromosome(path: Path, chrom: str, aliases: dict[str, str] | None) -> pd.DataFrame:
    """One chromosome's records through the tabix index, whatever the file calls it."""
    with pysam.TabixFile(str(path)) as tbx:
        names = [c for c in tbx.contigs if c == chrom or (aliases or {}).get(c) == chrom]
        text = "\n".join(line for name in names for line in tbx.fetch(name))
    if not text:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in DTYPES.items()})
    try:
        return pd.read_csv(io.StringIO(text), sep="\t", header=None, names=COLUMNS, na_filter=False, dtype=DTYPES)
    except (ValueError, pd.errors.ParserError):
        raise CrossglueError(_first_bad_line(path, _header_lines(path))) from None


def _validated(
    table: pd.DataFrame,
    barcode: np.ndarray,
    barcodes: np.ndarray,
    path: Path,
    skip: int | None,
    sizes: dict[str, int],
    aliases: dict[str, str] | None,
    alias_source: str | None,
    state: _SortState,
) -> Fragments:
    """Check one table of records (``skip``: file lines before its first record; None if unknown)."""
    start = table["start"].to_numpy(np.int64)
    end = table["end"].to_numpy(np.int64)
    count = table["count"].to_numpy(np.int32)

    def at(i: int) -> str:
        return where(path, None if skip is None else skip + int(i) + 1)

    bad = np.flatnonzero(start < 0)
    if len(bad):
        raise CrossglueError(f"{at(bad[0])}: expected a non-negative integer start, got {start[bad[0]]}")
    bad = np.flatnonzero(count < 1)
    if len(bad):
        raise CrossglueError(f"{at(bad[0])}: expected a positive integer count, got {count[bad[0]]}")
    bad = np.flatnonzero(start >= end)
    if len(bad):
        i = bad[0]
        raise CrossglueError(f"{at(i)}: fragment start {start[i]} is not before its end {end[i]}")
    _check_sorted(table, start, state, at)

    categories = np.asarray(table["chrom"].cat.categories, dtype=object)
    canonical = canonical_names(categories, aliases, sizes, source=str(path), alias_source=alias_source)
    chrom_names = list(sizes)
    order = {c: k for k, c in enumerate(chrom_names)}
    code_of_category = np.array([order[c] for c in canonical], dtype=np.int32)
    file_chrom = table["chrom"].cat.codes.to_numpy()
    chrom = code_of_category[file_chrom] if len(file_chrom) else np.zeros(0, np.int32)
    limits = np.array([sizes[c] for c in chrom_names], dtype=np.int64)
    over = np.flatnonzero(end > limits[chrom]) if len(chrom) else []
    if len(over):
        i = over[0]
        raise CrossglueError(
            f"{at(i)}: fragment end {end[i]} lies beyond {chrom_names[chrom[i]]} "
            f"({limits[chrom[i]]} bp in the chrom sizes); wrong assembly?"
        )
    return Fragments(chrom_names, barcodes, chrom.astype(np.int32), start, end, barcode, count)


def _check_sorted(table: pd.DataFrame, start: np.ndarray, state: _SortState, at) -> None:
    """A chromosome never comes back after another one; starts never decrease inside one."""
    if not len(start):
        return
    names = np.asarray(table["chrom"].astype(object))
    new_block = np.r_[True, names[1:] != names[:-1]]
    first = np.flatnonzero(new_block)
    block_names = names[first]
    continues = block_names[0] == state.last_chrom
    seen_before = pd.Series(block_names).duplicated().to_numpy() | np.isin(block_names, list(state.finished))
    if continues:
        seen_before[0] = False
    if seen_before.any():
        i = first[np.flatnonzero(seen_before)[0]]
        raise CrossglueError(
            f"{at(i)}: file is not coordinate-sorted (chromosome {names[i]} appears again "
            "after another chromosome); sort with `sort -k1,1 -k2,2n` and re-index"
        )
    previous = np.r_[state.last_start if continues else -1, start[:-1]]
    previous[first[1:]] = -1
    if not continues:
        previous[0] = -1
    back = np.flatnonzero(start < previous)
    if len(back):
        i = back[0]
        raise CrossglueError(
            f"{at(i)}: file is not coordinate-sorted (start {start[i]} after {previous[i]} on "
            f"{names[i]}); sort with `sort -k1,1 -k2,2n` and re-index"
        )
    if state.last_chrom is not None and not continues:
        state.finished.add(state.last_chrom)
    state.finished.update(block_names[:-1])
    state.last_chrom, state.last_start = block_names[-1], int(start[-1])


def cell_index(cell_ids: pd.Index, sample: str) -> tuple[pd.Index, np.ndarray]:
    """Barcodes of ``sample``'s cells (ids ``{sample}#{barcode}``) and their rows in ``cell_ids``."""
    ids = pd.Index(cell_ids.astype(str))
    prefix = f"{sample}#"
    rows = np.flatnonzero(ids.str.startswith(prefix))
    return pd.Index(ids[rows].str.slice(len(prefix))), rows
