"""Motif turnover: which elements gained accessibility, gained / lost motifs, the enrichment
test, the planted-motif score, and the real JASPAR database on sequences with planted sites."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pysam
import pytest
from scipy.stats import fisher_exact

from crossglue.analysis.motifs import BASE_CODE, read_meme, union_motif_hits
from crossglue.analysis.turnover import (
    TurnoverSettings,
    accessibility_gains,
    motif_changes,
    motif_turnover,
    orthologous_elements,
    planted_turnover,
)
from crossglue.errors import CrossglueError

SPECIES = ["human", "macaque"]


def union_of(classes: list[str]) -> pd.DataFrame:
    n = len(classes)
    table = pd.DataFrame({"element_id": [f"el{i}" for i in range(n)], "class": classes})
    for s in SPECIES:
        lacks = [c == f"{'macaque' if s == 'human' else 'human'}_sequence" for c in classes]
        table[f"{s}_chrom"] = np.where(lacks, None, "chr1")
        table[f"{s}_start"] = np.where(lacks, np.nan, np.arange(n) * 1000.0)
        table[f"{s}_end"] = table[f"{s}_start"] + 501
    return table


def test_only_orthologous_conserved_and_accessible_elements_are_compared():
    union = union_of(["conserved", "human_accessible", "human_sequence", "macaque_accessible", "ambiguous"])
    assert orthologous_elements(union, SPECIES)["element_id"].tolist() == ["el0", "el1", "el3"]
    with pytest.raises(CrossglueError, match=r"^motif turnover compares two species; the config names 1: \['human'\]$"):
        orthologous_elements(union, ["human"])


def test_a_motif_in_one_species_only_is_gained_there_and_lost_in_the_other():
    ids = pd.Index(["a", "b", "c"])
    hits = {
        "human": pd.DataFrame({"M1": [True, True, False], "M2": [False, True, False]}, index=ids),
        "macaque": pd.DataFrame({"M1": [False, True, True], "M2": [False, True, False]}, index=ids),
    }
    changes = motif_changes(hits, ids, SPECIES)
    assert changes["human"]["M1"].tolist() == [1, 0, -1]
    assert changes["macaque"]["M1"].tolist() == [-1, 0, 1]
    assert (changes["human"]["M2"] == 0).all()


def test_a_new_site_is_a_gain_even_where_the_other_species_has_a_site_elsewhere():
    ids = pd.Index(["a", "b", "c"])
    hits = {
        "human": pd.DataFrame({"M1": [2, 1, 0]}, index=ids),
        "macaque": pd.DataFrame({"M1": [1, 1, 3]}, index=ids),
    }
    changes = motif_changes(hits, ids, SPECIES)
    assert changes["human"]["M1"].tolist() == [1, 0, -1] and changes["macaque"]["M1"].tolist() == [-1, 0, 1]


def test_conserved_elements_more_accessible_in_one_species_count_as_its_gains():
    union = union_of(["conserved", "conserved", "conserved", "conserved", "macaque_accessible"])
    da = pd.DataFrame(
        {
            "species_a": "human",
            "species_b": "macaque",
            "cell_type": ["T1", "T1", "T1", "T2", "T1"],
            "element": ["el1", "el2", "el3", "el3", "el0"],
            "log2fc": [2.0, -3.0, 2.0, -2.0, 0.5],  # el0: too small a change
            "q_value": [0.01, 0.01, 0.01, 0.01, 0.001],
        }
    )
    gains = accessibility_gains(orthologous_elements(union, SPECIES), da, SPECIES, TurnoverSettings())
    assert gains.to_dict() == {"el0": "", "el1": "human", "el2": "macaque", "el3": None, "el4": "macaque"}


def test_enrichment_is_fishers_exact_test_against_conserved_elements():
    classes = ["human_accessible"] * 10 + ["conserved"] * 40
    union = union_of(classes)
    ids = union["element_id"]
    human = np.zeros((50, 2), bool)
    human[:6, 0] = True  # M1 gained at 6 of 10 human gains ...
    human[10:14, 0] = True  # ... and at 4 of 40 background elements
    human[:1, 1] = True
    macaque = np.zeros((50, 2), bool)
    macaque[20:22, 0] = True  # M1 lost in human at 2 background elements
    hits = {
        "human": pd.DataFrame(human, index=ids, columns=["M1", "M2"]),
        "macaque": pd.DataFrame(macaque, index=ids, columns=["M1", "M2"]),
    }
    summary, changes = motif_turnover(union, hits, SPECIES, {"M1": "TFONE"})
    row = summary.set_index(["species", "direction", "motif"]).loc[("human", "gained", "M1")]
    assert (row["motif_name"], row["n_elements"], row["n_changed"], row["n_background"], row["background_changed"]) == (
        "TFONE",
        10,
        6,
        40,
        4,
    )
    assert row["p_value"] == pytest.approx(fisher_exact([[6, 4], [4, 36]], alternative="greater")[1])
    lost = summary.set_index(["species", "direction", "motif"]).loc[("human", "lost", "M1")]
    assert (lost["n_changed"], lost["background_changed"], lost["p_value"]) == (0, 2, pytest.approx(1.0))
    # only human gains are listed (no macaque_accessible element), each with its motif name
    assert set(changes["species"]) == {"human"} and set(changes["change"]) == {"gained"}
    assert sorted(changes.loc[changes["motif"] == "M1", "element_id"]) == [f"el{i}" for i in range(6)]
    assert changes.loc[changes["motif"] == "M2", "motif_name"].tolist() == ["M2"]


def test_without_background_elements_turnover_is_an_error():
    union = union_of(["human_accessible", "macaque_accessible"])
    hits = {s: pd.DataFrame({"M1": [True, False]}, index=union["element_id"]) for s in SPECIES}
    with pytest.raises(CrossglueError, match="^motif turnover: no conserved element with both species' sequence"):
        motif_turnover(union, hits, SPECIES)


def test_planted_score_counts_module_elements_with_the_motif_gained_in_their_species():
    changes = pd.DataFrame(
        {
            "element_id": ["el0", "el1", "el2", "el3"],
            "class": "human_accessible",
            "species": ["human", "human", "macaque", "human"],
            "motif": ["MA1", "MA1", "MA1", "MA1"],
            "motif_name": "X",
            "change": ["gained", "gained", "gained", "lost"],
        }
    )
    truth = pd.DataFrame(
        {"human": ["c0", "c1", "c2", "c3", None], "macaque": [None] * 5}, index=[f"el{i}" for i in range(5)]
    )
    planted = pd.DataFrame({"module": ["m1"], "species": ["human"], "motif": ["MA1"], "cres": ["c0,c1,c2,c3,c9"]})
    score = planted_turnover(changes, truth, planted)
    assert score[["n_elements", "n_gained"]].values.tolist() == [[4, 2]]
    assert score["fraction_gained"].tolist() == [0.5]


def write_fasta(path, seqs: list[str]) -> None:
    path.write_text(">chr1\n" + "".join(seqs) + "\n")
    pysam.faidx(str(path))


def test_a_planted_jaspar_motif_is_found_gained_by_id_and_name_with_the_full_database(tmp_path, shared_data):
    """RFX1 (MA0509.3) sites sampled from its matrix in the human copy of 30 human-gained
    elements, none in their macaque copy; 200 conserved elements without it."""
    from crossglue.simulate.jaspar import jaspar_pwm

    rng = np.random.default_rng(7)
    motifs, bg = read_meme(shared_data / "motifs" / "JASPAR2024_CORE_vertebrates_non-redundant.meme")
    pwm = jaspar_pwm("MA0509.3")
    n_gain, n_bg, width = 30, 200, 501
    classes = ["human_accessible"] * n_gain + ["conserved"] * n_bg
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    comp = [0.295, 0.205, 0.205, 0.295]
    macaque = rng.choice(4, p=comp, size=(len(classes), width))
    mutate = rng.random(macaque.shape) < 0.03  # 3 % divergence between the two copies
    human = np.where(mutate, rng.choice(4, p=comp, size=macaque.shape), macaque)
    for i in range(n_gain):
        site = np.array([rng.choice(4, p=row) for row in pwm])
        human[i, 240 : 240 + len(site)] = site
    union = union_of(classes)
    union["human_start"] = np.arange(len(classes)) * width
    union["macaque_start"] = union["human_start"]
    for s in SPECIES:
        union[f"{s}_end"] = union[f"{s}_start"] + width
    fasta = {}
    for s, codes in (("human", human), ("macaque", macaque)):
        fasta[s] = tmp_path / f"{s}.fa"
        write_fasta(fasta[s], [letters[row].tobytes().decode() for row in codes])
    assert (BASE_CODE[np.frombuffer(b"ACGT", np.uint8)] == np.arange(4)).all()
    hits = union_motif_hits(union, SPECIES, fasta, motifs, bg, p=1e-4, counts=True)
    summary, changes = motif_turnover(union, hits, SPECIES, {m.id: m.name for m in motifs})
    gained = summary[(summary["species"] == "human") & (summary["direction"] == "gained")]
    print("\n" + gained.head(5).to_string(index=False))
    # RFX1 among the first three: RFX2 / RFX3 bind the same X-box and rank beside it
    top = gained.head(3).set_index("motif")
    assert "MA0509.3" in top.index, gained.head(5)
    assert top.loc["MA0509.3", "motif_name"] == "RFX1" and top.loc["MA0509.3", "q_value"] <= 1e-6
    found = changes[(changes["motif"] == "MA0509.3") & (changes["change"] == "gained")]
    assert len(found) >= 0.8 * n_gain
