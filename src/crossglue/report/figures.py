"""Figures of the report, drawn with matplotlib and embedded as base64 PNG data URIs.

Sizes are chosen for the page: the report's content column is about 1000 px wide in a
1280 px window, so a figure of W inches is shown at ~1000/W px per inch; fonts are set so
that text lands at 10-14 screen pixels there (tests/test_report.py measures the widths).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# Loss families of the training log (model/trainer.py LOSS_TERMS, plus its "val" column), in
# panel order: (panel title, [(column, what it is)]). Columns of the log not listed here
# (epoch, lr, noise, seconds) are bookkeeping and are not plotted.
LOSS_FAMILIES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "reconstruction": ("Reconstruction (count NLL)", [("x_nll", "cells, train"), ("val_x_nll", "cells, validation")]),
    "kl": (
        "KL divergence",
        [
            ("x_kl", "cell posterior, train"),
            ("val_x_kl", "cell posterior, validation"),
            ("g_kl", "feature posterior, train"),
        ],
    ),
    "graph": ("Guidance graph (edge NLL)", [("g_nll", "train")]),
    "alignment": ("Alignment (discriminator loss)", [("dsc", "discriminator, train")]),
    "pairing": ("Pairing of multiome nuclei", [("pair", "train")]),
    "supervision": ("Cell-type supervision", [("sup", "train"), ("val_sup", "validation")]),
    "total": (
        "Total objective",
        [("gen", "generator objective, train"), ("val", "VAE loss, validation")],
    ),
}
VALIDATION_COLUMNS = {"val", "val_x_nll", "val_x_kl", "val_sup"}
FONT = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10}


def figure_png(fig) -> bytes:
    """PNG bytes of a figure (closed afterwards, so long reports do not hoard memory)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for an <img src>, so the HTML needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def file_png(path: str | Path) -> bytes:
    """Bytes of a PNG written by an earlier stage (checked by its signature)."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        from crossglue.errors import CrossglueError

        raise CrossglueError(f"report: {path} is not a PNG file")
    return data


def distinct_colours(n: int) -> list:
    """``n`` colours, all different for n <= 50: tab10's ten, then tab20's light variants,
    then tab20b and tab20c (so the first ten never include a light twin of another)."""
    tab20 = plt.get_cmap("tab20")
    pool = [plt.get_cmap("tab10")(i) for i in range(10)] + [tab20(i) for i in range(1, 20, 2)]
    pool += [plt.get_cmap(name)(i) for name in ("tab20b", "tab20c") for i in range(0, 20, 2)]
    pool += [plt.get_cmap(name)(i) for name in ("tab20b", "tab20c") for i in range(1, 20, 2)]
    if n > len(pool):  # more categories than anyone can tell apart: spread over a cyclic map
        return [plt.get_cmap("hsv")(i / n) for i in range(n)]
    return pool[:n]


def _category_order(values: np.ndarray) -> list[str]:
    """Categories in natural order (numbers as numbers, so Leiden 2 comes before 10)."""
    names = sorted(set(values))
    if all(n.isdigit() for n in names):
        return sorted(names, key=int)
    return names


def _legend(ax, handles_colours: dict, title: str | None = None) -> None:
    for name, colour in handles_colours.items():
        ax.scatter([], [], color=colour, label=name, s=30)
    ncol = 2 if len(handles_colours) > 14 else 1
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        ncol=ncol,
        title=title,
        handletextpad=0.2,
        columnspacing=0.6,
        borderaxespad=0.0,
    )


def _scatter_categories(ax, umap: np.ndarray, values: np.ndarray, colours: dict, order: np.ndarray, size: float):
    ax.scatter(
        umap[order, 0],
        umap[order, 1],
        c=[colours[v] for v in values[order]],
        s=size,
        linewidths=0,
        rasterized=True,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")


def _point_size(n: int) -> float:
    return float(np.clip(12000 / max(n, 1), 1.0, 12.0))


def umap_figure(umap: np.ndarray, obs: pd.DataFrame, keys: list[str], titles: dict[str, str] | None = None) -> bytes:
    """UMAP panels in a 2-column grid, one per obs column in ``keys``, each legend outside
    its panel on the right; cells drawn in a random order so no group hides another."""
    keys = [k for k in keys if k in obs]
    titles = titles or {}
    ncols = 2 if len(keys) > 1 else 1
    nrows = int(np.ceil(len(keys) / ncols)) or 1
    order = np.random.default_rng(0).permutation(len(umap))
    with plt.rc_context(FONT):
        # Room on the right of every column for its legend (2.3 in), inside the figure, so the
        # saved image is not widened (and every panel shrunk) by the last legend.
        fig, axes = plt.subplots(nrows, ncols, figsize=(6.6 * ncols, 4.8 * nrows), squeeze=False)
        fig.subplots_adjust(left=0.01, right=1 - 2.3 / (6.6 * ncols), wspace=2.3 / 4.3, hspace=0.15)
        for ax in axes.flat[len(keys) :]:
            ax.axis("off")
        for ax, key in zip(axes.flat, keys, strict=False):
            values = obs[key].astype(str).to_numpy()
            names = _category_order(values)
            colours = dict(zip(names, distinct_colours(len(names)), strict=True))
            _scatter_categories(ax, umap, values, colours, order, _point_size(len(umap)))
            ax.set_title(titles.get(key, key))
            _legend(ax, colours)
        return figure_png(fig)


def split_umap_figure(umap: np.ndarray, obs: pd.DataFrame, split_key: str, colour_key: str) -> bytes:
    """One UMAP panel per value of ``split_key`` (e.g. species): its cells coloured by
    ``colour_key`` (same colours in every panel), the other cells in light grey behind."""
    groups = _category_order(obs[split_key].astype(str).to_numpy())
    split = obs[split_key].astype(str).to_numpy()
    values = obs[colour_key].astype(str).to_numpy()
    names = _category_order(values)
    colours = dict(zip(names, distinct_colours(len(names)), strict=True))
    size = _point_size(len(umap))
    with plt.rc_context(FONT):
        fig, axes = plt.subplots(
            1, len(groups), figsize=(4.6 * len(groups) + 2.4, 4.8), squeeze=False, gridspec_kw={"wspace": 0.05}
        )
        for ax, group in zip(axes[0], groups, strict=True):
            mine = split == group
            ax.scatter(umap[~mine, 0], umap[~mine, 1], c="0.88", s=size, linewidths=0, rasterized=True)
            idx = np.flatnonzero(mine)
            order = idx[np.random.default_rng(0).permutation(len(idx))]
            _scatter_categories(ax, umap, values, colours, order, size)
            ax.set_title(f"{group} ({mine.sum()} cells)")
        _legend(axes[0][-1], colours, title=colour_key.replace("_", " "))
        return figure_png(fig)


def _stage_changes(log: pd.DataFrame) -> list[tuple[int, str]]:
    if "stage" not in log:
        return []
    stages = log["stage"].astype(str).to_numpy()
    return [(int(i) + 1, stages[i + 1]) for i in np.flatnonzero(stages[1:] != stages[:-1])]


def training_panels(logs: dict[str, pd.DataFrame]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The panels of the training figure: (title, [(run, column, label)]) per loss family
    that some run logged, in ``LOSS_FAMILIES`` order; bookkeeping columns never appear."""
    panels = []
    for title, columns in LOSS_FAMILIES.values():
        series = [
            (run, column, f"{run}: {what}")
            for run, log in logs.items()
            for column, what in columns
            if column in log and log[column].notna().any()
        ]
        if series:
            panels.append((title, series))
    return panels


def training_figure(logs: dict[str, pd.DataFrame]) -> bytes:
    """Loss terms per epoch, one panel per loss family; every run (main, ablation) and split
    (train, validation) its own colour in a panel, validation dotted; dashed lines mark stage
    changes (pretrain -> finetune), epochs counted across stages."""
    panels = training_panels(logs)
    ncols = 3
    nrows = max(1, int(np.ceil(len(panels) / ncols)))
    with plt.rc_context(FONT):
        fig, axes = plt.subplots(nrows, ncols, figsize=(13, 3.6 * nrows), squeeze=False)
        for ax in axes.flat[len(panels) :]:
            ax.axis("off")
        for ax, (title, series) in zip(axes.flat, panels, strict=False):
            for colour, (run, column, label) in zip(distinct_colours(len(series)), series, strict=True):
                values = logs[run][column].to_numpy(dtype=float)
                style = {"ls": ":", "marker": "o", "ms": 2.5} if column in VALIDATION_COLUMNS else {"ls": "-"}
                ax.plot(np.arange(1, len(values) + 1), values, color=colour, lw=1.4, label=label, **style)
            marked = set()
            for log in logs.values():
                for epoch, stage in _stage_changes(log):
                    if (epoch, stage) in marked:
                        continue
                    marked.add((epoch, stage))
                    ax.axvline(epoch + 0.5, color="0.45", ls="--", lw=0.9)
                    ax.annotate(
                        stage, (epoch + 0.5, 1.0), xycoords=("data", "axes fraction"), fontsize=9, color="0.35",
                        ha="left", va="top", xytext=(2, -2), textcoords="offset points",
                    )  # fmt: skip
            ax.set_title(title)
            ax.set_xlabel("epoch (all stages)")
            ax.legend(fontsize=9, frameon=False)
        fig.tight_layout()
        return figure_png(fig)


def metrics_figure(table: pd.DataFrame, columns: list[str]) -> bytes:
    """Grouped bars: each metric, main run beside the ablation (and truth-based values)."""
    columns = [c for c in columns if c in table and table[c].notna().any()]
    shown = table.dropna(subset=columns, how="all")
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(max(9, 0.6 * len(shown) * max(1, len(columns)) / 2), 4.2))
        width = 0.8 / max(1, len(columns))
        x = np.arange(len(shown))
        for i, (column, colour) in enumerate(zip(columns, distinct_colours(len(columns)), strict=True)):
            ax.bar(x + i * width, shown[column].to_numpy(dtype=float), width, label=column, color=colour)
        ax.set_xticks(x + 0.4 - width / 2)
        ax.set_xticklabels(shown["metric"], rotation=45, ha="right")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.set_ylabel("score")
        return figure_png(fig)


def pvalue_qq_figure(p_values: dict[str, np.ndarray]) -> bytes:
    """Observed against expected -log10 p per species (a calibrated test of unlinked pairs
    follows the diagonal; true links lift the tail above it)."""
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
        top = 1.0
        for (name, p), colour in zip(p_values.items(), distinct_colours(len(p_values)), strict=True):
            p = np.sort(np.clip(np.asarray(p, dtype=float)[np.isfinite(p)], 1e-300, 1.0))
            if not len(p):
                continue
            expected = -np.log10((np.arange(1, len(p) + 1) - 0.5) / len(p))
            ax.plot(expected, -np.log10(p), ".", ms=3, color=colour, label=f"{name} ({len(p):,} candidates)")
            top = max(top, expected[0])
        ax.plot([0, top], [0, top], "--", color="grey", lw=1, label="expected under the null")
        ax.set_xlabel("expected -log10 p")
        ax.set_ylabel("observed -log10 p")
        ax.legend(loc="upper left", frameon=False)
        return figure_png(fig)
