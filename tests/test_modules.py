"""Species-specific modules: element selection, direction, motif grouping, truth recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossglue.analysis.modules import (
    ModuleSettings,
    call_modules,
    module_recovery,
    motif_enrichment,
    specific_linked_elements,
)

SPECIES = ["human", "macaque"]


def tables():
    """Human elements e1-e4 are human_accessible; e5 conserved but more open in human in Ex;
    e6 conserved and unchanged; m1 macaque_sequence. Genes: hA (up in human in Ex), hB (down
    in human in Ex), hC (up in human in In only)."""
    classes = pd.Series(
        {
            "e1": "human_accessible",
            "e2": "human_accessible",
            "e3": "human_accessible",
            "e4": "human_sequence",
            "e5": "conserved",
            "e6": "conserved",
            "m1": "macaque_sequence",
        }
    )
    links = pd.DataFrame(
        [
            ("human", "e1", "hA", 0.001),
            ("human", "e2", "hA", 0.01),
            ("human", "e3", "hA", 0.2),  # e3 link not significant (q > 0.1)
            ("human", "e4", "hB", 0.001),
            ("human", "e5", "hA", 0.001),
            ("human", "e6", "hA", 0.001),
            ("human", "e1", "hC", 0.001),
            ("macaque", "m1", "mB", 0.001),
        ],
        columns=["species", "element", "gene", "q_value"],
    )
    de = pd.DataFrame(
        [
            ("human", "macaque", "Ex", "hA", "mA", 2.0, 0.001),
            ("human", "macaque", "Ex", "hB", "mB", -2.0, 0.001),
            ("human", "macaque", "In", "hC", "mC", 1.5, 0.01),
            ("human", "macaque", "Ex", "hC", "mC", 1.5, 0.5),
        ],
        columns=["species_a", "species_b", "cell_type", "gene_a", "gene_b", "log2fc", "q_value"],
    )
    da = pd.DataFrame(
        [("human", "macaque", "Ex", "e5", 1.2, 0.01), ("human", "macaque", "In", "e6", 1.2, 0.5)],
        columns=["species_a", "species_b", "cell_type", "feature", "log2fc", "q_value"],
    )
    return links, de, da, classes


def test_elements_need_specificity_a_link_at_q_and_a_gene_changed_the_same_way():
    links, de, da, classes = tables()
    linked = specific_linked_elements(links, de, da, classes, SPECIES, ModuleSettings())
    got = set(map(tuple, linked[["species", "cell_type", "element", "gene"]].to_numpy()))
    assert got == {  # e3: link not significant; e4: gene down in human; e6: not more open in human
        ("human", "Ex", "e1", "hA"),
        ("human", "Ex", "e2", "hA"),  # class-specific, gene up in human in Ex
        ("human", "Ex", "e5", "hA"),  # conserved but differentially accessible in Ex
        ("human", "In", "e1", "hC"),
        ("macaque", "Ex", "m1", "mB"),  # hB down in human = mB up in macaque
    }
    assert linked.loc[linked["species"] == "macaque", "gene_log2fc"].tolist() == [2.0]


def test_link_q_is_the_module_link_threshold():
    links, de, da, classes = tables()
    strict = specific_linked_elements(links, de, da, classes, SPECIES, ModuleSettings(link_q=0.005))
    assert "e2" not in set(strict["element"]) and "e1" in set(strict["element"])  # e2 has q 0.01
    assert ModuleSettings().link_q == 0.1  # the schema default: links at FDR 10 %


def test_class_alone_does_not_count_where_the_differential_test_said_no():
    links, de, da, classes = tables()
    # e1 was tested in Ex and found not more open in human: no longer specific there by class
    da = pd.concat(
        [da, pd.DataFrame([("human", "macaque", "Ex", "e1", 0.1, 0.9)], columns=da.columns)], ignore_index=True
    )
    linked = specific_linked_elements(links, de, da, classes, SPECIES, ModuleSettings())
    assert "e1" not in set(linked["element"]) and "e2" in set(linked["element"])


def test_modules_without_motifs_group_by_species_and_cell_type():
    links, de, da, classes = tables()
    linked = specific_linked_elements(links, de, da, classes, SPECIES, ModuleSettings())
    modules = call_modules(linked, ModuleSettings(min_elements=2), gene_names={"hA": "GENEA"})
    assert modules["module"].tolist() == ["human.Ex.all"]
    row = modules.iloc[0]
    assert (row["elements"], row["genes"], row["gene_names"], row["n_elements"]) == ("e1,e2,e5", "hA", "GENEA", 3)


def test_motif_enrichment_is_hypergeometric():
    hits = pd.DataFrame({"M": [True, True, True, False, False, False, False, True]}, index=[f"x{i}" for i in range(8)])
    res = motif_enrichment(pd.Series(["x0", "x1", "x2"]), hits)
    # P(X >= 3) drawing 3 of 8 with 4 hits = C(4,3) / C(8,3) = 4/56
    assert res.loc[0, "p_value"] == pytest.approx(4 / 56)
    assert res.loc[0, "members_with_hit"] == 3


def test_modules_with_motifs_keep_only_enriched_motif_members():
    rng = np.random.default_rng(0)
    background = [f"bg{i}" for i in range(200)]
    members = [f"e{i}" for i in range(12)]
    linked = pd.DataFrame(
        {
            "species": "human",
            "cell_type": "Ex",
            "element": members,
            "gene": [f"g{i % 4}" for i in range(12)],
            "link_q": 0.001,
            "gene_log2fc": 1.0,
        }
    )
    hits = pd.DataFrame(index=members + background)
    hits["MPLANT"] = [i < 9 for i in range(12)] + list(rng.random(200) < 0.05)
    hits["MDECOY"] = [i == 0 for i in range(12)] + list(rng.random(200) < 0.05)
    modules = call_modules(linked, ModuleSettings(min_elements=3), hits={"human": hits}, motif_names={"MPLANT": "TFP"})
    assert modules["module"].tolist() == ["human.Ex.MPLANT"]
    assert modules.loc[0, "elements"].split(",") == sorted(members[:9])
    assert modules.loc[0, "motif_name"] == "TFP" and modules.loc[0, "motif_q"] < 1e-5


def test_near_copies_of_a_motif_make_one_module_and_a_distinct_motif_its_own():
    background = [f"bg{i}" for i in range(300)]
    members = [f"e{i:02d}" for i in range(20)]
    linked = pd.DataFrame(
        {"species": "human", "cell_type": "Ex", "element": members, "gene": "g0", "link_q": 0.001, "gene_log2fc": 1.0}
    )
    hits = pd.DataFrame(index=members + background)

    def with_background(in_members: list[bool], n: int) -> list[bool]:
        return in_members + [i < n for i in range(300)]

    hits["MLEAD"] = with_background([i < 10 for i in range(20)], 6)
    hits["MCOPY"] = with_background([i < 9 for i in range(20)], 12)  # a paralogue's matrix: 9 of the 10
    hits["MOTHER"] = with_background([i >= 12 for i in range(20)], 6)  # another programme: none shared
    names = {"MLEAD": "TFA", "MCOPY": "TFA2", "MOTHER": "TFB"}
    modules = call_modules(linked, ModuleSettings(min_elements=3), hits={"human": hits}, motif_names=names)
    assert sorted(modules["motif"]) == ["MLEAD", "MOTHER"]
    lead = modules.set_index("motif").loc["MLEAD"]
    assert lead["similar_motifs"] == "MCOPY" and lead["similar_motif_names"] == "TFA2"
    assert lead["elements"].split(",") == members[:10]
    assert modules.set_index("motif").loc["MOTHER", "similar_motifs"] == ""
    # family_jaccard 1: only identical member sets share a module
    apart = call_modules(linked, ModuleSettings(min_elements=3, family_jaccard=1.0), hits={"human": hits})
    assert sorted(apart["motif"]) == ["MCOPY", "MLEAD", "MOTHER"]


def test_module_recovery_by_hand():
    modules = pd.DataFrame(
        {"species": ["human", "human"], "cell_type": ["Ex", "In"], "elements": ["el1,el2,el3", "el4"]}
    )
    element_truth = pd.DataFrame(
        {"human": ["c1", "c2", None, "c4"], "macaque": [None] * 4}, index=["el1", "el2", "el3", "el4"]
    )
    planted = pd.DataFrame({"species": ["human"], "cell_types": ["Ex"], "cres": ["c1,c2,c4,c9"]})
    rec = module_recovery(modules, element_truth, planted)
    # called el1-el4: el1, el2, el4 planted (el3 matches no CRE) -> precision 3/4; planted c1 c2 c4 found of 4
    assert rec["precision"] == pytest.approx(3 / 4) and rec["recall"] == pytest.approx(3 / 4)
    # el4's module is in the wrong cell type
    assert rec["precision_cell_type"] == pytest.approx(2 / 4) and rec["recall_cell_type"] == pytest.approx(2 / 4)
