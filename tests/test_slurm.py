"""Runs workflows through a real single-node SLURM cluster started on this machine.

Every job goes through `sbatch` via `--profile profiles/slurm` (the profile users run);
only what is specific to this one small test node is overridden on the command line.
Results must equal a local run's, and SLURM's accounting (`sacct`, backed by slurmdbd +
MariaDB as on a production cluster) must list each job as COMPLETED. Run with
`make test-slurm` (installs the Debian packages via .ci/install_slurm.sh, needs root).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from slurm_cluster import SlurmCluster, missing_programs, running_cluster

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SNAKEMAKE = VENV_BIN / "snakemake"
SLURM_PROFILE = REPO / "profiles" / "slurm"
LOCAL_PROFILE = REPO / "profiles" / "local"


@pytest.fixture(scope="module")
def cluster():
    missing = missing_programs()
    if missing:
        pytest.fail(f"SLURM test cluster needs {', '.join(missing)}: run `bash .ci/install_slurm.sh` (root)")
    if os.geteuid() != 0:
        pytest.fail("the SLURM test cluster runs its daemons as root (SlurmUser=root); run as root")
    with running_cluster(cpus=min(2, os.cpu_count() or 1)) as c:
        yield c


def cluster_overrides(cluster: SlurmCluster, args: list[str], cwd: Path) -> list[str]:
    """Command-line settings on top of profiles/slurm that only this test node needs.

    The node has few CPUs and little memory, and sbatch refuses a request no node can meet:
    thread counts are capped to its CPUs, and any job's memory (as the rule or the
    profile's set-resources ask, read from a dry run of ``args``) to what it has. A
    command-line --set-resources replaces the profile's, so the profile's entries are
    repeated here. The plugin's first status check comes after 2 s instead of 40, and
    failed jobs are not retried.
    """
    node_mem = cluster.memory_mb - 500
    base = [
        "--max-threads",
        str(cluster.cpus),
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--latency-wait",
        "5",
        "--retries",
        "0",
    ]
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    resources = {rule: dict(values) for rule, values in (profile.get("set-resources") or {}).items()}
    dry = run_snakemake([*args, "--profile", str(SLURM_PROFILE), *base, "--dry-run"], cwd, cluster, 120)
    for rule, block in re.findall(r"^rule (\S+):\n(.*?)(?=^\S|\Z)", dry, flags=re.M | re.S):
        mem = re.search(r"\bmem_mb=(\d+)", block)
        if mem and int(mem.group(1)) > node_mem:
            resources.setdefault(rule, {})["mem_mb"] = node_mem
    for values in resources.values():
        if values.get("mem_mb", 0) > node_mem:
            values["mem_mb"] = node_mem
    setting = [f"{rule}:{key}={value}" for rule, values in resources.items() for key, value in values.items()]
    return [*base, *(["--set-resources", *setting] if setting else [])]


def _snakemake_env(cluster: SlurmCluster) -> dict[str, str]:
    return dict(cluster.env, PATH=f"{VENV_BIN}{os.pathsep}{cluster.env.get('PATH', '')}")


def start_snakemake(args: list[str], cwd: Path, cluster: SlurmCluster) -> subprocess.Popen:
    """Start snakemake in the background (end it with :func:`finish_snakemake`)."""
    return subprocess.Popen(
        [str(SNAKEMAKE), *args],
        cwd=cwd,
        env=_snakemake_env(cluster),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def finish_snakemake(proc: subprocess.Popen, cluster: SlurmCluster, timeout: float) -> str:
    """Wait for a started snakemake, bounded by ``timeout`` s (then it and its jobs are
    killed); on failure or timeout the message carries its log tail and the daemons' logs."""
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and the local jobs it started
        log, _ = proc.communicate(timeout=30)
        pytest.fail(
            f"snakemake {' '.join(proc.args[1:])} ran past {timeout} s:\n{log[-4000:]}\n{cluster.log_tails(20)}"
        )
    if proc.returncode != 0:
        pytest.fail(
            f"snakemake {' '.join(proc.args[1:])} failed ({proc.returncode}):\n{log[-5000:]}\n{cluster.log_tails(20)}"
        )
    return log


def run_snakemake(args: list[str], cwd: Path, cluster: SlurmCluster, timeout: float) -> str:
    """Run snakemake against the test cluster, bounded by ``timeout`` s; its log."""
    return finish_snakemake(start_snakemake(args, cwd, cluster), cluster, timeout)


def steps_done(log: str) -> int:
    """The number of jobs snakemake ran, from its last 'N of M steps' line."""
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
    assert done, f"snakemake did not report finishing all its jobs:\n{log[-3000:]}"
    return int(done[-1][0])


def sbatch_jobs(log: str) -> int:
    """Jobs snakemake handed to SLURM: all it ran minus those it ran itself (`localrule`)."""
    return steps_done(log) - len(re.findall(r"^localrule \S+:$", log, flags=re.M))


def records_since(cluster: SlurmCluster, before: set[str]) -> pd.DataFrame:
    return pd.DataFrame([r for r in cluster.job_records() if r["JobID"] not in before])


TOY_SNAKEFILE = textwrap.dedent("""
    NUMBERS = {"a": 3, "b": 4}

    rule all:
        input:
            "sum.txt",
            expand("where/{s}.txt", s=NUMBERS),

    rule make:
        output:
            "num/{s}.txt",
        params:
            n=lambda wc: NUMBERS[wc.s],
        shell:
            "echo {params.n} > {output}"

    rule square:
        input:
            "num/{s}.txt",
        output:
            sq="sq/{s}.txt",
            where="where/{s}.txt",
        threads: 2
        resources:
            mem_mb=600,
        shell:
            "echo $(( $(cat {input}) ** 2 )) > {output.sq}; "
            "echo ${{SLURM_JOB_ID:-local}} ${{SLURM_CPUS_PER_TASK:-none}} > {output.where}"

    rule gather:
        input:
            expand("sq/{s}.txt", s=NUMBERS),
        output:
            "sum.txt",
        shell:
            "awk '{{s += $1}} END {{print s}}' {input} > {output}"
    """)


def test_toy_workflow_jobs_run_through_sbatch_and_sacct_records_them(cluster, tmp_path):
    """A three-rule workflow: same results as locally; each job is a COMPLETED SLURM job
    that got the rule's threads and memory."""
    workdirs = {mode: tmp_path / mode for mode in ("local", "slurm")}
    for wd in workdirs.values():
        wd.mkdir()
        (wd / "Snakefile").write_text(TOY_SNAKEFILE)
    run_snakemake(["--profile", str(LOCAL_PROFILE), "--cores", "2"], workdirs["local"], cluster, 60)

    before = {r["JobID"] for r in cluster.job_records()}
    overrides = cluster_overrides(cluster, [], workdirs["slurm"])
    log = run_snakemake(["--profile", str(SLURM_PROFILE), *overrides], workdirs["slurm"], cluster, 150)

    for name in ("sum.txt", "sq/a.txt", "sq/b.txt", "num/a.txt"):
        assert (workdirs["slurm"] / name).read_text() == (workdirs["local"] / name).read_text(), name
    assert (workdirs["slurm"] / "sum.txt").read_text().strip() == "25"
    assert (workdirs["local"] / "where" / "a.txt").read_text().split() == ["local", "none"]

    jobs = records_since(cluster, before)
    assert len(jobs) == sbatch_jobs(log) == 5, jobs  # make a/b, square a/b, gather; `all` is local
    assert set(jobs["State"]) == {"COMPLETED"}, jobs
    assert set(jobs["ExitCode"]) == {"0:0"}, jobs
    for s in ("a", "b"):
        job_id, cpus = (workdirs["slurm"] / "where" / f"{s}.txt").read_text().split()
        assert job_id in set(jobs["JobID"]), (s, job_id, jobs)
        assert cpus == "2"  # threads: 2 became --cpus-per-task=2
        alloc = cluster.run("sacct", "-X", "-n", "-P", "-j", job_id, "--format=AllocCPUS,ReqMem").stdout.split("|")
        assert [alloc[0], alloc[1].strip()] == ["2", "600M"], alloc


def test_failing_job_is_reported_by_snakemake_and_recorded_failed_by_sacct(cluster, tmp_path):
    """Status checks really read SLURM: a rule exiting 3 fails the run and sacct records
    its job as FAILED."""
    (tmp_path / "Snakefile").write_text('rule broken:\n    output: "never.txt"\n    shell: "echo started; exit 3"\n')
    before = {r["JobID"] for r in cluster.job_records()}
    env = dict(cluster.env, PATH=f"{VENV_BIN}{os.pathsep}{cluster.env.get('PATH', '')}")
    proc = subprocess.run(
        [str(SNAKEMAKE), "--profile", str(SLURM_PROFILE), *cluster_overrides(cluster, [], tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert "Error in rule broken" in log, log[-3000:]
    assert not (tmp_path / "never.txt").exists()
    jobs = records_since(cluster, before)
    assert jobs["State"].tolist() == ["FAILED"], jobs
    job_id = jobs["JobID"].iloc[0]
    # Batch script and its srun step (each a snakemake jobstep, exiting 1 when the rule fails).
    steps = cluster.run("sacct", "-n", "-P", "-j", job_id, "--format=JobID,State").stdout.split()
    assert sorted(steps) == [f"{job_id}.0|FAILED", f"{job_id}.batch|FAILED", f"{job_id}|FAILED"], steps
    # The rule's shell ran inside that job: its output is in the job's SLURM log, kept on failure.
    assert "started" in (tmp_path / "logs" / "slurm" / "rule_broken" / f"{job_id}.log").read_text()


# --- the pipeline's tiny demo --------------------------------------------------------------


def _compare_h5ad(a: Path, b: Path) -> None:
    import anndata as ad
    import scipy.sparse as sp

    x, y = ad.read_h5ad(a), ad.read_h5ad(b)
    pd.testing.assert_frame_equal(x.obs, y.obs, check_exact=False, rtol=1e-6, obj=f"{a.name} obs")
    pd.testing.assert_frame_equal(x.var, y.var, check_exact=False, rtol=1e-6, obj=f"{a.name} var")
    assert sorted(x.obsm) == sorted(y.obsm), f"{a.name} obsm keys"
    for key in x.obsm:  # embeddings (X_glue, X_umap): same seed, same CPU arithmetic
        np.testing.assert_allclose(x.obsm[key], y.obsm[key], rtol=1e-6, atol=1e-9, err_msg=f"{a.name} {key}")
    assert (x.X is None) == (y.X is None), f"{a.name}: X in one run only"
    if x.X is None:  # cells.h5ad / features.h5ad hold embeddings only
        return
    xa = x.X.toarray() if sp.issparse(x.X) else np.asarray(x.X)
    ya = y.X.toarray() if sp.issparse(y.X) else np.asarray(y.X)
    np.testing.assert_allclose(xa, ya, rtol=1e-6, atol=1e-9, err_msg=f"{a.name} X")


def _compare_tsv(a: Path, b: Path) -> None:
    # wall-clock columns (training_log.tsv's per-epoch seconds) differ between any two runs
    x, y = (
        pd.read_csv(p, sep="\t", comment=None, low_memory=False).drop(columns="seconds", errors="ignore")
        for p in (a, b)
    )
    pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-6, obj=a.name)


def test_tiny_demo_through_slurm(cluster, tmp_path):
    """The pipeline on the tiny simulated demo: every job via sbatch, results equal to a
    local run's (h5ad obs/var/X and TSV contents), every job COMPLETED in sacct."""
    if not (REPO / "Snakefile").exists():
        pytest.skip("no Snakefile in this checkout")
    from crossglue.simulate import simulate

    simulate(tmp_path / "demo", preset="tiny", seed=0)
    no_demo_rule = tmp_path / "no_demo_rule.yaml"  # inputs exist already; nothing to simulate
    # the demo is generated above; a short training keeps the test at a few minutes
    no_demo_rule.write_text("demo:\n  enabled: false\nmodel:\n  train:\n    max_epochs: 15\n    patience: 5\n")
    common = [
        "--snakefile",
        str(REPO / "Snakefile"),
        "--configfile",
        str(tmp_path / "demo" / "config.yaml"),
        str(no_demo_rule),
    ]
    workdirs = {mode: tmp_path / mode for mode in ("local", "slurm")}
    for wd in workdirs.values():
        wd.mkdir()

    # The local run goes on while the SLURM run mostly waits between status checks. The
    # SLURM run took 9 min of 2 cores beside the local one on an idle machine (29 jobs, each
    # waiting for a status check): 20 min leaves room on a loaded CI machine.
    local = start_snakemake([*common, "--profile", str(LOCAL_PROFILE), "--cores", "2"], workdirs["local"], cluster)
    try:
        before = {r["JobID"] for r in cluster.job_records()}
        overrides = cluster_overrides(cluster, common, workdirs["slurm"])
        slurm_log = run_snakemake(
            [*common, "--profile", str(SLURM_PROFILE), *overrides], workdirs["slurm"], cluster, 1200
        )
    except BaseException:
        os.killpg(local.pid, signal.SIGKILL)  # the SLURM run failed: stop the local one now
        local.communicate(timeout=30)
        raise
    local_log = finish_snakemake(local, cluster, timeout=1200)

    results = {
        mode: sorted(p.relative_to(wd) for p in (wd / "results").rglob("*") if p.is_file())
        for mode, wd in workdirs.items()
    }
    assert results["local"], "the local run wrote nothing under results/"
    assert results["slurm"] == results["local"]
    compared = 0
    for rel in results["local"]:
        a, b = workdirs["local"] / rel, workdirs["slurm"] / rel
        if rel.suffix == ".h5ad":
            _compare_h5ad(a, b)
        elif rel.suffix == ".tsv":
            _compare_tsv(a, b)
        else:
            continue
        compared += 1
    assert compared > 0, f"no .h5ad or .tsv among the results: {results['local']}"

    jobs = records_since(cluster, before)
    assert steps_done(slurm_log) == steps_done(local_log)
    assert len(jobs) == sbatch_jobs(slurm_log) > 0, jobs
    assert set(jobs["State"]) == {"COMPLETED"}, jobs
    assert set(jobs["ExitCode"]) == {"0:0"}, jobs
