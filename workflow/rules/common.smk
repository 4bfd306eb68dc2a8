"""Validation of config and sample sheet, wildcard constraints and input functions.

Runs when the workflow is parsed, so a typo in a key, a missing file, a species with ATAC
samples without a chain to the others or a sample naming an unknown species stops the run
before any job. A species with RNA samples only needs no chain: it gets no peaks, liftOver,
element counts or peak-gene links (ATAC_SPECIES lists the others).
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

from crossglue.analysis.settings import analysis_settings, report_settings  # noqa: E402
from crossglue.config import ATAC_MODALITIES, atac_species, load_and_check  # noqa: E402
from crossglue.errors import CrossglueError  # noqa: E402
from crossglue.genomics.chain import check_configured_chains  # noqa: E402
from crossglue.graph.settings import graph_settings  # noqa: E402
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
# Species with ATAC samples: peaks, liftOver, counts and peak-gene links run for these only. A
# species with RNA samples only joins the model through its ortholog edges.
ATAC_SPECIES = atac_species(samples, species_names)
RNA_ONLY_SPECIES = [s for s in species_names if s not in ATAC_SPECIES]
try:  # chains against the species they connect: headers only, before any job
    check_configured_chains(
        [c for c in config["chains"] if {c["from"], c["to"]} <= set(ATAC_SPECIES)],
        config["species"],
    )
except CrossglueError as err:
    raise WorkflowError(f"crossglue: {err}") from None

# Settings of the later stages, checked now so that a typo stops the run before any job.
try:
    GRAPH = config["graph"]
    graph_settings(GRAPH)
    ANALYSIS = analysis_settings(config.get("analysis"))
    REPORT = report_settings(config.get("report"))
except CrossglueError as err:
    raise WorkflowError(f"crossglue: {err}") from None

DEMO = config["demo"]


wildcard_constraints:
    sample="|".join(samples.index) or "NO_SAMPLES",
    species="|".join(species_names),


def species_cfg(name):
    """The config block of one species, defaults filled in."""
    return next(s for s in config["species"] if s["name"] == name)


# The motif database, checked at parse time like the config above: JASPAR 2024 CORE
# vertebrates, written under resources/ by `make install` (crossglue motif-database), unless
# analysis.motifs names another MEME file. The demo uses it too: the simulator's
# truth/motifs.meme is the answer.
MOTIF_FILE = ANALYSIS["motifs"] or str(
    REPO / "resources/motifs/JASPAR2024_CORE_vertebrates_non-redundant.meme"
)
# Elements (motifs, links, modules) exist in the species with ATAC samples only.
GENOME_FASTA = [species_cfg(s).get("fasta") for s in ATAC_SPECIES]
USE_MOTIFS = all(GENOME_FASTA)
if USE_MOTIFS and not os.path.isfile(MOTIF_FILE):
    raise WorkflowError(
        f"crossglue: config analysis.motifs: motif file {MOTIF_FILE} does not exist; "
        + (
            "name an existing MEME file there"
            if ANALYSIS["motifs"]
            else "run `make install` (or `crossglue motif-database`) to write the default JASPAR 2024 database"
        )
    )


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


def files_mb(paths):
    """Total size in MB of the files among ``paths`` (one path or a list) that exist yet."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p)) / 2**20


def mem_mb(base, per_mb=10.0, per_input=None, streamed=None):
    """A ``mem_mb`` resource callable: memory from the size of the job's inputs.

    ``base`` (MB) and ``per_mb`` (MB per MB of input) come from the max_rss in each rule's
    benchmarks/*.tsv of finished demo runs against its input size (config/README.md,
    "Memory"); ``per_input`` sets another rate for named inputs (an indexed FASTA read by
    random access costs 0; a GTF, parsed whole, 50). ``streamed`` names an input read in
    chunks of bounded size (fragments): its first 60 MB cost ``per_mb`` (one chunk), the rest
    3 MB per MB (what accumulates: the cell x tile or cell x element matrix; counting at 10x
    the demo measured that). Then 1.5x headroom, a 500 MB floor, doubled on each retry.
    Snakemake evaluates it again once the inputs exist, and caps it at ``--resources``.
    """
    rates = dict(per_input or {})

    def estimate(wildcards, input, attempt):
        need = base + per_mb * files_mb(input)
        for name, rate in rates.items():
            need += (rate - per_mb) * files_mb(
                getattr(input, name, [])
            )  # optional inputs may be absent
        if streamed:
            big = files_mb(getattr(input, streamed))
            need -= (per_mb - STREAMED_PER_MB) * max(big - STREAMED_CHUNK_MB, 0.0)
        return max(500, int(-(-1.5 * need // 100)) * 100) * attempt

    return estimate


STREAMED_CHUNK_MB = (
    60.0  # gzipped fragments of one 5 M-row chunk (about 87,000 fragments per MB)
)
STREAMED_PER_MB = 3.0


# The layers of each modality. A job gets the parameters of its own layers only, so an
# edited ATAC threshold re-ingests the ATAC and multiome samples, not the RNA ones.
SAMPLE_LAYERS = {"rna": ["rna"], "atac": ["atac"], "multiome": ["rna", "atac"]}


def sample_layers(wc):
    return SAMPLE_LAYERS[samples.loc[wc.sample, "modality"]]


def ingest_thresholds(wc):
    """QC thresholds of the sample's own modalities, and the doublet settings (ingest.doublets)."""
    layers = {layer: config["ingest"][layer] for layer in sample_layers(wc)}
    return {**layers, "doublets": config["ingest"]["doublets"]}


def ingest_tile_size(wc):
    return config["ingest"]["tile_size"] if "atac" in sample_layers(wc) else None


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
        "results/model/cells.h5mu",
        *ablation_inputs(cells="results/model_ablation/cells.h5ad").values(),
        "results/analysis/cells.h5ad",
        "results/analysis/metrics.tsv",
        "results/analysis/regulatory_links.tsv",
        "results/analysis/species_modules.tsv",
        *(
            ["results/analysis/motif_turnover.tsv"] if USE_TURNOVER else []
        ),  # analysis.smk
        "results/report/report.html",
    ]


SPECIES_PAIRS = [(a, b) for a in species_names for b in species_names if a != b]
# Ordered pairs of species with ATAC samples: the liftOver directions.
ATAC_PAIRS = [
    (a, b) for a, b in SPECIES_PAIRS if a in ATAC_SPECIES and b in ATAC_SPECIES
]


def per_atac_species(pattern):
    """``pattern`` (with ``{species}``) for every species with ATAC samples, in config order."""
    return expand(pattern, species=ATAC_SPECIES)


def alias_table(key):
    """Input function: [chrom alias table] of the species named by wildcard ``key`` (``sample``:
    the sample's species), or [] when the species has none."""

    def get(wc):
        name = (
            samples.loc[wc.sample, "species"] if key == "sample" else getattr(wc, key)
        )
        path = species_cfg(name).get("chrom_aliases")
        return [path] if path else []

    return get


def species_fragments(wc):
    """Fragments files of every ATAC / multiome sample of ``wc.species``."""
    return [
        samples.loc[s, "fragments"] for s in samples_of(wc.species, ATAC_MODALITIES)
    ]


def species_fragment_indexes(wc):
    return [f + ".tbi" for f in species_fragments(wc)]
