"""The workflow as a user first meets it: the default config parses, lints and formats clean."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_runner import run_snakemake

REPO = Path(__file__).resolve().parents[1]


def test_dry_run_of_the_default_config_plans_every_stage():
    # --forceall: plan every job whatever a previous run left in results/
    proc = run_snakemake(REPO, None, "-n", "--forceall", "--quiet", "rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planned = proc.stdout + proc.stderr
    for rule in (
        "demo",
        "species_genes",
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
    proc = run_snakemake(REPO, None, "--lint")
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


# --- scripts: logging first, then the library ---------------------------------------------

SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))
# What a script may import before run() has sent logging to the rule's log: the standard
# library and the glue itself (which imports nothing else of the library but errors.py).
EARLY_IMPORTS_ALLOWED = set(sys.stdlib_module_names) | {"crossglue.snakemake_script"}


def _top_level_imports(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_imports_the_library_only_after_logging_is_set_up(script):
    tree = ast.parse(script.read_text(), filename=str(script))
    early = [
        n
        for n in _top_level_imports(tree)
        if n not in EARLY_IMPORTS_ALLOWED and n.split(".")[0] not in sys.stdlib_module_names
    ]
    assert early == [], f"{script.name}: import these inside main(), after run() set up logging"
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions == ["main"], f"{script.name}: one main(smk); helpers belong in the library"
    last = ast.unparse(tree.body[-1])
    assert last == "run(main, snakemake)", f"{script.name}: must end with run(main, snakemake), ends with {last!r}"


FAILING_IMPORT = """
import importlib.abc, runpy, sys
from types import SimpleNamespace

class NoLibrary(importlib.abc.MetaPathFinder):
    # every import beyond the standard library and the glue fails, as a broken env would
    def find_spec(self, name, path, target=None):
        glue = ("crossglue", "crossglue.snakemake_script", "crossglue.errors")
        if name.split(".")[0] in sys.stdlib_module_names or name in glue:
            return None
        raise ImportError(f"broken env: no {name}")

sys.meta_path.insert(0, NoLibrary())
fake = SimpleNamespace(log=[sys.argv[2]], threads=1, input=None, output=None, params=None, wildcards=None)
runpy.run_path(sys.argv[1], init_globals={"snakemake": fake}, run_name="__snakemake__")
"""


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_a_library_that_fails_to_import_is_reported_in_the_rule_log(script, tmp_path):
    log = tmp_path / "logs" / "rule.log"
    proc = subprocess.run(
        [sys.executable, "-c", FAILING_IMPORT, str(script), str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 1
    assert "ImportError: broken env: no " in log.read_text(), proc.stderr
