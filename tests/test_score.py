"""The scorer (crossglue.simulate.score) on tiny hand-made truth and outputs: each figure means
what its name says, and a missing truth column or output gives NA with a reason."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crossglue.simulate import score as sc

SPECIES = ["human", "macaque"]
TYPES = ["A", "B", "C"]


def _cells(swap: tuple[str, str] | None = None, n: int = 8, seed: int = 0):
    """obs + X_glue: every type of both species at its own centre; human labelled; each
    nucleus seen in RNA and ATAC at the same point. ``swap`` puts macaque cells of two types
    at each other's centre."""
    rng = np.random.default_rng(seed)
    centre = {t: np.eye(3)[i] * 100 for i, t in enumerate(TYPES)}
    rows, x = [], []
    for s in SPECIES:
        for t in TYPES:
            for i in range(n):
                at = t
                if swap and s == "macaque" and t in swap:
                    at = swap[1] if t == swap[0] else swap[0]
                point = centre[at] + rng.normal(0, 1, 3)
                nucleus = f"{s}_m#{t}{i}"
                for m in ("rna", "atac"):
                    rows.append(
                        {
                            "cell_id": nucleus,
                            "species": s,
                            "modality": m,
                            "nucleus": nucleus,
                            "cell_type": t if s == "human" else None,
                            "true_type": t,
                        }
                    )
                    x.append(point)
    obs = pd.DataFrame(rows)
    obs.index = obs["modality"] + ":" + obs["cell_id"]
    return obs, np.array(x)


def _figures(frame: pd.DataFrame) -> dict:
    return dict(zip(frame["figure"], frame["value"], strict=True))


def _reasons(frame: pd.DataFrame) -> dict:
    return dict(zip(frame["figure"], frame["reason"], strict=True))


def test_perfect_embedding_transfers_every_label_and_pairs_every_nucleus():
    obs, x = _cells()
    figures, tables = sc.transfer_figures(obs, x, SPECIES)
    f = _figures(figures)
    assert f["transfer.main.human_to_macaque.accuracy"] == 1.0
    assert f["transfer.main.human_to_macaque.balanced_accuracy"] == 1.0
    for pair in ("rna_to_rna", "rna_to_atac", "atac_to_rna", "atac_to_atac"):
        assert f[f"transfer.main.human_to_macaque.{pair}.accuracy"] == 1.0
    assert f["transfer.main.human_to_macaque.largest_off_diagonal"] == 0.0
    # macaque has no labels: that direction is NA with the reason
    assert np.isnan(f["transfer.main.macaque_to_human.accuracy"])
    assert "no labelled macaque" in _reasons(figures)["transfer.main.macaque_to_human.accuracy"]
    integ = _figures(sc.integration_figures(obs, x, SPECIES))
    assert integ["integration.main.foscttm_human"] == 0.0 and integ["integration.main.foscttm_macaque"] == 0.0
    assert integ["integration.main.mean_average_precision"] == pytest.approx(1.0)


def test_a_swapped_pair_of_types_shows_in_the_confusion_table():
    obs, x = _cells(swap=("A", "B"))
    figures, tables = sc.transfer_figures(obs, x, SPECIES)
    f, r = _figures(figures), _reasons(figures)
    table = tables["kNN transfer (main) human -> macaque: true x assigned (row-normalised)"]
    assert table.loc["A", "B"] == 1.0 and table.loc["B", "A"] == 1.0 and table.loc["C", "C"] == 1.0
    assert f["transfer.main.human_to_macaque.accuracy"] == pytest.approx(1 / 3)
    assert f["transfer.main.human_to_macaque.balanced_accuracy"] == pytest.approx(1 / 3)
    assert f["transfer.main.human_to_macaque.largest_off_diagonal"] == 1.0
    assert r["transfer.main.human_to_macaque.largest_off_diagonal"] in ("A -> B", "B -> A")
    assert f["transfer.main.human_to_macaque.shared_accuracy"] == pytest.approx(1 / 3)  # every type is shared
    assert f["transfer.main.human_to_macaque.largest_off_diagonal_shared"] == 1.0
    # pairing is untouched by the swap (both modalities of a nucleus moved together)
    assert _figures(sc.integration_figures(obs, x, SPECIES))["integration.main.foscttm_macaque"] == 0.0


def test_balanced_accuracy_weighs_types_equally_and_skips_types_the_reference_lacks():
    truth = np.array(["A"] * 9 + ["B"] + ["Z"] * 5)
    pred = np.array(["A"] * 9 + ["A"] + ["A"] * 5)
    assert sc.balanced_accuracy(truth, pred, {"A", "B"}) == pytest.approx(0.5)
    assert sc.balanced_accuracy(truth, pred) == pytest.approx(1 / 3)


def _truth_cells():
    rows = []
    for i, (modality, status) in enumerate(
        [("rna", "cell")] * 4
        + [("rna", "doublet")] * 4
        + [("atac", "cell")] * 2
        + [("atac", "empty")] * 2
        + [("multiome", "cell")] * 2
        + [("multiome", "low_quality")] * 2
    ):
        rows.append(
            {
                "cell": f"c{i}",
                "modality": modality,
                "status": status,
                "species": "human",
                "cell_type": None if status in ("doublet", "empty") else "A",
            }
        )
    return pd.DataFrame(rows)


def test_qc_counts_removed_doublets_per_modality():
    truth = _truth_cells()
    # kept: 3 of 4 RNA cells, 1 of 4 doublets; both ATAC cells, 1 empty; multiome c12 in both,
    # c13 in RNA only; low-quality c14 kept in ATAC only
    kept = pd.DataFrame(
        [
            ("c0", "rna"),
            ("c1", "rna"),
            ("c2", "rna"),
            ("c4", "rna"),
            ("c8", "atac"),
            ("c9", "atac"),
            ("c10", "atac"),
            ("c12", "rna"),
            ("c12", "atac"),
            ("c13", "rna"),
            ("c14", "atac"),
        ],
        columns=["cell_id", "modality"],
    )
    f = _figures(sc.qc_figures(truth, kept, source="test"))
    assert f["qc.doublet_removed.rna"] == 0.75
    assert np.isnan(f["qc.doublet_removed.atac"])
    assert f["qc.empty_removed.atac"] == 0.5
    assert f["qc.real_nuclei_kept.rna"] == pytest.approx(5 / 6)  # c0-c2 + c12, c13 of c0-c3, c12, c13
    assert f["qc.real_nuclei_kept.atac"] == pytest.approx(3 / 4)  # c8, c9, c12 of c8, c9, c12, c13
    assert f["qc.low_quality_removed.rna"] == 1.0 and f["qc.low_quality_removed.atac"] == 0.5


def test_missing_truth_column_gives_na_with_reason():
    truth = _truth_cells().drop(columns="status")
    frame = sc.qc_figures(truth, pd.DataFrame({"cell_id": ["c0"], "modality": ["rna"]}))
    assert frame["value"].isna().all()
    assert frame["reason"].str.contains("no status").all()
    # the demo names the column `quality` and plants no doublets
    demo = _truth_cells().rename(columns={"status": "quality"}).replace({"quality": {"doublet": "high_mito"}})
    frame = sc.qc_figures(demo, pd.DataFrame({"cell_id": ["c0"], "modality": ["rna"]}))
    r = _reasons(frame)
    assert "no 'doublet'" in r["qc.doublet_removed.rna"] and "qc.high_mito_removed.rna" in r


def test_pipeline_labels_score_unassigned_novel_types_and_absent_types():
    # human labelled with A, B, H (H human only); macaque has A, B and a novel type N
    obs = pd.DataFrame(
        {
            "species": ["human"] * 3 + ["macaque"] * 8,
            "cell_type": ["A", "B", "H"] + [None] * 8,
            "true_type": ["A", "B", "H", "A", "A", "B", "B", "N", "N", "A", "B"],
            "cell_type_transferred": ["A", "B", "H", "A", "A", "B", "unassigned", "unassigned", "H", "H", "B"],
        }
    )
    truth = pd.DataFrame({"species": obs["species"], "cell_type": obs["true_type"]})
    frame, tables = sc.pipeline_label_figures(obs, truth, SPECIES)
    f = _figures(frame)
    assert f["labels.main.macaque.accuracy"] == pytest.approx(4 / 8)
    assert f["labels.main.macaque.unassigned_novel_types"] == 0.5
    assert f["labels.main.macaque.unassigned_shared_types"] == pytest.approx(1 / 6)
    assert f["labels.main.macaque.labelled_as_absent_type"] == pytest.approx(2 / 8)  # H is human only
    assert f["labels.main.macaque.balanced_accuracy"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert np.isnan(f["labels.main.human.accuracy"])  # every human cell is labelled


def test_union_classes_scored_against_truth_cres():
    cres = pd.DataFrame(
        {
            "cre": ["c1", "c2", "c3"],
            "class": ["conserved", "human_accessible", "human_sequence"],
            "human_chrom": ["chr1"] * 3,
            "human_centre": [1_000, 5_000, 9_000],
            "macaque_chrom": ["chr1", "chr1", None],
            "macaque_centre": [2_000, 6_000, None],
        }
    )
    union = pd.DataFrame(
        {
            "element_id": ["e1", "e2", "e3", "e4"],
            "class": ["conserved", "conserved", "human_sequence", "conserved"],  # e2 is miscalled
            "human_chrom": ["chr1"] * 4,
            "human_start": [750, 4_750, 8_750, 20_000],
            "human_end": [1_251, 5_251, 9_251, 20_501],
            "human_peak": ["p1", "p2", "p3", "p4"],
            "macaque_chrom": ["chr1", "chr1", None, None],
            "macaque_start": [1_750, 5_750, None, None],
            "macaque_end": [2_251, 6_251, None, None],
            "macaque_peak": [None] * 4,
        }
    )
    et = sc.union_element_truth(union, cres, SPECIES)
    frame, tables = sc.union_figures(union, et, cres, SPECIES)
    f = _figures(frame)
    assert f["union.conserved.precision"] == pytest.approx(1 / 3)  # e1 right, e2 wrong, e4 no truth
    assert f["union.conserved.recall"] == 1.0
    assert f["union.human_accessible.recall"] == 0.0
    assert f["union.human_sequence.precision"] == 1.0 and f["union.human_sequence.recall"] == 1.0
    assert np.isnan(f["union.macaque_sequence.precision"])
    assert "called no" in _reasons(frame)["union.macaque_sequence.precision"]


def test_links_auroc_distal_subset_and_empirical_fdr():
    et = pd.DataFrame({"human": [f"c{i}" for i in range(8)], "macaque": [None] * 8}, index=[f"e{i}" for i in range(8)])
    links = pd.DataFrame(
        {
            "species": "human",
            "element": [f"e{i}" for i in range(8)],
            "gene": "g1",
            "distance": [100, 500, 5_000, 9_000, 200, 800, 3_000, 7_000],
            "score": [0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4],
            "prior": 1.0,
            "q_value": [0.01, 0.05, 0.05, 0.2, 0.05, 0.5, 0.5, 0.5],
        }
    )
    truth_links = pd.DataFrame({"species": "human", "cre": ["c0", "c1", "c2", "c3"], "gene_id": "g1"})
    frame, tables = sc.link_figures(links, et, truth_links)
    f = _figures(frame)
    assert f["links.all.score.auroc"] == 1.0 and f["links.distal.score.auroc"] == 1.0
    assert f["links.all.distance.auroc"] == pytest.approx(0.5)
    assert f["links.called"] == 4 and f["links.called_fdr"] == 0.25
    assert f["links.called_recall"] == 0.75  # 3 of the 4 planted links
    no_q = sc.link_figures(links.drop(columns="q_value"), et, truth_links)[0]
    assert "no q_value" in _reasons(no_q)["links.called_fdr"]
    assert "no q_value" in _reasons(no_q)["links.called_recall"]


def test_modules_precision_recall_and_motif_named_by_id_or_name():
    et = pd.DataFrame({"human": ["c1", "c2", "c3", "c9"], "macaque": [None] * 4}, index=["e1", "e2", "e3", "e9"])
    planted = pd.DataFrame(
        {
            "module": ["m1", "m2"],
            "species": ["human", "macaque"],
            "cell_types": ["A", "B"],
            "motif": ["SIMM001", "SIMM002"],
            "motif_name": ["Foxg1", "Sox2"],
            "cres": ["c1,c2,c3", "c5"],
            "genes": ["g1,g2", "g5"],
        }
    )
    modules = pd.DataFrame(
        {
            "module": ["x"],
            "species": ["human"],
            "cell_type": ["A"],
            "motif": ["MA0001.1"],
            "motif_name": ["FOXG1"],
            "elements": ["e1,e2,e9"],
            "genes": ["g1,g7"],
        }
    )
    f = _figures(sc.module_figures(modules, et, planted))
    assert f["modules.element_precision"] == pytest.approx(2 / 3) and f["modules.element_recall"] == pytest.approx(
        2 / 4
    )
    assert f["modules.gene_precision"] == 0.5 and f["modules.gene_recall"] == pytest.approx(1 / 3)
    assert f["modules.motif_named"] == 0.5  # FOXG1 matches Foxg1 (case-insensitive)
    assert f["modules.motif_lead"] == 0.5
    # a module whose motif family lists the planted motif names it, but does not lead with it
    family = modules.assign(motif="MA0002.1", motif_name="FOXP1", similar_motifs="MA0009.1,SIMM001")
    f = _figures(sc.module_figures(family, et, planted))
    assert f["modules.motif_named"] == 0.5 and f["modules.motif_lead"] == 0
    # no module called: nothing planted was found (recall 0), precision has no value
    frame = sc.module_figures(modules.iloc[:0], et, planted)
    f = _figures(frame)
    assert f["modules.element_recall"] == 0 and f["modules.gene_recall"] == 0 and f["modules.motif_named"] == 0
    assert np.isnan(f["modules.element_precision"])
    assert "called no modules" in _reasons(frame)["modules.element_precision"]
    frame = sc.module_figures(modules, et, planted.drop(columns=["motif", "motif_name"]))
    assert "no motif column" in _reasons(frame)["modules.motif_named"]


def test_score_run_on_a_run_without_outputs_is_all_na_with_reasons(tmp_path, capsys):
    truth = tmp_path / "demo" / "truth"
    truth.mkdir(parents=True)
    _truth_cells().to_csv(truth / "cells.tsv", sep="\t", index=False)
    score = sc.score_run(tmp_path)
    figs = score.figures
    assert figs["value"].isna().all()
    assert (figs["reason"].str.len() > 0).all()
    assert {"qc", "union", "transfer", "integration", "labels", "links", "modules"} <= set(figs["section"])
    assert sc.main([str(tmp_path), "--json", str(tmp_path / "s.json")]) == 0
    assert "qc.doublet_removed.rna" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "s.json").read_text())["figures"]) == len(figs)
