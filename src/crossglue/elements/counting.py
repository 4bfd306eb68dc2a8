"""Cell × element counts from 10x fragments files, streamed once and counted vectorised.

Each fragments file is read in large chunks by the one fragments reader
(:func:`crossglue.genomics.fragments.iter_fragments`: no per-peak tabix queries, names
already canonical), barcodes are translated to cell rows, and every Tn5
insertion (default) or fragment is placed on the elements it falls in with ``searchsorted``
over the elements sorted by start.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.errors import CrossglueError
from crossglue.genomics.fragments import CHUNK_ROWS, cell_index, iter_fragments
from crossglue.genomics.intervals import insertion_sites, overlapping_elements

log = logging.getLogger(__name__)

COUNT_MODES = ("insertions", "fragments")


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
    Cell ids are ``{sample}#{barcode}``; ids that name no cell of ``sample``, or cells none of
    which has a fragment in the file, are errors (an all-zero matrix would look like data).
    """
    if mode not in COUNT_MODES:
        raise CrossglueError(f"counting.mode '{mode}': expected one of {', '.join(COUNT_MODES)}")
    barcodes, rows = cell_index(cell_ids, sample)
    if not len(rows):
        got = f", got e.g. '{cell_ids[0]}'" if len(cell_ids) else ", got no cell id at all"
        raise CrossglueError(
            f"{path}: none of the {len(cell_ids):,} cell ids belongs to sample {sample}: cell ids are "
            f"'{sample}#<barcode>'{got}; prefix plain barcodes with '{sample}#'"
        )
    order = np.lexsort((elements["start"].to_numpy(), elements["chrom"].astype(str).to_numpy()))
    chrom_sorted = elements["chrom"].astype(str).to_numpy()[order]
    starts = elements["start"].to_numpy(np.int64)[order]
    ends = elements["end"].to_numpy(np.int64)[order]
    chroms, first = np.unique(chrom_sorted, return_index=True)
    last = np.append(first[1:], len(order))
    span = dict(zip(chroms, zip(first, last, strict=True), strict=True))

    cell_parts, element_parts = [], []
    n_read = 0
    seen = np.zeros(len(barcodes), bool)  # cells with at least one fragment in the file
    file_barcode = None
    for chunk in iter_fragments(path, sizes, aliases, chunk_rows=chunk_rows):
        n_read += len(chunk)
        cell = barcodes.get_indexer(chunk.barcodes)[chunk.barcode]  # barcode code -> cell row (or -1)
        in_cells = cell >= 0
        seen[cell[in_cells]] = True
        file_barcode = file_barcode or (str(chunk.barcodes[chunk.barcode[0]]) if len(chunk) else None)
        for code in np.unique(chunk.chrom[in_cells]):  # chromosomes, not fragments
            chrom = chunk.chrom_names[code]
            if chrom not in span:
                continue
            sel = in_cells & (chunk.chrom == code)
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
    if not seen.any():
        found = f"its barcodes look like '{file_barcode}'" if file_barcode else "it holds no fragment"
        raise CrossglueError(
            f"{path}: none of the {len(barcodes):,} cells of sample {sample} has a fragment in this file (cell ids "
            f"look like '{sample}#{barcodes[0]}', {found}); cell ids must be '{sample}#' + the barcode as the "
            "fragments file writes it"
        )
    cells = np.concatenate(cell_parts) if cell_parts else np.zeros(0, np.int64)
    elems = np.concatenate(element_parts) if element_parts else np.zeros(0, np.int64)
    counts = sp.csr_matrix(
        (np.ones(len(cells), np.int32), (cells, elems)), shape=(len(cell_ids), len(elements)), dtype=np.int32
    )
    counts.sum_duplicates()
    return counts, n_read
