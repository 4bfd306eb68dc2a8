"""The whole pipeline on the bundled demo, scored against the simulator's truth.

CI runs these with ``-m demo`` (``make test-demo``): one pipeline run, about 7 minutes on
2 cores, shared by every test here (the ``demo_run`` fixture). They print the figures they
assert on, so a passing CI log still shows how much room is left.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossglue.analysis.modules import ModuleSettings, call_modules, specific_linked_elements
from crossglue.analysis.motif_database import DEFAULT_DATABASE
from crossglue.analysis.motifs import read_meme, union_motif_hits
from crossglue.report.sections import SECTION_IDS
from crossglue.simulate.score import score_run

pytestmark = pytest.mark.demo
SPECIES = ["human", "macaque"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_score(demo_run):
    """Every figure of crossglue.simulate.score for the run, printed once in full."""
    score = score_run(demo_run)
    print("\n" + score.to_string())
    return score


def integration_figures(score, run: str) -> dict[str, float]:
    """The figures this test has always printed, under their old names."""
    other = dict(zip(SPECIES, SPECIES[::-1], strict=True))
    figures = {f"label_transfer_to_{q}": score.value(f"transfer.{run}.{other[q]}_to_{q}.accuracy") for q in SPECIES}
    figures = {k: v for k, v in figures.items() if not np.isnan(v)}
    for s in SPECIES:
        figures[f"foscttm_{s}"] = score.value(f"integration.{run}.foscttm_{s}")
    figures["mean_average_precision"] = score.value(f"integration.{run}.mean_average_precision")
    figures["species_alignment_shared_types"] = score.value(f"integration.{run}.species_alignment_shared_types")
    return figures


def test_model_transfers_labels_pairs_nuclei_and_mixes_species(demo_score):
    figures = integration_figures(demo_score, "main")
    ablation = integration_figures(demo_score, "ablation")
    print("\n" + pd.DataFrame({"main": figures, "ablation": ablation}).round(4).to_string())
    transfer = [v for k, v in figures.items() if k.startswith("label_transfer")]
    assert transfer and min(transfer) >= 0.90, figures
    assert max(figures["foscttm_human"], figures["foscttm_macaque"]) <= 0.05, figures
    assert figures["mean_average_precision"] >= 0.85, figures
    # Species mix inside the cell types both have, but need not mix perfectly: the simulator
    # plants real species differences in every type (0 = separated, 1 = as mixed as chance).
    # It varies a lot between seeds and machines: 0.51, 0.28 and 0.18 on seeds 0, 1, 2 before
    # the re-layout; on the current model 0.68 (seed 0, a faster machine), 0.685 (seed 1) and 0.126
    # (seed 0 on the 2-core CI machine, reproduced bit for bit locally) with transfer 0.999 and
    # FOSCTTM 0.036 in that same run. Species kept apart score 0 by construction, so the bound
    # asks only that neighbourhoods of shared types are measurably mixed.
    assert figures["species_alignment_shared_types"] >= 0.10, figures


def test_planted_modules_recovered_at_default_thresholds(demo_run, demo_score):
    root = demo_run
    recovery = {
        "precision": demo_score.value("modules.element_precision"),
        "recall": demo_score.value("modules.element_recall"),
    }
    print("\nmodule recovery:", {k: round(v, 3) for k, v in recovery.items()})
    # Modules take links at a real FDR (q <= 0.1) since the link score has a calibrated null;
    # at the old nominal p <= 0.1 recall was 0.85-0.96 at 94-98 % precision, but 74-88 % of
    # those links were false on the realistic preset. With raw co-variation scores seed 0 gave
    # precision 0.94, recall 0.35, from 133 links at q <= 0.1 of which 16.5 % were false
    # (programme-wide co-variation passed for links); with scores standardised per feature
    # (regulatory.feature_standardised) 105 links, 8.6 % false, and precision 1.00, recall 0.25.
    assert recovery["precision"] >= 0.85 and recovery["recall"] >= 0.2, recovery
    # planted modules are found with their own JASPAR motif (seed 0: 3 of 4), and the
    # pipeline wrote the modules the default thresholds give
    assert demo_score.value("modules.motif_named") >= 0.5
    planted = pd.read_csv(root / "demo/truth/modules.tsv", sep="\t", dtype=str)
    written = pd.read_csv(root / "results/analysis/species_modules.tsv", sep="\t")
    found = {(m.species, m.motif) for m in planted.itertuples()} & set(zip(written["species"], written["motif"]))
    assert len(found) >= len(planted) / 2, found
    settings = ModuleSettings()
    motif_p = settings.motif_p
    union = pd.read_csv(root / "results/consensus/union_peaks.tsv", sep="\t", dtype={"element_id": str})
    links = pd.read_csv(root / "results/analysis/regulatory_links.tsv", sep="\t", dtype={"element": str, "gene": str})
    de = pd.read_csv(root / "results/analysis/differential_genes.tsv", sep="\t", dtype={"gene_a": str, "gene_b": str})
    da = pd.read_csv(root / "results/analysis/differential_elements.tsv", sep="\t", dtype={"element": str}).rename(
        columns={"element": "feature"}
    )
    classes = pd.Series(union["class"].to_numpy(), index=union["element_id"].to_numpy())
    linked = specific_linked_elements(links, de, da, classes, SPECIES, settings)
    motifs, background = read_meme(REPO / DEFAULT_DATABASE)  # the run's default: JASPAR 2024
    hits = union_motif_hits(
        union, SPECIES, {s: root / f"demo/genome/{s}.fa.gz" for s in SPECIES}, motifs, background, motif_p
    )
    modules = call_modules(linked, settings, hits=hits)
    assert sorted(written["module"]) == sorted(modules["module"])


def test_embedding_scores_beat_the_distance_prior(demo_score):
    assert demo_score.value("links.planted") >= 100
    scores = demo_score.tables["links: AUROC/AUPRC"].loc["all"]
    print("\n" + scores.round(4).to_string())
    assert scores.loc["score", "auroc"] > scores.loc["distance", "auroc"], scores


def test_report_renders_with_every_image_and_section(demo_run, chromium):
    html_path = demo_run / "results/report/report.html"
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=10000",
            "--dump-dom",
            html_path.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    total = int(re.search(r'data-images-total="(\d+)"', dom.stdout).group(1))
    loaded = int(re.search(r'data-images-loaded="(\d+)"', dom.stdout).group(1))
    assert total >= 10 and loaded == total
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in dom.stdout
    assert "No truth tables" not in dom.stdout  # the demo has truth
    assert np.isfinite(
        pd.read_csv(demo_run / "results/analysis/metrics.tsv", sep="\t")["main_truth"].astype(float)
    ).any()
