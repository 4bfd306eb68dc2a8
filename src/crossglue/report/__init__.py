"""The HTML report: one self-contained file (figures embedded as base64 PNG), built from the
outputs of every stage. ``build_report`` is the one entry point; sections live in
``sections.py``, figures in ``figures.py``, the layout in ``template.html.j2``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import jinja2

from crossglue.io_utils import atomic_path
from crossglue.report import sections as sec


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
    has_truth: bool = False


def build_sections(inputs: ReportInputs, max_q: float = 0.05, top_modules: int = 20) -> list[sec.Section]:
    """Every section, in report order."""
    cells = None
    if inputs.cells and Path(inputs.cells).is_file():
        import anndata as ad

        cells = ad.read_h5ad(inputs.cells)
    return [
        sec.inputs_section(inputs.qc_summary, inputs.qc_plots),
        sec.peaks_section(
            inputs.consensus_summary, inputs.liftover_reasons, inputs.peak_widths, inputs.consensus_plots
        ),
        sec.graph_section(inputs.graph_summary, inputs.graph_plots),
        sec.training_section(inputs.training_logs),
        sec.umap_section(cells),
        sec.metrics_section(inputs.metrics),
        sec.regulatory_section(inputs.links, inputs.link_evaluation, max_q),
        sec.differential_section(inputs.differential_genes, inputs.differential_elements, max_q),
        sec.modules_section(inputs.modules, top_modules),
        sec.truth_section(inputs.metrics, inputs.link_evaluation, inputs.module_recovery, inputs.has_truth),
    ]


def render_html(sections: list[sec.Section], species: list[str], title: str) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    try:
        version = metadata.version("crossglue")
    except metadata.PackageNotFoundError:
        version = "(source tree)"
    return env.get_template("template.html.j2").render(
        title=title,
        sections=sections,
        species=species,
        version=version,
        generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def build_report(
    inputs: ReportInputs,
    html_path: str | Path,
    figure_dir: str | Path | None = None,
    title: str = "crossglue report",
    max_q: float = 0.05,
    top_modules: int = 20,
) -> list[sec.Section]:
    """Write the self-contained report; with ``figure_dir``, also every figure drawn here as a
    PNG file (for Snakemake's own --report)."""
    sections = build_sections(inputs, max_q, top_modules)
    with atomic_path(html_path) as tmp:
        tmp.write_text(render_html(sections, inputs.species, title), encoding="utf-8")
    if figure_dir is not None:
        Path(figure_dir).mkdir(parents=True, exist_ok=True)
        drawn = {"training_curves.png", "umap.png", "metrics.png"}
        for section in sections:
            for image in section.images:
                if image.name in drawn:
                    with atomic_path(Path(figure_dir) / image.name) as tmp:
                        tmp.write_bytes(image.png)
    return sections


__all__ = ["ReportInputs", "build_report", "build_sections", "render_html"]
