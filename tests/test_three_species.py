"""N >= 2 species by config alone: the tiny demo plus a third species (a renamed copy of
the macaque, aligned to it by an identity chain) runs through peaks, liftOver, union,
counting and the guidance graph, with every species pair present in the outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from workflow_runner import run_snakemake

from crossglue.genomics.chain import chains_from_blocks, write_chains
from crossglue.genomics.genome import read_chrom_sizes
from crossglue.simulate import simulate

REPO = Path(__file__).resolve().parents[1]


def _identity_chain(sizes: dict[str, int], path: Path) -> None:
    blocks = pd.DataFrame(
        {
            "chain_id": range(1, len(sizes) + 1),
            "t_name": list(sizes),
            "q_name": list(sizes),
            "q_strand": "+",
            "t_start": 0,
            "q_start": 0,
            "size": list(sizes.values()),
        }
    )
    write_chains(chains_from_blocks(blocks, sizes, sizes), path)


def add_rhesus(work: Path, config: dict) -> None:
    """Add ``rhesus`` to ``config``: the macaque's genome under a new name, with ortholog tables
    to the human (the human-macaque table) and to the macaque (identity); no chain."""
    macaque = next(s for s in config["species"] if s["name"] == "macaque")
    config["species"].append({**macaque, "name": "rhesus", "assembly": "rhSim1"})
    human_macaque = config["orthologs"][0]["path"]
    config["orthologs"].append({"species_a": "human", "species_b": "rhesus", "path": human_macaque})
    table = pd.read_csv(human_macaque, sep="\t", dtype=str)
    ids = table[["Macaque gene stable ID", "Macaque gene name"]].drop_duplicates()
    same = pd.DataFrame(
        {
            "Gene stable ID": ids.iloc[:, 0],
            "Gene name": ids.iloc[:, 1],
            "Rhesus gene stable ID": ids.iloc[:, 0],
            "Rhesus gene name": ids.iloc[:, 1],
            "Rhesus homology type": "ortholog_one2one",
            "Rhesus orthology confidence [0 low, 1 high]": "1",
        }
    )
    same.to_csv(work / "macaque_rhesus.tsv", sep="\t", index=False)
    config["orthologs"].append(
        {"species_a": "macaque", "species_b": "rhesus", "path": str(work / "macaque_rhesus.tsv")}
    )


def three_species_config(work: Path) -> Path:
    demo = work / "demo"
    simulate(demo, preset="tiny", seed=0)
    config = yaml.safe_load((demo / "config.yaml").read_text())
    macaque = next(s for s in config["species"] if s["name"] == "macaque")
    add_rhesus(work, config)
    by_pair = {(c["from"], c["to"]): c["path"] for c in config["chains"]}
    for other in ("human", "macaque"):
        for a, b in ((other, "rhesus"), ("rhesus", other)):
            if other == "human":  # rhesus is the macaque's sequence: reuse the human chains
                path = by_pair[("human", "macaque")] if a == "human" else by_pair[("macaque", "human")]
            else:
                path = str(work / f"{a}_to_{b}.chain.gz")
                _identity_chain(read_chrom_sizes(macaque["chrom_sizes"]), Path(path))
            config["chains"].append({"from": a, "to": b, "path": path})
    sheet = pd.read_csv(config["samples"], sep="\t", dtype=str, keep_default_na=False)
    rhesus = sheet[sheet["species"] == "macaque"].assign(
        species="rhesus",
        sample=lambda d: d["sample"].str.replace("macaque", "rhesus"),
        donor=lambda d: d["donor"].str.replace("macaque", "rhesus"),
    )
    samples = work / "samples.tsv"
    pd.concat([sheet, rhesus]).to_csv(samples, sep="\t", index=False)
    config["samples"] = str(samples)
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_three_species_run_through_union_counts_and_graph(tmp_path):
    config = three_species_config(tmp_path)
    proc = run_snakemake(tmp_path, config, "results/graph/guidance_edges.tsv.gz", timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    union = pd.read_csv(tmp_path / "results/consensus/union_peaks.tsv", sep="\t")
    for column in ("class_human_macaque", "class_human_rhesus", "class_macaque_rhesus", "rhesus_chrom"):
        assert column in union.columns
    # identical sequence and cells (clustered afresh, so peaks differ slightly): the two
    # copies share their elements, and those are conserved between them
    in_macaque, in_rhesus = union["macaque_chrom"].notna(), union["rhesus_chrom"].notna()
    assert (in_macaque & in_rhesus).sum() >= 0.95 * (in_macaque | in_rhesus).sum()
    called = union["macaque_peak"].notna() | union["rhesus_peak"].notna()
    pair_class = union.loc[in_macaque & in_rhesus & called, "class_macaque_rhesus"]
    assert (pair_class == "conserved").mean() >= 0.9, pair_class.value_counts()
    edges = pd.read_csv(tmp_path / "results/graph/guidance_edges.tsv.gz", sep="\t")
    species_pairs = set(zip(edges["source"].str.split(":").str[0], edges["target"].str.split(":").str[0]))
    assert {("human", "rhesus"), ("macaque", "rhesus"), ("human", "macaque")} <= species_pairs
    assert (tmp_path / "results/counts/rhesus/atac.h5ad").exists()
