"""The one way the tests run the workflow: Snakemake on this repository's Snakefile
(:func:`run_snakemake`, :func:`snakemake_command` for a run started in the background), and
a rule's script without Snakemake (:func:`run_script`), as Snakemake calls it."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"


def snakemake_command(work: Path, config: Path | None, *args: str, cores: int = 1) -> list[str]:
    """``python -m snakemake`` on the repository's Snakefile in ``work`` with ``config``
    (None: the config the Snakefile names), then ``args`` (targets first: ``--configfile``
    and ``--allowed-rules`` take every word that follows them)."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work)]
    if config is not None:
        command += ["--configfile", str(config)]
    return [*command, "--cores", str(cores), *args]


def run_snakemake(
    work: Path, config: Path | None, *args: str, cores: int = 2, timeout: float = 1500
) -> subprocess.CompletedProcess:
    """Run Snakemake to the end (see :func:`snakemake_command`); its output captured as text."""
    return subprocess.run(
        snakemake_command(work, config, *args, cores=cores), capture_output=True, text=True, timeout=timeout
    )


def planned_rules(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from a dry run's job table."""
    table = re.search(r"Job stats:\njob\s+count\n[-\s]+\n(.*?)\ntotal", proc.stdout + proc.stderr, re.S)
    if table is None:
        return {}
    return {name: int(n) for name, n in re.findall(r"^(\w+)\s+(\d+)$", table.group(1), re.M) if name != "all"}


def run_script(name: str, log: str | Path | list, **smk) -> None:
    """Run ``workflow/scripts/<name>`` in this process with a stand-in ``snakemake`` object
    (``input``, ``output``, ``params``, ``wildcards`` as dicts; ``log`` a path or [path]);
    sys.stderr, which the script sends to its log, is restored afterwards."""
    fake = SimpleNamespace(
        input=SimpleNamespace(**smk["input"]),
        output=SimpleNamespace(**smk["output"]),
        params=SimpleNamespace(**smk.get("params", {})),
        log=[str(p) for p in log] if isinstance(log, list) else [str(log)],
        threads=smk.get("threads", 1),
        wildcards=SimpleNamespace(**smk.get("wildcards", {})),
    )
    stderr = sys.stderr
    try:
        runpy.run_path(str(SCRIPTS / name), init_globals={"snakemake": fake}, run_name="__snakemake__")
    finally:
        sys.stderr = stderr
