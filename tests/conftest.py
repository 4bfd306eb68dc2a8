"""Shared fixtures: where the real reference files live, and skipping when they are absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the clone; CI has it, a user's clone does not."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real reference files not found at {SHARED_DATA} (only CI and developer machines have ../shared/data)")
    return SHARED_DATA


DEMO_OUTPUTS = ("results/report/report.html", "results/analysis/species_modules.tsv", "demo/truth/cells.tsv")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A finished pipeline run on the bundled demo, as ``make demo`` makes it.

    ``$CROSSGLUE_DEMO_RUN`` names one that already exists (``CROSSGLUE_DEMO_RUN=.`` after
    ``make demo``); otherwise the whole workflow runs here with the repository's config,
    in a scratch directory (about 7 minutes on 2 cores).
    """
    given = os.environ.get("CROSSGLUE_DEMO_RUN")
    if given:
        root = Path(given).resolve()
        missing = [p for p in DEMO_OUTPUTS if not (root / p).is_file()]
        if missing:
            pytest.fail(f"CROSSGLUE_DEMO_RUN={given}: not a finished demo run, missing {missing}")
        return root
    root = tmp_path_factory.mktemp("demo_run")
    (root / "config").mkdir()
    for name in ("config.yaml", "samples.tsv"):
        shutil.copy(REPO / "config" / name, root / "config" / name)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(root),
         "--configfile", str(root / "config/config.yaml"), "--cores", "2"],  # fmt: skip
        capture_output=True, text=True, timeout=3600,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return root


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium for rendering reports (``.ci/install_chromium.sh`` installs it)."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("chromium is not installed (run .ci/install_chromium.sh; Debian package 'chromium')")
