"""Benchmark: motif scanning, the numpy reference scanner against memelite's FIMO, one core.

Scanned: 20,000 windows of 501 bp tiled over a simulated genome (its composition and planted
sites stand in for real sequence) × 20 JASPAR 2024 matrices (every 44th of the default
database), at p 1e-4, by :func:`crossglue.analysis.motifs.motif_hits_exact` (old) and
:func:`crossglue.analysis.motifs.motif_hits` (new), with their agreement. With ``--run``, also
the whole database (879 matrices) over a finished run's union elements in both species, as
the motif_turnover rule scans them.

    .venv/bin/python bench/bench_motifs.py                          # simulate the tiny preset
    .venv/bin/python bench/bench_motifs.py --data DIR --run RUN     # a simulated dataset; a run

Results are not tests: printed and written to ``--out`` as TSV.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy / numba load

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crossglue.analysis.motif_database import DEFAULT_DATABASE  # noqa: E402
from crossglue.analysis.motifs import (  # noqa: E402
    element_sequences,
    motif_hits,
    motif_hits_exact,
    read_meme,
    union_motif_hits,
)
from crossglue.genomics.genome import read_chrom_sizes  # noqa: E402

SPECIES = ["human", "macaque"]


def windows(data: Path, n: int, width: int) -> np.ndarray:
    """Base codes of ``n`` windows tiled evenly over the human genome of a simulated dataset."""
    sizes = read_chrom_sizes(data / "genome" / "human.chrom.sizes")
    names = np.array(list(sizes))
    lengths = np.array([sizes[c] - width for c in names], dtype=np.int64)
    offsets = np.linspace(0, lengths.sum() - 1, n).astype(np.int64)
    which = np.searchsorted(np.cumsum(lengths), offsets, side="right")
    start = offsets - np.concatenate(([0], np.cumsum(lengths)))[which]
    return element_sequences(data / "genome" / "human.fa.gz", names[which], start, start + width)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a simulated dataset (default: simulate the tiny preset)")
    parser.add_argument("--run", type=Path, help="a finished run: scan its union elements with the whole database")
    parser.add_argument("--motifs", type=Path, default=DEFAULT_DATABASE)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out/motifs.tsv"))
    args = parser.parse_args()
    motifs, background = read_meme(args.motifs)
    chosen = motifs[::44][:20]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from crossglue.simulate import simulate

            data = Path(tmp) / "sim"
            simulate(data, preset="tiny", seed=0)
        codes = windows(data, args.n, 501)
    _, compile_s = timed(motif_hits, codes[:10], chosen, background)  # numba compiles (cached on disk)
    new, new_s = timed(motif_hits, codes, chosen, background)
    old, old_s = timed(motif_hits_exact, codes, chosen, background)
    a, b = old.to_numpy(), new.to_numpy()
    rows = [
        {"scanner": "numpy (old)", "sequences": len(codes), "motifs": 20, "seconds": old_s, "hits": int(a.sum())},
        {"scanner": "memelite (new)", "sequences": len(codes), "motifs": 20, "seconds": new_s, "hits": int(b.sum())},
    ]
    print(f"memelite first call (numba compile or cache load): {compile_s:.1f} s")
    print(f"agreement per (sequence, motif) {(a == b).mean():.5f}; hit Jaccard {(a & b).sum() / (a | b).sum():.4f}")
    if args.run:
        union = pd.read_csv(args.run / "results/consensus/union_peaks.tsv", sep="\t", dtype={"element_id": str})
        fasta = {s: args.run / "demo" / "genome" / f"{s}.fa.gz" for s in SPECIES}
        hits, full_s = timed(union_motif_hits, union, SPECIES, fasta, motifs, background)
        n_seq = sum(len(h) for h in hits.values())
        n_hit = sum(int(h.to_numpy().sum()) for h in hits.values())
        rows.append(
            {
                "scanner": "memelite, all JASPAR",
                "sequences": n_seq,
                "motifs": len(motifs),
                "seconds": full_s,
                "hits": n_hit,
            }
        )
    table = pd.DataFrame(rows).round({"seconds": 2})
    print(table.to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
