"""Benchmark: building the guidance graph for the simulated demo at 10× scale.

The simulator's genomes and annotation (no cells) give the inputs the graph stage reads:
per-species genes, a union peak table (one element per simulated CRE, truth class and
coordinates) and the BioMart ortholog export. Timed: reading the tables, peak–gene edges,
ortholog edges, element edges + assembly + validation, writing the edge table and the
GraphML, the summary. Also printed: recall of truth CRE → gene links.

    .venv/bin/python bench/bench_graph.py              # scale 10
    .venv/bin/python bench/bench_graph.py --scale 1    # the demo itself
    .venv/bin/python bench/bench_graph.py --preset realistic --scale 1

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

from crossglue.elements.union import element_coordinates, read_union_table
from crossglue.graph.assembly import build_guidance
from crossglue.graph.files import write_edge_table, write_graphml
from crossglue.graph.orthologs import ortholog_edges, read_orthologs
from crossglue.graph.peak_gene import peak_gene_edges
from crossglue.graph.summary import summarise


def simulated_inputs(
    scale: float, seed: int, workdir: Path, preset_name: str = "demo"
) -> tuple[dict[str, pd.DataFrame], Path, Path, pd.DataFrame]:
    """Genes per species, union table path, ortholog table path and truth links (no cells simulated)."""
    from crossglue.simulate.ancestor import CRE_HALF_WIDTH, build_ancestor
    from crossglue.simulate.annotate import annotate
    from crossglue.simulate.dataset import biomart_table
    from crossglue.simulate.evolve import evolve
    from crossglue.simulate.presets import SPECIES, get_preset

    preset = get_preset(preset_name, scale)
    rng = np.random.default_rng(seed)
    anc = build_ancestor(rng, preset)
    genomes = {
        s: evolve(rng, anc, s, preset.n_insertions, novel_start=1_000_000 * (i + 1)) for i, s in enumerate(SPECIES)
    }
    ann = annotate(rng, anc, genomes, preset)
    cres = ann.cres
    union = pd.DataFrame({"element_id": [f"el{i:07d}" for i in range(len(cres))], "class": cres["class"].to_numpy()})
    for s in SPECIES:
        present = (cres[f"{s}_chrom"] != "").to_numpy()
        centre = cres[f"{s}_centre"].to_numpy()
        union[f"{s}_chrom"] = np.where(present, cres[f"{s}_chrom"], None)
        union[f"{s}_start"] = pd.array(np.where(present, centre - CRE_HALF_WIDTH, 0), dtype="Int64")
        union[f"{s}_end"] = pd.array(np.where(present, centre + CRE_HALF_WIDTH + 1, 0), dtype="Int64")
        union.loc[~present, [f"{s}_start", f"{s}_end"]] = pd.NA
    union["class_human_macaque"] = union["class"]
    union_path = workdir / "union_peaks.tsv"
    union.to_csv(union_path, sep="\t", index=False, na_rep="NA")
    orth_path = workdir / "human_macaque.orthologs.tsv"
    biomart_table(ann, "human", "macaque").to_csv(orth_path, sep="\t", index=False)
    genes = {}
    for s in SPECIES:
        g = ann.genes[(ann.genes["species"] == s) & (ann.genes["kind"] != "mito")]
        genes[s] = pd.DataFrame(
            {
                "gene_id": g["gene_id"].to_numpy(),
                "chrom": g["chrom"].to_numpy(),
                "start": g["start"].to_numpy(),
                "end": g["end"].to_numpy(),
                "strand": np.where(g["strand"].to_numpy() > 0, "+", "-"),
            }
        )
    links = ann.links.assign(element=union["element_id"].to_numpy()[ann.links["cre"].to_numpy()])
    return genes, union_path, orth_path, links


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--preset", default="demo", help="simulator preset (demo, realistic, ...) whose annotation is built"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/graph.tsv"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        t = time.perf_counter()
        genes, union_path, orth_path, truth = simulated_inputs(args.scale, args.seed, workdir, args.preset)
        print(
            f"simulated annotation ({args.preset}, scale {args.scale:g}): "
            f"{time.perf_counter() - t:.1f} s (not part of the build)"
        )

        times: dict[str, float] = {}
        t0 = t = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal t
            now = time.perf_counter()
            times[name] = now - t
            t = now

        species = list(genes)
        union = read_union_table(union_path, species)
        table = read_orthologs(orth_path, species_b="macaque")
        lap("read tables")
        peak_gene, features = {}, {}
        for s in species:
            peaks = element_coordinates(union, s)
            peak_gene[s] = peak_gene_edges(peaks, genes[s])
            features[s] = {"rna": genes[s]["gene_id"], "atac": peaks["peak_id"]}
        lap("peak-gene edges")
        orth, missing = ortholog_edges(
            table, pd.Index(genes["human"]["gene_id"]), pd.Index(genes["macaque"]["gene_id"])
        )
        orth = orth.assign(species_a="human", species_b="macaque")
        lap("ortholog edges")
        nodes, edges = build_guidance(features, peak_gene, orth, union)
        lap("element edges + assembly + validation")
        write_edge_table(edges, workdir / "guidance_edges.tsv.gz")
        lap("write edge table")
        write_graphml(edges, nodes, workdir / "guidance.graphml.gz")
        lap("write graphml.gz")
        summary = summarise(edges, nodes)
        lap("summary")
        total = time.perf_counter() - t0
        graphml_mb = (workdir / "guidance.graphml.gz").stat().st_size / 1e6

    pg = edges[edges["type"] == "peak_gene"]
    found = set(zip(pg["source"], pg["target"], strict=True))
    keys = list(zip(truth["species"] + ":" + truth["element"], truth["species"] + ":" + truth["gene_id"], strict=True))
    recall = np.mean([k in found for k in keys])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [(k, round(v, 2)) for k, v in times.items()] + [
        ("total build (s)", round(total, 2)),
        ("nodes", len(nodes)),
        ("edges (directed, with self-loops)", len(edges)),
        ("peak-gene edges (undirected)", len(pg) // 2),
        ("truth links", len(keys)),
        ("recall of truth links", round(float(recall), 4)),
        ("graphml.gz MB", round(graphml_mb, 1)),
        ("peak RSS MB", round(peak_mb)),
        ("ortholog pairs missing from data", len(missing)),
    ]
    report = pd.DataFrame(rows, columns=["measure", "value"])
    print(report.to_string(index=False))
    print(f"recall of truth links: {int(round(recall * len(keys)))} / {len(keys)} = {recall:.4f}")
    print(summary[summary["metric"].isin(["nodes", "edges"])].to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report.to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
