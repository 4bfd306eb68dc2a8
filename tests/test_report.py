"""The HTML report: self-contained, every section present, every image decodes in Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import anndata as ad
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from crossglue.errors import CrossglueError  # noqa: E402
from crossglue.report import ReportInputs, build_report  # noqa: E402
from crossglue.report.sections import SECTION_IDS  # noqa: E402


def write_png(path: Path) -> str:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def tsv(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, sep="\t", index=False)
    return str(path)


@pytest.fixture
def report_inputs(tmp_path: Path) -> ReportInputs:
    rng = np.random.default_rng(0)
    n = 120
    obs = pd.DataFrame(
        {
            "species": np.repeat(["human", "macaque"], n // 2),
            "modality": np.tile(["rna", "atac"], n // 2),
            "sample": np.repeat(["h1", "h2", "m1", "m2"], n // 4),
            "cell_type_annotated": np.tile(["A", "B", "unassigned"], n // 3),
            "cell_type_confidence": rng.uniform(size=n),
        },
        index=[f"c{i}" for i in range(n)],
    )
    cells = ad.AnnData(obs=obs)
    cells.obsm["X_umap"] = rng.normal(size=(n, 2))
    cells.write_h5ad(tmp_path / "cells.h5ad")
    log = pd.DataFrame(
        {
            "stage": ["pretrain"] * 5 + ["finetune"] * 5,
            "epoch": list(range(10)),
            "vae": np.linspace(5, 1, 10),
            "dsc": 0.69,
        }
    )
    metrics = pd.DataFrame(
        {
            "metric": ["nmi", "foscttm"],
            "category": ["bio", "pairing"],
            "main": [0.8, 0.1],
            "ablation": [0.7, 0.2],
            "main_truth": [0.9, 0.1],
            "ablation_truth": [0.85, 0.2],
        }
    )
    links = pd.DataFrame(
        {
            "species": ["human", "human"],
            "element": ["el1", "el2"],
            "gene": ["g1", "g1"],
            "prior": [1.0, 0.4],
            "cosine": [0.9, 0.1],
            "p_value": [0.001, 0.6],
            "q_value": [0.002, 0.6],
        }
    )
    de = pd.DataFrame(
        {
            "species_a": "human",
            "species_b": "macaque",
            "cell_type": ["A", "A", "B"],
            "log2fc": [2.0, -1.5, 0.1],
            "q_value": [0.001, 0.01, 0.9],
        }
    )
    modules = pd.DataFrame(
        {
            "module": ["human.A.M1"],
            "species": ["human"],
            "cell_type": ["A"],
            "motif": ["M1"],
            "motif_name": ["TF1"],
            "motif_q": [1e-4],
            "n_elements": [3],
            "n_genes": [2],
            "elements": ["el1,el2,el3"],
            "genes": ["g1,g2"],
        }
    )
    return ReportInputs(
        species=["human", "macaque"],
        qc_summary=tsv(
            tmp_path / "qc_summary.tsv", pd.DataFrame({"sample": ["h1"], "cells_kept": [100], "cells_removed": [5]})
        ),
        qc_plots=[write_png(tmp_path / "h1.png")],
        consensus_summary=tsv(
            tmp_path / "summary.tsv",
            pd.DataFrame(
                {"species_a": ["human"], "species_b": ["macaque"], "class": ["conserved"], "n_elements": [10]}
            ),
        ),
        liftover_reasons=tsv(
            tmp_path / "reasons.tsv",
            pd.DataFrame(
                {
                    "source": ["human"],
                    "target": ["macaque"],
                    "status": ["unmapped"],
                    "reason_code": ["deleted"],
                    "n_peaks": [3],
                }
            ),
        ),
        consensus_plots=[write_png(tmp_path / "element_classes.png")],
        graph_summary=tsv(
            tmp_path / "graph_summary.tsv", pd.DataFrame({"metric": ["edges"], "group": ["peak_gene"], "value": [40]})
        ),
        graph_plots=[write_png(tmp_path / "degree_distribution.png")],
        training_logs={"main": tsv(tmp_path / "log_main.tsv", log), "ablation": tsv(tmp_path / "log_abl.tsv", log)},
        cells=str(tmp_path / "cells.h5ad"),
        metrics=tsv(tmp_path / "metrics.tsv", metrics),
        links=tsv(tmp_path / "links.tsv", links),
        link_evaluation=tsv(
            tmp_path / "eval.tsv", pd.DataFrame({"run": ["main"], "score": ["cosine"], "auroc": [0.8], "auprc": [0.3]})
        ),
        differential_genes=tsv(tmp_path / "de.tsv", de),
        differential_elements=tsv(tmp_path / "da.tsv", de),
        modules=tsv(tmp_path / "modules.tsv", modules),
        module_recovery=tsv(
            tmp_path / "recovery.tsv", pd.DataFrame({"metric": ["precision", "recall"], "value": [0.8, 0.75]})
        ),
        has_truth=True,
    )


def test_report_is_one_self_contained_file_with_every_section(report_inputs, tmp_path):
    html_path = tmp_path / "out" / "report.html"
    build_report(report_inputs, html_path, figure_dir=tmp_path / "figures")
    html = html_path.read_text()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in html
    sources = re.findall(r'<img src="([^"]+)"', html)
    # QC, element classes, degree plot + training, UMAP, metrics drawn here
    assert len(sources) == 6
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # nothing fetched from elsewhere
    assert "human.A.M1" in html and "TF1" in html
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "metrics.png",
        "training_curves.png",
        "umap.png",
    ]


def test_missing_inputs_are_stated_not_hidden(tmp_path):
    build_report(ReportInputs(species=["human", "macaque"]), tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert all(f'<section id="{sid}">' in html for sid in SECTION_IDS)
    assert "No training log was given." in html and "not a simulated dataset" in html


def test_a_broken_plot_is_named(report_inputs, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    report_inputs.qc_plots = [str(bad)]
    with pytest.raises(CrossglueError, match="bad.png is not a PNG file"):
        build_report(report_inputs, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_report_renders_in_headless_chromium_with_every_image_loaded(report_inputs, tmp_path, chromium):
    html_path = tmp_path / "report.html"
    build_report(report_inputs, html_path)
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
            "--dump-dom",
            html_path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    total = re.search(r'data-images-total="(\d+)"', dom.stdout)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom.stdout)
    assert total and loaded, "the page's load handler did not run"
    assert int(total.group(1)) == 6 and loaded.group(1) == total.group(1)
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in dom.stdout
