"""The sections of the report: each reads its inputs and returns text, tables and images.

Sections are fixed (ids are stable anchors that tests and users link to); a section whose
inputs are absent says so instead of disappearing, so a reader can tell "not run" from "empty".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.errors import CrossglueError
from crossglue.report.figures import data_uri, file_png, metrics_figure, training_figure, umap_figure

SECTION_IDS = [
    "inputs",
    "peaks",
    "graph",
    "training",
    "umaps",
    "metrics",
    "regulatory",
    "differential",
    "modules",
    "truth",
]


@dataclass
class Image:
    caption: str
    png: bytes
    name: str  # file name when figures are also written to disk

    @property
    def src(self) -> str:
        return data_uri(self.png)


@dataclass
class Table:
    caption: str
    html: str


@dataclass
class Section:
    id: str
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)


def read_tsv(path: str | Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t", compression="infer")
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CrossglueError(f"report: cannot read table {path} ({err})") from None


def html_table(frame: pd.DataFrame, max_rows: int = 60) -> str:
    """An HTML table of at most ``max_rows`` rows, numbers to 4 significant digits."""
    shown = frame.head(max_rows)
    html = shown.to_html(
        index=False, border=0, classes="data", na_rep="NA", float_format=lambda v: f"{v:.4g}", escape=True
    )
    if len(frame) > max_rows:
        html += f"<p class='more'>{len(frame) - max_rows} more rows in the TSV.</p>"
    return html


def _tables(paths: dict[str, str | None]) -> list[Table]:
    return [Table(caption, html_table(read_tsv(p))) for caption, p in paths.items() if p and Path(p).is_file()]


def _images(paths: list[str], caption_of=None) -> list[Image]:
    return [
        Image(caption_of(p) if caption_of else Path(p).stem.replace("_", " "), file_png(p), Path(p).name)
        for p in paths
        if Path(p).is_file()
    ]


def inputs_section(qc_summary: str | None, qc_plots: list[str]) -> Section:
    s = Section("inputs", "Inputs and QC per sample")
    s.text.append(
        "Cells kept and removed per sample by the QC thresholds of config.ingest and by doublet detection "
        "(config.ingest.doublets: n_doublets), and per-sample QC and doublet-score distributions."
    )
    s.tables = _tables({"QC summary per sample (results/ingest/qc_summary.tsv)": qc_summary})
    s.images = _images(qc_plots, lambda p: f"QC of sample {Path(p).stem}")
    return s


def peaks_section(summary: str | None, reasons: str | None, widths: str | None, plots: list[str]) -> Section:
    s = Section("peaks", "Peaks, liftOver and element classes")
    s.text.append(
        "Union elements per species pair and class (conserved, <species>_accessible, <species>_sequence, ambiguous); "
        "liftOver outcome of every peak with the reason for each failure; peak widths."
    )
    s.tables = _tables(
        {
            "Element classes per species pair": summary,
            "liftOver success and failure reasons": reasons,
            "Peak widths": widths,
        }
    )
    s.images = _images(plots)
    return s


def graph_section(summary: str | None, plots: list[str]) -> Section:
    s = Section("graph", "Guidance graph")
    s.text.append(
        "Nodes and edges of the guidance graph by type (self, peak_gene, ortholog, element) and the "
        "degree distribution."
    )
    s.tables = _tables({"Graph summary (results/graph/summary.tsv)": summary})
    s.images = _images(plots)
    return s


def training_section(logs: dict[str, str]) -> Section:
    s = Section("training", "Training curves")
    frames = {name: read_tsv(p) for name, p in logs.items() if p and Path(p).is_file()}
    if frames:
        s.text.append(
            "Loss terms per epoch of the main run and of the ablation run (no element–element "
            "edges); dashed lines mark stage changes."
        )
        s.images.append(Image("Training curves", training_figure(frames), "training_curves.png"))
        last = pd.DataFrame([f.iloc[-1].rename(name) for name, f in frames.items()])
        s.tables.append(Table("Last epoch of each run", html_table(last.reset_index(names="run"))))
    else:
        s.text.append("No training log was given.")
    return s


def umap_section(cells) -> Section:
    s = Section("umaps", "Joint embedding (UMAP)")
    if cells is None:
        s.text.append("No annotated cells were given.")
        return s
    obs = cells.obs
    keys = ["species", "modality", "sample", "cell_type_annotated"]
    s.text.append(
        f"{cells.n_obs} cells of every sample in X_glue, coloured by species, modality, sample and "
        "cell type (given or transferred)."
    )
    s.images.append(Image("UMAP of X_glue", umap_figure(np.asarray(cells.obsm["X_umap"]), obs, keys), "umap.png"))
    counts = (
        pd.crosstab(obs["cell_type_annotated"].astype(str), obs["species"].astype(str)) if "species" in obs else None
    )
    if counts is not None:
        s.tables.append(Table("Cells per annotated cell type and species", html_table(counts.reset_index(), 100)))
    if "cell_type_confidence" in obs:
        conf = obs.groupby(obs["species"].astype(str))["cell_type_confidence"].describe()[
            ["count", "mean", "25%", "50%"]
        ]
        s.tables.append(Table("Label-transfer confidence per species", html_table(conf.reset_index())))
    return s


def metrics_section(metrics: str | None) -> Section:
    s = Section("metrics", "Integration metrics with the ablation")
    if not metrics or not Path(metrics).is_file():
        s.text.append("No metrics table was given.")
        return s
    table = read_tsv(metrics)
    s.text.append(
        "Biology conservation (cell-type ASW, NMI/ARI of Leiden, MAP; ALCS: lower is better), species and batch mixing "
        "(batch ASW, graph connectivity, Seurat alignment score) and FOSCTTM of multiome nuclei "
        "(lower is better), for the "
        "main run and the ablation without element–element edges; *_truth columns score against the true cell types."
    )
    s.tables.append(Table("Metrics (results/analysis/metrics.tsv)", html_table(table)))
    s.images.append(
        Image(
            "Metrics, main vs ablation",
            metrics_figure(table, ["main", "ablation", "main_truth", "ablation_truth"]),
            "metrics.png",
        )
    )
    return s


def regulatory_section(links: str | None, evaluation: str | None, max_q: float) -> Section:
    s = Section("regulatory", "Regulatory inference")
    if links and Path(links).is_file():
        table = read_tsv(links)
        summary = table.groupby("species").agg(
            candidates=("q_value", "size"), significant=("q_value", lambda q: int((q <= max_q).sum()))
        )
        s.text.append(
            "Every candidate pair scored by co-variation of accessibility and expression across metacells "
            "and by co-divergence between species, tested against trans-chromosomal pairs; significant "
            f"= q ≤ {max_q} (BH over all candidates, weighted by the distance prior)."
        )
        s.tables.append(Table("Candidate and significant links per species", html_table(summary.reset_index())))
        top = table.sort_values(["q_value", "cosine"], ascending=[True, False]).head(15)
        s.tables.append(Table("Strongest links", html_table(top)))
    s.tables += _tables({"Scores against planted links (AUROC, AUPRC)": evaluation})
    return s


def differential_section(genes: str | None, elements: str | None, max_q: float) -> Section:
    s = Section("differential", "Species-differential expression and accessibility")
    s.text.append(
        f"DESeq2 on pseudobulks per donor × cell type (donors are the replicates); counts of features with q ≤ {max_q}."
    )
    for caption, path in (("Genes", genes), ("Elements", elements)):
        if path and Path(path).is_file():
            table = read_tsv(path)
            if table.empty:
                s.text.append(f"{caption}: no cell type had enough donors in both species.")
                continue
            sig = table[table["q_value"] <= max_q]
            counts = sig.assign(
                direction=np.where(sig["log2fc"] > 0, "higher in " + sig["species_a"], "higher in " + sig["species_b"])
            )
            counts = counts.groupby(["cell_type", "direction"]).size().unstack(fill_value=0)
            tested = table.groupby("cell_type").size().rename("tested")
            s.tables.append(
                Table(
                    f"{caption}: significant per cell type",
                    html_table(counts.join(tested, how="outer").fillna(0).reset_index()),
                )
            )
    return s


def modules_section(modules: str | None, top: int) -> Section:
    s = Section("modules", "Species-specific regulatory modules")
    if modules and Path(modules).is_file():
        table = read_tsv(modules)
        s.text.append(
            f"{len(table)} modules: species-specific elements linked to genes changed in the same "
            "direction, grouped by shared motif; "
            f"the top {min(top, len(table))} by motif enrichment and size."
        )
        shown = table.sort_values(["motif_q", "n_elements"], ascending=[True, False], na_position="last").head(top)
        s.tables.append(Table("Top modules (results/analysis/species_modules.tsv)", html_table(shown, top)))
    else:
        s.text.append("No module table was given.")
    return s


def truth_section(metrics: str | None, link_eval: str | None, recovery: str | None, has_truth: bool) -> Section:
    s = Section("truth", "Comparison with the simulated truth")
    if not has_truth:
        s.text.append("No truth tables: this is not a simulated dataset, so nothing is compared with truth.")
        return s
    s.text.append(
        "The demo's simulator planted cell types, CRE–gene links and species-specific modules; these "
        "tables score the results against them."
    )
    if metrics and Path(metrics).is_file():
        table = read_tsv(metrics)
        cols = [c for c in ("metric", "main_truth", "ablation_truth") if c in table]
        s.tables.append(Table("Metrics against true cell types", html_table(table[cols])))
    s.tables += _tables({"Regulatory inference against planted links": link_eval, "Planted module recovery": recovery})
    return s
