"""Settings of the graph stage (config key ``graph``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from crossglue.errors import CrossglueError
from crossglue.graph.element_edges import ElementParams
from crossglue.graph.orthologs import OrthologParams
from crossglue.graph.peak_gene import CorrelationParams, PeakGeneParams


@dataclass(frozen=True)
class GraphSettings:
    """Everything under ``config["graph"]``; defaults follow DESIGN.md."""

    peak_gene: PeakGeneParams = field(default_factory=PeakGeneParams)
    correlation: CorrelationParams = field(default_factory=CorrelationParams)
    orthologs: OrthologParams = field(default_factory=OrthologParams)
    element_weights: ElementParams = field(default_factory=ElementParams)
    element_edges: bool = True


def graph_settings(config: Mapping | None) -> GraphSettings:
    """Build :class:`GraphSettings` from ``config["graph"]``, naming any unknown or mistyped key."""
    config = dict(config or {})
    sections = {f.name: f for f in dataclasses.fields(GraphSettings)}
    unknown = sorted(set(config) - set(sections))
    if unknown:
        raise CrossglueError(
            f"config key 'graph.{unknown[0]}' is not a known key; expected one of: " + ", ".join(sections)
        )
    values = {}
    for name, value in config.items():
        default = sections[name].default_factory() if callable(sections[name].default_factory) else None
        if default is None:
            if not isinstance(value, bool):
                raise CrossglueError(f"config key 'graph.{name}': {value!r} is not true or false")
            values[name] = value
            continue
        if not isinstance(value, Mapping):
            raise CrossglueError(f"config key 'graph.{name}': expected a mapping of settings, got {value!r}")
        known = {f.name: f for f in dataclasses.fields(default)}
        bad = sorted(set(value) - set(known))
        if bad:
            raise CrossglueError(
                f"config key 'graph.{name}.{bad[0]}' is not a known key; expected one of: " + ", ".join(known)
            )
        for key, item in value.items():
            expected = type(getattr(default, key))
            ok = isinstance(item, expected) or (
                expected is float and isinstance(item, int) and not isinstance(item, bool)
            )
            if not ok or (expected is not bool and isinstance(item, bool)):
                raise CrossglueError(f"config key 'graph.{name}.{key}': {item!r} is not a {expected.__name__}")
            if expected in (int, float) and item < 0:
                raise CrossglueError(f"config key 'graph.{name}.{key}': {item!r} must not be negative")
        values[name] = dataclasses.replace(default, **value)
    if "enabled" in config.get("element_weights", {}):
        raise CrossglueError("config key 'graph.element_weights.enabled': use the switch 'graph.element_edges'")
    settings = GraphSettings(**values)
    settings = dataclasses.replace(
        settings, element_weights=dataclasses.replace(settings.element_weights, enabled=settings.element_edges)
    )
    for key in ("conserved", "accessible", "sequence", "ambiguous"):
        if getattr(settings.element_weights, key) > 1:
            raise CrossglueError(f"config key 'graph.element_weights.{key}': weights must lie in [0, 1]")
    for key in ("one2one", "many", "low_confidence"):
        if getattr(settings.orthologs, key) > 1:
            raise CrossglueError(f"config key 'graph.orthologs.{key}': must lie in [0, 1]")
    for key, lowest in (("peak_gene.decay_scale", 1e-9), ("correlation.k", 2), ("correlation.n_metacells", 3)):
        section, name = key.split(".")
        if getattr(getattr(settings, section), name) < lowest:
            raise CrossglueError(f"config key 'graph.{key}': must be at least {lowest:g}")
    return settings
