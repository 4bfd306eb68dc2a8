"""Guidance-graph files: the edge table (TSV) and GraphML that networkx and scglue read.

The GraphML writer is our own vectorised one (networkx's builds a Python object per edge,
minutes for millions of edges); tests check that networkx reads it back unchanged.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from crossglue.errors import CrossglueError
from crossglue.graph.validate import ATTRIBUTE_COLUMNS, EDGE_COLUMNS
from crossglue.io_utils import open_output


def write_edge_table(edges: pd.DataFrame, path: str | Path) -> None:
    """TSV (gz when the name says so): source, target, weight, sign, type, distance, corr."""
    columns = list(EDGE_COLUMNS) + [c for c in ATTRIBUTE_COLUMNS if c in edges.columns]
    with open_output(path, compresslevel=4) as out:
        edges[columns].to_csv(out, sep="\t", index=False, na_rep="NA")


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
    with open_output(path, compresslevel=4) as out:
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
