"""Which chain is `to` and which `back` is part of what reruns rule lift_peaks (issue 13, item 2),
and a swapped chain config stops the workflow when it is parsed (item 1), as a user meets them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_runner import run_snakemake

from crossglue.genomics.chain import chains_from_blocks, write_chains
from crossglue.genomics.genome import read_chrom_sizes

REPO = Path(__file__).resolve().parents[1]
TARGET = "results/liftover/human_to_macaque.tsv"


def _snakemake(work: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return run_snakemake(work, path, *args, "--allowed-rules", "lift_peaks", cores=1, timeout=600)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    simulate = pytest.importorskip("crossglue.simulate").simulate
    work = tmp_path_factory.mktemp("lift_rerun")
    simulate(work / "demo", "tiny", 0)
    return work, yaml.safe_load((work / "demo" / "config.yaml").read_text())


def test_swapped_chain_paths_stop_the_workflow_at_parse_time(tiny):
    work, config = tiny
    config = dict(config, chains=[dict(c) for c in config["chains"]])
    config["chains"][0]["path"], config["chains"][1]["path"] = config["chains"][1]["path"], config["chains"][0]["path"]
    proc = _snakemake(work, config, "-n", TARGET)
    assert proc.returncode != 0
    assert "are the paths of human→macaque and macaque→human swapped?" in proc.stdout + proc.stderr, (
        proc.stdout + proc.stderr
    )


def test_swapping_chain_paths_reruns_the_lift(tiny):
    work, config = tiny
    # Two species on one assembly, so that both chains are valid either way round and only the
    # rerun trigger is under test: identity chains, the second shifted by 100 bp.
    sizes = read_chrom_sizes(config["species"][0]["chrom_sizes"])
    for i, spec in enumerate(config["species"]):
        spec.update(chrom_sizes=config["species"][0]["chrom_sizes"], chrom_aliases=None)
    paths = []
    for shift, name in ((0, "a.chain"), (100, "b.chain")):
        blocks = pd.DataFrame(
            {
                "chain_id": [1, 2],
                "t_name": ["chr1", "chr2"],
                "q_name": ["chr1", "chr2"],
                "q_strand": "+",
                "t_start": [shift, shift],
                "q_start": [0, 0],
                "size": [sizes["chr1"] - shift, sizes["chr2"] - shift],
            }
        )
        write_chains(chains_from_blocks(blocks, sizes, sizes), work / name)
        paths.append(str(work / name))
    config["chains"] = [
        {"from": "human", "to": "macaque", "path": paths[0]},
        {"from": "macaque", "to": "human", "path": paths[1]},
    ]
    peaks = pd.DataFrame(
        {
            "peak_id": [f"h{i}" for i in range(20)],
            "chrom": "chr1",
            "start": range(10_000, 210_000, 10_000),
            "score": 1.0,
        }
    )
    peaks["end"], peaks["summit"] = peaks["start"] + 501, peaks["start"] + 250
    (work / "results/peaks/human").mkdir(parents=True, exist_ok=True)
    peaks.to_csv(work / "results/peaks/human/peaks.tsv", sep="\t", index=False)

    first = _snakemake(work, config, TARGET)
    assert first.returncode == 0, first.stdout + first.stderr
    unchanged = _snakemake(work, config, "-n", TARGET)
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr, unchanged.stdout + unchanged.stderr

    config["chains"][0]["path"], config["chains"][1]["path"] = paths[1], paths[0]
    swapped = _snakemake(work, config, "-n", TARGET)
    out = swapped.stdout + swapped.stderr
    assert swapped.returncode == 0, out
    assert "rule lift_peaks:" in out and "Set of input files has changed" not in out, out
    assert "params" in out.lower(), out  # the reason Snakemake gives: the params changed
