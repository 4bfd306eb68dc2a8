"""The HTML report: one self-contained file (figures embedded as base64 PNG), built from the
outputs of every stage. ``build_report`` is the one entry point; sections live in
``sections.py`` (the list ``SECTIONS``), their shared inputs and lookups in ``context.py``,
figures in ``figures.py``, the layout in ``template.html.j2``.
"""

from __future__ import annotations

import datetime as _dt
from importlib import metadata
from pathlib import Path

import jinja2

from crossglue.errors import CrossglueError
from crossglue.io_utils import atomic_path
from crossglue.report import sections as sec
from crossglue.report.context import ReportContext, ReportInputs


def build_sections(inputs: ReportInputs, max_q: float = 0.05, top_modules: int = 20) -> list[sec.Section]:
    """Every section of ``sections.SECTIONS``, in report order, sharing one context."""
    ctx = ReportContext(inputs, max_q=max_q, top_modules=top_modules)
    built = []
    for sid, builder in sec.SECTIONS:
        section = builder(ctx)
        if section.id != sid:
            raise CrossglueError(
                f"report: section builder {builder.__name__} returned id {section.id!r}, expected {sid!r}"
            )
        built.append(section)
    return built


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


__all__ = ["ReportContext", "ReportInputs", "build_report", "build_sections", "render_html"]
