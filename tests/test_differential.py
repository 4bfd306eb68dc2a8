"""Pseudobulk sums and the replicate-aware species test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from crossglue.analysis.differential import pseudobulk, species_differential
from crossglue.errors import CrossglueError
from crossglue.graph.orthologs import one2one_pairs


def test_pseudobulk_sums_cells_of_each_donor_and_type():
    counts = sp.csr_matrix(np.array([[1, 0], [2, 5], [0, 1], [4, 4], [9, 9]]))
    obs = pd.DataFrame(
        {
            "species": ["h", "h", "h", "m", "m"],
            "donor": ["d1", "d1", "d2", "d3", "d3"],
            "cell_type": ["A", "A", "A", "A", None],
        }
    )
    profiles, groups = pseudobulk(counts, obs, ["species", "donor", "cell_type"], pd.Index(["g1", "g2"]), min_cells=1)
    assert profiles.loc["h|d1|A"].tolist() == [3, 5]
    assert profiles.loc["h|d2|A"].tolist() == [0, 1]
    assert profiles.loc["m|d3|A"].tolist() == [4, 4]  # the unlabelled cell is left out
    assert groups.loc["h|d1|A", "n_cells"] == 2
    profiles, _ = pseudobulk(counts, obs, ["species", "donor", "cell_type"], pd.Index(["g1", "g2"]), min_cells=2)
    assert profiles.index.tolist() == ["h|d1|A"]


def test_pseudobulk_checks_shapes():
    with pytest.raises(CrossglueError, match="expected 2 cells × 3 features"):
        pseudobulk(sp.csr_matrix((2, 2)), pd.DataFrame({"k": ["a", "b"]}), ["k"], pd.Index(list("xyz")))


def simulated_pseudobulks(seed: int = 0, n_genes: int = 200, donors: int = 3, n_up: int = 30):
    """NB pseudobulks of two species, 3 donors each, in two cell types; the first ``n_up`` genes
    are 4x higher in human in type A only; donor effects shift library size."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(4, 1, size=n_genes)
    rows, meta = [], []
    for species in ("human", "macaque"):
        for d in range(donors):
            size = rng.lognormal(0, 0.3)
            for cell_type in ("A", "B"):
                mean = base * size
                if species == "human" and cell_type == "A":
                    mean = mean.copy()
                    mean[:n_up] *= 4
                disp = 0.05
                rows.append(rng.negative_binomial(1 / disp, 1 / (1 + mean * disp)))
                meta.append((species, f"{species}_d{d}", cell_type, 50))
    groups = pd.DataFrame(meta, columns=["species", "donor", "cell_type", "n_cells"])
    groups.index = groups["species"] + "|" + groups["donor"] + "|" + groups["cell_type"]
    profiles = pd.DataFrame(np.array(rows), index=groups.index, columns=[f"g{i}" for i in range(n_genes)])
    return profiles, groups


def test_species_differential_finds_planted_genes_in_the_right_cell_type_and_direction():
    profiles, groups = simulated_pseudobulks()
    res = species_differential(profiles, groups, "human", "macaque")
    sig = res[res["q_value"] < 0.05]
    planted = {f"g{i}" for i in range(30)}
    in_a = sig[sig["cell_type"] == "A"]
    assert len(planted & set(in_a["feature"])) >= 27  # recall >= 0.9
    assert (in_a["feature"].isin(planted)).mean() >= 0.9  # FDR kept
    assert (in_a.loc[in_a["feature"].isin(planted), "log2fc"] > 1).all()  # up in human, ~log2(4)
    assert (sig["cell_type"] == "B").sum() <= 2
    assert set(res["donors_a"]) == {3}


def test_cell_types_without_replicates_are_not_tested():
    profiles, groups = simulated_pseudobulks(donors=3)
    drop = groups.index[
        (groups["species"] == "macaque") & (groups["cell_type"] == "B") & (groups["donor"] != "macaque_d0")
    ]
    res = species_differential(profiles.drop(drop), groups.drop(drop), "human", "macaque", min_donors=2)
    assert set(res["cell_type"]) == {"A"}


def test_one_to_one_orthologs_come_from_the_ortholog_links_in_either_orientation():
    links = pd.DataFrame(
        {
            "species_a": ["human", "human", "human", "macaque", "human"],
            "species_b": ["macaque", "macaque", "macaque", "human", "chimp"],
            "gene_a": ["G1", "G2", "G2", "M4", "G5"],
            "gene_b": ["M1", "M2", "M3", "G3", "C5"],
            "homology_type": ["one2one", "one2many", "one2many", "one2one", "one2one"],
        }
    )
    pairs = one2one_pairs(links, "human", "macaque")  # what species_pair_tests pairs genes with
    assert pairs.values.tolist() == [["G1", "M1"], ["G3", "M4"]]
