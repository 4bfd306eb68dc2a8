"""Cross-species element–element edges from the union peak table.

An element that exists in two species is one node per species (``human:el0000001`` and
``macaque:el0000001``); the pair column ``class_{a}_{b}`` says how conserved it is between
those two species, and its weight says how strongly the two nodes are tied: conserved
1.0, ``<species>_accessible`` 0.5, and no edge for ``<species>_sequence`` and ``ambiguous``
(lineage-specific or multi-mapping elements must stay free).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossglue.config import schema_defaults
from crossglue.errors import CrossglueError

BASE_CLASSES = ("conserved", "accessible", "sequence", "ambiguous")


_DEFAULTS = schema_defaults("graph.element_weights")


@dataclass(frozen=True)
class ElementParams:
    """Weight per class family (0 = no edge); ``enabled`` False drops every such edge (ablation)."""

    conserved: float = _DEFAULTS["conserved"]
    accessible: float = _DEFAULTS["accessible"]
    sequence: float = _DEFAULTS["sequence"]
    ambiguous: float = _DEFAULTS["ambiguous"]
    enabled: bool = True


def class_family(classes: pd.Series, species: list[str]) -> pd.Series:
    """``human_accessible`` -> ``accessible``; NA for names that are not union classes."""
    family = pd.Series(pd.NA, index=classes.index, dtype=object)
    family[classes.isin(["conserved", "ambiguous"])] = classes
    for s in species:
        for kind in ("accessible", "sequence"):
            family[classes == f"{s}_{kind}"] = kind
    return family


def pair_column(a: str, b: str) -> str:
    """The union-table column holding the class of an element between species a and b."""
    first, second = sorted((a, b))
    return f"class_{first}_{second}"


def element_edges(
    union: pd.DataFrame, species: list[str], params: ElementParams = ElementParams(), source: str = "union table"
) -> pd.DataFrame:
    """One row per (element, species pair) that gets an edge: element, species_a, species_b, class, weight.

    Uses ``class_{a}_{b}`` for the pair (falling back to ``class`` when there are only two
    species); an element needs coordinates in both species to be tied. One species (the
    others have RNA samples only): no pair, no edge.
    """
    frames = []
    columns = ["element", "species_a", "species_b", "class", "weight"]
    none = pd.DataFrame({c: pd.Series(dtype=np.float64 if c == "weight" else object) for c in columns})
    if not params.enabled:
        return none
    weights = {k: getattr(params, k) for k in BASE_CLASSES}
    for a, b in itertools.combinations(sorted(species), 2):  # species pairs, not elements
        column = pair_column(a, b)
        if column not in union.columns:
            if len(species) == 2 and "class" in union.columns:
                column = "class"
            else:
                raise CrossglueError(
                    f"{source}: no column '{column}' holding the class of each element between {a} and {b}"
                )
        classes = union[column].astype(object)
        family = class_family(classes.fillna(""), [a, b])
        unknown = family.isna() & classes.notna()
        if unknown.any():
            i = int(np.flatnonzero(unknown.to_numpy())[0])
            raise CrossglueError(
                f"{source}: row {i + 2} (element {union['element_id'].iloc[i]}), column '{column}': class "
                f"'{classes.iloc[i]}'; expected conserved, {a}_accessible, {b}_accessible, {a}_sequence, "
                f"{b}_sequence or ambiguous"
            )
        weight = family.map(weights).fillna(0.0).to_numpy(np.float64)
        both = (union[f"{a}_chrom"].notna() & union[f"{b}_chrom"].notna()).to_numpy()
        tied = (weight > 0) & both
        frames.append(
            pd.DataFrame(
                {
                    "element": union["element_id"].to_numpy()[tied],
                    "species_a": a,
                    "species_b": b,
                    "class": classes.to_numpy()[tied],
                    "weight": weight[tied],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else none
