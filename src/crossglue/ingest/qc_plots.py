"""One PNG per sample: the distribution of every QC metric with its thresholds, and the doublet scores."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crossglue.ingest.doublets import SCORE_COLUMNS  # noqa: E402
from crossglue.ingest.qc import ATAC_THRESHOLDS, QC_METRICS, RNA_THRESHOLDS  # noqa: E402
from crossglue.io_utils import atomic_path  # noqa: E402

LOG_SCALE = {"n_fragments", "total_counts", "n_genes"}
QC_COLUMNS = 4


def plot_sample_qc(qc: pd.DataFrame, thresholds: dict, path: str | Path, title: str) -> None:
    """Histograms of the sample's metrics, threshold lines in red, pass counts in the title."""
    lines: dict[str, list[float]] = {}
    for group, rules in (("atac", ATAC_THRESHOLDS), ("rna", RNA_THRESHOLDS)):
        for key, value in (thresholds.get(group) or {}).items():
            if key in rules and value is not None:
                lines.setdefault(rules[key][0], []).append(float(value))
    metrics = [m for m in QC_METRICS if m in qc]
    scores = [c for c in SCORE_COLUMNS.values() if c in qc and qc[c].notna().any()]
    n_panels = max(1, len(metrics) + len(scores))
    # A grid of at most QC_COLUMNS panels a row, so a multiome sample's 7-9 panels stay readable
    # when the report shows the figure at page width.
    ncols = min(QC_COLUMNS, n_panels)
    nrows = -(-n_panels // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows + 0.5), squeeze=False)
    axes = grid.reshape(1, -1)
    for ax in axes[0][n_panels:]:
        ax.axis("off")
    for ax, column in zip(axes[0][len(metrics) :], scores, strict=False):
        # Scores exist for the nuclei that passed the thresholds; the called doublets in red.
        scored = qc[column].notna().to_numpy()
        called = qc["doublet"].to_numpy(dtype=bool)[scored] if "doublet" in qc else np.zeros(int(scored.sum()), bool)
        values = qc[column].to_numpy(dtype=float)[scored]
        bins = np.linspace(float(values.min()), float(values.max()) + 1e-9, 41)
        ax.hist(
            [values[~called], values[called]],
            bins=bins,
            stacked=True,
            color=["0.4", "red"],
            label=["kept", f"doublet ({int(called.sum())})"],
        )
        ax.set_xlabel(column)
        ax.legend(fontsize=7)
    for ax, metric in zip(axes[0], metrics, strict=False):
        values = qc[metric].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if metric in LOG_SCALE:
            values = np.log10(values + 1)
        ax.hist(values, bins=40, color="0.4")
        for v in lines.get(metric, []):
            ax.axvline(np.log10(v + 1) if metric in LOG_SCALE else v, color="red", lw=1)
        ax.set_xlabel(f"log10({metric} + 1)" if metric in LOG_SCALE else metric)
    for row in grid:
        row[0].set_ylabel("barcodes")
    doublets = f", {int(qc['doublet'].sum())} doublets removed" if "doublet" in qc else ""
    fig.suptitle(f"{title}: {int(qc['pass'].sum())} of {len(qc)} barcodes pass{doublets}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
