"""What every report section reads: the input paths, and lookups loaded once and shared
(the annotated cells, gene symbols, element coordinates per species)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from crossglue.errors import CrossglueError
from crossglue.io_utils import h5ad_var, read_h5ad


@dataclass
class ReportInputs:
    """Paths of everything the report shows; any may be None (the section then says so)."""

    species: list[str]
    qc_summary: str | None = None
    qc_plots: list[str] = field(default_factory=list)
    consensus_summary: str | None = None
    liftover_reasons: str | None = None
    peak_widths: str | None = None
    consensus_plots: list[str] = field(default_factory=list)
    graph_summary: str | None = None
    graph_plots: list[str] = field(default_factory=list)
    training_logs: dict[str, str] = field(default_factory=dict)
    cells: str | None = None
    metrics: str | None = None
    links: str | None = None
    link_evaluation: str | None = None
    differential_genes: str | None = None
    differential_elements: str | None = None
    modules: str | None = None
    module_recovery: str | None = None
    # The swap check (analysis.correspondence): type pairs, per-species clusters, heat maps.
    correspondence: str | None = None
    species_clusters: str | None = None
    correspondence_figure: str | None = None
    # Motif turnover between species (analysis.turnover): enriched gains and losses.
    motif_turnover: str | None = None
    has_truth: bool = False
    # Lookups that make tables readable: per species the RNA AnnData whose var holds
    # gene_name (from the GTF at ingest), and the union element table with coordinates.
    rna_features: dict[str, str] = field(default_factory=dict)
    union_elements: str | None = None


def given(path: str | None) -> bool:
    """A path was given and the file exists."""
    return bool(path) and Path(path).is_file()


def read_tsv(path: str | Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t", compression="infer")
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CrossglueError(f"report: cannot read table {path} ({err})") from None


@dataclass
class ReportContext:
    """Inputs plus the settings of the report; lookups are read on first use only."""

    inputs: ReportInputs
    max_q: float = 0.05
    top_modules: int = 20

    @cached_property
    def cells(self):
        """The annotated cells (results/analysis/cells.h5ad), or None."""
        if not given(self.inputs.cells):
            return None
        return read_h5ad(self.inputs.cells)

    @cached_property
    def gene_symbols(self) -> pd.Series:
        """Feature id -> gene symbol over every species (ids are species-specific)."""
        parts = []
        for species, path in self.inputs.rna_features.items():
            if not given(path):
                continue
            var = h5ad_var(path)
            if "gene_name" not in var:
                continue
            names = var["gene_name"].astype(str)
            parts.append(names[(names != "") & (names != "nan")])
        if not parts:
            return pd.Series(dtype=str)
        symbols = pd.concat(parts)
        return symbols[~symbols.index.duplicated()]

    @cached_property
    def element_coordinates(self) -> pd.DataFrame:
        """Element id -> one 'chrom:start-end' column per species (BED coordinates as in
        union_peaks.tsv; empty where the element has no sequence in that species)."""
        if not given(self.inputs.union_elements):
            return pd.DataFrame()
        table = read_tsv(self.inputs.union_elements)
        if "element_id" not in table:
            raise CrossglueError(
                f"report: {self.inputs.union_elements} has no element_id column; expected the union element "
                "table of the consensus stage (results/consensus/union_peaks.tsv)"
            )
        out = pd.DataFrame(index=table["element_id"].astype(str).to_numpy())
        for species in self.inputs.species:
            cols = [f"{species}_chrom", f"{species}_start", f"{species}_end"]
            if not all(c in table for c in cols):
                continue
            chrom, start, end = (table[c] for c in cols)
            placed = chrom.notna() & start.notna() & end.notna()
            text = chrom.astype(str) + ":" + start.astype("Int64").astype(str) + "-" + end.astype("Int64").astype(str)
            out[species] = text.where(placed, "").to_numpy()
        return out
