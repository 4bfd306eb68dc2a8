"""The guidance graph: assembly, validation, files (edge table + GraphML) and a summary.

Nodes are ``species:feature`` strings; every edge is stored in both directions with a
weight in (0, 1] and a sign of ±1, and every node carries a self-loop of weight 1 — the
properties scglue's ``check_graph`` demands and the model's propagation step assumes.
The GraphML writer is our own vectorised one (networkx's builds a Python object per edge,
minutes for millions of edges); tests check that networkx reads it back unchanged.
"""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from crossglue.graph.element_edges import ElementParams, element_edges
from crossglue.errors import CrossglueError
from crossglue.io_utils import atomic_path
from crossglue.graph.orthologs import OrthologParams
from crossglue.graph.peak_gene import CorrelationParams, PeakGeneParams

EDGE_COLUMNS = ("source", "target", "weight", "sign", "type")
# Optional per-edge attributes carried into both files (NA where they do not apply).
ATTRIBUTE_COLUMNS = ("distance", "corr")


@dataclass(frozen=True)
class GraphSettings:
    """Everything under ``config["graph"]``; defaults follow DESIGN.md."""

    peak_gene: PeakGeneParams = field(default_factory=PeakGeneParams)
    correlation: CorrelationParams = field(default_factory=CorrelationParams)
    orthologs: OrthologParams = field(default_factory=OrthologParams)
    element_weights: ElementParams = field(default_factory=ElementParams)
    element_edges: bool = True


def graph_settings(config: Mapping | None) -> GraphSettings:
    """Build :class:`GraphSettings` from ``config["graph"]``, naming any unknown or mistyped key."""
    config = dict(config or {})
    sections = {f.name: f for f in dataclasses.fields(GraphSettings)}
    unknown = sorted(set(config) - set(sections))
    if unknown:
        raise CrossglueError(
            f"config key 'graph.{unknown[0]}' is not a known key; expected one of: " + ", ".join(sections)
        )
    values = {}
    for name, value in config.items():
        default = sections[name].default_factory() if callable(sections[name].default_factory) else None
        if default is None:
            if not isinstance(value, bool):
                raise CrossglueError(f"config key 'graph.{name}': {value!r} is not true or false")
            values[name] = value
            continue
        if not isinstance(value, Mapping):
            raise CrossglueError(f"config key 'graph.{name}': expected a mapping of settings, got {value!r}")
        known = {f.name: f for f in dataclasses.fields(default)}
        bad = sorted(set(value) - set(known))
        if bad:
            raise CrossglueError(
                f"config key 'graph.{name}.{bad[0]}' is not a known key; expected one of: " + ", ".join(known)
            )
        for key, item in value.items():
            expected = type(getattr(default, key))
            ok = isinstance(item, expected) or (
                expected is float and isinstance(item, int) and not isinstance(item, bool)
            )
            if not ok or (expected is not bool and isinstance(item, bool)):
                raise CrossglueError(f"config key 'graph.{name}.{key}': {item!r} is not a {expected.__name__}")
            if expected in (int, float) and item < 0:
                raise CrossglueError(f"config key 'graph.{name}.{key}': {item!r} must not be negative")
        values[name] = dataclasses.replace(default, **value)
    if "enabled" in config.get("element_weights", {}):
        raise CrossglueError("config key 'graph.element_weights.enabled': use the switch 'graph.element_edges'")
    settings = GraphSettings(**values)
    settings = dataclasses.replace(
        settings, element_weights=dataclasses.replace(settings.element_weights, enabled=settings.element_edges)
    )
    for key in ("conserved", "accessible", "sequence", "ambiguous"):
        if getattr(settings.element_weights, key) > 1:
            raise CrossglueError(f"config key 'graph.element_weights.{key}': weights must lie in [0, 1]")
    for key in ("one2one", "many", "low_confidence"):
        if getattr(settings.orthologs, key) > 1:
            raise CrossglueError(f"config key 'graph.orthologs.{key}': must lie in [0, 1]")
    for key, lowest in (("peak_gene.decay_scale", 1e-9), ("correlation.k", 2), ("correlation.n_metacells", 3)):
        section, name = key.split(".")
        if getattr(getattr(settings, section), name) < lowest:
            raise CrossglueError(f"config key 'graph.{key}': must be at least {lowest:g}")
    return settings


def node_names(species: str, features: Iterable[str]) -> np.ndarray:
    """``species:feature`` for every feature."""
    return (species + ":" + pd.Series(list(features), dtype=object).astype(str)).to_numpy(dtype=object)


def node_table(features: Mapping[str, Mapping[str, Iterable[str]]]) -> pd.DataFrame:
    """node, species, modality for every data feature: ``features[species][modality]``."""
    frames = [
        pd.DataFrame({"node": node_names(s, feats), "species": s, "modality": m})
        for s, by_modality in features.items()
        for m, feats in by_modality.items()
    ]
    nodes = pd.concat(frames, ignore_index=True)
    dup = nodes["node"].duplicated()
    if dup.any():
        row = nodes[dup].iloc[0]
        raise CrossglueError(
            f"feature '{row['node']}' is listed twice (again in {row['species']} {row['modality']}); "
            "feature names must be unique within a species"
        )
    return nodes


def assemble(nodes: pd.DataFrame, edges: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Symmetric edge table with a self-loop on every node, from undirected edge lists.

    Each input frame has source, target, weight, sign, type (+ optional attributes) with
    each edge listed once in either direction. A node pair listed twice keeps its heaviest
    edge, so the graph stays simple (one edge per ordered pair, as GraphML readers expect).
    """
    undirected = [e for e in edges if len(e)]
    columns = list(EDGE_COLUMNS) + list(ATTRIBUTE_COLUMNS)
    links = (
        pd.concat([e.reindex(columns=columns) for e in undirected], ignore_index=True)
        if undirected
        else (pd.DataFrame(columns=columns))
    )
    links = links[links["source"] != links["target"]]
    first, second = links["source"].astype(str), links["target"].astype(str)
    swap = (first > second).to_numpy()
    lo = np.where(swap, second, first).astype(object)
    hi = np.where(swap, first, second).astype(object)
    links = links.assign(source=lo, target=hi).sort_values("weight", ascending=False, kind="stable")
    links = links.drop_duplicates(["source", "target"])
    mirrored = links.rename(columns={"source": "target", "target": "source"})
    names = pd.unique(np.concatenate([nodes["node"].to_numpy(object), lo, hi]))
    loops = pd.DataFrame({"source": names, "target": names, "weight": 1.0, "sign": 1, "type": "self"})
    table = pd.concat([loops.reindex(columns=columns), links, mirrored[links.columns]], ignore_index=True)
    table["weight"] = table["weight"].astype(np.float64)
    table["sign"] = table["sign"].astype(np.int8)
    table["distance"] = table["distance"].astype("Int64")
    table["corr"] = table["corr"].astype(np.float64)
    return table.sort_values(["source", "target"], kind="stable").reset_index(drop=True)


def validate(edges: pd.DataFrame, nodes: pd.DataFrame | None = None, source: str = "guidance graph") -> None:
    """Raise :class:`CrossglueError` on anything the model or scglue's check_graph would reject.

    Checks columns, weights in (0, 1], signs ±1, one edge per ordered pair, a reverse edge
    with equal weight and sign for every edge, a weight-1 self-loop on every node, and (when
    ``nodes`` is given) a node for every data feature.
    """
    missing = [c for c in EDGE_COLUMNS if c not in edges.columns]
    if missing:
        raise CrossglueError(f"{source}: missing column(s) {', '.join(missing)}; expected {', '.join(EDGE_COLUMNS)}")
    if len(edges) == 0:
        raise CrossglueError(f"{source}: the graph has no edges (not even self-loops)")
    src = edges["source"].astype(str).to_numpy(object)
    dst = edges["target"].astype(str).to_numpy(object)

    def at(i: int) -> str:
        return f"{source}: edge {src[i]} -> {dst[i]} (type {edges['type'].iloc[i]})"

    weight = pd.to_numeric(edges["weight"], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~(np.isfinite(weight) & (weight > 0) & (weight <= 1)))
    if bad.size:
        raise CrossglueError(
            f"{at(bad[0])} has weight {edges['weight'].iloc[bad[0]]!r}; expected a number in (0, 1] "
            f"({bad.size} edge(s) out of range)"
        )
    sign = pd.to_numeric(edges["sign"], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isin(sign, (-1.0, 1.0)))
    if bad.size:
        raise CrossglueError(f"{at(bad[0])} has sign {edges['sign'].iloc[bad[0]]!r}; expected +1 or -1")

    names = pd.Index(pd.unique(np.concatenate([src, dst])))
    s_code = names.get_indexer(src).astype(np.int64)
    t_code = names.get_indexer(dst).astype(np.int64)
    n = np.int64(len(names))
    forward = s_code * n + t_code
    order = np.argsort(forward, kind="stable")
    dup = np.flatnonzero(np.diff(forward[order]) == 0)
    if dup.size:
        raise CrossglueError(
            f"{at(order[dup[0] + 1])} is listed more than once; expected one edge per ordered node pair"
        )
    pos = np.minimum(np.searchsorted(forward[order], t_code * n + s_code), len(forward) - 1)
    reverse = order[pos]
    bad = np.flatnonzero(forward[reverse] != t_code * n + s_code)
    if bad.size:
        raise CrossglueError(
            f"{at(bad[0])} has no reverse edge ({bad.size} edge(s) without one); the graph must be symmetric"
        )
    bad = np.flatnonzero((weight[reverse] != weight) | (sign[reverse] != sign))
    if bad.size:
        i = bad[0]
        raise CrossglueError(
            f"{at(i)} has weight {weight[i]}, sign {sign[i]:+g} but its reverse has weight "
            f"{weight[reverse[i]]}, sign {sign[reverse[i]]:+g}; the graph must be symmetric"
        )

    loop = s_code == t_code
    looped = np.zeros(len(names), dtype=bool)
    looped[s_code[loop]] = True
    if not looped.all():
        lonely = names[~looped]
        raise CrossglueError(
            f"{source}: {lonely.size} node(s) without a self-loop, e.g. {list(lonely[:3])}; "
            "every node needs a self-loop of weight 1"
        )
    bad = np.flatnonzero(loop & (weight != 1))
    if bad.size:
        raise CrossglueError(f"{at(bad[0])} is a self-loop of weight {weight[bad[0]]}; expected 1")
    if nodes is not None:
        absent = ~nodes["node"].isin(names)
        if absent.any():
            row = nodes[absent].iloc[0]
            raise CrossglueError(
                f"{source}: {int(absent.sum())} data feature(s) have no node, e.g. '{row['node']}' "
                f"({row['species']} {row['modality']}); every feature of the data needs a node"
            )


# --- files -----------------------------------------------------------------------------


def write_edge_table(edges: pd.DataFrame, path: str | Path) -> None:
    """TSV (gz when the name says so): source, target, weight, sign, type, distance, corr."""
    columns = list(EDGE_COLUMNS) + [c for c in ATTRIBUTE_COLUMNS if c in edges.columns]
    with atomic_path(path) as tmp:
        edges[columns].to_csv(
            tmp,
            sep="\t",
            index=False,
            na_rep="NA",
            compression={"method": "gzip", "compresslevel": 4} if str(path).endswith(".gz") else None,
        )


def read_edge_table(path: str | Path) -> pd.DataFrame:
    """Read an edge table written by :func:`write_edge_table` (or any with its columns)."""
    path = Path(path)
    if not path.is_file():
        raise CrossglueError(f"edge table {path} does not exist")
    edges = pd.read_csv(path, sep="\t", dtype={"source": str, "target": str, "type": str}, na_values=["NA"])
    missing = [c for c in EDGE_COLUMNS if c not in edges.columns]
    if missing:
        raise CrossglueError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(EDGE_COLUMNS)}")
    return edges


def _xml(values: pd.Series) -> pd.Series:
    text = values.astype(str)
    if text.str.contains(r"[&<>\"']", regex=True).any():
        text = text.map(lambda v: escape(v, {'"': "&quot;", "'": "&apos;"}))
    return text


def _data(key: str, values: pd.Series) -> pd.Series:
    """``<data key=..>v</data>`` per row; empty where the value is missing."""
    text = f'<data key="{key}">' + _xml(values) + "</data>"
    return text.where(values.notna().to_numpy(), "")


def write_graphml(edges: pd.DataFrame, nodes: pd.DataFrame, path: str | Path, chunk: int = 250_000) -> None:
    """GraphML (gzipped when the name ends .gz) readable by ``networkx.read_graphml``.

    Nodes carry ``species`` and ``modality``; edges carry weight (double), sign (int),
    type (string) and, where present, distance and corr (double).
    """
    names = pd.Index(pd.unique(np.concatenate([edges["source"].to_numpy(object), edges["target"].to_numpy(object)])))
    info = nodes.drop_duplicates("node").set_index("node").reindex(names)
    keys = [
        ("d0", "node", "species", "string"),
        ("d1", "node", "modality", "string"),
        ("d2", "edge", "weight", "double"),
        ("d3", "edge", "sign", "int"),
        ("d4", "edge", "type", "string"),
    ]
    attrs = [c for c in ATTRIBUTE_COLUMNS if c in edges.columns and edges[c].notna().any()]
    keys += [(f"d{5 + i}", "edge", c, "double") for i, c in enumerate(attrs)]
    head = [
        "<?xml version='1.0' encoding='utf-8'?>",
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
        'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">',
        *(f'  <key id="{k}" for="{f}" attr.name="{n}" attr.type="{t}" />' for k, f, n, t in keys),
        '  <graph edgedefault="directed">',
    ]
    node_lines = (
        '    <node id="'
        + _xml(pd.Series(names, dtype=object))
        + '">'
        + _data("d0", info["species"].reset_index(drop=True))
        + _data("d1", info["modality"].reset_index(drop=True))
        + "</node>\n"
    )
    opener = gzip.open if str(path).endswith(".gz") else open
    with (
        atomic_path(path) as tmp,
        opener(tmp, "wt", encoding="utf-8", **({"compresslevel": 4} if opener is gzip.open else {})) as out,
    ):
        out.write("\n".join(head) + "\n")
        out.write("".join(node_lines))
        for s in range(0, len(edges), chunk):
            part = edges.iloc[s : s + chunk].reset_index(drop=True)
            weight = part["weight"].astype(np.float64)
            lines = (
                '    <edge source="'
                + _xml(part["source"])
                + '" target="'
                + _xml(part["target"])
                + '">'
                + _data("d2", weight)
                + _data("d3", part["sign"].astype(np.int64))
                + _data("d4", part["type"])
            )
            for i, c in enumerate(attrs):
                lines = lines + _data(f"d{5 + i}", part[c].astype(np.float64))
            out.write("".join(lines + "</edge>\n"))
        out.write("  </graph>\n</graphml>\n")


def read_graph(path: str | Path):
    """The GraphML file as a networkx graph (slow for millions of edges: tests and notebooks)."""
    import networkx as nx

    return nx.read_graphml(str(path))


# --- summary ---------------------------------------------------------------------------


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


# --- layers: per-layer tables -> undirected edge lists with node names ---------------------


def peak_gene_layer(species: str, links: pd.DataFrame) -> pd.DataFrame:
    """``species:peak`` — ``species:gene`` edges from :func:`crossglue.graph.peak_gene.peak_gene_edges`."""
    return pd.DataFrame(
        {
            "source": node_names(species, links["peak"]),
            "target": node_names(species, links["gene"]),
            "weight": links["weight"].to_numpy(np.float64),
            "sign": 1,
            "type": "peak_gene",
            "distance": links["distance"].to_numpy() if "distance" in links else pd.NA,
            "corr": links["corr"].to_numpy(np.float64) if "corr" in links else np.nan,
        }
    )


def ortholog_layer(species_a: str, species_b: str, orthologs: pd.DataFrame) -> pd.DataFrame:
    """``a:gene`` — ``b:gene`` edges from :func:`crossglue.graph.orthologs.ortholog_edges`."""
    return pd.DataFrame(
        {
            "source": node_names(species_a, orthologs["gene_a"]),
            "target": node_names(species_b, orthologs["gene_b"]),
            "weight": orthologs["weight"].to_numpy(np.float64),
            "sign": 1,
            "type": "ortholog",
        }
    )


def element_layer(elements: pd.DataFrame) -> pd.DataFrame:
    """``a:element`` — ``b:element`` edges from :func:`crossglue.graph.element_edges.element_edges`."""
    return pd.DataFrame(
        {
            "source": (elements["species_a"] + ":" + elements["element"]).to_numpy(object),
            "target": (elements["species_b"] + ":" + elements["element"]).to_numpy(object),
            "weight": elements["weight"].to_numpy(np.float64),
            "sign": 1,
            "type": "element",
        }
    )


def h5ad_features(path: str | Path) -> pd.DataFrame:
    """The ``var`` table of an h5ad file (features as index) without loading its matrix."""
    import h5py
    from anndata.io import read_elem

    path = Path(path)
    if not path.is_file():
        raise CrossglueError(f"{path} does not exist")
    try:
        with h5py.File(path, "r") as handle:
            return read_elem(handle["var"])
    except (OSError, KeyError) as err:
        raise CrossglueError(f"{path}: not an h5ad file with a 'var' table ({err})") from None


def build_guidance(
    features: Mapping[str, Mapping[str, Iterable[str]]],
    peak_gene: Mapping[str, pd.DataFrame],
    orthologs: pd.DataFrame,
    union: pd.DataFrame,
    settings: GraphSettings = GraphSettings(),
    source: str = "union table",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes and the validated edge table from every layer.

    ``features[species]["rna"|"atac"]``: the data's features (every one becomes a node);
    ``peak_gene[species]``: peak, gene, distance, weight [, corr]; ``orthologs``: species_a,
    species_b, gene_a, gene_b, weight; ``union``: the union peak table. Element edges
    are kept only where the element is an ATAC feature of both species.
    """
    import logging

    log = logging.getLogger("crossglue.graph.assembly")
    nodes = node_table(features)
    layers = [peak_gene_layer(s, links) for s, links in peak_gene.items()]
    for (a, b), pair in orthologs.groupby(["species_a", "species_b"], sort=False):  # species pairs
        layers.append(ortholog_layer(a, b, pair))
    elements = element_edges(union, list(features), settings.element_weights, source=source)
    absent = pd.Series(False, index=elements.index)
    for s, by_modality in features.items():  # species, not elements
        ends = (elements["species_a"] == s) | (elements["species_b"] == s)
        absent |= ends & ~elements["element"].isin(pd.Index(by_modality.get("atac", [])))
    if absent.any():
        log.warning("%d element edge(s) dropped: element not an ATAC feature of one of its species", int(absent.sum()))
    layers.append(element_layer(elements[~absent]))
    if not settings.element_edges:
        log.info("graph.element_edges is false: no element-element edges (ablation)")
    edges = assemble(nodes, layers)
    validate(edges, nodes, source="guidance graph")
    return nodes, edges
