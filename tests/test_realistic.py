"""The whole pipeline on the ``realistic`` simulator preset, scored against its truth.

CI runs this with ``-m realistic`` (``make test-realistic``). The preset is meant to be hard
(doublets, low-quality and empty barcodes, a type present in one species only, one species
unlabelled): this test owns no targets. It prints every figure of
``crossglue.simulate.score`` and asserts only that the run finished, that every figure is
computed or NA with a reason, and loose sanity bounds; other issues own the thresholds.

``$CROSSGLUE_REALISTIC_RUN`` names a finished run to score instead of running one (about as
long as the demo's, or longer, on 2 cores).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossglue.simulate.score import score_run

pytestmark = pytest.mark.realistic
REPO = Path(__file__).resolve().parents[1]
COUNTS = {"links.called", "links.candidates", "links.planted", "modules.called"}  # not fractions
# the swap check's counts, per run (main, ablation)
COUNT_SUFFIXES = (".swapped_pairs", ".species_specific_clusters", ".mislabelled_clusters")


def test_realistic_run_scores_every_figure(realistic_run):
    score = score_run(realistic_run)
    print("\n" + score.to_string())
    figs = score.figures
    unexplained = figs[figs["value"].isna() & (figs["reason"].fillna("").str.len() == 0)]
    assert unexplained.empty, unexplained.to_string()
    assert set(figs["section"]) >= {"qc", "union", "transfer", "labels", "integration", "links", "modules"}
    computed = figs[figs["value"].notna()]
    fractions = computed[~computed["figure"].isin(COUNTS) & ~computed["figure"].str.endswith(COUNT_SUFFIXES)]
    assert ((fractions["value"] >= 0) & (fractions["value"] <= 1)).all(), fractions[
        (fractions["value"] < 0) | (fractions["value"] > 1)
    ].to_string()
    # the realistic truth plants doublets and empty droplets, and the run has every output
    for name in (
        "qc.doublet_removed.rna",
        "qc.empty_removed.atac",
        "qc.real_nuclei_kept.rna",
        "qc.real_nuclei_kept.atac",
        "integration.main.mean_average_precision",
        "links.all.score.auroc",
        "modules.called",
    ):
        assert np.isfinite(score.value(name)), figs[figs["figure"] == name].to_string()
    # loose sanity: most real nuclei survive QC, multiome pairing beats random, some label transfers
    assert min(score.value("qc.real_nuclei_kept.rna"), score.value("qc.real_nuclei_kept.atac")) >= 0.5
    foscttm = computed[computed["figure"].str.match(r"integration\.main\.foscttm_")]["value"]
    assert len(foscttm) and foscttm.max() < 0.5, foscttm
    transfer = computed[computed["figure"].str.match(r"transfer\.main\.[a-z]+_to_[a-z]+\.accuracy$")]["value"]
    assert len(transfer), "no cross-species transfer direction could be scored"
