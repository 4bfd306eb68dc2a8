"""The workflow as a user first meets it: the default config parses, lints and formats clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _snakemake(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_dry_run_of_the_default_config_plans_every_stage():
    # --forceall: plan every job whatever a previous run left in results/
    proc = _snakemake("-n", "--forceall", "--quiet", "rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planned = proc.stdout + proc.stderr
    for rule in (
        "demo",
        "ingest_sample",
        "merge_species",
        "call_peaks",
        "lift_peaks",
        "union_elements",
        "count_elements",
        "peak_gene_links",
        "ortholog_links",
        "guidance_graph",
        "train_model",
        "annotate_cells",
        "integration_metrics",
        "regulatory_links",
        "species_differential",
        "species_modules",
        "report",
    ):
        assert rule in planned, f"rule {rule} missing from the plan:\n{planned}"


def test_lint_reports_nothing():
    proc = _snakemake("--lint")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Lints for" not in output, output


def test_snakefmt_check_is_clean():
    files = ["Snakefile", *sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "snakefmt"), "--check", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
