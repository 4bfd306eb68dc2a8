"""Throughput of ATAC ingest (read + validate, QC, tile counts) on a synthetic fragments file.

Usage: python bench/bench_ingest.py [n_fragments] [n_cells]. Prints seconds per stage and
peak memory. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pysam

from crossglue.genomics.fragments import iter_fragments
from crossglue.ingest.qc import add_counts, count_atac, tss_regions
from crossglue.ingest.samples import Sample, Species, ingest_sample


def synthetic(path: Path, n: int, n_cells: int, sizes: dict[str, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    chroms = np.sort(rng.choice(len(sizes), n, p=np.array(list(sizes.values())) / sum(sizes.values())))
    names = np.array(list(sizes))[chroms]
    limits = np.array(list(sizes.values()))[chroms]
    start = rng.integers(0, limits - 1000)
    order = np.lexsort((start, chroms))
    length = rng.choice([80, 120, 200, 400], n, p=[0.4, 0.3, 0.2, 0.1]) + rng.integers(0, 40, n)
    table = pd.DataFrame(
        {
            "c": names[order],
            "s": start[order],
            "e": start[order] + length,
            "b": np.char.add("BC", rng.integers(0, n_cells, n).astype(str)),
            "n": rng.integers(1, 4, n),
        }
    )
    plain = path.with_suffix(".txt")
    table.to_csv(plain, sep="\t", header=False, index=False)
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    pysam.tabix_index(str(path), preset="bed", force=True)


def main(n: int = 5_000_000, n_cells: int = 5_000) -> None:
    sizes = {f"chr{i}": 50_000_000 for i in range(1, 11)}
    rng = np.random.default_rng(1)
    genes = pd.DataFrame(
        {
            "chrom": rng.choice(list(sizes), 20_000),
            "tss": rng.integers(0, 49_000_000, 20_000),
            "strand": rng.choice(["+", "-"], 20_000),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fragments.tsv.gz"
        t = time.perf_counter()
        synthetic(path, n, n_cells, sizes)
        print(f"write {n:,} fragments: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        chunks = list(iter_fragments(path, sizes))
        print(f"read + validate: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        regions = tss_regions(genes, chunks[0].chrom_names, sizes)
        counts = None
        for chunk in chunks:
            counts = add_counts(counts, count_atac(chunk, regions))
        print(f"QC counts: {time.perf_counter() - t:.1f} s")
        del chunks
        t = time.perf_counter()
        sample = Sample("bench", "toy", "d", "atac", fragments=str(path))
        result = ingest_sample(sample, Species("toy", sizes, genes), {"atac": {"min_fragments": 100}}, 5000)
        print(
            f"ingest_sample (2 passes when > 1 chunk): {time.perf_counter() - t:.1f} s; "
            f"{result.atac.n_obs} cells x {result.atac.n_vars} tiles"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
