"""Cell × element counts from 10x fragments files, streamed once and counted vectorised.

Each fragments file is read in large chunks (no per-peak tabix queries); chromosome names
are translated to the species' canonical names, barcodes to cell rows, and every Tn5
insertion (default) or fragment is placed on the elements it falls in with ``searchsorted``
over the elements sorted by start.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.errors import CrossglueError
from crossglue.genomics.genome import canonical_names
from crossglue.io_utils import is_gzip

log = logging.getLogger(__name__)

COUNT_MODES = ("insertions", "fragments")
CHUNK_ROWS = 2_000_000


@dataclass(frozen=True)
class FragmentChunk:
    """Fragments of one chunk: canonical chromosome (as codes into ``chrom_names``), start, end, barcode."""

    chrom_code: np.ndarray
    chrom_names: np.ndarray
    start: np.ndarray
    end: np.ndarray
    barcode: np.ndarray

    @property
    def chrom(self) -> np.ndarray:
        """Canonical chromosome name of every fragment."""
        return self.chrom_names[self.chrom_code]


def iter_fragments(
    path: str | Path, aliases: dict[str, str], sizes: dict[str, int], chunk_rows: int = CHUNK_ROWS
) -> Iterator[FragmentChunk]:
    """Yield a 10x fragments file (gz or plain, '#' header lines skipped) in chunks."""
    path = Path(path)
    if not path.is_file():
        raise CrossglueError(f"fragments file {path} does not exist")
    with _decompressed(path) as (source, proc):
        yield from _parse_chunks(source, path, aliases, sizes, chunk_rows)
        if proc is not None and proc.wait() != 0:
            message = proc.stderr.read().decode(errors="replace").strip()
            raise CrossglueError(f"{path}: cannot decompress the fragments file: {message}")


@contextlib.contextmanager
def _decompressed(path: Path) -> Iterator[tuple[IO[bytes] | Path, subprocess.Popen | None]]:
    """The file's bytes; gzip/bgzip files are inflated by a ``gzip -dc`` process when there is one,
    so that decompression runs beside parsing instead of in the same thread."""
    gunzip = shutil.which("gzip") if is_gzip(path) else None
    if gunzip is None:
        yield path, None
        return
    proc = subprocess.Popen([gunzip, "-dc", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc.stdout, proc
    finally:
        if proc.poll() is None:  # left early (error or consumer stopped)
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _parse_chunks(
    source: IO[bytes] | Path, path: Path, aliases: dict[str, str], sizes: dict[str, int], chunk_rows: int
) -> Iterator[FragmentChunk]:
    try:
        reader = pd.read_csv(
            source,
            sep="\t",
            header=None,
            comment="#",
            usecols=[0, 1, 2, 3],
            names=["chrom", "start", "end", "barcode"],
            dtype={"chrom": "category", "start": np.int64, "end": np.int64, "barcode": str},
            chunksize=chunk_rows,
        )
        for chunk in reader:
            codes = chunk["chrom"].cat.codes.to_numpy()
            names = canonical_names(
                np.asarray(chunk["chrom"].cat.categories, dtype=str), aliases, sizes, source=str(path)
            )
            start = chunk["start"].to_numpy()
            end = chunk["end"].to_numpy()
            bad = end <= start
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise CrossglueError(
                    f"{path}: fragment {chunk.index[i] + 1} has end {end[i]} <= start {start[i]}; "
                    "expected chrom, start, end (end > start), barcode, count"
                )
            yield FragmentChunk(codes, np.asarray(names, dtype=object), start, end, chunk["barcode"].to_numpy())
    except (ValueError, pd.errors.ParserError) as err:
        raise CrossglueError(
            f"{path}: not a 10x fragments file (chrom, start, end, barcode, count; tab-separated): {err}"
        ) from None


def insertion_sites(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both Tn5 cut sites of each fragment, 0-based: ``start`` and ``end - 1``; also the fragment index."""
    n = len(start)
    return np.concatenate([start, end - 1]), np.concatenate([np.arange(n), np.arange(n)])


def expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query index, element index) for every element index in [lo[i], hi[i])."""
    n = np.maximum(hi - lo, 0)
    query = np.repeat(np.arange(len(lo)), n)
    offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    return query, np.repeat(lo, n) + offset


def overlapping_elements(
    starts: np.ndarray, ends: np.ndarray, q_start: np.ndarray, q_end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (query, element) pairs with overlapping half-open intervals; elements sorted by start.

    Elements may overlap each other and vary in width: the running maximum of ends bounds
    the first candidate, and candidates are then filtered exactly.
    """
    reach = np.maximum.accumulate(ends) if len(ends) else ends
    lo = np.searchsorted(reach, q_start, side="right")  # first element that can end after q_start
    hi = np.searchsorted(starts, q_end, side="left")  # elements starting before q_end
    query, element = expand_ranges(lo, hi)
    keep = ends[element] > q_start[query]
    return query[keep], element[keep]


def cell_index(cell_ids: pd.Index, sample: str) -> tuple[pd.Index, np.ndarray]:
    """Barcodes of ``sample``'s cells (ids ``{sample}#{barcode}``) and their rows in ``cell_ids``."""
    ids = pd.Index(cell_ids.astype(str))
    prefix = f"{sample}#"
    rows = np.flatnonzero(ids.str.startswith(prefix))
    return pd.Index(ids[rows].str.slice(len(prefix))), rows


def count_fragments_file(
    path: str | Path,
    sample: str,
    cell_ids: pd.Index,
    elements: pd.DataFrame,
    aliases: dict[str, str],
    sizes: dict[str, int],
    mode: str = "insertions",
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[sp.csr_matrix, int]:
    """Counts (cells × elements, rows = ``cell_ids``) from one sample's fragments; also fragments read.

    ``elements`` has chrom, start, end (canonical names, 0-based half-open) in any order.
    """
    if mode not in COUNT_MODES:
        raise CrossglueError(f"counting.mode '{mode}': expected one of {', '.join(COUNT_MODES)}")
    barcodes, rows = cell_index(cell_ids, sample)
    order = np.lexsort((elements["start"].to_numpy(), elements["chrom"].astype(str).to_numpy()))
    chrom_sorted = elements["chrom"].astype(str).to_numpy()[order]
    starts = elements["start"].to_numpy(np.int64)[order]
    ends = elements["end"].to_numpy(np.int64)[order]
    chroms, first = np.unique(chrom_sorted, return_index=True)
    last = np.append(first[1:], len(order))
    span = dict(zip(chroms, zip(first, last, strict=True), strict=True))

    cell_parts, element_parts = [], []
    n_read = 0
    for chunk in iter_fragments(path, aliases, sizes, chunk_rows):
        n_read += len(chunk.start)
        cell = barcodes.get_indexer(chunk.barcode)
        in_cells = cell >= 0
        for code in np.unique(chunk.chrom_code[in_cells]):  # chromosomes, not fragments
            chrom = chunk.chrom_names[code]
            if chrom not in span:
                continue
            sel = in_cells & (chunk.chrom_code == code)
            a, b = span[chrom]
            f_start, f_end, f_cell = chunk.start[sel], chunk.end[sel], cell[sel]
            if mode == "insertions":
                pos, frag = insertion_sites(f_start, f_end)
                q, e = overlapping_elements(starts[a:b], ends[a:b], pos, pos + 1)
                q = frag[q]
            else:
                q, e = overlapping_elements(starts[a:b], ends[a:b], f_start, f_end)
            cell_parts.append(rows[f_cell[q]])
            element_parts.append(order[a + e])
    cells = np.concatenate(cell_parts) if cell_parts else np.zeros(0, np.int64)
    elems = np.concatenate(element_parts) if element_parts else np.zeros(0, np.int64)
    counts = sp.csr_matrix(
        (np.ones(len(cells), np.int32), (cells, elems)), shape=(len(cell_ids), len(elements)), dtype=np.int32
    )
    counts.sum_duplicates()
    return counts, n_read


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
