"""Figures of the report, drawn with matplotlib and embedded as base64 PNG data URIs."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


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


def _palette(n: int) -> list:
    cmap = plt.get_cmap("tab20" if n > 10 else "tab10")
    return [cmap(i % cmap.N) for i in range(n)]


def umap_figure(umap: np.ndarray, obs: pd.DataFrame, keys: list[str]) -> bytes:
    """One UMAP panel per obs column in ``keys``, categories coloured, legend beside each."""
    keys = [k for k in keys if k in obs]
    fig, axes = plt.subplots(1, len(keys), figsize=(6.2 * len(keys), 4.2), squeeze=False, gridspec_kw={"wspace": 0.75})
    order = np.random.default_rng(0).permutation(len(umap))  # no group painted last on top
    for ax, key in zip(axes[0], keys, strict=True):
        values = obs[key].astype(str).to_numpy()
        names = sorted(set(values))
        colours = dict(zip(names, _palette(len(names)), strict=True))
        ax.scatter(
            umap[order, 0], umap[order, 1], c=[colours[v] for v in values[order]], s=3, linewidths=0, rasterized=True
        )
        for name in names:
            ax.scatter([], [], color=colours[name], label=name, s=12)
        ax.set_title(key)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, markerscale=1.2)
    return figure_png(fig)


def training_figure(logs: dict[str, pd.DataFrame]) -> bytes:
    """Loss terms per epoch, one panel per run; stages (pretrain, finetune) run one after another."""
    fig, axes = plt.subplots(1, len(logs), figsize=(6 * len(logs), 3.8), squeeze=False)
    for ax, (name, log) in zip(axes[0], logs.items(), strict=True):
        step = np.arange(len(log))
        numeric = [c for c in log.columns if c not in ("stage", "epoch") and pd.api.types.is_numeric_dtype(log[c])]
        for column in numeric:
            ax.plot(step, log[column].to_numpy(dtype=float), label=column, lw=1)
        if "stage" in log:
            changes = np.flatnonzero(log["stage"].to_numpy()[1:] != log["stage"].to_numpy()[:-1]) + 1
            for c in changes:
                ax.axvline(c, color="grey", ls="--", lw=0.8)
        ax.set_title(f"{name} run")
        ax.set_xlabel("epoch (all stages)")
        ax.legend(fontsize=6, ncol=2)
    return figure_png(fig)


def metrics_figure(table: pd.DataFrame, columns: list[str]) -> bytes:
    """Grouped bars: each metric, main run beside the ablation (and truth-based values)."""
    columns = [c for c in columns if c in table and table[c].notna().any()]
    shown = table.dropna(subset=columns, how="all")
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(shown) * max(1, len(columns)) / 2), 3.8))
    width = 0.8 / max(1, len(columns))
    x = np.arange(len(shown))
    for i, column in enumerate(columns):
        ax.bar(x + i * width, shown[column].to_numpy(dtype=float), width, label=column)
    ax.set_xticks(x + 0.4 - width / 2)
    ax.set_xticklabels(shown["metric"], rotation=45, ha="right", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_ylabel("score")
    return figure_png(fig)
