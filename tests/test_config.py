"""Configuration checks stop a bad run before any job starts, naming the key or the row."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from workflow_runner import run_snakemake

from crossglue.config import load_and_check
from crossglue.errors import CrossglueError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def _touch(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    return str(path)


@pytest.fixture()
def user_config(tmp_path: Path) -> dict:
    """A minimal valid two-species config whose files exist (contents are not read here)."""
    species = []
    for name in ("human", "macaque"):
        species.append(
            {
                "name": name,
                "assembly": f"{name}Asm",
                "chrom_sizes": _touch(tmp_path / f"{name}.chrom.sizes"),
                "gtf": _touch(tmp_path / f"{name}.gtf.gz"),
            }
        )
    sheet = tmp_path / "samples.tsv"
    frag = _touch(tmp_path / "h_atac" / "fragments.tsv.gz")
    _touch(tmp_path / "h_atac" / "fragments.tsv.gz.tbi")
    counts = _touch(tmp_path / "m_rna" / "counts.h5ad")
    m_frag = _touch(tmp_path / "m_atac" / "fragments.tsv.gz")
    _touch(tmp_path / "m_atac" / "fragments.tsv.gz.tbi")
    h_counts = _touch(tmp_path / "h_rna" / "counts.h5ad")
    sheet.write_text(
        "sample\tspecies\tdonor\tmodality\tfragments\tcounts\tmetadata\n"
        f"h_atac\thuman\td1\tatac\t{frag}\t\t\n"
        f"m_rna\tmacaque\td2\trna\t\t{counts}\t\n"
        f"h_rna\thuman\td1\trna\t\t{h_counts}\t\n"
        f"m_atac\tmacaque\td2\tatac\t{m_frag}\t\t\n"
    )
    return {
        "samples": str(sheet),
        "species": species,
        "chains": [
            {"from": "human", "to": "macaque", "path": _touch(tmp_path / "h2m.chain")},
            {"from": "macaque", "to": "human", "path": _touch(tmp_path / "m2h.chain")},
        ],
        "orthologs": [{"species_a": "human", "species_b": "macaque", "path": _touch(tmp_path / "orth.tsv")}],
    }


def _error(config: dict) -> str:
    with pytest.raises(CrossglueError) as info:
        load_and_check(config, SCHEMA)
    return str(info.value)


def test_valid_config_passes_and_returns_the_sheet(user_config):
    sheet = load_and_check(user_config, SCHEMA)
    assert list(sheet.index) == ["h_atac", "m_rna", "h_rna", "m_atac"]


def test_typo_in_a_nested_key_is_named(user_config):
    user_config["ingest"] = {"atac": {"min_fragmnets": 100}}
    msg = _error(user_config)
    assert "config key 'ingest.atac.min_fragmnets' is not a known key" in msg
    assert "min_fragments" in msg  # the keys it could have meant


def test_typo_in_a_top_level_key_is_named(user_config):
    user_config["speceis"] = []
    assert "config key 'speceis' is not a known key" in _error(user_config)


def test_wrong_type_names_the_key(user_config):
    user_config["ingest"] = {"rna": {"max_mito_fraction": "high"}}
    assert "config key 'ingest.rna.max_mito_fraction': 'high' is not of type 'number'" in _error(user_config)


def test_missing_file_names_the_key_and_path(user_config, tmp_path):
    user_config["species"][1]["gtf"] = str(tmp_path / "nope.gtf")
    assert _error(user_config) == (
        f"config key 'species[1].gtf' (species 'macaque'): file {tmp_path / 'nope.gtf'} does not exist"
    )


def test_species_without_a_chain_to_the_others(user_config):
    user_config["chains"] = user_config["chains"][:1]
    assert "no chain file from 'macaque' to 'human'" in _error(user_config)


def test_three_species_need_every_ordered_pair(user_config, tmp_path):
    chimp = copy.deepcopy(user_config["species"][0])
    chimp["name"] = "chimp"
    user_config["species"].append(chimp)
    frag = _touch(tmp_path / "c_atac" / "fragments.tsv.gz")
    _touch(tmp_path / "c_atac" / "fragments.tsv.gz.tbi")
    sheet = Path(user_config["samples"])
    sheet.write_text(sheet.read_text() + f"c_atac\tchimp\td3\tatac\t{frag}\t\t\n")
    for a, b in (("human", "chimp"), ("chimp", "human"), ("chimp", "macaque")):
        user_config["chains"].append({"from": a, "to": b, "path": _touch(tmp_path / f"{a}{b}.chain")})
    assert "no chain file from 'macaque' to 'chimp'" in _error(user_config)


def test_sample_naming_an_unknown_species_names_the_row(user_config):
    sheet = Path(user_config["samples"])
    sheet.write_text(sheet.read_text().replace("\tmacaque\t", "\tmacaca\t"))
    assert _error(user_config) == (
        f"{sheet}:3 (sample 'm_rna'): species 'macaca' is not in config 'species' (human, macaque)"
    )


def test_sample_with_missing_fragments_index(user_config):
    Path(user_config["samples"]).parent.joinpath("h_atac", "fragments.tsv.gz.tbi").unlink()
    msg = _error(user_config)
    assert "(sample 'h_atac'), tabix index of column 'fragments'" in msg
    assert msg.endswith("fragments.tsv.gz.tbi does not exist")


def test_duplicate_sample_names_the_line(user_config):
    sheet = Path(user_config["samples"])
    lines = sheet.read_text().splitlines()
    sheet.write_text("\n".join([*lines, lines[1]]) + "\n")
    assert _error(user_config) == f"{sheet}:2: sample 'h_atac' appears more than once"


def test_unknown_modality(user_config):
    sheet = Path(user_config["samples"])
    sheet.write_text(sheet.read_text().replace("\tatac\t", "\tchip\t"))
    assert "modality 'chip' is not one of rna, atac, multiome" in _error(user_config)


def test_demo_inputs_may_be_absent_before_the_demo_runs(user_config, tmp_path):
    user_config["demo"] = {"enabled": True, "outdir": str(tmp_path / "demo")}
    user_config["species"][0]["gtf"] = str(tmp_path / "demo" / "human.gtf.gz")
    load_and_check(user_config, SCHEMA)
    user_config["demo"]["enabled"] = False
    assert "human.gtf.gz does not exist" in _error(user_config)


def test_snakemake_stops_before_any_job_on_a_bad_key(user_config, tmp_path):
    user_config["ingest"] = {"atac": {"min_fragmnets": 100}}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(user_config))
    proc = run_snakemake(REPO, cfg, "-n", "--quiet", timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key 'ingest.atac.min_fragmnets' is not a known key" in output
    assert "Traceback" not in output
    assert "Job stats" not in output


def test_header_only_sample_sheet_is_an_error(user_config):
    sheet = Path(user_config["samples"])
    sheet.write_text(sheet.read_text().splitlines()[0] + "\n")
    assert _error(user_config) == f"{sheet}: the sample sheet lists no sample (only its header); add one row per sample"


def test_empty_sample_sheet_file_is_an_error(user_config):
    sheet = Path(user_config["samples"])
    sheet.write_text("")
    assert _error(user_config) == (
        f"{sheet}: the sample sheet is empty; write a header line (sample, species, donor, modality, fragments, "
        "counts, metadata, tab-separated) and one row per sample"
    )


def _keep_rows(user_config: dict, names: set[str]) -> Path:
    sheet = Path(user_config["samples"])
    lines = sheet.read_text().splitlines()
    sheet.write_text("\n".join([lines[0], *(line for line in lines[1:] if line.split("\t")[0] in names)]) + "\n")
    return sheet


def test_species_without_samples_is_an_error(user_config):
    sheet = _keep_rows(user_config, {"h_atac", "h_rna"})
    assert _error(user_config) == (
        f"{sheet}: no sample of species 'macaque' (config 'species' lists it); add its samples to the sheet or "
        "remove the species from config 'species'"
    )


def test_species_with_rna_samples_only_needs_no_chain(user_config):
    _keep_rows(user_config, {"h_atac", "h_rna", "m_rna"})
    user_config["chains"] = []
    sheet = load_and_check(user_config, SCHEMA)
    assert sorted(sheet.loc[sheet["species"] == "macaque", "modality"]) == ["rna"]


def test_three_species_with_one_rna_only_need_chains_between_the_other_two(user_config, tmp_path):
    chimp = copy.deepcopy(user_config["species"][0])
    chimp["name"] = "chimp"
    user_config["species"].append(chimp)
    sheet = Path(user_config["samples"])
    sheet.write_text(sheet.read_text() + f"c_rna\tchimp\td3\trna\t\t{_touch(tmp_path / 'c_rna.h5ad')}\t\n")
    for a, b in (("human", "chimp"), ("macaque", "chimp")):
        user_config["orthologs"].append({"species_a": a, "species_b": b, "path": _touch(tmp_path / f"{a}{b}.tsv")})
    assert list(load_and_check(user_config, SCHEMA).index)[-1] == "c_rna"
    user_config["chains"] = user_config["chains"][:1]  # the chimp needs none; macaque-human still does
    assert _error(user_config) == (
        "config key 'chains': no chain file from 'macaque' to 'human'; every ordered pair of species with ATAC "
        "samples needs one (add an entry with from: macaque, to: human, path: ...)"
    )


def test_species_without_an_rna_sample_is_an_error(user_config):
    sheet = _keep_rows(user_config, {"h_atac", "h_rna", "m_atac"})
    assert _error(user_config) == (
        f"{sheet}: species 'macaque' has no RNA sample (modality rna or multiome); its genes are the species' gene "
        "nodes in the guidance graph: add one, or remove the species from config 'species'"
    )


def test_no_species_with_an_atac_sample_is_an_error(user_config):
    sheet = _keep_rows(user_config, {"h_rna", "m_rna"})
    user_config["chains"] = []
    assert _error(user_config) == (
        f"{sheet}: no species has an ATAC sample (modality atac or multiome); peaks are called from the fragments "
        "of at least one species: add one"
    )


@pytest.mark.parametrize(
    ("section", "low", "high", "modality"),
    [("atac", "min_fragments", "max_fragments", "ATAC"), ("rna", "min_counts", "max_counts", "RNA")],
)
def test_qc_minimum_above_its_maximum_is_an_error(user_config, section, low, high, modality):
    user_config["ingest"] = {section: {low: 5000, high: 1000}}
    assert _error(user_config) == (
        f"config key 'ingest.{section}.{low}' (5000) is greater than 'ingest.{section}.{high}' (1000): no cell can "
        f"pass {modality} QC; lower {low} or raise {high}"
    )


def test_qc_minimum_above_the_default_maximum_is_an_error(user_config):
    user_config["ingest"] = {"rna": {"min_counts": 200000}}
    assert "'ingest.rna.min_counts' (200000) is greater than 'ingest.rna.max_counts' (100000)" in _error(user_config)
