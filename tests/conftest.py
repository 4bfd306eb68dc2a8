"""Shared fixtures: where the real reference files live, and skipping when they are absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from workflow_runner import run_snakemake

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the clone; CI has it, a user's clone does not."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real reference files not found at {SHARED_DATA} (only CI and developer machines have ../shared/data)"
        )
    return SHARED_DATA


RUN_OUTPUTS = ("results/report/report.html", "results/analysis/species_modules.tsv", "demo/truth/cells.tsv")


def pipeline_run(tmp_path_factory, preset: str, env: str) -> Path:
    """A finished whole-pipeline run of the repository's config on a simulator preset.

    ``$<env>`` names one that already exists (e.g. ``CROSSGLUE_DEMO_RUN=.`` after ``make demo``);
    otherwise the workflow runs here in a scratch directory (minutes on 2 cores).
    """
    import yaml

    given = os.environ.get(env)
    if given:
        root = Path(given).resolve()
        missing = [p for p in RUN_OUTPUTS if not (root / p).is_file()]
        if missing:
            pytest.fail(f"{env}={given}: not a finished {preset} run, missing {missing}")
        return root
    root = tmp_path_factory.mktemp(f"{preset}_run")
    (root / "config").mkdir()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"]["preset"] = preset
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(REPO / "config" / "samples.tsv", root / "config" / "samples.tsv")
    proc = run_snakemake(root, root / "config/config.yaml", timeout=3 * 3600)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    missing = [p for p in RUN_OUTPUTS if not (root / p).is_file()]
    assert not missing, f"the {preset} run finished without {missing}"
    return root


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A finished pipeline run on the bundled demo, as ``make demo`` makes it
    (``$CROSSGLUE_DEMO_RUN`` names an existing one)."""
    return pipeline_run(tmp_path_factory, "demo", "CROSSGLUE_DEMO_RUN")


@pytest.fixture(scope="session")
def realistic_run(tmp_path_factory) -> Path:
    """A finished run on ``demo.preset: realistic`` (``$CROSSGLUE_REALISTIC_RUN`` names an existing one)."""
    return pipeline_run(tmp_path_factory, "realistic", "CROSSGLUE_REALISTIC_RUN")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium for rendering reports (``.ci/install_chromium.sh`` installs it)."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("chromium is not installed (run .ci/install_chromium.sh; Debian package 'chromium')")
