"""What the guidance graph holds: node and edge counts, degrees, cross-species reach, a plot."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from crossglue.io_utils import atomic_path


def _adjacency(edges: pd.DataFrame, names: pd.Index, types: Iterable[str] | None = None) -> sp.csr_matrix:
    chosen = edges if types is None else edges[edges["type"].isin(list(types))]
    s = names.get_indexer(chosen["source"].astype(str))
    t = names.get_indexer(chosen["target"].astype(str))
    return sp.csr_matrix((np.ones(len(s), dtype=np.float32), (s, t)), shape=(len(names), len(names)))


def summarise(edges: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """Long table (metric, group, value) of node and edge counts, degrees and cross-species reach.

    Edge counts are undirected (each pair once); degree counts neighbours without the
    self-loop. Reach: the share of one species' genes with a path to the other species'
    nodes within 1 hop (ortholog), within 3 hops (gene–element–element–gene) and at all.
    """
    names = pd.Index(pd.unique(np.concatenate([edges["source"].to_numpy(object), edges["target"].to_numpy(object)])))
    info = nodes.drop_duplicates("node").set_index("node").reindex(names)
    info["species"] = info["species"].fillna(pd.Series(names.str.split(":").str[0], index=names))
    info["modality"] = info["modality"].fillna("other")
    rows: list[tuple[str, str, float]] = []
    for (s, m), count in info.groupby(["species", "modality"]).size().items():
        rows.append(("nodes", f"{s}:{m}", float(count)))
    off_loop = edges[edges["source"] != edges["target"]]
    for kind, count in off_loop.groupby("type").size().items():
        rows.append(("edges", str(kind), count / 2))
    rows.append(("edges", "self", float((edges["source"] == edges["target"]).sum())))

    adjacency = _adjacency(off_loop, names)
    degree = np.asarray((adjacency > 0).sum(axis=1)).ravel()
    for (s, m), idx in info.reset_index().groupby(["species", "modality"]).groups.items():
        d = degree[np.asarray(idx)]
        for stat, value in (
            ("min", d.min()),
            ("median", np.median(d)),
            ("mean", d.mean()),
            ("p90", np.percentile(d, 90)),
            ("max", d.max()),
            ("isolated", (d == 0).sum()),
        ):
            rows.append((f"degree_{stat}", f"{s}:{m}", float(value)))

    species = sorted(info["species"].unique())
    _, component = connected_components(adjacency, directed=False)
    for target in species:
        start = (info["species"] == target).to_numpy()
        reached = {}
        frontier = start.astype(np.float32)
        seen = start.copy()
        for hop in range(1, 4):
            frontier = (adjacency @ frontier > 0) & ~seen
            seen |= frontier
            frontier = frontier.astype(np.float32)
            reached[hop] = seen.copy()
        linked_components = np.unique(component[start])
        reached["any"] = np.isin(component, linked_components)
        for other in species:
            if other == target:
                continue
            genes = ((info["species"] == other) & (info["modality"] == "rna")).to_numpy()
            if not genes.any():
                continue
            for label, mask in (("1hop", reached[1]), ("3hop", reached[3]), ("any", reached["any"])):
                rows.append((f"genes_reaching_{target}_{label}", other, float(mask[genes].mean())))
    return pd.DataFrame(rows, columns=["metric", "group", "value"])


def plot_degrees(edges: pd.DataFrame, nodes: pd.DataFrame, path: str | Path) -> None:
    """Histogram of node degree (neighbours, log scale) per species and modality, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    off_loop = edges[edges["source"] != edges["target"]]
    degree = off_loop.groupby("source").size()
    frame = nodes.assign(degree=nodes["node"].map(degree).fillna(0).to_numpy())
    groups = list(frame.groupby(["species", "modality"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 2.8), squeeze=False)
    top = max(1.0, float(frame["degree"].max()))
    bins = np.unique(np.round(np.logspace(0, np.log10(top + 1), 30)).astype(int)) - 1
    for ax, ((s, m), g) in zip(axes[0], groups, strict=True):
        ax.hist(g["degree"], bins=np.append(bins, bins[-1] + 1), color="#4c72b0")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_title(f"{s} {m} (n={len(g)})", fontsize=9)
        ax.set_xlabel("neighbours")
    axes[0][0].set_ylabel("nodes")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
