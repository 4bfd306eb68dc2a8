"""A chain must connect the assemblies it is configured for; almost nothing lifting is an error.

Issue 13, item 1: swapped chain paths, a chain for another assembly and a chain whose names
match neither species used to lift some or no peaks without a word.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crossglue.elements.recipes import check_lifted_fraction, lift_peaks, recipe_from_config
from crossglue.errors import CrossglueError
from crossglue.genomics.chain import (
    Assembly,
    check_chain_species,
    check_configured_chains,
    read_chain_headers,
    read_chains,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    """The tiny simulated pair (human chr1 1008873 bp, macaque chr1 1024973 bp) and its config."""
    simulate = pytest.importorskip("crossglue.simulate").simulate
    root = tmp_path_factory.mktemp("tiny")
    simulate(root, "tiny", 0)
    return root, yaml.safe_load((root / "config.yaml").read_text())


def _rewrite(src: str, dst: Path, edit) -> str:
    """A copy of chain file ``src`` with ``edit`` applied to every header line's fields."""
    lines = gzip.open(src, "rt").read().splitlines()
    out = [" ".join(edit(line.split())) if line.startswith("chain") else line for line in lines]
    dst.write_text("\n".join(out) + "\n")
    return str(dst)


def test_the_simulated_chains_pass(tiny):
    _, config = tiny
    check_configured_chains(config["chains"], config["species"])


def test_swapped_chain_paths_are_named_as_such(tiny):
    root, config = tiny
    chains = [dict(c) for c in config["chains"]]
    chains[0]["path"], chains[1]["path"] = chains[1]["path"], chains[0]["path"]
    with pytest.raises(CrossglueError) as err:
        check_configured_chains(chains, config["species"])
    assert str(err.value) == (
        f"config key 'chains[0]': {root}/chains/macaque_to_human.over.chain.gz: chain file for human → macaque, but "
        f"its target chromosome 'chr1' has tSize 1024973 (line 1) where human's chrom sizes "
        f"({root}/genome/human.chrom.sizes) give 1008873; its target side matches macaque's chrom sizes and its "
        "query side human's: are the paths of human→macaque and macaque→human swapped?"
    )


def test_chain_for_another_assembly_says_it_matches_no_species(tiny, tmp_path):
    root, config = tiny
    # Same names, other lengths: a chain made for another assembly version of human.
    path = _rewrite(
        config["chains"][0]["path"], tmp_path / "old.chain", lambda f: f[:3] + [str(int(f[3]) + 1000)] + f[4:]
    )
    chains = [dict(config["chains"][0], path=path), config["chains"][1]]
    with pytest.raises(CrossglueError) as err:
        check_configured_chains(chains, config["species"])
    assert str(err.value) == (
        f"config key 'chains[0]': {path}: chain file for human → macaque, but its target chromosome 'chr1' has "
        f"tSize 1009873 (line 1) where human's chrom sizes ({root}/genome/human.chrom.sizes) give 1008873; its "
        "target side matches no configured species' chrom sizes: is it a chain for another assembly than "
        f"human's ({root}/genome/human.chrom.sizes)?"
    )


def test_names_matching_neither_species_are_an_error_with_an_alias_hint(tiny, tmp_path):
    root, config = tiny
    path = _rewrite(
        config["chains"][0]["path"],
        tmp_path / "scaffolds.chain",
        lambda f: f[:2] + [f[2].replace("chr", "scaffold_")] + f[3:],
    )
    chains = [dict(config["chains"][0], path=path), config["chains"][1]]
    with pytest.raises(CrossglueError) as err:
        check_configured_chains(chains, config["species"])
    assert str(err.value) == (
        f"config key 'chains[0]': {path}: chain file for human → macaque, but none of its 3 target chromosome "
        "name(s) (e.g. 'scaffold_1', 'scaffold_2', 'scaffold_M') is a chromosome of human "
        f"({root}/genome/human.chrom.sizes, e.g. chr1, chr2, chrM) nor in alias table "
        f"{root}/genome/human.chrom_aliases.tsv; their sizes match human's chromosomes ('scaffold_1' = 'chr1', "
        "'scaffold_2' = 'chr2', 'scaffold_M' = 'chrM'): add these names to human's chrom_aliases table"
    )


def test_aliases_reach_the_sizes_from_ensembl_names(tiny, tmp_path):
    _, config = tiny
    path = _rewrite(
        config["chains"][0]["path"],
        tmp_path / "ensembl.chain",
        lambda f: f[:2] + [f[2].removeprefix("chr").replace("M", "MT")] + f[3:],
    )
    check_configured_chains([dict(config["chains"][0], path=path)], config["species"])


def test_real_ucsc_chain_configured_the_wrong_way_round(shared_data):
    path = shared_data / "chains" / "hg19ToHg38.over.chain.gz"
    header = read_chain_headers(path)
    hg19 = Assembly("hg19", dict(zip(header["t_name"], header["t_size"], strict=True)), sizes_source="hg19.sizes")
    hg38 = Assembly("hg38", dict(zip(header["q_name"], header["q_size"], strict=True)), sizes_source="hg38.sizes")
    check_chain_species(path, header, hg19, hg38)
    with pytest.raises(CrossglueError) as err:
        check_chain_species(path, header, hg38, hg19)
    assert str(err.value) == (
        f"{path}: chain file for hg38 → hg19, but its target chromosome 'chr1' has tSize 249250621 (line 1) where "
        "hg38's chrom sizes (hg38.sizes) give 248956422; its target side matches hg19's chrom sizes and its query "
        "side hg38's: are the paths of hg38→hg19 and hg19→hg38 swapped?"
    )
    # A ChainSet header (no line numbers) is checked the same way.
    with pytest.raises(CrossglueError, match=r"'chr1' has tSize 249250621 where hg38's"):
        check_chain_species(path, read_chains(path).header, hg38, hg19)


def test_almost_nothing_lifting_is_an_error(tiny, tmp_path):
    root, config = tiny
    peaks = pd.DataFrame({"peak_id": [f"p{i}" for i in range(40)], "chrom": "chr1", "start": range(1000, 41000, 1000)})
    peaks["end"] = peaks["start"] + 501
    peaks["summit"] = peaks["start"] + 250
    to = read_chains(config["chains"][1]["path"])  # macaque -> human applied to human peaks
    back = read_chains(config["chains"][0]["path"])
    lifted = lift_peaks(peaks.assign(chrom="chrX"), to, back)
    with pytest.raises(CrossglueError) as err:
        check_lifted_fraction(lifted, 0.05, "human", "macaque", "h2m.chain.gz")
    assert str(err.value) == (
        "liftover human → macaque: only 0 of 40 peaks (0.0 %) pass the caglayan recipe with chain file "
        "h2m.chain.gz, below liftover.min_lifted_fraction = 0.05 (failed: chrom_not_in_chain 40); check that this "
        "chain connects human's assembly to macaque's and that its chromosome names are the peaks' (through the "
        "species' chrom_aliases)"
    )
    check_lifted_fraction(lift_peaks(peaks, back, to), 0.05, "human", "macaque", "h2m.chain.gz")


def test_the_floor_is_not_a_recipe_setting():
    assert recipe_from_config({"recipe": "yuan", "min_lifted_fraction": 0.05}).min_match == 0.95
