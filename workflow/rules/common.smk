"""Validation of config and sample sheet, wildcard constraints and input functions.

Runs when the workflow is parsed, so a typo in a key, a missing file, a species without a
chain to the others or a sample naming an unknown species stops the run before any job.
"""

import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.basedir)
# Scripts import the library from this checkout, also inside per-rule conda envs and on
# cluster nodes (jobs inherit the environment), so the code that runs is the code here.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
    )
)
sys.path.insert(0, str(REPO / "src"))

from crossglue.config import load_and_check  # noqa: E402
from crossglue.errors import CrossglueError  # noqa: E402
from crossglue.interrupts import forward_interrupts_to_jobs  # noqa: E402

# Ctrl-C (SIGINT) stops the running jobs too, also when it reached Snakemake alone.
forward_interrupts_to_jobs()

CONFIG_SCHEMA = REPO / "src" / "crossglue" / "config.schema.yaml"

try:
    samples = load_and_check(config, CONFIG_SCHEMA)
except CrossglueError as err:
    raise WorkflowError(f"crossglue: {err}") from None
# Fill the schema's defaults into config (the checks above already passed).
validate(config, str(CONFIG_SCHEMA))

species_names = [s["name"] for s in config["species"]]
DEMO = config["demo"]


wildcard_constraints:
    sample="|".join(samples.index) or "NO_SAMPLES",
    species="|".join(species_names),


def species_cfg(name):
    """The config block of one species, defaults filled in."""
    return next(s for s in config["species"] if s["name"] == name)


def samples_of(species, modalities):
    """Names of the samples of ``species`` whose modality is in ``modalities``."""
    rows = samples[
        (samples["species"] == species) & samples["modality"].isin(modalities)
    ]
    return list(rows.index)


def get_fragments(wildcards):
    return samples.loc[wildcards.sample, "fragments"]


def get_fragments_index(wildcards):
    return samples.loc[wildcards.sample, "fragments"] + ".tbi"


def get_counts(wildcards):
    return samples.loc[wildcards.sample, "counts"]


def get_metadata(wildcards):
    path = samples.loc[wildcards.sample, "metadata"]
    return [path] if path else []


def chain_path(source, target):
    return next(
        c["path"] for c in config["chains"] if c["from"] == source and c["to"] == target
    )


def ablation_inputs(**paths):
    """``paths`` when model.ablation trains the run without element-element edges, else none."""
    return paths if config["model"]["ablation"] else {}


def final_outputs():
    """Everything `snakemake` builds by default: the outputs of every stage."""
    return [
        "results/ingest/qc.tsv",
        "results/consensus/union_peaks.tsv",
        "results/graph/guidance.graphml.gz",
        "results/model/cells.h5ad",
        *ablation_inputs(cells="results/model_ablation/cells.h5ad").values(),
        "results/analysis/cells.h5ad",
        "results/analysis/metrics.tsv",
        "results/analysis/regulatory_links.tsv",
        "results/analysis/species_modules.tsv",
        "results/report/report.html",
    ]
