"""A species with snRNA-seq samples only: no peaks, no liftOver, no chain file; its genes join
the guidance graph through ortholog edges and its cells the joint space.

End to end on the tiny demo plus ``rhesus``, a renamed copy of the macaque that keeps only the
macaque's RNA (the multiome sample's counts become an RNA sample); and the two-species case
where the macaque itself keeps only its RNA. Neither config names a chain to the RNA-only
species.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
import yaml
from test_three_species import add_rhesus
from workflow_runner import run_snakemake

from crossglue.simulate import simulate

TRAIN = {"ablation": False, "train": {"max_epochs": 15, "patience": 5}}


def _rna_only(sheet: pd.DataFrame, species: str, renamed: str | None = None) -> pd.DataFrame:
    """The RNA of ``species``' samples, as RNA samples (of ``renamed`` when given)."""
    rows = sheet[(sheet["species"] == species) & sheet["modality"].isin(["rna", "multiome"])].copy()
    rows = rows.assign(modality="rna", fragments="")
    if renamed:
        rows = rows.assign(
            species=renamed,
            sample=rows["sample"].str.replace(species, renamed),
            donor=rows["donor"].str.replace(species, renamed),
        )
    return rows


def _write(work: Path, config: dict, sheet: pd.DataFrame) -> Path:
    sheet.to_csv(work / "samples.tsv", sep="\t", index=False)
    config["samples"] = str(work / "samples.tsv")
    config["model"] = TRAIN
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def three_species_rna_only_config(work: Path) -> Path:
    """human + macaque (RNA and ATAC) + rhesus (RNA only, no chain)."""
    simulate(work / "demo", preset="tiny", seed=0)
    config = yaml.safe_load((work / "demo" / "config.yaml").read_text())
    add_rhesus(work, config)
    sheet = pd.read_csv(config["samples"], sep="\t", dtype=str, keep_default_na=False)
    return _write(work, config, pd.concat([sheet, _rna_only(sheet, "macaque", "rhesus")]))


def two_species_rna_only_config(work: Path) -> Path:
    """human (RNA and ATAC) + macaque (RNA only), with no chain at all."""
    simulate(work / "demo", preset="tiny", seed=0)
    config = yaml.safe_load((work / "demo" / "config.yaml").read_text())
    config["chains"] = []
    sheet = pd.read_csv(config["samples"], sep="\t", dtype=str, keep_default_na=False)
    return _write(work, config, pd.concat([sheet[sheet["species"] == "human"], _rna_only(sheet, "macaque")]))


def _embedded(work: Path, species: str) -> dict[str, int]:
    cells = ad.read_h5ad(work / "results/analysis/cells.h5ad", backed="r")
    return cells.obs.loc[cells.obs["species"] == species, "modality"].astype(str).value_counts().to_dict()


def _ortholog_only(work: Path, species: str) -> None:
    """``species`` has gene nodes only, tied to the others by ortholog edges alone."""
    edges = pd.read_csv(work / "results/graph/guidance_edges.tsv.gz", sep="\t", usecols=["source", "target", "type"])
    touching = edges[edges["source"].str.startswith(f"{species}:") & (edges["type"] != "self")]
    assert set(touching["type"]) == {"ortholog"}
    assert not touching["target"].str.startswith(f"{species}:").any()
    assert len(touching) > 100


@pytest.mark.slow  # two whole pipeline runs (make test-slow, in CI)
def test_three_species_one_rna_only_run_end_to_end(tmp_path):
    config = three_species_rna_only_config(tmp_path)
    proc = run_snakemake(tmp_path, config)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert not list((tmp_path / "results/peaks").glob("rhesus*"))
    assert not list((tmp_path / "results/liftover").glob("*rhesus*"))
    assert not (tmp_path / "results/counts/rhesus").exists()
    union = pd.read_csv(tmp_path / "results/consensus/union_peaks.tsv", sep="\t", nrows=5)
    assert "class_human_macaque" in union.columns and not any("rhesus" in c for c in union.columns)
    _ortholog_only(tmp_path, "rhesus")
    rna = ad.read_h5ad(tmp_path / "results/ingest/rhesus/rna.h5ad", backed="r")
    assert _embedded(tmp_path, "rhesus") == {"rna": rna.n_obs}
    assert (tmp_path / "results/report/report.html").stat().st_size > 0
    genes = pd.read_csv(tmp_path / "results/analysis/differential_genes.tsv", sep="\t")
    elements = pd.read_csv(tmp_path / "results/analysis/differential_elements.tsv", sep="\t")
    assert "rhesus" in set(genes["species_a"]) | set(genes["species_b"])
    assert "rhesus" not in set(elements["species_a"]) | set(elements["species_b"])


@pytest.mark.slow
def test_two_species_second_rna_only_run_end_to_end_without_any_chain(tmp_path):
    config = two_species_rna_only_config(tmp_path)
    proc = run_snakemake(tmp_path, config)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert not (tmp_path / "results/liftover").exists()
    assert not list((tmp_path / "results/peaks").glob("macaque*"))
    union = pd.read_csv(tmp_path / "results/consensus/union_peaks.tsv", sep="\t")
    assert union["class"].isna().all() and not any("macaque" in c for c in union.columns)
    _ortholog_only(tmp_path, "macaque")
    rna = ad.read_h5ad(tmp_path / "results/ingest/macaque/rna.h5ad", backed="r")
    assert _embedded(tmp_path, "macaque") == {"rna": rna.n_obs}
    assert (tmp_path / "results/report/report.html").stat().st_size > 0


def _small_graph_inputs(rhesus_orthologs: bool):
    """human and macaque with genes and two elements each; rhesus with genes only."""
    genes = ["g1", "g2"]
    features = {
        "human": {"rna": genes, "atac": ["el1", "el2"]},
        "macaque": {"rna": genes, "atac": ["el1", "el2"]},
        "rhesus": {"rna": genes},
    }
    peak_gene = {
        s: pd.DataFrame({"peak": ["el1", "el2"], "gene": genes, "distance": [0, 10], "weight": [1.0, 0.9]})
        for s in ("human", "macaque")
    }
    pairs = [("human", "macaque")] + ([("human", "rhesus"), ("macaque", "rhesus")] if rhesus_orthologs else [])
    orthologs = pd.concat(
        [
            pd.DataFrame({"species_a": a, "species_b": b, "gene_a": genes, "gene_b": genes, "weight": 1.0})
            for a, b in pairs
        ]
    )
    union = pd.DataFrame(
        {
            "element_id": ["el1", "el2"],
            "class": ["conserved", "human_sequence"],
            "class_human_macaque": ["conserved", "human_sequence"],
            **{f"{s}_{c}": v for s in ("human", "macaque") for c, v in (("chrom", "chr1"), ("start", 0), ("end", 10))},
        }
    )
    return features, peak_gene, orthologs, union


def test_rna_only_species_is_tied_to_the_graph_by_ortholog_edges_only():
    from crossglue.graph.assembly import build_guidance

    nodes, edges = build_guidance(*_small_graph_inputs(rhesus_orthologs=True))
    assert set(nodes.loc[nodes["species"] == "rhesus", "modality"]) == {"rna"}
    rhesus = edges[edges["source"].str.startswith("rhesus:") & (edges["type"] != "self")]
    assert set(rhesus["type"]) == {"ortholog"}
    assert set(rhesus["target"]) == {"human:g1", "human:g2", "macaque:g1", "macaque:g2"}
    element = edges[edges["type"] == "element"]
    assert set(zip(element["source"], element["target"])) == {
        ("human:el1", "macaque:el1"),
        ("macaque:el1", "human:el1"),
    }


def test_rna_only_species_without_ortholog_edges_is_an_error():
    from crossglue.errors import CrossglueError
    from crossglue.graph.assembly import build_guidance

    with pytest.raises(CrossglueError) as info:
        build_guidance(*_small_graph_inputs(rhesus_orthologs=False))
    assert str(info.value) == (
        "species 'rhesus' has RNA samples only and no ortholog edge: nothing would tie its cells to the other species; "
        "check its ortholog tables in config 'orthologs' (results/graph/orthologs_missing.tsv lists table genes "
        "missing from the data)"
    )


def test_one_species_with_atac_gets_no_element_edges():
    from crossglue.graph.assembly import build_guidance

    features, peak_gene, orthologs, union = _small_graph_inputs(rhesus_orthologs=True)
    del features["macaque"]["atac"], peak_gene["macaque"]
    union = union.drop(columns=[c for c in union.columns if "macaque" in c]).assign(**{"class": None})
    nodes, edges = build_guidance(features, peak_gene, orthologs, union)
    assert set(edges["type"]) == {"self", "peak_gene", "ortholog"}
    assert set(nodes.loc[nodes["modality"] == "atac", "species"]) == {"human"}
