"""The sections of the report: each reads the context and returns text, tables and images.

``SECTIONS`` is the one list of sections, in report order: (stable id, builder). To add a
section, write a ``def my_section(ctx: ReportContext) -> Section`` here (or in its own module),
add its inputs to ``ReportInputs`` and the report rule, and append ``("my_id", my_section)``
to ``SECTIONS`` where it belongs. Ids are anchors that tests and users link to; a section
whose inputs are absent says so instead of disappearing, so a reader can tell "not run" from
"empty".
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.analysis.metrics import seurat_alignment_score
from crossglue.report.context import ReportContext, given, read_tsv
from crossglue.report.figures import (
    data_uri,
    file_png,
    metrics_figure,
    pvalue_qq_figure,
    split_umap_figure,
    training_figure,
    umap_figure,
)


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


# --- tables --------------------------------------------------------------------------------


def html_table(frame: pd.DataFrame, max_rows: int = 60, markup: tuple[str, ...] = ()) -> str:
    """An HTML table of at most ``max_rows`` rows, numbers to 4 significant digits, in a box
    that scrolls sideways when the table is wider than the page. Columns in ``markup`` hold
    HTML built here (gene symbols, element coordinates); every other text is escaped."""
    shown = frame.head(max_rows).copy()
    for column in shown.columns:
        if column not in markup and shown[column].dtype == object:
            shown[column] = [v if pd.isna(v) else html.escape(str(v)) for v in shown[column]]
    columns = [html.escape(str(c)) for c in shown.columns]
    shown.columns = columns
    table = shown.to_html(
        index=False, border=0, classes="data", na_rep="NA", float_format=lambda v: f"{v:.4g}", escape=False
    )
    out = f"<div class='scroll'>{table}</div>"
    if len(frame) > max_rows:
        out += f"<p class='more'>{len(frame) - max_rows} more rows in the TSV.</p>"
    return out


def gene_html(ctx: ReportContext, gene: str, id_beside: bool = True) -> str:
    """A gene by its symbol, its feature id on hover and (``id_beside``) in grey beside it."""
    gene = str(gene)
    symbol = ctx.gene_symbols.get(gene)
    if symbol is None or symbol == gene:
        return html.escape(gene)
    sid = html.escape(gene)
    beside = f" <span class='id'>{sid}</span>" if id_beside else ""
    return f"<span class='gene' title='{sid}'>{html.escape(symbol)}</span>{beside}"


def element_html(ctx: ReportContext, element: str) -> str:
    """An element id with its coordinates in every species on hover."""
    element = str(element)
    coords = ctx.element_coordinates
    if element not in coords.index:
        return html.escape(element)
    where = "; ".join(f"{sp} {c}" for sp, c in coords.loc[element].items() if c)
    return f"<span class='element' title='{html.escape(where)}'>{html.escape(element)}</span>"


def _ids(value) -> list[str]:
    return [v for v in str(value).split(",") if v] if not pd.isna(value) else []


def _list_html(items) -> str:
    """Comma-separated items in a box that wraps (tables otherwise keep a cell on one line)."""
    return f"<div class='list'>{', '.join(items)}</div>"


def with_coordinates(ctx: ReportContext, table: pd.DataFrame, column: str = "element") -> pd.DataFrame:
    """``table`` with one '<species> coordinates' column per species right after ``column``."""
    coords = ctx.element_coordinates
    if coords.empty or column not in table:
        return table
    out = table.copy()
    at = list(out.columns).index(column) + 1
    ids = out[column].astype(str)
    for i, species in enumerate(coords.columns):
        out.insert(at + i, f"{species} coordinates", ids.map(coords[species]).fillna("").to_numpy())
    return out


def _tables(paths: dict[str, str | None]) -> list[Table]:
    return [Table(caption, html_table(read_tsv(p))) for caption, p in paths.items() if given(p)]


def _images(paths: list[str], caption_of=None) -> list[Image]:
    return [
        Image(caption_of(p) if caption_of else Path(p).stem.replace("_", " "), file_png(p), Path(p).name)
        for p in paths
        if Path(p).is_file()
    ]


# --- species mixing per cell type -----------------------------------------------------------

MIXING_NEIGHBOURS = 15


def species_mixing_per_type(
    x: np.ndarray, species, cell_types, min_cells: int = 10, k: int = MIXING_NEIGHBOURS
) -> pd.DataFrame:
    """Per cell type found with at least ``min_cells`` cells in every species: its cells per
    species, each species' share, and the Seurat alignment score of species among that type's
    cells alone (analysis.metrics.seurat_alignment_score with ``k`` neighbours: 1 = species as
    mixed as their numbers allow, 0 = each cell's neighbours all of its own species)."""
    species = np.asarray(species).astype(str)
    cell_types = np.asarray(cell_types).astype(str)
    names = sorted(set(species))
    counts = pd.crosstab(pd.Series(cell_types, name="cell_type"), pd.Series(species, name="species"))
    counts = counts.reindex(columns=names, fill_value=0)
    shared = counts[(counts >= min_cells).all(axis=1) & (counts.index != "unassigned")]
    rows = []
    for cell_type, row in shared.iterrows():
        mine = cell_types == cell_type
        total = int(row.sum())
        record = {"cell_type": cell_type, "cells": total}
        record.update({f"{sp} cells": int(row[sp]) for sp in names})
        record.update({f"{sp} share": row[sp] / total for sp in names})
        record["species_mixing_sas"] = seurat_alignment_score(x[mine], species[mine], k=k)
        rows.append(record)
    columns = ["cell_type", "cells", *[f"{sp} cells" for sp in names], *[f"{sp} share" for sp in names]]
    return pd.DataFrame(rows, columns=[*columns, "species_mixing_sas"])


def anchor_tables(obs: pd.DataFrame, annotated: str = "cell_type_annotated") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ortholog anchors training used (obs ``anchor_label``, crossglue.model.anchors):
    per species and modality the nuclei anchored and, where the annotation exists, the share
    of anchored nuclei whose final label agrees; then the same per species and anchor label.
    Empty tables when no nucleus was anchored."""
    anchored = obs[obs["anchor_label"].notna()] if "anchor_label" in obs else obs.iloc[:0]
    if anchored.empty:
        return pd.DataFrame(), pd.DataFrame()
    species = anchored["species"].astype(str)
    labels = anchored["anchor_label"].astype(str)
    agrees = labels == anchored[annotated].astype(str) if annotated in anchored else None
    keys = obs.loc[obs["species"].astype(str).isin(set(species))]
    totals = keys.groupby([keys["species"].astype(str), keys["modality"].astype(str)]).size()
    counts = anchored.groupby([species, anchored["modality"].astype(str)]).size()
    summary = pd.DataFrame({"nuclei": totals, "anchored": counts.reindex(totals.index, fill_value=0)})
    summary["anchored share"] = summary["anchored"] / summary["nuclei"]
    per_type = pd.DataFrame({"anchored": anchored.groupby([species, labels]).size()})
    if agrees is not None:
        summary["agrees with annotation"] = agrees.groupby([species, anchored["modality"].astype(str)]).mean()
        per_type["agrees with annotation"] = agrees.groupby([species, labels]).mean()
    per_type = per_type.rename_axis(["species", "anchor_label"]).reset_index()
    return summary.rename_axis(["species", "modality"]).reset_index(), per_type


# --- the sections ---------------------------------------------------------------------------


def inputs_section(ctx: ReportContext) -> Section:
    i = ctx.inputs
    s = Section("inputs", "Inputs and QC per sample")
    s.text.append(
        "Cells kept and removed per sample by the QC thresholds of config.ingest and by doublet detection "
        "(config.ingest.doublets: n_doublets), and per-sample QC and doublet-score distributions "
        "(red lines: thresholds)."
    )
    s.tables = _tables({"QC summary per sample (results/ingest/qc_summary.tsv)": i.qc_summary})
    s.images = _images(i.qc_plots, lambda p: f"QC of sample {Path(p).stem}")
    return s


def peaks_section(ctx: ReportContext) -> Section:
    i = ctx.inputs
    s = Section("peaks", "Peaks, liftOver and element classes")
    s.text.append(
        "Union elements per species pair and class (conserved, <species>_accessible, <species>_sequence, ambiguous); "
        "liftOver outcome of every peak with the reason for each failure; peak widths."
    )
    s.tables = _tables(
        {
            "Element classes per species pair": i.consensus_summary,
            "liftOver success and failure reasons": i.liftover_reasons,
            "Peak widths": i.peak_widths,
        }
    )
    s.images = _images(i.consensus_plots)
    return s


def graph_section(ctx: ReportContext) -> Section:
    s = Section("graph", "Guidance graph")
    s.text.append(
        "Nodes and edges of the guidance graph by type (self, peak_gene, ortholog, element) and the "
        "degree distribution."
    )
    s.tables = _tables({"Graph summary (results/graph/summary.tsv)": ctx.inputs.graph_summary})
    s.images = _images(ctx.inputs.graph_plots)
    return s


def training_section(ctx: ReportContext) -> Section:
    s = Section("training", "Training curves")
    frames = {name: read_tsv(p) for name, p in ctx.inputs.training_logs.items() if given(p)}
    if frames:
        s.text.append(
            "Loss terms per epoch, one panel per loss family, for the main run and the ablation run (no "
            "element–element edges); dashed lines mark stage changes (pretrain → finetune). The training log "
            "holds the validation loss as one total (the VAE terms on held-out cells), shown in the last "
            "panel beside the training objective."
        )
        s.images.append(Image("Training curves per loss family", training_figure(frames), "training_curves.png"))
        last = pd.DataFrame([f.iloc[-1].rename(name) for name, f in frames.items()])
        s.tables.append(Table("Last epoch of each run", html_table(last.reset_index(names="run"))))
    else:
        s.text.append("No training log was given.")
    return s


UMAP_KEYS = {
    "species": "species",
    "modality": "modality",
    "cell_type_annotated": "cell type (given or transferred)",
    "leiden": "Leiden cluster",
}


def umap_section(ctx: ReportContext) -> Section:
    s = Section("umaps", "Joint embedding (UMAP)")
    cells = ctx.cells
    if cells is None:
        s.text.append("No annotated cells were given.")
        return s
    obs = cells.obs
    if "X_umap" not in cells.obsm:
        s.text.append(f"{ctx.inputs.cells} has no obsm['X_umap'], so no UMAP is drawn.")
        return s
    umap = np.asarray(cells.obsm["X_umap"])
    keys = [k for k in UMAP_KEYS if k in obs]
    s.text.append(
        f"{cells.n_obs} cells of every sample in X_glue, coloured by " + ", ".join(UMAP_KEYS[k] for k in keys) + "."
    )
    s.images.append(Image("UMAP of X_glue", umap_figure(umap, obs, keys, UMAP_KEYS), "umap.png"))
    if "species" in obs and "cell_type_annotated" in obs:
        s.images.append(
            Image(
                "UMAP per species: each species' cells coloured by cell type, the other species in grey",
                split_umap_figure(umap, obs, "species", "cell_type_annotated"),
                "umap_per_species.png",
            )
        )
    if "species" in obs and "cell_type_annotated" in obs and "X_glue" in cells.obsm:
        mixing = species_mixing_per_type(np.asarray(cells.obsm["X_glue"]), obs["species"], obs["cell_type_annotated"])
        s.tables.append(
            Table(
                "Species mixing per shared cell type (types with at least 10 cells in every species): the share of "
                "each species, and the Seurat alignment score of species among that type's cells alone in X_glue "
                f"({MIXING_NEIGHBOURS} neighbours; 1 = species as mixed as their numbers allow, 0 = every neighbour of "
                "the cell's own species). A type drawn as two blobs in the species UMAP with a low score is kept "
                "apart by species in the embedding; compare it with the ablation's metrics and with known species "
                "differences before calling it biology.",
                html_table(mixing, 100),
            )
        )
    if "species" in obs and "cell_type_annotated" in obs:
        counts = pd.crosstab(obs["cell_type_annotated"].astype(str), obs["species"].astype(str))
        s.tables.append(Table("Cells per annotated cell type and species", html_table(counts.reset_index(), 100)))
    if "cell_type_confidence" in obs and "species" in obs:
        conf = obs.groupby(obs["species"].astype(str))["cell_type_confidence"].describe()[
            ["count", "mean", "25%", "50%"]
        ]
        s.tables.append(Table("Label-transfer confidence per species", html_table(conf.reset_index())))
    return s


def metrics_section(ctx: ReportContext) -> Section:
    s = Section("metrics", "Integration metrics with the ablation")
    if not given(ctx.inputs.metrics):
        s.text.append("No metrics table was given.")
        return s
    table = read_tsv(ctx.inputs.metrics)
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


def correspondence_section(ctx: ReportContext) -> Section:
    """The swap check: where the embedding matches types across species, beside what their
    one2one-ortholog expression says; flagged pairs and clusters first."""
    s = Section("correspondence", "Cell-type correspondence across species (swap check)")
    i = ctx.inputs
    if not given(i.correspondence):
        s.text.append("No correspondence table was given.")
        return s
    pairs = read_tsv(i.correspondence)
    swaps = pairs[pairs["swap"].astype(bool)]
    s.text.append(
        "Left: the share of each type's nuclei whose neighbours in the joint embedding carry each "
        "type of the other species (SAMap-style mapping score). Right: the correlation of their "
        "pseudobulk expression over one2one orthologs. A pair the embedding matches whose ortholog "
        "correlation is not the best available is a possible swap (boxed red, listed below, and "
        "logged as a warning)."
    )
    if len(swaps):
        s.text.append(f"{len(swaps)} possible swap(s) flagged: check the table below before trusting the labels.")
    else:
        s.text.append("No swap flagged: every embedding match is also the best ortholog-expression match.")
    s.images += _images([i.correspondence_figure] if i.correspondence_figure else [], lambda _: "Type correspondence")
    matched = pairs[pairs["embedding_match"].astype(bool) | pairs["swap"].astype(bool)]
    s.tables.append(Table("Matched type pairs (results/analysis/correspondence.tsv)", html_table(matched)))
    if given(i.species_clusters):
        clusters = read_tsv(i.species_clusters)
        flagged = clusters[clusters["species_specific"].astype(bool) | clusters["label_mismatch"].astype(bool)]
        caption = (
            "Clusters with no counterpart in the other species (candidate species-specific types) or whose "
            "transferred label disagrees with their ortholog-expression partner (results/analysis/species_clusters.tsv)"
        )
        s.tables.append(Table(caption, html_table(flagged) if len(flagged) else "<p>None.</p>"))
    s.tables += _anchor_report_tables(ctx)
    return s


def _anchor_report_tables(ctx: ReportContext) -> list[Table]:
    """What tied the species together in training: the ortholog anchors (config.model.anchors)."""
    if ctx.cells is None:
        return []
    summary, per_type = anchor_tables(ctx.cells.obs)
    if summary.empty:
        text = "<p>No ortholog anchors: every species has given labels, or config.model.anchors.enabled is false.</p>"
        return [Table("Ortholog anchors", text)]
    caption = (
        "Ortholog anchors per species and modality: nuclei of species without given labels, labelled from "
        "one2one-ortholog expression by a classifier fitted on the labelled species, at probability of at least "
        "config.model.anchors.min_confidence "
        "(with their multiome ATAC partners); training used them as labels (obs['anchor_label'] of "
        "results/model/cells.h5ad). A low share anchored, or anchors that disagree with the final annotation, "
        "mean the species' expression matched the labelled species poorly."
    )
    return [
        Table(caption, html_table(summary)),
        Table("Ortholog anchors per species and anchor label", html_table(per_type, 100)),
    ]


def turnover_section(ctx: ReportContext) -> Section:
    """Motifs gained or lost in the species where an orthologous element gained accessibility."""
    s = Section("turnover", "Motif turnover between species")
    if not given(ctx.inputs.motif_turnover):
        s.text.append(
            "No motif turnover table was given (it needs both genomes' FASTA and exactly two species with ATAC)."
        )
        return s
    table = read_tsv(ctx.inputs.motif_turnover)
    significant = table[table["q_value"] <= ctx.max_q].sort_values("q_value")
    s.text.append(
        "For elements with orthologous sequence in both species, both sequences are scanned; a motif is gained "
        "(lost) in a species when it occurs in that species' sequence only (the other's only) where that species "
        f"gained accessibility. Fisher's test against the other orthologous elements, BH q ≤ {ctx.max_q} shown "
        f"({len(significant)} of {len(table)} tests)."
    )
    shown = significant if len(significant) else table.sort_values("p_value").head(10)
    caption = "Enriched motif gains and losses" if len(significant) else "No motif passes; the ten smallest p values"
    s.tables.append(Table(f"{caption} (results/analysis/motif_turnover.tsv)", html_table(shown)))
    return s


def regulatory_section(ctx: ReportContext) -> Section:
    s = Section("regulatory", "Regulatory inference")
    i = ctx.inputs
    if given(i.links):
        table = read_tsv(i.links)
        summary = table.groupby("species").agg(
            candidates=("q_value", "size"), significant=("q_value", lambda q: int((q <= ctx.max_q).sum()))
        )
        s.text.append(
            "Every candidate pair scored by co-variation of accessibility and expression across metacells "
            "and by co-divergence between species, tested against trans-chromosomal pairs; significant "
            f"= q ≤ {ctx.max_q} (BH over all candidates, weighted by the distance prior). Genes by symbol "
            "(feature id beside), elements with their coordinates in every species (0-based, half-open, as in BED)."
        )
        s.tables.append(Table("Candidate and significant links per species", html_table(summary.reset_index())))
        s.images.append(
            Image(
                "Link p values: observed against expected under the null (trans-chromosomal pairs)",
                pvalue_qq_figure({sp: g["p_value"].to_numpy() for sp, g in table.groupby("species")}),
                "link_calibration.png",
            )
        )
        top = table.sort_values(["q_value", "score"], ascending=[True, False]).head(15)
        top = top.assign(gene=[gene_html(ctx, g) for g in top["gene"]])
        top = top[["species", "gene", "element", *[c for c in top.columns if c not in ("species", "gene", "element")]]]
        s.tables.append(Table("Strongest links", html_table(with_coordinates(ctx, top), markup=("gene",))))
    s.tables += _tables({"Scores against planted links (AUROC, AUPRC)": i.link_evaluation})
    return s


def differential_section(ctx: ReportContext) -> Section:
    s = Section("differential", "Species-differential expression and accessibility")
    max_q = ctx.max_q
    s.text.append(
        f"DESeq2 on pseudobulks per donor × cell type (donors are the replicates); counts of features with q ≤ {max_q}."
    )
    for caption, path in (("Genes", ctx.inputs.differential_genes), ("Elements", ctx.inputs.differential_elements)):
        if given(path):
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
            if caption == "Genes" and "gene_a" in table and not sig.empty:
                top = sig.sort_values("q_value").head(10)
                top = top.assign(**{c: [gene_html(ctx, g) for g in top[c]] for c in ("gene_a", "gene_b") if c in top})
                top = top.drop(columns=[c for c in ("gene_name",) if c in top and not ctx.gene_symbols.empty])
                s.tables.append(
                    Table(
                        "Genes: most significant (symbol, feature id beside it)",
                        html_table(top, markup=("gene_a", "gene_b")),
                    )
                )
            if caption == "Elements" and "element" in table and not sig.empty:
                top = sig.sort_values("q_value").head(10)
                s.tables.append(
                    Table(
                        "Elements: most significant, with coordinates per species",
                        html_table(with_coordinates(ctx, top)),
                    )
                )
    return s


def modules_section(ctx: ReportContext) -> Section:
    s = Section("modules", "Species-specific regulatory modules")
    if not given(ctx.inputs.modules):
        s.text.append("No module table was given.")
        return s
    table = read_tsv(ctx.inputs.modules)
    top = ctx.top_modules
    s.text.append(
        f"{len(table)} modules: species-specific elements linked to genes changed in the same "
        "direction, grouped by shared motif (near-identical motifs that hit the same elements are one "
        "module: similar_motif_names); "
        f"the top {min(top, len(table))} by motif enrichment and size. Genes by symbol (feature id on hover), "
        "elements by id (coordinates in every species on hover)."
    )
    shown = table.sort_values(["motif_q", "n_elements"], ascending=[True, False], na_position="last").head(top)
    markup: list[str] = []
    if "genes" in shown:
        shown = shown.assign(
            genes=[_list_html(gene_html(ctx, g, id_beside=False) for g in _ids(v)) for v in shown["genes"]]
        )
        shown = shown.drop(columns=[c for c in ("gene_names",) if c in shown and not ctx.gene_symbols.empty])
        markup.append("genes")
    shown = shown.drop(columns=[c for c in ("similar_motifs",) if c in shown and "similar_motif_names" in shown])
    if "elements" in shown:
        shown = shown.assign(elements=[_list_html(element_html(ctx, e) for e in _ids(v)) for v in shown["elements"]])
        markup.append("elements")
    # the long lists last, so the scalar columns stay on screen
    shown = shown[[c for c in shown.columns if c not in markup] + markup]
    s.tables.append(
        Table("Top modules (results/analysis/species_modules.tsv)", html_table(shown, top, markup=tuple(markup)))
    )
    return s


def truth_section(ctx: ReportContext) -> Section:
    s = Section("truth", "Comparison with the simulated truth")
    i = ctx.inputs
    if not i.has_truth:
        s.text.append("No truth tables: this is not a simulated dataset, so nothing is compared with truth.")
        return s
    s.text.append(
        "The demo's simulator planted cell types, CRE–gene links and species-specific modules; these "
        "tables score the results against them."
    )
    if given(i.metrics):
        table = read_tsv(i.metrics)
        cols = [c for c in ("metric", "main_truth", "ablation_truth") if c in table]
        s.tables.append(Table("Metrics against true cell types", html_table(table[cols])))
    s.tables += _tables(
        {"Regulatory inference against planted links": i.link_evaluation, "Planted module recovery": i.module_recovery}
    )
    return s


# The report, in order. Extension point: append (id, builder) pairs here.
SECTIONS: list[tuple[str, Callable[[ReportContext], Section]]] = [
    ("inputs", inputs_section),
    ("peaks", peaks_section),
    ("graph", graph_section),
    ("training", training_section),
    ("umaps", umap_section),
    ("metrics", metrics_section),
    ("correspondence", correspondence_section),
    ("regulatory", regulatory_section),
    ("differential", differential_section),
    ("modules", modules_section),
    ("turnover", turnover_section),
    ("truth", truth_section),
]
SECTION_IDS = [sid for sid, _ in SECTIONS]
