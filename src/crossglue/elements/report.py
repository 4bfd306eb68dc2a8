"""Report inputs of the peak, liftover and union stages: small tables and PNG plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crossglue.elements.union import class_summary
from crossglue.io_utils import atomic_path  # noqa: E402


def liftover_reasons(lifts: dict[tuple[str, str], pd.DataFrame]) -> pd.DataFrame:
    """Peaks per (direction, status, reason code): why peaks do or do not lift."""
    rows = [pd.DataFrame(columns=["source", "target", "status", "reason_code", "n_peaks"])]  # one species: none
    for (a, b), lift in lifts.items():
        code = lift["reason_code"].astype(object).where(lift["reason_code"].notna(), "lifted")
        counts = (
            pd.DataFrame({"status": lift["status"], "reason_code": code}).value_counts().reset_index(name="n_peaks")
        )
        rows.append(counts.assign(source=a, target=b))
    out = pd.concat(rows, ignore_index=True).astype({"n_peaks": np.int64})
    return out[["source", "target", "status", "reason_code", "n_peaks"]].sort_values(
        ["source", "target", "n_peaks"], ascending=[True, True, False], kind="stable"
    )


def peak_widths(
    peaks: dict[str, pd.DataFrame], summits: dict[str, pd.DataFrame], lifts: dict[tuple[str, str], pd.DataFrame]
) -> pd.DataFrame:
    """Width quantiles: MACS2 peak regions per species, final peaks, lifted intervals per direction."""

    def describe(kind: str, label: str, widths: np.ndarray) -> dict:
        q = np.quantile(widths, [0.05, 0.25, 0.5, 0.75, 0.95]) if len(widths) else [np.nan] * 5
        return {
            "what": kind,
            "set": label,
            "n": len(widths),
            "q05": q[0],
            "q25": q[1],
            "median": q[2],
            "q75": q[3],
            "q95": q[4],
        }

    rows = []
    for s, table in summits.items():
        if {"macs_start", "macs_end"} <= set(table.columns):
            rows.append(describe("macs2_peak", s, (table["macs_end"] - table["macs_start"]).to_numpy()))
    for s, table in peaks.items():
        rows.append(describe("final_peak", s, (table["end"] - table["start"]).to_numpy()))
    for (a, b), lift in lifts.items():
        ok = lift["lifted_start"].notna()
        width = (lift.loc[ok, "lifted_end"].astype(np.int64) - lift.loc[ok, "lifted_start"].astype(np.int64)).to_numpy()
        rows.append(describe("lifted_interval", f"{a}_to_{b}", width))
    return pd.DataFrame(rows)


def plot_classes(summary: pd.DataFrame, path: str | Path) -> None:
    """Stacked bars: elements per class for each species pair."""
    pairs = summary.assign(pair=summary["species_a"] + "–" + summary["species_b"])
    wide = pairs.pivot_table(index="pair", columns="class", values="n_elements", fill_value=0)
    _stacked_bars(wide, "elements", "Union elements by class", path)


def _stacked_bars(wide: pd.DataFrame, xlabel: str, title: str, path: str | Path) -> None:
    """One horizontal bar per row of ``wide``, stacked by its columns (a note when there is none)."""
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.6 * len(wide)))
    if wide.empty:  # one species with ATAC samples: no pair, no lift
        ax.text(0.5, 0.5, "no pair of species with ATAC samples", ha="center", va="center")
        ax.set_axis_off()
        ax.set_title(title)
        _save(fig, path)
        return
    left = np.zeros(len(wide))
    colours = plt.get_cmap("tab10")
    for i, column in enumerate(wide.columns):
        ax.barh(wide.index, wide[column], left=left, label=column, color=colours(i % 10))
        left += wide[column].to_numpy()
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title)
    _save(fig, path)


def plot_reasons(reasons: pd.DataFrame, path: str | Path) -> None:
    """One bar group per liftover direction: peaks by outcome."""
    label = reasons["source"] + "→" + reasons["target"]
    wide = reasons.assign(direction=label).pivot_table(
        index="direction", columns="reason_code", values="n_peaks", aggfunc="sum", fill_value=0
    )
    _stacked_bars(wide, "peaks", "liftOver outcome per direction", path)


def plot_widths(summits: dict[str, pd.DataFrame], lifts: dict[tuple[str, str], pd.DataFrame], path: str | Path) -> None:
    """Histograms: MACS2 peak widths per species and lifted/original length ratios per direction."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for s, table in summits.items():
        if {"macs_start", "macs_end"} <= set(table.columns):
            axes[0].hist(table["macs_end"] - table["macs_start"], bins=50, histtype="step", label=s)
    axes[0].set_xlabel("MACS2 peak width (bp)")
    axes[0].set_ylabel("summits")
    for (a, b), lift in lifts.items():
        ratio = lift["length_ratio"].dropna()
        axes[1].hist(np.clip(ratio, 0, 3), bins=60, histtype="step", label=f"{a}→{b}")
    axes[1].set_xlabel("lifted / original length (clipped at 3)")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    _save(fig, path)


def _save(fig, path: str | Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_report_inputs(
    union: pd.DataFrame,
    peaks: dict[str, pd.DataFrame],
    lifts: dict[tuple[str, str], pd.DataFrame],
    summit_paths: dict[str, str | Path],
    species: list[str],
    output,
) -> None:
    """Write summary.tsv, liftover_reasons.tsv, peak_widths.tsv and the three PNGs named in ``output``."""
    summits = {s: pd.read_csv(p, sep="\t") for s, p in summit_paths.items()}
    summary = class_summary(union, species)
    reasons = liftover_reasons(lifts)
    widths = peak_widths(peaks, summits, lifts)
    for table, path in ((summary, output.summary), (reasons, output.reasons), (widths, output.widths)):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, sep="\t", index=False)
    plot_classes(summary, output.plot_classes)
    plot_reasons(reasons, output.plot_reasons)
    plot_widths(summits, lifts, output.plot_widths)
