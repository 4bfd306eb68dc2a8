"""Settings of the analysis and report stages (config keys ``analysis`` and ``report``).

Defaults live here, next to the code that uses them; ``analysis_settings`` fills them in and
rejects unknown keys by name, so a typo stops the run while the workflow is parsed.
"""

from __future__ import annotations

import copy
from typing import Any

from crossglue.errors import CrossglueError

ANALYSIS_DEFAULTS: dict[str, Any] = {
    # Folder of simulator truth tables; null = the demo's truth when demo.enabled, else none.
    "truth_dir": None,
    # MEME motif file for module grouping (e.g. JASPAR); null = the demo's motifs.meme when
    # demo.enabled, else modules are grouped by species and cell type only.
    "motifs": None,
    "annotation": {
        "label_key": "cell_type",
        "n_neighbors": 15,
        "resolution": 1.0,
        "transfer_k": 30,
        "min_confidence": 0.5,
        "seed": 0,
    },
    "metrics": {"k": 15, "n_pcs": 30, "seed": 0},
    "regulatory": {"n_null": 20, "seed": 0, "max_q": 0.05},
    "differential": {"min_cells": 10, "min_donors": 2, "min_total_count": 10},
    "modules": {
        "link_p": 0.1,
        "de_q": 0.05,
        "da_q": 0.05,
        "min_log2fc": 1.0,
        "motif_q": 0.05,
        "motif_p": 1e-5,
        "min_elements": 3,
    },
}

REPORT_DEFAULTS: dict[str, Any] = {"title": "crossglue report", "top_modules": 20}


def _merge(defaults: dict, given: dict | None, where: str) -> dict:
    given = given or {}
    if not isinstance(given, dict):
        raise CrossglueError(f"config {where}: expected a mapping, got {type(given).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise CrossglueError(f"config {where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(defaults)}")
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if isinstance(defaults[key], dict):
            out[key] = _merge(defaults[key], value, f"{where}.{key}")
        else:
            out[key] = value
    return out


def analysis_settings(cfg: dict | None) -> dict:
    """``config["analysis"]`` with defaults filled in (unknown keys are an error)."""
    return _merge(ANALYSIS_DEFAULTS, cfg, "analysis")


def report_settings(cfg: dict | None) -> dict:
    """``config["report"]`` with defaults filled in (unknown keys are an error)."""
    return _merge(REPORT_DEFAULTS, cfg, "report")
