"""Settings of the graph stage (config key ``graph``), built from the schema's section."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from crossglue.config import section_settings, settings_from
from crossglue.graph.element_edges import ElementParams
from crossglue.graph.orthologs import OrthologParams
from crossglue.graph.peak_gene import CorrelationParams, PeakGeneParams

_SECTIONS = {
    "peak_gene": PeakGeneParams,
    "correlation": CorrelationParams,
    "orthologs": OrthologParams,
    "element_weights": ElementParams,
}


@dataclass(frozen=True)
class GraphSettings:
    """Everything under ``config["graph"]``; defaults follow DESIGN.md (in the schema)."""

    peak_gene: PeakGeneParams = field(default_factory=PeakGeneParams)
    correlation: CorrelationParams = field(default_factory=CorrelationParams)
    orthologs: OrthologParams = field(default_factory=OrthologParams)
    element_weights: ElementParams = field(default_factory=ElementParams)
    element_edges: bool = True


def graph_settings(config: Mapping | None) -> GraphSettings:
    """:class:`GraphSettings` from ``config["graph"]``; a typo or a value out of range is named
    by key (the schema's check, the same for notebook callers and pipeline runs)."""
    values = section_settings("graph", dict(config or {}))
    parts = {name: settings_from(cls, f"graph.{name}", values[name]) for name, cls in _SECTIONS.items()}
    enabled = bool(values["element_edges"])
    parts["element_weights"] = dataclasses.replace(parts["element_weights"], enabled=enabled)
    return GraphSettings(**parts, element_edges=enabled)
