"""Benchmark: crossglue liftover vs CrossMap region mode vs pyliftover on the real hg19ToHg38 chain.

500,000 random 500 bp intervals (seeded, genome-wide, proportional to chromosome size).
Each tool runs in its own subprocess so that its peak resident memory (``ru_maxrss``) is its
own. Timed: chain loading + lifting (in memory), and for the two file-based tools also the
whole BED-file -> BED-file run. Agreement is measured on the lifted coordinates.

The command-line table runs ``crossglue liftover`` and ``CrossMap region`` as whole
processes (interpreter start, imports, reading, lifting, writing), alternating the two so
both see the same machine load; wall and CPU seconds (user + system) and peak memory come
from ``os.wait4``. Both get a bytecode cache, as installed tools have.

Run: ``.venv/bin/python bench/bench_liftover.py [--n 500000] [--chain PATH] [--cli-only]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHAIN = REPO.parent / "shared" / "data" / "chains" / "hg19ToHg38.over.chain.gz"


def make_intervals(chain: Path, n: int, width: int, seed: int) -> pd.DataFrame:
    from crossglue.genomics.chain import read_chains

    header = read_chains(chain).header
    sizes = header.drop_duplicates("t_name").set_index("t_name")["t_size"]
    sizes = sizes[sizes > 10 * width]
    rng = np.random.default_rng(seed)
    chrom = rng.choice(sizes.index.to_numpy(), n, p=(sizes / sizes.sum()).to_numpy())
    start = (rng.random(n) * (sizes[chrom].to_numpy() - width)).astype(np.int64)
    return pd.DataFrame({"chrom": chrom, "start": start, "end": start + width, "name": [f"i{k}" for k in range(n)]})


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(chain: Path, bed: Path, work: Path) -> dict:
    from crossglue.cli import main, read_bed
    from crossglue.genomics.chain import read_chains
    from crossglue.genomics.liftover import lift_intervals

    intervals = read_bed(bed)
    t_lift = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        result = lift_intervals(intervals, read_chains(chain), min_match=0.95)
        t_lift.append(time.perf_counter() - t0)
    peak_lift = _peak_mib()
    result.mapped[["name", "chrom", "start", "end"]].to_csv(work / "ours.tsv", sep="\t", index=False)
    t0 = time.perf_counter()
    main(["liftover", str(bed), str(chain), str(work / "ours.bed"), str(work / "ours.unmapped")])
    t_file = time.perf_counter() - t0
    return {
        "lift_s": min(t_lift),
        "lift_median_s": float(np.median(t_lift)),
        "file_s": t_file,
        "peak_mib": _peak_mib(),
        "peak_lift_mib": peak_lift,
        "mapped": len(result.mapped),
    }


def run_crossmap(chain: Path, bed: Path, work: Path) -> dict:
    import logging

    from cmmodule.mapregion import crossmap_region_file
    from cmmodule.utils import map_coordinates, read_chain_file

    logging.disable(logging.CRITICAL)
    intervals = pd.read_csv(bed, sep="\t", header=None, names=["chrom", "start", "end", "name"])
    t_lift = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        mapping, _, _ = read_chain_file(str(chain))
        hits = [
            map_coordinates(mapping, c, s, e, "+")
            for c, s, e in zip(intervals["chrom"].tolist(), intervals["start"].tolist(), intervals["end"].tolist())
        ]
        t_lift.append(time.perf_counter() - t0)  # raw segment lookups, before CrossMap's ratio/merging step
        del hits
    t0 = time.perf_counter()
    mapping, _, _ = read_chain_file(str(chain))
    crossmap_region_file(mapping, str(bed), str(work / "crossmap.bed"), min_ratio=0.95)
    t_file = time.perf_counter() - t0
    out = pd.read_csv(work / "crossmap.bed", sep="\t", header=None, names=["chrom", "start", "end", "name", "ratio"])
    out[["name", "chrom", "start", "end"]].to_csv(work / "crossmap.tsv", sep="\t", index=False)
    return {
        "lift_s": min(t_lift),
        "lift_median_s": float(np.median(t_lift)),
        "file_s": t_file,
        "peak_mib": _peak_mib(),
        "mapped": len(out),
    }


def run_pyliftover(chain: Path, bed: Path, work: Path) -> dict:
    from pyliftover import LiftOver

    intervals = pd.read_csv(bed, sep="\t", header=None, names=["chrom", "start", "end", "name"])
    t_lift = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        lo = LiftOver(str(chain))
        rows = []
        for name, c, s, e in zip(
            intervals["name"].tolist(),
            intervals["chrom"].tolist(),
            intervals["start"].tolist(),
            intervals["end"].tolist(),
        ):
            a, b = lo.convert_coordinate(c, s), lo.convert_coordinate(c, e - 1)
            if a and b and len(a) == 1 and len(b) == 1 and a[0][0] == b[0][0] and a[0][2] == b[0][2]:
                lo_pos, hi_pos = sorted((a[0][1], b[0][1]))
                rows.append((name, a[0][0], lo_pos, hi_pos + 1))
        t_lift.append(time.perf_counter() - t0)
    pd.DataFrame(rows, columns=["name", "chrom", "start", "end"]).to_csv(work / "pyliftover.tsv", sep="\t", index=False)
    return {
        "lift_s": min(t_lift),
        "lift_median_s": float(np.median(t_lift)),
        "file_s": float("nan"),
        "peak_mib": _peak_mib(),
        "mapped": len(rows),
    }


REPEATS = 3
TOOLS = {"crossglue": run_ours, "CrossMap 0.7.4": run_crossmap, "pyliftover 0.4.1": run_pyliftover}
FILES = {"crossglue": "ours.tsv", "CrossMap 0.7.4": "crossmap.tsv", "pyliftover 0.4.1": "pyliftover.tsv"}


def agreement(work: Path, n: int) -> dict[str, str]:
    """Share of all intervals on which each tool and crossglue agree (both unmapped, or same coordinates)."""
    ours = pd.read_csv(work / "ours.tsv", sep="\t").set_index("name")
    out = {}
    for tool, file in FILES.items():
        other = pd.read_csv(work / file, sep="\t").set_index("name")
        both = ours.index.intersection(other.index)
        same = (ours.loc[both] == other.loc[both]).all(axis=1).sum()
        only = len(ours.index.symmetric_difference(other.index))
        out[tool] = f"{(n - only - (len(both) - same)) / n:.4%} ({only} mapped by one only, {len(both) - same} differ)"
    return out


CLI_REPEATS = 5


def _timed(command: list[str], env: dict[str, str], work: Path) -> dict[str, float]:
    """Wall and CPU seconds and peak RSS (MiB) of one child process.

    Measured by GNU time where installed: a child forked from this (large) benchmark process
    inherits its resident-memory high-water mark across exec on Linux, a grandchild of the
    small ``time`` process does not.
    """
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    t0 = time.perf_counter()
    if gnu_time:
        report = work / "time.txt"
        subprocess.run(
            [gnu_time, "-f", "%e %U %S %M", "-o", str(report), *command],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall, user, system, rss_kib = (float(x) for x in report.read_text().split()[-4:])
        return {"wall": wall, "cpu": user + system, "rss": rss_kib / 1024}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed: {' '.join(command)}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}  # RSS: upper bound


def cli_table(chain: Path, work: Path) -> None:
    """Whole-process crossglue liftover vs CrossMap region, alternating runs, medians and ratios."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    bed = str(work / "in.bed")
    commands = {
        "crossglue liftover": [
            sys.executable,
            "-m",
            "crossglue.cli",
            "liftover",
            bed,
            str(chain),
            str(work / "cli.bed"),
            str(work / "cli.unmapped"),
        ],
    }
    crossmap = shutil.which("CrossMap", path=str(Path(sys.executable).parent)) or shutil.which("CrossMap")
    if crossmap:
        commands["CrossMap 0.7.4 region"] = [crossmap, "region", str(chain), bed, str(work / "cm.bed"), "-r", "0.95"]
    runs: dict[str, list[dict[str, float]]] = {tool: [] for tool in commands}
    for tool, command in commands.items():  # warm-up: bytecode cache, page cache
        _timed(command, env, work)
    for _ in range(CLI_REPEATS):
        for tool, command in commands.items():
            runs[tool].append(_timed(command, env, work))
    med = {t: {k: float(np.median([r[k] for r in rs])) for k in ("wall", "cpu")} for t, rs in runs.items()}
    rss = {t: max(r["rss"] for r in rs) for t, rs in runs.items()}
    base = "crossglue liftover"
    print(f"\nwhole command-line process, BED file -> BED file, median of {CLI_REPEATS} alternating runs")
    print(
        f"{'command':<24}{'wall (s)':>10}{'CPU (s)':>10}{'peak RSS (MiB)':>16}"
        f"{'wall ratio':>12}{'CPU ratio':>11}{'RSS ratio':>11}"
    )
    for tool in commands:
        print(
            f"{tool:<24}{med[tool]['wall']:>10.2f}{med[tool]['cpu']:>10.2f}{rss[tool]:>16.0f}"
            f"{med[tool]['wall'] / med[base]['wall']:>11.1f}x{med[tool]['cpu'] / med[base]['cpu']:>10.1f}x"
            f"{rss[tool] / rss[base]:>10.2f}x"
        )
    if not crossmap:
        print("CrossMap is not installed (pip install CrossMap==0.7.4): no comparison")
    print(f"load average during the runs: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print("ratio = tool / crossglue: above 1 means crossglue is faster or smaller")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500_000)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--chain", type=Path, default=DEFAULT_CHAIN)
    parser.add_argument("--cli-only", action="store_true", help="only the whole-process command-line table")
    parser.add_argument("--tool", choices=list(TOOLS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool:  # child process: one tool, result as JSON on stdout
        print(json.dumps(TOOLS[args.tool](args.chain, args.work / "in.bed", args.work)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_intervals(args.chain, args.n, args.width, seed=42).to_csv(
            work / "in.bed", sep="\t", header=False, index=False
        )
        if args.cli_only:
            print(f"{args.n:,} random {args.width} bp intervals, chain {args.chain.name}, minMatch 0.95")
            cli_table(args.chain, work)
            return
        results = {}
        gnu_time = shutil.which("time", path="/usr/bin:/bin")
        for tool in TOOLS:
            command = [sys.executable, __file__, "--tool", tool, "--work", str(work), "--chain", str(args.chain)]
            rss_file = work / "rss.txt"
            if gnu_time:  # a grandchild's peak RSS is its own (see _timed)
                command = [gnu_time, "-f", "%M", "-o", str(rss_file), *command]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            results[tool] = json.loads(done.stdout.strip().splitlines()[-1])
            if gnu_time:
                results[tool]["peak_mib"] = float(rss_file.read_text().split()[-1]) / 1024
        agree = agreement(work, args.n)
        print_lift_table(results, agree, args)
        cli_table(args.chain, work)


def print_lift_table(results: dict, agree: dict, args: argparse.Namespace) -> None:
    base = results["crossglue"]
    print(f"{args.n:,} random {args.width} bp intervals, chain {args.chain.name}, minMatch 0.95\n")
    print(
        f"{'tool':<18}{'lift min/med (s)':>17}{'speed-up':>10}{'BED->BED (s)':>14}{'speed-up':>10}"
        f"{'peak RSS (MiB)':>16}{'mapped':>9}  agreement with crossglue"
    )
    for tool, r in results.items():
        speed = r["lift_s"] / base["lift_s"]
        nan = r["file_s"] != r["file_s"]
        file_s, file_x = ("-", "-") if nan else (f"{r['file_s']:.2f}", f"{r['file_s'] / base['file_s']:.1f}x")
        print(
            f"{tool:<18}{r['lift_s']:>8.2f}/{r['lift_median_s']:<8.2f}{speed:>9.1f}x{file_s:>14}{file_x:>10}"
            f"{r['peak_mib']:>16.0f}{r['mapped']:>9}  {agree[tool]}"
        )
    print(f"\ncrossglue peak RSS after the in-memory lifts, before its BED->BED run: {base['peak_lift_mib']:.0f} MiB")
    print(
        f"lift = chain loading + lifting in memory, best and median of {REPEATS} runs "
        "(CrossMap: its per-interval map_coordinates lookups;"
        " pyliftover: start and end-1 as points, kept when both map uniquely to one chromosome and strand);"
        " speed-up = tool lift time / crossglue lift time."
    )


if __name__ == "__main__":
    main()
