"""The two cell models behind the samples, one interface: barcodes, fragments, RNA counts.

``textbook`` (tiny, demo; :mod:`crossglue.simulate.cells`): discrete types, NB counts.
``realistic`` (:mod:`crossglue.simulate.counts_realistic`): hierarchical types, states,
doublets, ambient RNA, capture biases, a Cell Ranger ARC fragments header.

``dataset._write_samples`` draws the donors and writes the files; a model only draws data.
Each model consumes the random stream in the order the samples are written, so a preset's
files depend only on its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossglue.simulate import cells as cellsim
from crossglue.simulate import counts_realistic as realsim
from crossglue.simulate.annotate import Annotation
from crossglue.simulate.presets import ASSEMBLIES, SPECIES, Preset, SampleSpec

# Header lines as Cell Ranger ARC writes them at the top of fragments.tsv.gz (realistic preset).
CELLRANGER_HEADER = {
    "description": "Fragments",
    "pipeline_name": "cellranger-arc",
    "pipeline_version": "cellranger-arc-2.0.2",
}


@dataclass(frozen=True)
class Donors:
    """Per-donor effects shared by all samples of a donor."""

    lib: dict[str, float]  # library-size factor
    shift: dict[str, np.ndarray]  # per-gene expression shift (textbook model)


class TextbookSamples:
    """Discrete cell types with negative-binomial counts from baseline + linked-CRE activity."""

    def __init__(self, rng: np.random.Generator, p: Preset, ann: Annotation, genomes: dict):
        self.p, self.ann, self.genomes = p, ann, genomes
        self.props = cellsim.type_proportions(rng, list(SPECIES))
        self.profiles = {s: cellsim.expression_profiles(rng, ann, s) for s in SPECIES}

    def genes(self, species: str) -> pd.DataFrame:
        """The species' genes in count-matrix column order."""
        return self.profiles[species][0]

    def barcodes(self, rng, spec: SampleSpec) -> tuple[pd.DataFrame, None]:
        return cellsim.make_nuclei(rng, spec, self.ann, self.props[spec.species]), None

    def fragments(self, rng, spec: SampleSpec, cells: pd.DataFrame, ctx, donors: Donors, file_names: dict):
        """(fragments, unique fragments per barcode, FRiP target, fragments-file header)."""
        sizes = self.genomes[spec.species].chrom_sizes
        frags, uniq, frip = cellsim.simulate_fragments(rng, cells, self.ann, sizes, self.p, donors.lib[spec.donor])
        header = {
            "id": spec.name,
            "pipeline_name": "crossglue.simulate",
            "reference_assembly": ASSEMBLIES[spec.species],
        }
        return frags, uniq, frip, header

    def rna(self, rng, spec: SampleSpec, cells: pd.DataFrame, rna_cells: pd.DataFrame, ctx, donors: Donors):
        """(counts, UMIs per barcode, mito fraction) for ``rna_cells``."""
        genes, prof = self.profiles[spec.species]
        mito = (genes.kind == "mito").to_numpy().astype(float)
        return cellsim.simulate_rna(
            rng, rna_cells, prof, mito, self.p, donors.shift[spec.donor], donors.lib[spec.donor]
        )


class RealisticSamples:
    """Issue 11: compositional donors, states, doublets, ambient RNA, per-gene biases.

    Setting up records each gene's technical biases and state loading in ``ann.genes`` (truth).
    """

    def __init__(self, rng: np.random.Generator, p: Preset, ann: Annotation, genomes: dict):
        self.p, self.ann, self.genomes = p, ann, genomes
        self.props = realsim.dirichlet_proportions(rng, ann, {spec.donor: spec.species for spec in p.samples})
        self.biases = {s: realsim.species_biases(rng, ann, s) for s in SPECIES}
        for s, b in self.biases.items():  # truth: technical biases and state loading per gene
            sel = (ann.genes.species == s).to_numpy()
            ann.genes.loc[sel, "capture_bias"] = np.round(b.capture, 4)
            ann.genes.loc[sel, "chemistry_bias"] = np.round(b.chemistry, 4)
            ann.genes.loc[sel, "overdispersion_sd"] = np.round(b.sigma, 4)
            ann.genes.loc[sel, "state_loading"] = np.round(ann.state_model.gene_loading[s], 4)
        self._genes = {s: ann.genes[ann.genes.species == s].reset_index(drop=True) for s in SPECIES}

    def genes(self, species: str) -> pd.DataFrame:
        return self._genes[species]

    def barcodes(self, rng, spec: SampleSpec) -> tuple[pd.DataFrame, tuple]:
        """Barcodes and their components (which nucleus/type each carries, and its state)."""
        cells, *comp = realsim.make_barcodes(rng, spec, self.ann, self.props[spec.donor])
        return cells, tuple(comp)

    def fragments(self, rng, spec: SampleSpec, cells: pd.DataFrame, comp: tuple, donors: Donors, file_names: dict):
        s = spec.species
        sizes = self.genomes[s].chrom_sizes
        frags, fstats = realsim.realistic_fragments(rng, cells, comp, self.ann, sizes, self.p, donors.lib[spec.donor])
        header = {"id": spec.name, **CELLRANGER_HEADER, "reference_assembly": ASSEMBLIES[s]}
        header["primary_contig"] = file_names[next(iter(sizes))]
        return frags, fstats.n_fragments.to_numpy(), fstats.frip_target.to_numpy(), header

    def rna(self, rng, spec: SampleSpec, cells: pd.DataFrame, rna_cells: pd.DataFrame, comp: tuple, donors: Donors):
        """Counts for ``rna_cells``; records their ambient fraction on ``cells`` (truth)."""
        x, rstats = realsim.realistic_rna(
            rng,
            cells,
            comp,
            self.ann,
            self.biases[spec.species],
            self.p,
            donors.lib[spec.donor],
            spec.modality == "multiome",
            np.flatnonzero(cells.index.isin(rna_cells.index)),
        )
        cells.loc[rna_cells.index, "ambient_fraction"] = rstats.ambient_fraction.to_numpy()
        return x, rstats.n_umis.to_numpy(), rstats.mito_fraction.to_numpy()


def sample_model(rng: np.random.Generator, p: Preset, ann: Annotation, genomes: dict):
    """The preset's cell model, set up (its first draws from ``rng``)."""
    return (RealisticSamples if p.model == "realistic" else TextbookSamples)(rng, p, ann, genomes)
