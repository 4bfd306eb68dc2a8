"""The `realistic` preset: its truth says what real single-nucleus data does to naive code."""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from crossglue.genomics.chain import read_chains
from crossglue.genomics.genome import read_aliases, read_chrom_sizes
from crossglue.genomics.gtf import read_genes
from crossglue.genomics.liftover import lift_points
from crossglue.graph.orthologs import OrthologParams, ortholog_edges, read_orthologs
from crossglue.simulate import simulate
from crossglue.simulate.jaspar import JASPAR_COUNTS


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    out = tmp_path_factory.mktemp("realistic")
    summary = simulate(out, "realistic", seed=0, scale=0.3)
    return out, summary


@pytest.fixture(scope="module")
def cells(real):
    return pd.read_csv(real[0] / "truth" / "cells.tsv", sep="\t")


def test_barcodes_carry_status_and_doublets_have_two_different_parents(cells):
    assert set(cells.status) == {"cell", "doublet", "low_quality", "empty"}
    nuclei = cells[cells.status != "empty"]
    share = nuclei.status.value_counts(normalize=True)
    assert 0.005 < share["doublet"] < 0.05 and 0.02 < share["low_quality"] < 0.08
    dbl = cells[cells.status == "doublet"]
    assert dbl.cell_type.isna().all() and dbl.nucleus.notna().all()
    assert (dbl.parent_type_1 != dbl.parent_type_2).all() and dbl.parent_type_2.notna().all()
    good = cells[cells.status == "cell"]
    assert good.cell_type.notna().all() and good.cell_class.notna().all() and good.subclass.notna().all()
    assert good.state.std() > 0.5  # a continuous within-type state


def test_artefacts_look_like_real_ones(cells):
    med = cells.groupby("status")[["n_umis", "ambient_fraction", "mito_fraction", "n_fragments"]].median()
    assert med.loc["doublet", "n_umis"] > 1.6 * med.loc["cell", "n_umis"]
    assert 0.01 < med.loc["cell", "ambient_fraction"] < 0.08 < 0.2 < med.loc["low_quality", "ambient_fraction"]
    assert med.loc["low_quality", "mito_fraction"] > 5 * med.loc["cell", "mito_fraction"]
    assert med.loc["empty", "n_fragments"] < 0.05 * med.loc["cell", "n_fragments"]


def test_each_species_has_a_type_of_its_own_and_only_human_has_labels(real, cells):
    types = cells[cells.status == "cell"].groupby("species").cell_type.agg(set)
    assert types["human"] - types["macaque"] == {"InN_LAMP5_human"}
    assert types["macaque"] - types["human"] == {"ExN_L4_macaque"}
    sheet = pd.read_csv(real[0] / "samples.tsv", sep="\t", keep_default_na=False)
    labelled = set()
    for row in sheet[sheet.metadata != ""].itertuples():
        meta = pd.read_csv(row.metadata, sep="\t")
        if "cell_type" in meta:
            labelled.add(row.sample)
    assert labelled == {"human_rna1", "human_multiome1"}


def test_macaque_chromosomes_are_numbered_independently(real):
    blocks = pd.read_csv(real[0] / "truth" / "orthology.tsv.gz", sep="\t")
    nuclear = blocks[(blocks.chrom_a != "chrM") & (blocks.copy_a == 0) & (blocks.copy_b == 0)]
    partner = nuclear.groupby("chrom_a").chrom_b.agg(set)
    assert "chr1" not in partner["chr1"]
    structure = json.loads((real[0] / "truth" / "structure.json").read_text())
    assert "inversion2" in structure["human"] and "inversion2" in structure["macaque"]


def test_gene_lost_in_macaque_has_no_macaque_copy_and_no_orthologue(real):
    genes = pd.read_csv(real[0] / "truth" / "genes.tsv", sep="\t")
    lost = genes[genes.kind == "lost_in_other"]
    assert len(lost) >= 1 and set(lost.species) == {"human"}
    assert not genes[(genes.species == "macaque") & genes.anc_gene.isin(lost.anc_gene)].shape[0]
    orth = pd.read_csv(real[0] / "truth" / "orthologs.tsv", sep="\t")
    assert not orth.gene_a.isin(lost.gene_id).any()


def _gtf_genes(out, species):
    g = out / "genome"
    return read_genes(
        g / f"{species}.gtf.gz",
        read_aliases(g / f"{species}.chrom_aliases.tsv"),
        read_chrom_sizes(g / f"{species}.chrom.sizes"),
    ).set_index("gene_id")


def test_a_family_duplicated_in_both_lineages_is_many2many_between_every_copy_pair(real):
    out = real[0]
    mart = pd.read_csv(out / "orthologs" / "human_macaque.orthologs.tsv", sep="\t", keep_default_na=False)
    m2m = mart[mart["Macaque homology type"] == "ortholog_many2many"]
    gene_h, gene_m = m2m["Gene stable ID"], m2m["Macaque gene stable ID"]
    human, macaque = _gtf_genes(out, "human"), _gtf_genes(out, "macaque")
    genes = pd.read_csv(out / "truth" / "genes.tsv", sep="\t", keep_default_na=False).set_index("gene_id")
    assert len(m2m) >= 4 and set(gene_h) <= set(human.index) and set(gene_m) <= set(macaque.index)
    # The names the table gives are the GTFs' names of those ids.
    assert (human.loc[gene_h, "gene_name"].to_numpy() == m2m["Gene name"].to_numpy()).all()
    assert (macaque.loc[gene_m, "gene_name"].to_numpy() == m2m["Macaque gene name"].to_numpy()).all()
    conf = m2m["Macaque orthology confidence [0 low, 1 high]"].astype(int)
    assert m2m["%id. target Macaque gene identical to query gene"].astype(float).between(80, 100).all()
    chains = {
        (a, b): read_chains(out / "chains" / f"{a}_to_{b}.over.chain.gz")
        for a, b in (("human", "macaque"), ("macaque", "human"))
    }
    for anc, fam in m2m.groupby(genes.loc[gene_h, "anc_gene"].to_numpy()):
        fh, fm = sorted(set(fam["Gene stable ID"])), sorted(set(fam["Macaque gene stable ID"]))
        # Two copies per species, distinct ids, every copy paired with every copy.
        assert len(fh) == len(fm) == 2 and len(fam) == 4
        assert set(genes.loc[fh + fm, "anc_gene"]) == {anc}
        kind = genes.kind
        for ids in (fh, fm):
            assert sorted(kind[ids]) == ["duplicate_copy", "duplicated_both"]
        orig_h, copy_h = (next(g for g in fh if kind[g] == k) for k in ("duplicated_both", "duplicate_copy"))
        # Human copies get a symbol of their own, macaque copies share the original's (Ensembl).
        assert human.gene_name[copy_h] == human.gene_name[orig_h] + "L"
        assert set(macaque.gene_name[fm]) == {human.gene_name[orig_h]}
        # The pair of originals is high confidence (seed 0; 6 % are drawn low), pairs with a copy low.
        originals = (kind[fam["Gene stable ID"]].to_numpy() == "duplicated_both") & (
            kind[fam["Macaque gene stable ID"]].to_numpy() == "duplicated_both"
        )
        assert conf[fam.index][originals].tolist() == [1] and (conf[fam.index][~originals] == 0).all()
        # The chains multi-map: every copy's TSS lifts onto both copies' TSSs in the other species.
        for (a, b), ga, gb, src_ids, dst_ids in (
            (("human", "macaque"), human, macaque, fh, fm),
            (("macaque", "human"), macaque, human, fm, fh),
        ):
            src = ga.loc[src_ids]
            hits = lift_points(src.chrom.to_numpy(), src.tss.to_numpy(), chains[(a, b)])
            expected = set(zip(gb.chrom[dst_ids], gb.tss[dst_ids], strict=True))
            for i in range(len(src)):
                got = hits[hits["query"] == i]
                assert set(zip(got.chrom, got.pos, strict=True)) == expected, (anc, a, src_ids[i])
    # The truth table lists the same pairs; the neighbour duplicated in macaque only is one2many.
    truth = pd.read_csv(out / "truth" / "orthologs.tsv", sep="\t")
    t_m2m = truth[truth.homology_type == "ortholog_many2many"]
    assert set(zip(t_m2m.gene_a, t_m2m.gene_b, strict=True)) == set(zip(gene_h, gene_m, strict=True))
    one2many = truth[truth.homology_type == "ortholog_one2many"]
    assert len(one2many) >= 2 and set(genes.kind[one2many.gene_a]) == {"duplicated"}
    assert set(genes.kind[one2many.gene_b]) == {"duplicated", "duplicate_copy"}


def test_many2many_rows_become_edges_weighted_one_over_n_times_confidence(real):
    out = real[0]
    table = read_orthologs(out / "orthologs" / "human_macaque.orthologs.tsv")
    m2m = table[table.homology_type == "many2many"]
    assert len(m2m) >= 4
    genes = pd.read_csv(out / "truth" / "genes.tsv", sep="\t", keep_default_na=False)
    edges, missing = ortholog_edges(
        table,
        pd.Index(genes.gene_id[genes.species == "human"]),
        pd.Index(genes.gene_id[genes.species == "macaque"]),
        OrthologParams(many=1.0, low_confidence=0.5),
    )
    assert missing.empty
    e = edges[edges.homology_type == "many2many"]
    assert set(zip(e.gene_a, e.gene_b)) == set(zip(m2m.gene_a, m2m.gene_b))
    n = e.gene_a.map(m2m.gene_a.value_counts()).combine(e.gene_b.map(m2m.gene_b.value_counts()), max)
    assert (e.n_partners == n).all() and (n >= 2).all()
    np.testing.assert_allclose(e.weight, (1 / n) * (0.5 + 0.5 * e.confidence))
    assert set(e.confidence) == {0.0, 1.0}  # both the high-confidence originals and the low-confidence copies


def test_modules_plant_real_jaspar_motifs_named_after_their_tf(real):
    modules = pd.read_csv(real[0] / "truth" / "modules.tsv", sep="\t")
    assert modules.motif.isin(list(JASPAR_COUNTS)).all()
    assert (modules.motif_name.str.upper() == modules.tf_name).all()
    meme = (real[0] / "truth" / "motifs.meme").read_text()
    assert all(f"MOTIF {m} " in meme for m in modules.motif)


def test_fragments_have_cell_ranger_header_and_chrm(real):
    path = real[0] / "samples" / "human_atac1" / "fragments.tsv.gz"
    with gzip.open(path, "rt") as f:
        lines = [next(f) for _ in range(400)]
    header = [x for x in lines if x.startswith("#")]
    assert any("pipeline_name=cellranger-arc" in x for x in header)
    frags = pd.read_csv(path, sep="\t", comment="#", header=None, names=["chrom", "start", "end", "bc", "count"])
    assert (frags.chrom == "chrM").mean() > 0.005 and frags["count"].max() > 1


def test_promoters_follow_expression_and_open_probabilities_are_probabilities(real):
    cres = pd.read_csv(real[0] / "truth" / "cres.tsv", sep="\t")
    act = cres.filter(like="activity.human.").to_numpy()
    assert np.nanmin(act) >= 0 and np.nanmax(act) <= 1
    assert cres.branch_event.dropna().str.match(r"^(gain|loss)_(human|macaque)$").all()


@pytest.mark.slow
def test_same_seed_same_bytes(tmp_path):
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        simulate(out, "realistic", seed=3, scale=0.1, write_fasta=False)
        files = sorted(p for p in out.rglob("*") if p.is_file() and p.name not in ("config.yaml", "samples.tsv"))
        digests.append({str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files})
    assert digests[0] == digests[1]
