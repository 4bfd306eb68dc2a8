"""The schema is the one home of every default: each settings dataclass has one field per key
of its schema section, with the same default (keys a rule reads, or switches set elsewhere,
are named)."""

from __future__ import annotations

import dataclasses

import pytest

from crossglue.analysis.modules import ModuleSettings
from crossglue.analysis.turnover import TurnoverSettings
from crossglue.config import schema_defaults, schema_section
from crossglue.errors import CrossglueError
from crossglue.graph.element_edges import ElementParams
from crossglue.graph.orthologs import OrthologParams
from crossglue.graph.peak_gene import CorrelationParams, PeakGeneParams
from crossglue.ingest.doublets import DoubletSettings
from crossglue.model import TrainConfig
from crossglue.model.anchors import AnchorSettings
from crossglue.model.stage import WORKFLOW_KEYS, ModelSettings
from crossglue.peaks.calling import PeakParams


def _fields(cls) -> dict:
    return {
        f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
        for f in dataclasses.fields(cls)
    }


@pytest.mark.parametrize(
    ("cls", "section", "elsewhere"),
    [
        (TrainConfig, "model.train", ()),
        (AnchorSettings, "model.anchors", ()),
        (ModelSettings, "model", WORKFLOW_KEYS),
        (PeakParams, "peaks", ()),
        (PeakGeneParams, "graph.peak_gene", ()),
        (CorrelationParams, "graph.correlation", ()),
        (OrthologParams, "graph.orthologs", ()),
        (ElementParams, "graph.element_weights", ()),
        (ModuleSettings, "analysis.modules", ()),
        (TurnoverSettings, "analysis.turnover", ()),
        (DoubletSettings, "ingest.doublets", ()),
    ],
)
def test_settings_fields_and_defaults_are_the_schema(cls, section, elsewhere):
    keys = set(schema_section(section)["properties"]) - set(elsewhere)
    fields = _fields(cls)
    if cls is ElementParams:  # set from the switch graph.element_edges
        fields.pop("enabled")
    assert set(fields) == keys
    defaults = schema_defaults(section)
    for name, value in fields.items():
        expected = {"train": TrainConfig(), "anchors": AnchorSettings()}.get(name, defaults.get(name))
        assert value == expected, name
    for name in keys:
        assert schema_section(section)["properties"][name].get("description"), f"{section}.{name} needs a description"


def test_model_settings_from_config_reach_the_training_plan():
    settings = ModelSettings.from_config({"seed": 3, "threads": 2, "ablation": True, "train": {"lam_align": 0.1}})
    assert settings.seed == 3 and settings.train.lam_align == 0.1 and settings.train.lr == 0.002


def test_unknown_training_key_is_named():
    with pytest.raises(CrossglueError, match="'model.train.lam_algin' is not a known key"):
        ModelSettings.from_config({"train": {"lam_algin": 0.1}})
