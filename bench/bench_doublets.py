"""Doublet detection on simulated datasets: planted doublets removed, real nuclei lost.

Usage: python bench/bench_doublets.py DATASET [DATASET ...] [--set key=value ...]

Each DATASET is the output folder of ``python -m crossglue.simulate`` (the ``realistic``
preset plants heterotypic doublets, ``truth/cells.tsv`` column ``status``; the ``demo``
preset plants none, so only its real nuclei lost mean anything). Relative paths in the
dataset's config.yaml are read from the current folder. Every sample
runs through :func:`crossglue.ingest.samples.ingest_sample` with the schema's ingest
defaults (QC thresholds + doublets); ``--set`` overrides an ``ingest.doublets`` key
(``--set threshold=0.3``). Per dataset and modality it prints the planted doublets
removed by the doublet call (of those that passed the QC thresholds) and overall, the
real nuclei (status ``cell``) that passed QC but were called doublets, then mean and
range over the datasets, and the seconds per sample. Not a test.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from crossglue.config import schema_defaults
from crossglue.genomics.genome import read_aliases, read_chrom_sizes
from crossglue.genomics.gtf import read_genes
from crossglue.ingest.samples import Sample, Species, ingest_sample


def species_table(config: dict) -> dict[str, Species]:
    out = {}
    for row in config["species"]:
        aliases = read_aliases(row["chrom_aliases"]) if row.get("chrom_aliases") else {}
        sizes = read_chrom_sizes(row["chrom_sizes"])
        out[row["name"]] = Species(
            row["name"],
            sizes,
            read_genes(row["gtf"], aliases, sizes),
            aliases,
            row.get("chrom_aliases"),
            row.get("mito_chrom"),
        )
    return out


def score_dataset(folder: Path, doublets: dict) -> pd.DataFrame:
    """One row per sample: counts of planted doublets and real nuclei, before and after the call."""
    config = yaml.safe_load((folder / "config.yaml").read_text())
    overrides = config.get("ingest", {})
    # Section by section: schema_defaults("ingest") leaves its nested sections empty ({}), which
    # would score every barcode, empty droplets included, with no QC threshold applied.
    thresholds = {
        "atac": {**schema_defaults("ingest.atac"), **overrides.get("atac", {})},
        "rna": {**schema_defaults("ingest.rna"), **overrides.get("rna", {})},
        "doublets": doublets,
    }
    species = species_table(config)
    truth = pd.read_csv(folder / "truth" / "cells.tsv", sep="\t", keep_default_na=False)
    if "status" not in truth:  # the demo preset plants no doublet: every barcode is a real nucleus
        truth["status"] = "cell"
    sheet = pd.read_csv(folder / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    rows = []
    for rec in sheet.itertuples(index=False):
        sample = Sample(rec.sample, rec.species, rec.donor, rec.modality, rec.fragments or None, rec.counts or None)
        began = time.perf_counter()
        qc = ingest_sample(sample, species[rec.species], thresholds, schema_defaults("ingest")["tile_size"]).qc
        seconds = time.perf_counter() - began
        status = truth[truth["sample"] == rec.sample].set_index("barcode")["status"]
        qc = qc.set_index("barcode")
        st = status.reindex(qc.index).fillna("absent").to_numpy()
        passed_qc = (qc["pass"] | qc["doublet"]).to_numpy()  # passed the thresholds
        called = qc["doublet"].to_numpy()
        rows.append(
            {
                "dataset": folder.name,
                "sample": rec.sample,
                "modality": rec.modality,
                "seconds": seconds,
                "doublets": int((status == "doublet").sum()),
                "doublets_pass_qc": int(((st == "doublet") & passed_qc).sum()),
                "doublets_called": int(((st == "doublet") & called).sum()),
                "doublets_kept": int(((st == "doublet") & qc["pass"].to_numpy()).sum()),
                "cells_pass_qc": int(((st == "cell") & passed_qc).sum()),
                "cells_called": int(((st == "cell") & called).sum()),
            }
        )
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    by = table.groupby(["dataset", "modality"], sort=False)[
        ["doublets", "doublets_pass_qc", "doublets_called", "doublets_kept", "cells_pass_qc", "cells_called"]
    ].sum()
    by["removed_of_qc_passing_%"] = 100 * by.doublets_called / by.doublets_pass_qc.clip(lower=1)
    by["removed_overall_%"] = 100 * (1 - by.doublets_kept / by.doublets.clip(lower=1))
    by["real_lost_%"] = 100 * by.cells_called / by.cells_pass_qc.clip(lower=1)
    return by


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--set", action="append", default=[], help="ingest.doublets key=value (YAML value)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    doublets = dict(schema_defaults("ingest.doublets"))
    for item in args.set:
        key, value = item.split("=", 1)
        doublets[key] = yaml.safe_load(value)
    table = pd.concat([score_dataset(folder, doublets) for folder in args.datasets], ignore_index=True)
    pd.set_option("display.width", 200)
    print("doublets settings:", doublets)
    print(table.to_string(index=False, float_format="%.2f"))
    by = summarise(table)
    print(by.to_string(float_format="%.1f"))
    spread = by.groupby(level="modality", sort=False)[["removed_overall_%", "real_lost_%"]].agg(["mean", "min", "max"])
    print("\nover datasets (mean, min, max):")
    print(spread.to_string(float_format="%.1f"))
    per = table.groupby("dataset", sort=False)[["doublets", "doublets_kept", "cells_pass_qc", "cells_called"]].sum()
    per["removed_overall_%"] = 100 * (1 - per.doublets_kept / per.doublets.clip(lower=1))
    per["real_lost_%"] = 100 * per.cells_called / per.cells_pass_qc.clip(lower=1)
    per["max_sample_lost_%"] = (
        (100 * table.cells_called / table.cells_pass_qc.clip(lower=1)).groupby(table.dataset, sort=False).max()
    )
    print("\nper dataset (all modalities):")
    print(per.to_string(float_format="%.2f"))
    total = by.sum()
    print(
        f"\nall: {int(total.doublets - total.doublets_kept)} of {int(total.doublets)} planted doublets removed "
        f"({100 * (1 - total.doublets_kept / total.doublets):.1f} %), {int(total.cells_called)} of "
        f"{int(total.cells_pass_qc)} real nuclei passing QC lost "
        f"({100 * total.cells_called / total.cells_pass_qc:.2f} %)"
        f"; seconds per sample: median {np.median(table.seconds):.2f}, max {table.seconds.max():.2f}"
    )


if __name__ == "__main__":
    main()
