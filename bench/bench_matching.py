"""Cross-species matching beside peers on the same inputs: crossglue vs one2one-ortholog
PCA + Harmony and (``--scglue``) scglue 0.4.1.

Usage: python bench/bench_matching.py RUN [RUN ...] [--model results/model] [--scglue WORK]
[--out table.tsv]

Each RUN is a finished pipeline run on a simulated preset (``demo/truth`` beside
``results/``). The peer is the usual cross-species baseline: the species' RNA nuclei
(``results/ingest/{species}/rna.h5ad``, the ones crossglue trained on) on their one2one
orthologs (``results/graph/ortholog_links.tsv.gz``), log-normalised, 2,000 highly variable
genes (per sample), scaled, 50 principal components, Harmony (harmonypy) over samples. It
embeds RNA only, so its figures are RNA→RNA; crossglue's are given for RNA→RNA and over every
modality. Figures come from :mod:`crossglue.simulate.score` (kNN(15) transfer from the
labelled species to every nucleus of the other with a true type; ``shared`` = over the
types the labelled species has; species alignment score within shared types), so the
columns mean what the scorer's do. Printed per run and method, then mean and range.

``--scglue WORK`` adds scglue 0.4.1 (the ``bench`` extra) trained by ``bench/bench_model.py
--tools scglue`` on crossglue's own model inputs of the run: the four domains with the
pipeline's PCA/LSI and feature selection, and the same guidance graph (peak–gene, ortholog
and liftOver edges), at scglue's automatic schedule unless ``--scglue-epochs`` caps it (the
method column names the epochs it ran, both stages). Its work folder ``WORK/<run name>`` is
kept; an embedding already there is scored again instead of retrained. Not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from crossglue.graph.orthologs import one2one_pairs, read_ortholog_links
from crossglue.simulate import score as sc

BENCH = Path(__file__).resolve().parent


def none_for_na(values: pd.Series) -> np.ndarray:
    """Object array with None where ``values`` is missing (the scorer's "no label")."""
    return values.astype(object).where(values.notna(), None).to_numpy()


FIGURES = {
    "transfer": "accuracy",
    "transfer shared types": "shared_accuracy",
    "balanced accuracy": "balanced_accuracy",
}


def harmony_embedding(run: Path, species: list[str], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """obs (species, modality rna, cell_id, cell_type) and the Harmony-corrected PCs of every RNA nucleus."""
    import harmonypy
    import scanpy as sc_

    links = read_ortholog_links(run / "results/graph/ortholog_links.tsv.gz")
    ref = species[0]
    parts = []
    for s in species:
        a = ad.read_h5ad(run / f"results/ingest/{s}/rna.h5ad")
        if s == ref:
            names = pd.Series(a.var_names, index=a.var_names)
        else:
            pairs = one2one_pairs(links, s, ref)
            names = pd.Series(pairs["gene_b"].to_numpy(), index=pairs["gene_a"].to_numpy())
        a = a[:, a.var_names.isin(names.index)].copy()
        a.var_names = names.reindex(a.var_names).to_numpy()
        a.obs = a.obs[["sample", "cell_type"]].assign(species=s)
        parts.append(a)
    genes = sorted(set.intersection(*(set(p.var_names) for p in parts)))
    x = ad.concat([p[:, genes] for p in parts], merge="same")
    sc_.pp.normalize_total(x, target_sum=1e4)
    sc_.pp.log1p(x)
    sc_.pp.highly_variable_genes(x, n_top_genes=min(2000, x.n_vars), batch_key="sample", flavor="seurat")
    x = x[:, x.var["highly_variable"]].copy()
    sc_.pp.scale(x, max_value=10)
    sc_.tl.pca(x, n_comps=min(50, x.n_vars - 1), random_state=seed)
    corrected = harmonypy.run_harmony(x.obsm["X_pca"], x.obs, ["sample"], random_state=seed).Z_corr
    corrected = np.asarray(corrected)
    if corrected.shape[0] != x.n_obs:  # harmonypy versions differ in orientation
        corrected = corrected.T
    obs = pd.DataFrame(
        {
            "species": x.obs["species"].to_numpy(),
            "modality": "rna",
            "cell_id": x.obs_names.astype(str),
            "cell_type": none_for_na(x.obs["cell_type"]),
            "nucleus": None,  # RNA only: no pairs
        },
        index="rna:" + x.obs_names.astype(str),
    )
    return obs, corrected


def scglue_embedding(
    run: Path, work: Path, threads: int, epochs: int | None = None
) -> tuple[pd.DataFrame, np.ndarray, float, int | None]:
    """obs, embedding, fit seconds and epochs run (both stages) of scglue on the run's model
    inputs (bench_model.py's scglue runner in ``work``; trained only when ``work`` holds no
    embedding yet)."""
    if not (work / "emb_scglue.npz").is_file():
        command = [sys.executable, str(BENCH / "bench_model.py"), "--demo", str(run), "--tools", "scglue"]
        command += ["--keep", str(work), "--threads", str(threads)]
        subprocess.run(command + (["--scglue-epochs", str(epochs)] if epochs else []), check=True)
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    from bench_model import load

    domains, specs, _ = load(work)
    emb = np.load(work / "emb_scglue.npz")
    obs = pd.concat(
        [
            pd.DataFrame(
                {
                    "species": specs[k].species,
                    "modality": specs[k].modality,
                    "cell_id": a.obs_names.astype(str),
                    "cell_type": none_for_na(a.obs["cell_type"]),
                    "nucleus": none_for_na(a.obs["nucleus"]),
                },
                index=specs[k].modality + ":" + a.obs_names.astype(str),
            )
            for k, a in domains.items()
        ]
    )
    x = np.concatenate([emb[k] for k in domains])
    result = json.loads((work / "result_scglue.json").read_text())
    return obs, x, result["fit_s"], result["epochs"]


def figures(obs: pd.DataFrame, x: np.ndarray, truth: pd.DataFrame, species: list[str], pair: str) -> dict:
    """The scorer's transfer and mixing figures for one embedding (``pair``: all or rna_to_rna)."""
    obs = obs.copy()
    obs["true_type"] = sc.true_types(truth, obs["cell_id"])
    keep = obs["true_type"].notna().to_numpy()
    obs, x = obs[keep], x[keep]
    frame, _ = sc.transfer_figures(obs, x, species)
    values = dict(zip(frame["figure"], frame["value"], strict=True))
    a, b = species
    tag = f"transfer.main.{a}_to_{b}" + ("" if pair == "all" else f".{pair}")
    out = {name: values[f"{tag}.{key}"] for name, key in FIGURES.items()}
    out["largest off-diagonal, shared"] = values[f"transfer.main.{a}_to_{b}.largest_off_diagonal_shared"]
    rna = (obs["modality"].astype(str) == "rna").to_numpy() if pair != "all" else np.ones(len(obs), bool)
    mixing = sc.integration_figures(obs[rna], x[rna], species)
    out["species alignment, shared types"] = dict(zip(mixing["figure"], mixing["value"], strict=True))[
        "integration.main.species_alignment_shared_types"
    ]
    return out


def score_run(
    run: Path, model: str, scglue_work: Path | None = None, threads: int = 1, scglue_epochs: int | None = None
) -> list[dict]:
    r = sc.Run(run)
    species = r.species()
    truth = r.truth_cells()
    cells = ad.read_h5ad(run / model / "cells.h5ad")
    x = np.asarray(cells.obsm["X_glue"], dtype=float)
    rows = []
    for pair in ("all", "rna_to_rna"):
        obs = cells.obs
        keep = np.ones(len(obs), bool) if pair == "all" else (obs["modality"].astype(str) == "rna").to_numpy()
        rows.append(
            {"run": run.name, "method": f"crossglue ({pair})", **figures(obs[keep], x[keep], truth, species, pair)}
        )
    start = time.perf_counter()
    obs, z = harmony_embedding(run, species)
    row = {
        "run": run.name,
        "method": "ortholog PCA + Harmony (rna_to_rna)",
        **figures(obs, z, truth, species, "rna_to_rna"),
    }
    row["seconds"] = round(time.perf_counter() - start, 1)
    rows.append(row)
    if scglue_work is not None:
        obs, z, fit_s, epochs = scglue_embedding(run, scglue_work / run.name, threads, scglue_epochs)
        name = f"scglue 0.4.1, {epochs} epochs"
        for pair in ("all", "rna_to_rna"):
            keep = np.ones(len(obs), bool) if pair == "all" else (obs["modality"] == "rna").to_numpy()
            row = {
                "run": run.name,
                "method": f"{name} ({pair})",
                **figures(obs[keep], z[keep], truth, species, pair),
            }
            rows.append({**row, "seconds": round(fit_s, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--model", default="results/model", help="folder of cells.h5ad inside each run")
    parser.add_argument("--scglue", type=Path, help="work folder for scglue 0.4.1 on each run's model inputs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for scglue")
    parser.add_argument(
        "--scglue-epochs", type=int, help="cap scglue's epochs per stage (default: its automatic schedule)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    table = pd.DataFrame(
        [row for run in args.runs for row in score_run(run, args.model, args.scglue, args.threads, args.scglue_epochs)]
    )
    pd.set_option("display.width", 200)
    print(table.round(3).to_string(index=False))
    numeric = [c for c in table.columns if c not in ("run", "method", "seconds")]
    summary = table.groupby("method")[numeric].agg(["mean", "min", "max"]).round(3)
    print("\nmean (min, max) over runs")
    for method, row in summary.iterrows():
        print(
            method + ": " + "; ".join(f"{c} {row[(c, 'mean')]} ({row[(c, 'min')]}-{row[(c, 'max')]})" for c in numeric)
        )
    if args.out:
        table.to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
