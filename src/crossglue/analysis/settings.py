"""Settings of the analysis and report stages (config keys ``analysis`` and ``report``).

Defaults live in the schema; these fill them in and name any unknown or out-of-range key,
so a typo stops the run while the workflow is parsed.
"""

from __future__ import annotations

from crossglue.config import section_settings


def analysis_settings(cfg: dict | None) -> dict:
    """``config["analysis"]`` with defaults filled in (unknown keys are an error)."""
    return section_settings("analysis", cfg)


def report_settings(cfg: dict | None) -> dict:
    """``config["report"]`` with defaults filled in (unknown keys are an error)."""
    return section_settings("report", cfg)
