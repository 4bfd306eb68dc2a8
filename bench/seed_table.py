"""The README's several-seed table: the scorer's headline figures for finished simulator runs.

Every figure is ``crossglue.simulate.score`` on a whole-pipeline run (``make test-demo`` /
``make test-realistic`` or ``snakemake`` on a config with ``demo.preset`` and ``demo.seed``);
one column per run, then the mean and range per preset. Runs are named ``PRESET:LABEL=DIR``:

    .venv/bin/python bench/seed_table.py demo:s0=runs/d0 demo:s1=runs/d1 \\
        realistic:s0=runs/r0 realistic:s1=runs/r1 realistic:s2=runs/r2

Prints a Markdown table (``--out`` also writes it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from crossglue.simulate.score import score_run

H2M = "transfer.{run}.human_to_macaque"
ROWS = [  # (row label, scorer figure)
    ("doublets removed (RNA)", "qc.doublet_removed.rna"),
    ("doublets removed (ATAC)", "qc.doublet_removed.atac"),
    ("low-quality removed (RNA)", "qc.low_quality_removed.rna"),
    ("low-quality removed (ATAC)", "qc.low_quality_removed.atac"),
    ("empty removed (RNA)", "qc.empty_removed.rna"),
    ("empty removed (ATAC)", "qc.empty_removed.atac"),
    ("real nuclei kept (RNA)", "qc.real_nuclei_kept.rna"),
    ("real nuclei kept (ATAC)", "qc.real_nuclei_kept.atac"),
    ("conserved precision", "union.conserved.precision"),
    ("conserved recall", "union.conserved.recall"),
    ("human_accessible precision", "union.human_accessible.precision"),
    ("human_accessible recall", "union.human_accessible.recall"),
    ("macaque_accessible precision", "union.macaque_accessible.precision"),
    ("macaque_accessible recall", "union.macaque_accessible.recall"),
    ("human_sequence recall", "union.human_sequence.recall"),
    ("macaque_sequence recall", "union.macaque_sequence.recall"),
    ("kNN transfer human→macaque", H2M.format(run="main") + ".accuracy"),
    ("  shared types", H2M.format(run="main") + ".shared_accuracy"),
    ("  balanced accuracy", H2M.format(run="main") + ".balanced_accuracy"),
    ("  RNA→RNA, shared types", H2M.format(run="main") + ".rna_to_rna.shared_accuracy"),
    ("  ATAC→ATAC, shared types", H2M.format(run="main") + ".atac_to_atac.shared_accuracy"),
    ("  RNA→ATAC, shared types", H2M.format(run="main") + ".rna_to_atac.shared_accuracy"),
    ("  largest share of a shared type on another", H2M.format(run="main") + ".largest_off_diagonal_shared"),
    ("kNN transfer, ablation, shared types", H2M.format(run="ablation") + ".shared_accuracy"),
    ("  ablation RNA→RNA, shared types", H2M.format(run="ablation") + ".rna_to_rna.shared_accuracy"),
    ("pipeline labels, macaque accuracy", "labels.main.macaque.accuracy"),
    ("  macaque-only type unassigned", "labels.main.macaque.unassigned_novel_types"),
    ("  labelled as a human-only type", "labels.main.macaque.labelled_as_absent_type"),
    ("possible swaps flagged", "labels.main.swapped_pairs"),
    ("clusters whose label disagrees with their ortholog partner", "labels.main.mislabelled_clusters"),
    ("FOSCTTM human", "integration.main.foscttm_human"),
    ("FOSCTTM macaque", "integration.main.foscttm_macaque"),
    ("MAP", "integration.main.mean_average_precision"),
    ("species mixing (SAS), shared types", "integration.main.species_alignment_shared_types"),
    ("  ablation", "integration.ablation.species_alignment_shared_types"),
    ("link AUROC, score", "links.all.score.auroc"),
    ("link AUROC, distance alone", "links.all.distance.auroc"),
    ("link AUPRC, score", "links.all.score.auprc"),
    ("link AUPRC, distance alone", "links.all.distance.auprc"),
    ("distal link AUROC, score", "links.distal.score.auroc"),
    ("distal link AUROC, distance", "links.distal.distance.auroc"),
    ("links called at q ≤ 0.1", "links.called"),
    ("  empirical FDR", "links.called_fdr"),
    ("  share of planted links called", "links.called_recall"),
    ("modules called", "modules.called"),
    ("module element precision", "modules.element_precision"),
    ("module element recall", "modules.element_recall"),
    ("planted motif named (module's motif or its family)", "modules.motif_named"),
    ("  as the module's motif", "modules.motif_lead"),
    ("planted motif found gained (turnover)", "turnover.planted_gained"),
]
COUNTS = {"links.called", "modules.called", "labels.main.swapped_pairs", "labels.main.mislabelled_clusters"}


def parse_run(text: str) -> tuple[str, str, Path]:
    """``PRESET:LABEL=DIR`` -> (preset, label, dir)."""
    name, sep, path = text.partition("=")
    preset, colon, label = name.partition(":")
    if not sep or not colon or not preset or not label:
        raise SystemExit(f"run {text!r}: expected PRESET:LABEL=DIR, e.g. realistic:s0=runs/r0")
    return preset, label, Path(path)


def cell(value: float, count: bool) -> str:
    if np.isnan(value):
        return "NA"
    return f"{value:.0f}" if count else f"{value:.3f}"


def table(runs: list[tuple[str, str, Path]]) -> str:
    values = {(preset, label): score_run(path).as_dict() for preset, label, path in runs}
    presets = list(dict.fromkeys(preset for preset, _, _ in runs))
    header = [f"{p} {label}" for p, label, _ in runs] + [f"{p} mean (range)" for p in presets]
    lines = ["| figure | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for row, figure in ROWS:
        count = figure in COUNTS
        cells = [cell(values[(p, label)].get(figure, np.nan), count) for p, label, _ in runs]
        for p in presets:
            got = np.array([values[(q, label)].get(figure, np.nan) for q, label, _ in runs if q == p], dtype=float)
            got = got[~np.isnan(got)]
            if not got.size:
                cells.append("NA")
            else:
                mean = f"{got.mean():.1f}" if count else f"{got.mean():.3f}"
                cells.append(f"{mean} ({cell(got.min(), count)}–{cell(got.max(), count)})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="PRESET:LABEL=DIR of a finished run")
    p.add_argument("--out", help="also write the table here")
    args = p.parse_args()
    text = table([parse_run(r) for r in args.runs])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
