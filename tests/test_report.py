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
from crossglue.report import ReportInputs, build_report, sections  # noqa: E402
from crossglue.report.figures import LOSS_FAMILIES, distinct_colours, training_figure, training_panels  # noqa: E402
from crossglue.report.sections import SECTION_IDS, Section, html_table, species_mixing_per_type  # noqa: E402


def write_png(path: Path) -> str:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def tsv(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, sep="\t", index=False)
    return str(path)


def training_log(epochs: int = 10) -> pd.DataFrame:
    """A training log as model/trainer.py writes it: loss terms, validation, bookkeeping."""
    x = np.linspace(1, 0, epochs)
    return pd.DataFrame(
        {
            "stage": ["pretrain"] * (epochs // 2) + ["finetune"] * (epochs - epochs // 2),
            "epoch": list(range(1, epochs // 2 + 1)) + list(range(1, epochs - epochs // 2 + 1)),
            "x_nll": 5 + 3 * x,
            "x_kl": 0.1 * x,
            "g_nll": 0.5 + 0.1 * x,
            "g_kl": 0.03,
            "dsc": 1.3,
            "sup": x,
            "pair": 2 * x,
            "gen": 5 + 3 * x,
            "val": 5.1 + 3 * x,
            "lr": 0.002,
            "noise": 1.5 * x,
            "seconds": 3.0,
        }
    )


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
    cells.obsm["X_glue"] = rng.normal(size=(n, 4))
    cells.write_h5ad(tmp_path / "cells.h5ad")
    log = training_log()
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
            "evidence": [3.1, 0.2],
            "p_value": [0.001, 0.6],
            "q_value": [0.002, 0.6],
            "score": [0.95, 0.1],
        }
    )
    de = pd.DataFrame(
        {
            "species_a": "human",
            "species_b": "macaque",
            "cell_type": ["A", "A", "B"],
            "gene_a": ["g1", "g2", "g1"],
            "element": ["el1", "el2", "el3"],
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
            "gene_names": ["GENE1,GENE2"],
            # a long free-text column, so the table is wider than the page
            "note": ["a module note that goes on " * 12],
        }
    )
    rna_var = ad.AnnData(
        var=pd.DataFrame({"gene_id": ["g1", "g2"], "gene_name": ["GENE1", "GENE2"]}, index=["g1", "g2"])
    )
    rna_var.write_h5ad(tmp_path / "human_rna.h5ad")
    union = pd.DataFrame(
        {
            "element_id": ["el1", "el2", "el3"],
            "class": ["conserved", "human_sequence", "conserved"],
            "human_chrom": ["chr1", "chr1", "chr2"],
            "human_start": [100, 900, 50],
            "human_end": [601, 1401, 551],
            "macaque_chrom": ["chr4", None, "chr5"],
            "macaque_start": [200, None, 70],
            "macaque_end": [701, None, 571],
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
        rna_features={"human": str(tmp_path / "human_rna.h5ad")},
        union_elements=tsv(tmp_path / "union_peaks.tsv", union),
    )


def test_report_is_one_self_contained_file_with_every_section(report_inputs, tmp_path):
    html_path = tmp_path / "out" / "report.html"
    build_report(report_inputs, html_path, figure_dir=tmp_path / "figures")
    html = html_path.read_text()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in html
    sources = re.findall(r'<img src="([^"]+)"', html)
    # QC, element classes, degree plot + training, UMAP grid, UMAP per species, metrics drawn here
    assert len(sources) == 8  # 7 figures + the link calibration
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


HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]


def render(chromium: str, html_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Open the report in headless Chromium in a 1280 px wide window (a laptop screen)."""
    done = subprocess.run(
        [chromium, *HEADLESS, "--window-size=1280,900", "--virtual-time-budget=5000", *args, html_path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_report_renders_in_headless_chromium_with_every_image_loaded(report_inputs, tmp_path, chromium):
    html_path = tmp_path / "report.html"
    build_report(report_inputs, html_path)
    dom = render(chromium, html_path, "--dump-dom").stdout
    total = re.search(r'data-images-total="(\d+)"', dom)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert total and loaded, "the page's load handler did not run"
    assert int(total.group(1)) == 8 and loaded.group(1) == total.group(1)
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in dom


def test_every_figure_renders_at_a_readable_width_in_a_1280_px_window(report_inputs, tmp_path, chromium):
    """Each figure is drawn at least 600 px wide (the UMAP grid at least 900 px), even the
    2-inch plots of the fixture; a table wider than the page scrolls inside its box, so the
    page itself never scrolls sideways."""
    html_path = tmp_path / "report.html"
    build_report(report_inputs, html_path)
    dom = render(chromium, html_path, "--dump-dom").stdout
    assert re.search(r'data-viewport-width="1280"', dom)
    widths = dict(re.findall(r'data-figure="([^"]+)" data-rendered-width="(\d+)"', dom))
    assert len(widths) == 8, widths
    narrow = {name: w for name, w in widths.items() if int(w) < 600}
    assert not narrow, f"figures drawn under 600 px wide: {narrow}"
    assert int(widths["umap.png"]) >= 900 and int(widths["umap_per_species.png"]) >= 900
    assert int(re.search(r'data-page-width="(\d+)"', dom).group(1)) <= 1280
    # and a screenshot of the window is a real, non-blank 1280 px image
    shot = tmp_path / "shot.png"
    render(chromium, html_path, f"--screenshot={shot}")
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (900, 1280) and image.std() > 10


def test_training_curves_put_held_out_terms_beside_their_training_terms():
    log = training_log().assign(val_x_nll=lambda t: t["x_nll"] * 1.05, val_x_kl=lambda t: t["x_kl"])
    panels = dict(training_panels({"main": log}))
    assert [label for *_, label in panels["Reconstruction (count NLL)"]] == [
        "main: cells, train",
        "main: cells, validation",
    ]
    assert "main: cell posterior, validation" in [label for *_, label in panels["KL divergence"]]


def test_training_curves_plot_one_panel_per_loss_family_without_bookkeeping_columns():
    logs = {"main": training_log(), "ablation": training_log(6).drop(columns=["pair"])}
    panels = training_panels(logs)
    assert [title for title, _ in panels] == [title for title, _ in LOSS_FAMILIES.values()]
    plotted = {column for _, series in panels for _, column, _ in series}
    assert plotted == {"x_nll", "x_kl", "g_nll", "g_kl", "dsc", "sup", "pair", "gen", "val"}
    assert not plotted & {"lr", "noise", "seconds", "epoch"}
    pairing = dict(panels)["Pairing of multiome nuclei"]
    assert [run for run, _, _ in pairing] == ["main"]  # the ablation logged no pairing term
    total = dict(panels)["Total objective"]
    assert [label for *_, label in total] == [
        "main: generator objective, train",
        "main: VAE loss, validation",
        "ablation: generator objective, train",
        "ablation: VAE loss, validation",
    ]
    assert training_figure(logs).startswith(b"\x89PNG")


def test_colours_are_distinct_up_to_fifty_categories():
    for n in (2, 10, 11, 19, 50):
        colours = distinct_colours(n)
        assert len(colours) == n and len({tuple(np.round(c, 4)) for c in colours}) == n


def test_species_mixing_per_type_scores_mixed_types_high_and_separated_types_low():
    rng = np.random.default_rng(0)
    n = 60
    species = np.tile(["human", "macaque"], 3 * n)
    types = np.repeat(["mixed", "split", "human_only"], 2 * n)
    x = rng.normal(size=(6 * n, 2))
    x[types == "split"] += np.where(species[types == "split"] == "human", 0, 50)[:, None]
    x[types == "human_only"] += 100
    types[(types == "human_only") & (species == "macaque")] = "unassigned"
    table = species_mixing_per_type(x, species, types).set_index("cell_type")
    assert list(table.index) == ["mixed", "split"]  # one-species and unassigned types are not shared
    assert table.loc["mixed", "species_mixing_sas"] > 0.8
    assert table.loc["split", "species_mixing_sas"] < 0.05
    assert table.loc["mixed", "human share"] == 0.5 and table.loc["split", "macaque cells"] == n


def test_tables_show_gene_symbols_with_ids_and_elements_with_coordinates(report_inputs, tmp_path):
    build_report(report_inputs, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    # strongest links: symbol, the id beside it, coordinates of the element in each species
    assert "<span class='gene' title='g1'>GENE1</span> <span class='id'>g1</span>" in html
    assert "<td>chr1:100-601</td>" in html and "<td>chr4:200-701</td>" in html
    # modules: symbols with the id on hover, elements with their coordinates on hover
    assert "<span class='gene' title='g2'>GENE2</span>" in html
    assert "<span class='element' title='human chr1:900-1401'>el2</span>" in html
    assert "<span class='element' title='human chr1:100-601; macaque chr4:200-701'>el1</span>" in html
    assert html.count("<div class='scroll'>") == html.count("<table")
    # differential genes and elements: the same, in their top tables
    assert "Genes: most significant" in html and "Elements: most significant" in html


def test_table_text_is_escaped():
    out = html_table(pd.DataFrame({"name": ["<b>x</b>"], "n": [1]}))
    assert "&lt;b&gt;x&lt;/b&gt;" in out and "<b>" not in out


def test_a_section_added_to_the_list_appears_in_the_report(report_inputs, tmp_path, monkeypatch):
    def extra(ctx):
        return Section("extra", "An extra section", text=["added by a test"])

    monkeypatch.setattr(sections, "SECTIONS", [*sections.SECTIONS, ("extra", extra)])
    build_report(report_inputs, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert '<section id="extra">' in html and "added by a test" in html
    assert html.index('<section id="truth">') < html.index('<section id="extra">')


def test_the_swap_check_section_lists_flagged_pairs_and_clusters(tmp_path):
    from crossglue.report.context import ReportContext, ReportInputs

    pairs = pd.DataFrame(
        {
            "species_a": ["macaque", "macaque"],
            "group_a": ["Astrocyte", "Oligodendrocyte"],
            "species_b": ["human", "human"],
            "group_b": ["Oligodendrocyte", "Oligodendrocyte"],
            "mapping_score": [0.9, 0.05],
            "ortholog_correlation": [0.2, 0.8],
            "embedding_match": [True, False],
            "swap": [True, False],
        }
    )
    pairs.to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    clusters = pd.DataFrame(
        {"cluster": ["macaque:c0", "macaque:c1"], "species_specific": [True, False], "label_mismatch": [False, False]}
    )
    clusters.to_csv(tmp_path / "k.tsv", sep="\t", index=False)
    inputs = ReportInputs(species=["human", "macaque"], correspondence=str(tmp_path / "c.tsv"))
    inputs.species_clusters = str(tmp_path / "k.tsv")
    s = sections.correspondence_section(ReportContext(inputs))
    assert "1 possible swap(s) flagged" in " ".join(s.text)
    matched, flagged = (t.html for t in s.tables)
    assert "Astrocyte" in matched and "macaque:c0" in flagged and "macaque:c1" not in flagged


def test_the_turnover_section_shows_enriched_gains_by_motif_name(tmp_path):
    from crossglue.report.context import ReportContext, ReportInputs

    table = pd.DataFrame(
        {
            "species": ["human", "human"],
            "direction": ["gained", "lost"],
            "motif": ["MA0509.3", "MA0080.7"],
            "motif_name": ["RFX1", "Spi1"],
            "p_value": [1e-8, 0.4],
            "q_value": [1e-6, 0.6],
        }
    )
    table.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    s = sections.turnover_section(
        ReportContext(ReportInputs(species=["human"], motif_turnover=str(tmp_path / "t.tsv")))
    )
    assert "(1 of 2 tests)" in " ".join(s.text)
    assert "RFX1" in s.tables[0].html and "Spi1" not in s.tables[0].html


def test_multiome_qc_figure_is_a_grid_not_one_long_row(tmp_path):
    from PIL import Image

    from crossglue.ingest.qc import QC_METRICS
    from crossglue.ingest.qc_plots import plot_sample_qc

    rng = np.random.default_rng(0)
    qc = pd.DataFrame({m: rng.uniform(1, 100, 200) for m in QC_METRICS})
    qc["pass"] = True
    plot_sample_qc(qc, {}, tmp_path / "qc.png", title="multiome")
    width, height = Image.open(tmp_path / "qc.png").size
    assert len(QC_METRICS) >= 7 and width <= 1500 and width / height < 3


def test_the_swap_check_section_shows_the_ortholog_anchors_and_their_agreement(tmp_path):
    from crossglue.report.context import ReportContext, ReportInputs

    obs = pd.DataFrame(
        {
            "species": ["human"] * 4 + ["macaque"] * 6,
            "modality": ["rna", "rna", "atac", "atac", "rna", "rna", "rna", "rna", "atac", "atac"],
            "cell_type_annotated": ["A", "B", "A", "B", "A", "A", "B", "B", "A", "B"],
            # the labelled species has none; macaque: 3 of 4 RNA anchored (one disagrees), 1 of 2 ATAC
            "anchor_label": [None] * 4 + ["A", "A", "A", None, "A", None],
        },
        index=[f"c{i}" for i in range(10)],
    )
    summary, per_type = sections.anchor_tables(obs)
    assert summary.to_dict("list") == {
        "species": ["macaque", "macaque"],
        "modality": ["atac", "rna"],
        "nuclei": [2, 4],
        "anchored": [1, 3],
        "anchored share": [0.5, 0.75],
        "agrees with annotation": [1.0, 2 / 3],
    }
    assert per_type.to_dict("list") == {
        "species": ["macaque"],
        "anchor_label": ["A"],
        "anchored": [4],
        "agrees with annotation": [0.75],
    }
    ad.AnnData(obs=obs).write_h5ad(tmp_path / "cells.h5ad")
    pd.DataFrame(
        columns=["species_a", "group_a", "species_b", "group_b", "mapping_score", "embedding_match", "swap"]
    ).to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    inputs = ReportInputs(species=["human", "macaque"], correspondence=str(tmp_path / "c.tsv"))
    inputs.cells = str(tmp_path / "cells.h5ad")
    captions = [t.caption for t in sections.correspondence_section(ReportContext(inputs)).tables]
    assert any(c.startswith("Ortholog anchors per species and modality:") for c in captions), captions
    obs["anchor_label"] = None
    assert all(t.empty for t in sections.anchor_tables(obs))
