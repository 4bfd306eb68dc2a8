"""Size presets of the simulated dataset: `tiny` for tests, `demo` for the default config,
`realistic` for scoring the science (hierarchical types, states, artefacts; see
:mod:`crossglue.simulate.states` and :mod:`crossglue.simulate.counts_realistic`).

A preset fixes the ancestral genome, the element and gene densities, the samples of each
species and the sequencing depth; ``scale`` multiplies genome length, elements and cells.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from crossglue.errors import CrossglueError

SPECIES = ("human", "macaque")
ASSEMBLIES = {"human": "hsSim1", "macaque": "mmSim1"}

# Seven shared cell types (brain-like) and one type found in a single species.
SHARED_CELL_TYPES = ("ExN_upper", "ExN_deep", "InN_PVALB", "InN_SST", "Astrocyte", "Oligodendrocyte", "Microglia")
SPECIFIC_CELL_TYPE = {"human": "ExN_human_specific"}


@dataclass(frozen=True)
class SampleSpec:
    """One sequenced sample: its species, donor, modality and number of nuclei."""

    name: str
    species: str
    donor: str
    modality: str  # rna | atac | multiome
    n_cells: int
    counts_format: str = "h5"  # h5 | h5ad (RNA and multiome)
    metadata: str = "labels"  # labels | no_labels | none


@dataclass(frozen=True)
class Preset:
    """All size knobs of one simulated dataset (before ``scale`` is applied)."""

    name: str
    chrom_lengths: dict[str, int]  # ancestral chromosomes; anc2a and anc2b fuse in human
    gene_spacing: int  # mean bp between gene starts
    cre_spacing: int  # mean bp between distal CREs
    samples: tuple[SampleSpec, ...]
    median_fragments: int
    median_umis: int
    n_modules_per_species: int
    module_size: int  # CREs per planted module
    n_insertions: int  # lineage-specific 1-20 kb insertions per species
    write_fasta: bool = True
    # "textbook" (tiny, demo: discrete types, NB counts) or "realistic" (issue 11).
    model: str = "textbook"
    # Config keys the pipeline needs for this preset (tiny has ~100 genes: fewer detected per cell).
    config_overrides: dict = field(default_factory=dict)


def _samples(sizes: dict[str, int]) -> tuple[SampleSpec, ...]:
    """Per species: RNA-only, ATAC-only and multiome samples from three donors."""
    out = []
    for sp in SPECIES:
        short = sp
        labels_rna = "labels" if sp == "human" else "none"
        labels_atac = "labels" if sp == "human" else "no_labels"
        for name, modality, donor, key, fmt, meta in (
            (f"{short}_rna1", "rna", f"{short}_d1", "rna1", "h5ad" if sp == "macaque" else "h5", labels_rna),
            (f"{short}_rna2", "rna", f"{short}_d2", "rna2", "h5", labels_rna),
            (f"{short}_atac1", "atac", f"{short}_d3", "atac1", "h5", labels_atac),
            (f"{short}_multiome1", "multiome", f"{short}_d2", "multiome1", "h5", "labels" if sp == "human" else "none"),
        ):
            n = sizes.get(key, 0)
            if n:
                out.append(SampleSpec(name, sp, donor, modality, n, fmt, meta))
    return tuple(out)


def _realistic_samples(sizes: dict[str, int]) -> tuple[SampleSpec, ...]:
    """The demo's sample layout (config/samples.tsv reads it), but labels (the authors'
    annotation of passing nuclei) only for human rna1 and multiome1, so label transfer must
    cover the other human samples and the whole unlabelled macaque."""
    out = []
    for sp in SPECIES:
        human = sp == "human"
        for key, modality, donor, fmt, meta in (
            ("rna1", "rna", "d1", "h5" if human else "h5ad", "labels" if human else "none"),
            ("rna2", "rna", "d2", "h5", "no_labels" if human else "none"),
            ("atac1", "atac", "d3", "h5", "no_labels"),
            ("multiome1", "multiome", "d2", "h5", "labels" if human else "none"),
        ):
            if sizes.get(key, 0):
                out.append(SampleSpec(f"{sp}_{key}", sp, f"{sp}_{donor}", modality, sizes[key], fmt, meta))
    return tuple(out)


PRESETS = {
    "tiny": Preset(
        name="tiny",
        chrom_lengths={"anc1": 1_000_000, "anc2a": 500_000, "anc2b": 500_000},
        gene_spacing=20_000,
        cre_spacing=8_000,
        samples=_samples({"rna1": 100, "atac1": 100, "multiome1": 100}),
        median_fragments=2_000,
        median_umis=2_500,
        n_modules_per_species=1,
        module_size=6,
        n_insertions=4,
        config_overrides={"ingest": {"rna": {"min_genes": 60}}},
    ),
    "demo": Preset(
        name="demo",
        chrom_lengths={"anc1": 3_000_000, "anc2a": 2_000_000, "anc2b": 1_800_000, "anc3": 2_200_000},
        gene_spacing=16_000,
        cre_spacing=8_000,
        samples=_samples({"rna1": 900, "rna2": 700, "atac1": 800, "multiome1": 800}),
        median_fragments=2_200,
        median_umis=2_500,
        n_modules_per_species=2,
        module_size=12,
        n_insertions=10,
    ),
    "realistic": Preset(
        name="realistic",
        chrom_lengths={"anc1": 3_000_000, "anc2a": 2_000_000, "anc2b": 1_800_000, "anc3": 2_200_000},
        gene_spacing=16_000,
        cre_spacing=8_000,
        samples=_realistic_samples({"rna1": 1_000, "rna2": 900, "atac1": 900, "multiome1": 900}),
        median_fragments=2_400,
        median_umis=2_600,
        n_modules_per_species=2,
        module_size=12,
        n_insertions=10,
        model="realistic",
    ),
}


def get_preset(name: str, scale: float = 1.0) -> Preset:
    """The named preset with genome length, insertions and cells multiplied by ``scale``."""
    if name not in PRESETS:
        raise CrossglueError(f"simulate: unknown preset '{name}'; expected one of {', '.join(PRESETS)}")
    if not scale > 0:
        raise CrossglueError(f"simulate: scale must be > 0, got {scale}")
    base = PRESETS[name]
    if scale == 1.0:
        return base
    return dataclasses.replace(
        base,
        chrom_lengths={k: max(200_000, int(round(v * scale))) for k, v in base.chrom_lengths.items()},
        samples=tuple(dataclasses.replace(s, n_cells=max(20, int(round(s.n_cells * scale)))) for s in base.samples),
        n_insertions=max(2, int(round(base.n_insertions * scale))),
        n_modules_per_species=max(1, int(round(base.n_modules_per_species * min(scale, 4)))),
    )
