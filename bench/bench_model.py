"""Benchmark: crossglue's GlueModel against scglue 0.4.1 on the same inputs.

Both tools get the same four domains (two species × RNA/ATAC with known cell types and
paired multiome nuclei: synthetic, or with ``--demo`` the pipeline's own inputs from a
finished demo run, optionally with every cell copied ``--scale`` times), the same PCA/LSI
representations and the same guidance graph (scglue sees node names as var_names).
``crossglue-ablation`` is the same model without element–element (liftOver) edges. Each tool runs in its own
subprocess so its
wall time and peak resident memory are its own. Printed: fit time, epochs, peak memory,
cross-species label transfer (kNN), RNA↔ATAC FOSCTTM of paired nuclei, species mixing
(share of other-species neighbours relative to chance) and the Seurat alignment score.

    .venv/bin/python bench/bench_model.py                       # ~10k nuclei, ~12k nodes
    .venv/bin/python bench/bench_model.py --cells 500 --genes 400 --scglue-epochs 0  # quick
    .venv/bin/python bench/bench_model.py --demo . --tools crossglue,crossglue-ablation,scglue
    .venv/bin/python bench/bench_model.py --demo . --scale 4 --tools crossglue  # scaling
    .venv/bin/python bench/bench_model.py --demo RUN --preset realistic  # a realistic run
    .venv/bin/python bench/bench_model.py --demo RUN --steps 32 --scales 1,16,64 \
        --compare-src main=/path/to/main/src   # step cost and memory at atlas scale, vs main

scglue is an optional extra (``pip install scglue==0.4.1``); without it only crossglue runs.
Results are not tests: they are printed and written to ``--out`` as TSV.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve()


def prepare(args, workdir: Path) -> None:
    """Draw (or read) the data, add PCA/LSI, write h5ad + edges for the tool subprocesses."""
    t0 = time.perf_counter()
    if args.demo:
        domains, specs, edges = demo_domains(Path(args.demo), args.scale, args.seed, workdir)
    else:
        from crossglue.model.synthetic import add_representations, make_toy

        toy = make_toy(n_cells=args.cells, n_genes=args.genes, seed=args.seed, paired_fraction=args.paired)
        toy = add_representations(toy, n_comps=args.comps, n_top_genes=args.genes, seed=args.seed)
        domains, specs, edges = toy.domains, toy.specs, toy.edges
        for adata in domains.values():
            adata.obs["true_type"] = adata.obs["cell_type"]
    for name, adata in domains.items():
        adata.uns["spec"] = json.dumps(specs[name].to_dict())
        adata.write_h5ad(workdir / f"{name.replace(':', '_')}.h5ad")
    edges.to_csv(workdir / "edges.tsv.gz", sep="\t", index=False)
    print(
        f"data: {sum(a.n_obs for a in domains.values())} cells in {len(domains)} domains, "
        f"{edges['source'].nunique()} nodes, {len(edges)} edges "
        f"(prepared in {time.perf_counter() - t0:.1f}s)",
        flush=True,
    )


def demo_domains(run: Path, scale: int, seed: int, workdir: Path):
    """The pipeline's own model inputs from a finished demo run (``make demo``): per-species
    RNA and ATAC counts and the guidance graph, each cell copied ``scale`` times with
    binomially thinned counts (p = 0.8, so copies differ; a multiome nucleus's copies stay
    paired), then the pipeline's PCA/LSI and feature selection."""
    import anndata as ad
    import scipy.sparse as sp

    from crossglue.model.inputs import select_features
    from crossglue.model.stage import ModelSettings, prepare_domains, read_edges

    rng = np.random.default_rng(seed)
    truth = pd.read_csv(run / "demo/truth/cells.tsv", sep="\t").set_index("cell")["cell_type"]
    species = ("human", "macaque")
    paths = {}
    for s in species:
        for modality, path in (("rna", f"results/ingest/{s}/rna.h5ad"), ("atac", f"results/counts/{s}/atac.h5ad")):
            adata = ad.read_h5ad(run / path)
            if scale > 1:
                copies = []
                for i in range(scale):
                    x = adata.X.tocsr().copy()
                    x.data = rng.binomial(x.data.astype(np.int64), 0.8).astype(np.float32)
                    x.eliminate_zeros()
                    copy = ad.AnnData(x, obs=adata.obs.copy(), var=adata.var)
                    copy.obs_names = adata.obs_names + f"~{i}"
                    nucleus = copy.obs["nucleus"].astype(object)
                    copy.obs["nucleus"] = nucleus.where(nucleus.isna(), nucleus.astype(str) + f"~{i}")
                    copies.append(copy)
                adata = ad.concat(copies, merge="same")
                adata.X = sp.csr_matrix(adata.X)
            paths[(s, modality)] = workdir / f"input_{s}_{modality}.h5ad"
            adata.write_h5ad(paths[(s, modality)])
    settings = ModelSettings(seed=seed)
    domains, specs = prepare_domains(
        {s: paths[(s, "rna")] for s in species}, {s: paths[(s, "atac")] for s in species}, settings
    )
    edges = read_edges(run / "results/graph/guidance_edges.tsv.gz")
    select_features(domains, specs, edges)
    for adata in domains.values():
        cells = adata.obs_names.str.replace(r"~\d+$", "", regex=True)
        adata.obs["true_type"] = truth.reindex(cells).to_numpy()
    for path in paths.values():
        path.unlink()
    return domains, specs, edges


def load(workdir: Path):
    import anndata as ad

    from crossglue.model import DomainSpec

    domains, specs = {}, {}
    for path in sorted(workdir.glob("*.h5ad")):
        adata = ad.read_h5ad(path)
        spec = DomainSpec(**json.loads(adata.uns["spec"]))
        name = f"{spec.species}:{spec.modality}"
        domains[name], specs[name] = adata, spec
    edges = pd.read_csv(workdir / "edges.tsv.gz", sep="\t")
    return domains, specs, edges


def run_crossglue(args, workdir: Path) -> dict:
    import torch

    from crossglue.model import GlueModel

    torch.set_num_threads(args.threads)
    domains, specs, edges = load(workdir)
    if args.tool == "crossglue-nopair":
        specs = {k: s.__class__(**{**s.to_dict(), "nucleus_key": None}) for k, s in specs.items()}
    if args.tool == "crossglue-ablation":  # no element-element (liftOver) edges
        edges = edges[edges["type"] != "element"].reset_index(drop=True)
    t0 = time.perf_counter()
    model = GlueModel.from_anndata(domains, edges, specs, seed=args.seed, device=args.device)
    model.fit(max_epochs=args.epochs, threads=args.threads)
    fit_s = time.perf_counter() - t0
    emb = {k: model.encode_cells(k) for k in domains}
    epochs = len(model.history)
    return {"fit_s": fit_s, "epochs": epochs, "emb": emb}


def run_scglue(args, workdir: Path) -> dict:
    import networkx as nx
    import scglue
    import torch

    torch.set_num_threads(args.threads)
    domains, specs, edges = load(workdir)
    adatas = {}
    for k, adata in domains.items():
        a = adata.copy()
        a.var_names = specs[k].species + ":" + a.var_names.astype(str)
        scglue.models.configure_dataset(
            a, "NB", use_highly_variable=False, use_rep=specs[k].use_rep, use_batch="sample"
        )
        adatas[k] = a
    graph = nx.MultiDiGraph()
    graph.add_edges_from(
        (s, t, {"weight": float(w), "sign": int(g)})
        for s, t, w, g in edges[["source", "target", "weight", "sign"]].itertuples(index=False)
    )
    fit_kws = {"directory": str(workdir / "scglue")}
    if args.scglue_epochs:
        fit_kws["max_epochs"] = args.scglue_epochs
    t0 = time.perf_counter()
    glue = scglue.models.fit_SCGLUE(adatas, graph, init_kws={"random_seed": args.seed}, fit_kws=fit_kws)
    fit_s = time.perf_counter() - t0
    emb = {k: glue.encode_data(k, a) for k, a in adatas.items()}
    return {"fit_s": fit_s, "epochs": scglue_epochs(workdir / "scglue"), "emb": emb}


def scglue_epochs(directory: Path) -> int | None:
    """Epochs scglue ran (both stages), counted from its tensorboard event files."""
    import struct

    try:
        from tensorboardX.proto import event_pb2
    except ImportError:
        return None
    epochs = 0
    for path in directory.rglob("events.out.tfevents*"):
        data, pos = path.read_bytes(), 0
        while pos + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[pos : pos + 8])
            pos += 12
            event = event_pb2.Event()
            event.ParseFromString(data[pos : pos + n])
            pos += n + 4
            epochs += any(v.tag == "train/gen_loss" for v in event.summary.value)
    return epochs


def tiled(workdir: Path, scale: int, seed: int):
    """The prepared domains with every cell copied ``scale`` times: counts binomially thinned
    (p = 0.8) and kept sparse, representations repeated (a step's cost does not depend on
    their values, and recomputing PCA/LSI on millions of cells is not what is measured)."""
    import anndata as ad
    import scipy.sparse as sp

    domains, specs, edges = load(workdir)
    rng = np.random.default_rng(seed)
    out = {}
    for name, adata in domains.items():
        x = sp.vstack([adata.X] * scale, format="csr")
        x.data = rng.binomial(x.data.astype(np.int64), 0.8).astype(np.float32)
        x.eliminate_zeros()
        obs = pd.concat([adata.obs] * scale)
        obs.index = [f"{c}~{i}" for i in range(scale) for c in adata.obs_names]
        nucleus = obs["nucleus"].astype(object)
        copy = np.repeat(np.arange(scale), adata.n_obs).astype(str)
        obs["nucleus"] = nucleus.where(nucleus.isna(), nucleus.astype(str) + "~" + copy)
        obsm = {k: np.tile(np.asarray(v), (scale, 1)) for k, v in adata.obsm.items()}
        out[name] = ad.AnnData(x, obs=obs, var=adata.var, obsm=obsm)
    return out, specs, edges


def step_child(args) -> None:
    """Time a fixed number of training steps (and one validation) at ``--scale``."""
    import torch

    from crossglue.model import GlueModel
    from crossglue.model.trainer import TrainConfig, Trainer

    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    domains, specs, edges = tiled(workdir, args.scale, args.seed)
    counts_mb = sum(a.X.data.nbytes + a.X.indices.nbytes + a.X.indptr.nbytes for a in domains.values()) / 2**20
    model = GlueModel.from_anndata(domains, edges, specs, seed=args.seed, device=args.device)
    del domains
    trainer = Trainer(
        model.nets, model._domains, model._graph, model._label_codes(), model._pairs(), TrainConfig(),
        model.device, args.seed,
    )  # fmt: skip
    trainer.steps_per_epoch = args.steps  # a fixed number of steps, whatever the data size
    trainer._epoch()  # warm-up
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    trainer._epoch()
    sync()
    step_s, step_cpu = (time.perf_counter() - t0) / args.steps, (time.process_time() - c0) / args.steps
    t0 = time.perf_counter()
    trainer.validation_loss()
    result = {
        "scale": args.scale,
        "cells": sum(d.n_cells for d in model._domains.values()),
        "step_s": step_s,
        "step_cpu_s": step_cpu,
        "validation_s": time.perf_counter() - t0,
        "counts_mb": counts_mb,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "counts_sparse": all(hasattr(d.counts, "indptr") for d in model._domains.values()),
    }
    if model.device.type == "cuda":
        result["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 1024**3
    (workdir / f"steps_{args.scale}_{args.label}.json").write_text(json.dumps(result))


def run_steps(args, workdir: Path) -> None:
    """The scaling table: one subprocess per (source tree, scale), so memory is its own."""
    trees = {"this": str(HERE.parents[1] / "src"), **dict(t.split("=", 1) for t in args.compare_src)}
    rows = []
    for scale in (int(x) for x in args.scales.split(",")):
        for label, src in trees.items():
            cmd = [sys.executable, str(HERE), *sys.argv[1:], "--step-child", "--workdir", str(workdir)]
            cmd += ["--scale", str(scale), "--label", label]
            env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": str(args.threads)}
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{label} at {scale}x failed:\n{proc.stderr[-2000:]}")
                continue
            rows.append({"code": label, **json.loads((workdir / f"steps_{scale}_{label}.json").read_text())})
            print(f"{label} {scale}x: {rows[-1]['step_s']:.3f} s/step", flush=True)
    table = pd.DataFrame(rows)
    if len(trees) > 1 and len(table):
        base = table[table["code"] == "this"].set_index("scale")["step_cpu_s"]
        table["step_cpu_vs_this"] = table["step_cpu_s"] / table["scale"].map(base)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, sep="\t", index=False)


def child(args) -> None:
    workdir = Path(args.workdir)
    result = run_scglue(args, workdir) if args.tool == "scglue" else run_crossglue(args, workdir)
    np.savez(workdir / f"emb_{args.tool}.npz", **result.pop("emb"))
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    (workdir / f"result_{args.tool}.json").write_text(json.dumps(result))


def score(workdir: Path, tool: str) -> dict:
    from crossglue.analysis.metrics import foscttm, knn_transfer_accuracy, seurat_alignment_score, species_mixing

    domains, _, _ = load(workdir)
    emb = dict(np.load(workdir / f"emb_{tool}.npz"))
    labels = {k: a.obs["true_type"].to_numpy() for k, a in domains.items()}
    known = {k: pd.notna(v) for k, v in labels.items()}  # demo: empty droplets that passed QC
    out = {}
    for mod in ("rna", "atac"):
        a, b = f"human:{mod}", f"macaque:{mod}"
        out[f"transfer_{mod}_h2m"] = knn_transfer_accuracy(
            emb[a][known[a]], labels[a][known[a]], emb[b][known[b]], labels[b][known[b]]
        )
    out["transfer_rna2atac"] = np.mean(
        [
            knn_transfer_accuracy(emb[r][known[r]], labels[r][known[r]], emb[a][known[a]], labels[a][known[a]])
            for r, a in (("human:rna", "human:atac"), ("macaque:rna", "macaque:atac"))
        ]
    )
    fos = []
    for s in ("human", "macaque"):
        rna, atac = (pd.Index(domains[f"{s}:{m}"].obs["nucleus"].astype(object)) for m in ("rna", "atac"))
        common = rna.dropna().intersection(atac.dropna())
        fos.append(foscttm(emb[f"{s}:rna"][rna.get_indexer(common)], emb[f"{s}:atac"][atac.get_indexer(common)]))
    out["foscttm"] = float(np.mean(fos))
    species = np.concatenate([domains[k].obs["species"].to_numpy() for k in emb])
    joint = np.concatenate(list(emb.values()))
    out["species_mixing"] = species_mixing(joint, species)
    out["species_sas"] = seurat_alignment_score(joint, species)
    return out


def run_preset(args) -> str:
    """The simulator preset behind the data: ``synthetic`` without ``--demo``, else the run's
    ``demo.preset`` (which ``--preset`` must match when given)."""
    if not args.demo:
        if args.preset:
            raise SystemExit("--preset needs --demo RUN: the synthetic data has no simulator preset")
        return "synthetic"
    import yaml

    config = Path(args.demo) / "config/config.yaml"
    used = (
        (yaml.safe_load(config.read_text()).get("demo") or {}).get("preset", "demo") if config.exists() else "unknown"
    )
    if args.preset and args.preset != used:
        raise SystemExit(f"--preset {args.preset}: the run at {args.demo} used preset {used} ({config})")
    return used


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", type=int, default=2500, help="cells per domain (4 domains)")
    p.add_argument("--genes", type=int, default=2000, help="genes per species (2 elements per gene)")
    p.add_argument("--paired", type=float, default=0.5, help="fraction of ATAC cells paired with RNA (multiome)")
    p.add_argument("--comps", type=int, default=100)
    p.add_argument("--epochs", type=int, default=None, help="crossglue epochs per stage (default: automatic)")
    p.add_argument("--scglue-epochs", type=int, default=None, help="scglue max_epochs (default: its automatic choice)")
    p.add_argument(
        "--demo",
        default=None,
        help="a finished demo run (repository root after `make demo`): "
        "train on the pipeline's own inputs and graph instead of synthetic data",
    )
    p.add_argument(
        "--preset",
        default=None,
        help="with --demo: the simulator preset the run must have used "
        "(demo, realistic; checked against its config demo.preset and recorded in the table)",
    )
    p.add_argument("--scale", type=int, default=1, help="with --demo: copies of every cell (1, 4, 16 for scaling)")
    p.add_argument(
        "--tools",
        default="crossglue,crossglue-nopair,scglue",
        help="any of crossglue, crossglue-nopair, crossglue-ablation, scglue",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="TSV of the results (child logs beside it)")
    p.add_argument("--keep", default=None, help="work folder to keep (data, embeddings); reused if it holds data")
    p.add_argument("--steps", type=int, default=0, help="time this many training steps per scale instead of fitting")
    p.add_argument("--scales", default="1,16,64", help="with --steps: copies of every cell, comma-separated")
    p.add_argument(
        "--compare-src",
        action="append",
        default=[],
        help="with --steps: LABEL=PATH of another source tree (e.g. a checkout of main) timed side by side",
    )
    p.add_argument("--step-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--label", default="this", help=argparse.SUPPRESS)
    p.add_argument("--tool", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.step_child:
        step_child(args)
        return
    if args.tool:
        child(args)
        return
    preset = run_preset(args)
    if args.steps:
        with tempfile.TemporaryDirectory(prefix="bench_model_") as tmp:
            workdir = Path(args.keep or tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            if not (workdir / "edges.tsv.gz").exists():
                prepare(argparse.Namespace(**{**vars(args), "scale": 1}), workdir)
            run_steps(args, workdir)
        return
    with tempfile.TemporaryDirectory(prefix="bench_model_") as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if not (workdir / "edges.tsv.gz").exists():
            prepare(args, workdir)
        rows = []
        for tool in args.tools.split(","):
            if tool == "scglue":
                try:
                    import scglue  # noqa: F401
                except ImportError:
                    print("scglue not installed (pip install scglue==0.4.1): skipped")
                    continue
            cmd = [sys.executable, str(HERE), "--tool", tool, "--workdir", str(workdir), *[a for a in sys.argv[1:]]]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if args.out:
                Path(f"{args.out}.{tool}.log").write_text(proc.stderr)
            if proc.returncode != 0:
                print(f"{tool} failed:\n{proc.stderr[-3000:]}")
                continue
            result = json.loads((workdir / f"result_{tool}.json").read_text())
            rows.append({"tool": tool, "preset": preset, "wall_s": wall, **result, **score(workdir, tool)})
            print(f"{tool}: done in {wall:.0f}s", flush=True)
        table = pd.DataFrame(rows)
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
            print(table.to_string(index=False))
        if args.out:
            table.to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
