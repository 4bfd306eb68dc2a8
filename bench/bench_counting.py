"""Benchmark: counting Tn5 insertions (and fragments) per element on the simulated demo at 10× scale.

Elements are the simulator's CREs (501 bp around each true centre) plus a tiling of 501 bp
windows every 5 kb (background elements, as a real peak set has ~10⁵ of them); cells are the
truth's QC-passing ATAC / multiome nuclei. Timed: :func:`crossglue.elements.counting.count_fragments_file`
over every fragments file of a species, each read once. Reported: fragments per second.

    .venv/bin/python bench/bench_counting.py                       # simulate demo ×10 into a temp dir
    .venv/bin/python bench/bench_counting.py --data /path/to/sim   # reuse a simulated dataset

Results are not tests: printed and written to ``--out`` as TSV.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.elements.counting import count_fragments_file
from crossglue.genomics.genome import read_aliases, read_chrom_sizes


def elements_of(data: Path, species: str, sizes: dict[str, int]) -> pd.DataFrame:
    """Truth CREs of ``species`` plus background windows, all 501 bp."""
    cres = pd.read_csv(data / "truth" / "cres.tsv", sep="\t")
    cres = cres[cres[f"{species}_chrom"].notna()]
    centre = cres[f"{species}_centre"].to_numpy(np.int64)
    chrom = [cres[f"{species}_chrom"].to_numpy().astype(str)]
    starts = [centre - 250]
    for name, length in sizes.items():
        tiles = np.arange(2_500, length - 501, 5_000, dtype=np.int64)
        chrom.append(np.full(len(tiles), name))
        starts.append(tiles)
    start = np.concatenate(starts)
    return pd.DataFrame({"chrom": np.concatenate(chrom), "start": start, "end": start + 501})


def bench_species(data: Path, species: str, mode: str) -> dict:
    sizes = read_chrom_sizes(data / "genome" / f"{species}.chrom.sizes")
    aliases = read_aliases(data / "genome" / f"{species}.chrom_aliases.tsv")
    cells = pd.read_csv(data / "truth" / "cells.tsv", sep="\t")
    cells = cells[
        (cells["species"] == species) & cells["modality"].isin(["atac", "multiome"]) & (cells["quality"] == "cell")
    ]
    cell_ids = pd.Index(cells["cell"].astype(str))
    sheet = pd.read_csv(data / "samples.tsv", sep="\t")
    files = sheet[(sheet["species"] == species) & sheet["fragments"].notna()]
    elements = elements_of(data, species, sizes)
    t0 = time.perf_counter()
    n_frag, total = 0, 0
    for row in files.itertuples():
        counts, n_read = count_fragments_file(row.fragments, row.sample, cell_ids, elements, aliases, sizes, mode)
        n_frag += n_read
        total += int(counts.sum())
    seconds = time.perf_counter() - t0
    return {
        "species": species,
        "mode": mode,
        "files": len(files),
        "cells": len(cell_ids),
        "elements": len(elements),
        "fragments": n_frag,
        "counted": total,
        "seconds": round(seconds, 2),
        "fragments_per_second": round(n_frag / seconds),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a simulated dataset (default: simulate one)")
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/counting.tsv"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from crossglue.simulate import simulate

            data = Path(tmp) / "sim"
            t0 = time.perf_counter()
            simulate(data, preset="demo", seed=args.seed, scale=args.scale)
            print(f"simulated demo ×{args.scale:g} in {time.perf_counter() - t0:.0f} s")
        rows = [bench_species(data, s, m) for s in ("human", "macaque") for m in ("insertions", "fragments")]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
