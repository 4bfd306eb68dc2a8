"""An edited QC threshold re-ingests exactly the samples of that modality: each ingest job
gets the parameters of its own layers only (a dry run after a real ingest of the tiny demo)."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml
from test_pipeline import tiny_config
from workflow_runner import run_snakemake


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """The tiny demo with every sample ingested (only the ingest_sample jobs run)."""
    work = tmp_path_factory.mktemp("ingest_rerun")
    config = tiny_config(work)
    sheet = pd.read_csv(work / "demo" / "samples.tsv", sep="\t").set_index("sample")
    targets = [f"results/ingest/samples/{s}/qc.tsv" for s in sheet.index]
    proc = run_snakemake(work, config, *targets)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return work, config, sheet, targets


def planned_ingests(output: str) -> dict[str, str]:
    """Sample -> reason of every ingest_sample job in a dry run's job list."""
    jobs = {}
    for block in re.split(r"\n(?=rule \w+:)", output):
        if block.startswith("rule ingest_sample:"):
            sample = re.search(r"wildcards: sample=(\S+)", block).group(1)
            jobs[sample] = re.search(r"reason: (.*)", block).group(1).strip()
    return jobs


@pytest.mark.parametrize(
    ("section", "key", "value", "touched"),
    [("atac", "min_fragments", 123, {"atac", "multiome"}), ("rna", "min_counts", 77, {"rna", "multiome"})],
)
def test_edited_threshold_reruns_only_the_samples_of_its_modality(ingested, section, key, value, touched):
    work, config, sheet, targets = ingested
    edited = yaml.safe_load(config.read_text())
    edited.setdefault("ingest", {}).setdefault(section, {})[key] = value
    new_config = work / f"config_{section}.yaml"
    new_config.write_text(yaml.safe_dump(edited))
    proc = run_snakemake(work, new_config, "-n", *targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = planned_ingests(proc.stdout + proc.stderr)
    expected = sorted(sheet.index[sheet["modality"].isin(touched)])
    assert sorted(planned) == expected, proc.stdout[-3000:]
    for reason in planned.values():
        assert reason.startswith("Params have changed since last execution") and f"'{key}': {value}" in reason
    untouched = sorted(set(sheet.index) - set(expected))
    assert untouched and not set(untouched) & set(planned)  # e.g. the RNA-only samples for an ATAC edit


def test_unchanged_config_reingests_nothing(ingested):
    work, config, _, targets = ingested
    proc = run_snakemake(work, config, "-n", *targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert planned_ingests(proc.stdout + proc.stderr) == {}
