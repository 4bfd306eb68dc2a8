"""The guidance graph assembled from its layers: nodes, symmetric edges, self-loops.

Nodes are ``species:feature`` strings; every edge is stored in both directions with a
weight in (0, 1] and a sign of ±1, and every node carries a self-loop of weight 1 — the
properties scglue's ``check_graph`` demands and the model's propagation step assumes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from crossglue.errors import CrossglueError
from crossglue.graph.element_edges import element_edges
from crossglue.graph.settings import GraphSettings
from crossglue.graph.validate import ATTRIBUTE_COLUMNS, EDGE_COLUMNS, validate

log = logging.getLogger("crossglue.graph")


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
    species_b, gene_a, gene_b, weight; ``union``: the union peak table of the species with
    ATAC features. A species without ``"atac"`` features (RNA samples only) has gene nodes
    and ortholog edges only. Element edges are kept only where the element is an ATAC
    feature of both species.
    """
    nodes = node_table(features)
    layers = [peak_gene_layer(s, links) for s, links in peak_gene.items()]
    for (a, b), pair in orthologs.groupby(["species_a", "species_b"], sort=False):  # species pairs
        layers.append(ortholog_layer(a, b, pair))
    with_atac = [s for s, by_modality in features.items() if "atac" in by_modality]
    tied = set(orthologs["species_a"]) | set(orthologs["species_b"])
    untied = [s for s in features if s not in with_atac and s not in tied]
    if untied:
        raise CrossglueError(
            f"species '{untied[0]}' has RNA samples only and no ortholog edge: nothing would tie its cells to the "
            "other species; check its ortholog tables in config 'orthologs' (results/graph/orthologs_missing.tsv "
            "lists table genes missing from the data)"
        )
    elements = element_edges(union, with_atac, settings.element_weights, source=source)
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
