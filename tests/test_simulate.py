"""The simulator's files are valid in their formats and agree with the truth they claim."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pysam
import pytest
from pyliftover import LiftOver

from crossglue.errors import CrossglueError
from crossglue.simulate import simulate

SPECIES = ("human", "macaque")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "demo"
    simulate(out, preset="tiny", seed=0)
    return out


@pytest.fixture(scope="module")
def cres(tiny) -> pd.DataFrame:
    return pd.read_csv(tiny / "truth" / "cres.tsv", sep="\t")


def lift_centres(tiny: Path, cres: pd.DataFrame, a: str, b: str) -> list[list]:
    lo = LiftOver(str(tiny / "chains" / f"{a}_to_{b}.over.chain.gz"))
    return [lo.convert_coordinate(c, int(p)) for c, p in zip(cres[f"{a}_chrom"], cres[f"{a}_centre"], strict=True)]


def read_chain_headers(path: Path) -> pd.DataFrame:
    with gzip.open(path, "rt") as fh:
        rows = [line.split()[1:] for line in fh if line.startswith("chain")]
    cols = [
        "score",
        "t_name",
        "t_size",
        "t_strand",
        "t_start",
        "t_end",
        "q_name",
        "q_size",
        "q_strand",
        "q_start",
        "q_end",
        "id",
    ]
    return pd.DataFrame(rows, columns=cols)


def tree_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("a", "b"), [("human", "macaque"), ("macaque", "human")])
def test_conserved_cre_centres_lift_onto_their_truth_coordinates(tiny, cres, a, b):
    sub = cres[cres["class"].isin(["conserved", "human_accessible", "macaque_accessible"])]
    hits = lift_centres(tiny, sub, a, b)
    exact = [
        len(h) == 1 and h[0][0] == c and h[0][1] == p
        for h, c, p in zip(hits, sub[f"{b}_chrom"], sub[f"{b}_centre"], strict=True)
    ]
    assert len(sub) > 200
    assert np.mean(exact) >= 0.995


@pytest.mark.parametrize("species", SPECIES)
def test_lineage_specific_insertion_cres_never_lift(tiny, cres, species):
    other = next(s for s in SPECIES if s != species)
    sub = cres[cres["class"] == f"{species}_sequence"]
    assert len(sub) >= 2
    assert sub[f"{other}_chrom"].isna().all()
    assert all(h in (None, []) for h in lift_centres(tiny, sub, species, other))


def test_inversion_appears_as_minus_strand_chain_with_flipped_genes(tiny):
    heads = read_chain_headers(tiny / "chains" / "human_to_macaque.over.chain.gz")
    minus = heads[heads.q_strand == "-"]
    assert len(minus) >= 2  # one inversion per lineage
    genes = pd.read_csv(tiny / "truth" / "genes.tsv", sep="\t")
    structure = json.loads((tiny / "truth" / "structure.json").read_text())
    inv = structure["human"]["inversion"]
    hg = genes[(genes.species == "human") & (genes.kind == "shared")].set_index("anc_gene")
    mg = genes[(genes.species == "macaque") & (genes.kind == "shared")].set_index("anc_gene")
    both = hg.join(mg, lsuffix="_h", rsuffix="_m", how="inner")
    flipped = both[both.strand_h != both.strand_m]
    assert len(flipped) >= 1
    # Every gene whose strand differs lies inside a minus-strand chain of human.
    for row in flipped.itertuples():
        inside = minus[
            (minus.t_name == row.chrom_h)
            & (minus.t_start.astype(int) <= row.start_h)
            & (minus.t_end.astype(int) >= row.end_h)
        ]
        assert len(inside) == 1, (row.Index, inv)


def test_segmental_duplication_multimaps_to_both_copies(tiny, cres):
    amb = cres[cres["class"] == "ambiguous"]
    primary = amb[amb.copy_of.isna()]
    copies = amb[amb.copy_of.notna()].set_index("copy_of")
    assert len(primary) >= 2 and len(copies) == len(primary)
    hits = lift_centres(tiny, primary, "macaque", "human")
    for cre, h in zip(primary.cre, hits, strict=True):
        got = sorted((c, p) for c, p, *_ in h)
        row, copy = primary.set_index("cre").loc[cre], copies.loc[cre]
        assert got == sorted([(row.human_chrom, row.human_centre), (copy.human_chrom, copy.human_centre)])
    orth = pd.read_csv(tiny / "orthologs" / "human_macaque.orthologs.tsv", sep="\t")
    assert (orth["Macaque homology type"] == "ortholog_one2many").sum() == 2


def test_fusion_maps_human_chr2_onto_two_macaque_chromosomes(tiny, cres):
    heads = read_chain_headers(tiny / "chains" / "human_to_macaque.over.chain.gz")
    main_chains = heads[(heads.t_name == "chr2") & (heads.score.astype(int) > 10_000_000)]
    assert set(main_chains.q_name) == {"chr2a", "chr2b"}
    sizes = pd.read_csv(tiny / "genome" / "macaque.chrom.sizes", sep="\t", header=None, index_col=0)[1]
    assert {"chr2a", "chr2b"} <= set(sizes.index) and "chr2" not in sizes.index
    conserved = cres[(cres["class"] == "conserved") & cres.macaque_chrom.isin(["chr2a", "chr2b"])]
    assert set(conserved.human_chrom) == {"chr2"} and set(conserved.macaque_chrom) == {"chr2a", "chr2b"}
    hits = lift_centres(tiny, conserved, "macaque", "human")
    assert {h[0][0] for h in hits} == {"chr2"}


def test_fragments_sorted_indexed_and_readable_per_chromosome(tiny):
    aliases = pd.read_csv(tiny / "genome" / "macaque.chrom_aliases.tsv", sep="\t", comment="#", header=None)
    refseq = set(aliases[2])
    path = tiny / "samples" / "macaque_atac1" / "fragments.tsv.gz"
    frags = pd.read_csv(path, sep="\t", header=None, comment="#", names=["chrom", "start", "end", "barcode", "count"])
    assert set(frags.chrom) <= refseq  # macaque fragments use RefSeq accessions
    with gzip.open(path, "rt") as fh:
        assert fh.readline().startswith("# id=macaque_atac1")  # Cell Ranger-style header lines
    with pysam.TabixFile(str(path)) as tbx:
        assert set(tbx.contigs) == set(frags.chrom)
        for chrom in tbx.contigs:
            rows = [r.split("\t") for r in tbx.fetch(chrom)]
            expected = frags[frags.chrom == chrom]
            assert len(rows) == len(expected)
            assert [int(r[1]) for r in rows] == expected.start.tolist()
    assert frags.groupby("chrom", sort=False).start.apply(lambda s: s.is_monotonic_increasing).all()
    assert not frags.duplicated(["chrom", "start", "end", "barcode"]).any()
    assert (frags["count"] >= 1).all() and (frags["count"] > 1).mean() > 0.2  # PCR duplicates


def test_fragments_show_nucleosome_ladder_and_realistic_frip(tiny, cres):
    cells = pd.read_csv(tiny / "truth" / "cells.tsv", sep="\t")
    path = tiny / "samples" / "human_multiome1" / "fragments.tsv.gz"
    frags = pd.read_csv(path, sep="\t", header=None, comment="#", names=["chrom", "start", "end", "barcode", "count"])
    length = frags.end - frags.start
    hist = np.bincount(length, minlength=1000)
    assert hist[185:215].sum() > hist[150:180].sum()  # mono-nucleosome peak above the valley
    assert hist[40:120].sum() > hist[180:260].sum()  # nucleosome-free fragments dominate
    good = cells[(cells["sample"] == "human_multiome1") & (cells.quality == "cell")].barcode
    f = frags[frags.barcode.isin(good)]
    peaks = cres[cres.human_chrom.notna()].sort_values(["human_chrom", "human_start"])
    mid = (f.start + f.end) // 2
    in_peak = np.zeros(len(f), bool)
    for chrom, p in peaks.groupby("human_chrom"):
        sel = (f.chrom == chrom).to_numpy()
        i = np.searchsorted(p.human_start.to_numpy(), mid[sel], side="right") - 1
        in_peak[sel] = (i >= 0) & (mid[sel].to_numpy() < p.human_end.to_numpy()[np.maximum(i, 0)])
    frip = pd.Series(in_peak).groupby(f.barcode.to_numpy()).mean()
    assert 0.2 <= frip.median() <= 0.5
    empty = cells[(cells["sample"] == "human_multiome1") & (cells.quality == "empty")]
    assert len(empty) > 0 and empty.n_fragments.max() < 500 <= cells.loc[good.index].n_fragments.median()


def test_count_matrices_read_with_scanpy_and_anndata(tiny):
    import scanpy as sc

    rna = sc.read_10x_h5(tiny / "samples" / "human_multiome1" / "filtered_feature_bc_matrix.h5")
    genes = pd.read_csv(tiny / "truth" / "genes.tsv", sep="\t")
    human = genes[genes.species == "human"]
    assert sorted(rna.var.gene_ids.str.split(".").str[0]) == sorted(human.gene_id)
    assert rna.var.gene_ids.str.contains(r"\.\d+$").all()  # Ensembl versions kept, as in the GTF
    cells = pd.read_csv(tiny / "truth" / "cells.tsv", sep="\t")
    nuclei = cells[(cells["sample"] == "human_multiome1") & (cells.quality != "empty")]
    assert set(rna.obs_names) == set(nuclei.barcode)
    frags = pd.read_csv(tiny / "samples" / "human_multiome1" / "fragments.tsv.gz", sep="\t", header=None, comment="#")
    assert set(rna.obs_names) <= set(frags[3])  # multiome: the same nuclei in both modalities
    assert rna.var_names.str.startswith("MT-").sum() == 13
    h5ad = ad.read_h5ad(tiny / "samples" / "macaque_rna1" / "counts.h5ad")
    assert "gene_ids" in h5ad.var and h5ad.X.sum() > 0
    high_mito = cells[(cells["sample"] == "macaque_rna1") & (cells.quality == "high_mito")].barcode
    mito = (
        np.asarray(h5ad[:, h5ad.var_names.str.startswith("MT-")].X.sum(axis=1)).ravel()
        / np.asarray(h5ad.X.sum(axis=1)).ravel()
    )
    frac = pd.Series(mito, index=h5ad.obs_names)
    assert (frac[high_mito] > 0.2).all() and frac.drop(high_mito).median() < 0.08


def test_planted_module_targets_are_up_in_their_species_and_cell_type(tiny):
    import scanpy as sc

    modules = pd.read_csv(tiny / "truth" / "modules.tsv", sep="\t")
    cells = pd.read_csv(tiny / "truth" / "cells.tsv", sep="\t")
    orth = pd.read_csv(tiny / "truth" / "orthologs.tsv", sep="\t")
    h = sc.read_10x_h5(tiny / "samples" / "human_multiome1" / "filtered_feature_bc_matrix.h5")
    m = sc.read_10x_h5(tiny / "samples" / "macaque_multiome1" / "filtered_feature_bc_matrix.h5")
    data = {"human": h, "macaque": m}
    for adata in data.values():
        adata.var_names = adata.var.gene_ids.str.split(".").str[0]
        sc.pp.normalize_total(adata, target_sum=1e4)
    to_other = {**dict(zip(orth.gene_a, orth.gene_b, strict=True)), **dict(zip(orth.gene_b, orth.gene_a, strict=True))}
    for mod in modules.itertuples():
        other = next(s for s in SPECIES if s != mod.species)
        genes = [g for g in mod.genes.split(",") if g in to_other]
        types = mod.cell_types.split(",")

        def mean_expr(species, ids):
            ad_ = data[species]
            lab = cells[cells["sample"] == f"{species}_multiome1"].set_index("barcode").reindex(ad_.obs_names)
            sel = lab.cell_type.isin(types).to_numpy() & (lab.quality == "cell").to_numpy()
            return np.asarray(ad_[sel, ids].X.mean(axis=0)).ravel()

        own = mean_expr(mod.species, genes)
        theirs = mean_expr(other, [to_other[g] for g in genes])
        assert np.median(np.log2((own + 0.5) / (theirs + 0.5))) > 1.0, mod.module


def test_annotation_files_use_species_naming_and_versions(tiny):
    aliases = pd.read_csv(tiny / "genome" / "macaque.chrom_aliases.tsv", sep="\t", comment="#", header=None)
    assert (tiny / "genome" / "macaque.chrom_aliases.tsv").read_text().startswith("#")
    gtf = pd.read_csv(tiny / "genome" / "macaque.gtf.gz", sep="\t", comment="#", header=None)
    assert set(gtf[0]) <= set(aliases[2]) and set(gtf[2]) == {"gene", "transcript", "exon"}
    assert gtf[8].str.match(r'gene_id "ENSMMUG\d{11}\.\d+";').all()
    hg = pd.read_csv(tiny / "genome" / "human.gtf.gz", sep="\t", comment="#", header=None)
    assert set(hg[0]) == {"chr1", "chr2", "chrM"} and set(hg[6]) == {"+", "-"}
    fa = pysam.FastaFile(str(tiny / "genome" / "human.fa.gz"))
    sizes = pd.read_csv(tiny / "genome" / "human.chrom.sizes", sep="\t", header=None)
    assert dict(zip(fa.references, fa.lengths, strict=True)) == dict(zip(sizes[0], sizes[1], strict=True))


def test_truth_tables_are_consistent(tiny, cres):
    genes = pd.read_csv(tiny / "truth" / "genes.tsv", sep="\t", keep_default_na=False)
    links = pd.read_csv(tiny / "truth" / "links.tsv", sep="\t")
    modules = pd.read_csv(tiny / "truth" / "modules.tsv", sep="\t")
    allowed = {"conserved", "ambiguous"} | {f"{s}_{k}" for s in SPECIES for k in ("accessible", "sequence")}
    assert set(cres["class"]) == allowed
    gene_keys = set(zip(genes.species, genes.gene_id, strict=True))
    assert set(zip(links.species, links.gene_id, strict=True)) <= gene_keys
    assert set(links.cre) <= set(cres.cre)
    assert links.distance.max() <= 150_000
    per_cre = links[links.species == "human"].groupby("cre").size()
    assert per_cre.between(1, 3).all()
    for mod in modules.itertuples():
        mcres = mod.cres.split(",")
        assert set(mcres) <= set(cres.cre)
        assert (cres.set_index("cre").loc[mcres, "class"] == f"{mod.species}_accessible").all()
        assert {(mod.species, g) for g in mod.genes.split(",")} <= gene_keys
        targets = set(links[(links.species == mod.species) & links.cre.isin(mcres)].gene_id)
        assert set(mod.genes.split(",")) == targets
        assert (mod.species, mod.tf_gene_id) in gene_keys
    motifs = (tiny / "truth" / "motifs.meme").read_text()
    assert all(f"MOTIF {m} " in motifs for m in modules.motif)
    act_cols = [c for c in cres if c.startswith("activity.")]
    assert "activity.macaque.ExN_human_specific" not in act_cols and "activity.human.ExN_human_specific" in act_cols
    cells = pd.read_csv(tiny / "truth" / "cells.tsv", sep="\t")
    sheet = pd.read_csv(tiny / "samples.tsv", sep="\t", keep_default_na=False)
    assert set(sheet.modality) == {"rna", "atac", "multiome"} and set(cells["sample"]) == set(sheet["sample"])
    assert cells[cells.species == "macaque"].cell_type.ne("ExN_human_specific").all()


def test_planted_motifs_sit_in_module_cres_of_their_species(tiny, cres):
    modules = pd.read_csv(tiny / "truth" / "modules.tsv", sep="\t")
    mod = modules.iloc[0]
    text = (tiny / "truth" / "motifs.meme").read_text().split(f"MOTIF {mod.motif} ")[1].split("\n\n")[0]
    pwm = np.array([[float(x) for x in line.split()] for line in text.splitlines()[2:]])
    log_odds = np.log2((pwm + 0.01) / 0.25)

    def best_score(fa, chrom, centre):
        seq = fa.fetch(chrom, int(centre) - 250, int(centre) + 250).upper()
        codes = np.array(["ACGT".index(b) for b in seq])
        win = np.lib.stride_tricks.sliding_window_view(codes, len(pwm))
        fwd = log_odds[np.arange(len(pwm)), win].sum(axis=1)
        rev = log_odds[::-1, ::-1][np.arange(len(pwm)), win].sum(axis=1)
        return max(fwd.max(), rev.max())

    other_sp = next(s for s in SPECIES if s != mod.species)
    own = pysam.FastaFile(str(tiny / "genome" / f"{mod.species}.fa.gz"))
    other = pysam.FastaFile(str(tiny / "genome" / f"{other_sp}.fa.gz"))
    rows = cres.set_index("cre").loc[mod.cres.split(",")]
    own_scores = [best_score(own, r[f"{mod.species}_chrom"], r[f"{mod.species}_centre"]) for _, r in rows.iterrows()]
    other_scores = [best_score(other, r[f"{other_sp}_chrom"], r[f"{other_sp}_centre"]) for _, r in rows.iterrows()]
    assert min(own_scores) > max(other_scores)


def test_same_seed_same_bytes_and_other_seed_differs(tiny, tmp_path):
    simulate(tmp_path / "again", preset="tiny", seed=0)
    first, again = tree_digests(tiny), tree_digests(tmp_path / "again")
    assert first.keys() == again.keys()
    different = [k for k in first if first[k] != again[k] and k not in ("config.yaml", "samples.tsv")]
    assert different == []
    # The sheet and config name the output folder; with it replaced they are identical too.
    for name in ("config.yaml", "samples.tsv"):
        assert (tiny / name).read_text().replace(str(tiny), "X") == (tmp_path / "again" / name).read_text().replace(
            str(tmp_path / "again"), "X"
        )
    # Leaving the FASTA out changes nothing else (each stage draws from its own stream).
    simulate(tmp_path / "nofasta", preset="tiny", seed=0, write_fasta=False)
    nofasta = tree_digests(tmp_path / "nofasta")
    assert not any(k.startswith("genome/human.fa") for k in nofasta)
    assert all(first[k] == v for k, v in nofasta.items() if k not in ("config.yaml", "samples.tsv"))
    simulate(tmp_path / "other", preset="tiny", seed=1)
    other = tree_digests(tmp_path / "other")
    for key in (
        "chains/human_to_macaque.over.chain.gz",
        "samples/human_atac1/fragments.tsv.gz",
        "truth/cres.tsv",
        "samples/human_rna1/filtered_feature_bc_matrix.h5",
    ):
        assert other[key] != first[key]


def test_expected_files_and_sample_sheet_paths(tiny):
    for s in SPECIES:
        for suffix in ("chrom.sizes", "chrom_aliases.tsv", "gtf.gz", "fa.gz", "fa.gz.fai"):
            assert (tiny / "genome" / f"{s}.{suffix}").is_file()
    sheet = pd.read_csv(tiny / "samples.tsv", sep="\t", keep_default_na=False)
    for col in ("fragments", "counts", "metadata"):
        for p in sheet[col][sheet[col] != ""]:
            assert p.startswith(str(tiny)) and Path(p).is_file()
    meta = pd.read_csv(sheet.set_index("sample").loc["macaque_atac1", "metadata"], sep="\t")
    assert "cell_type" not in meta and "barcode" in meta
    human_meta = [pd.read_csv(p, sep="\t") for p in sheet[sheet.species == "human"].metadata]
    assert all("cell_type" in m for m in human_meta)
    assert (tiny / "chains" / "macaque_to_human.over.chain.gz").is_file()


def test_unknown_preset_is_explained():
    with pytest.raises(CrossglueError, match="unknown preset 'huge'; expected one of tiny, demo"):
        simulate("unused", preset="huge")


@pytest.mark.slow
def test_demo_preset_size_and_time(tmp_path):
    start = time.perf_counter()
    summary = simulate(tmp_path / "demo", preset="demo", seed=0)
    seconds = time.perf_counter() - start
    nuclei = {s: sum(v["nuclei"] for k, v in summary["samples"].items() if k.startswith(s)) for s in SPECIES}
    fragments = sum(v.get("fragments", 0) for v in summary["samples"].values())
    print(f"demo: {seconds:.1f} s, nuclei {nuclei}, fragments {fragments}, species {summary['species']}")
    assert all(n >= 3_000 for n in nuclei.values())
    assert seconds < 60


def test_command_line_writes_a_scaled_dataset(tmp_path, capsys):
    from crossglue.simulate.__main__ import main

    assert main([str(tmp_path / "cli"), "--preset", "tiny", "--scale", "0.3", "--seed", "2", "--no-fasta"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["preset"] == "tiny" and summary["scale"] == 0.3
    assert {v["nuclei"] for v in summary["samples"].values()} == {30}
    assert not (tmp_path / "cli" / "genome" / "human.fa.gz").exists()
    assert (tmp_path / "cli" / "samples" / "human_atac1" / "fragments.tsv.gz.tbi").is_file()


def test_orthologous_blocks_hold_related_sequence(tiny):
    blocks = pd.read_csv(tiny / "truth" / "orthology.tsv.gz", sep="\t")
    blocks = blocks[blocks["size"] >= 200].sample(60, random_state=0)
    human = pysam.FastaFile(str(tiny / "genome" / "human.fa.gz"))
    macaque = pysam.FastaFile(str(tiny / "genome" / "macaque.fa.gz"))
    revcomp = str.maketrans("ACGT", "TGCA")

    def identity(shift: int) -> float:
        same = []
        for b in blocks.itertuples():
            h = human.fetch(b.chrom_a, b.start_a, b.start_a + b.size)
            m = macaque.fetch(b.chrom_b, b.start_b + shift, b.start_b + shift + b.size)
            if b.strand == "-":
                m = m[::-1].translate(revcomp)
            same.append(np.mean([x == y for x, y in zip(h, m)]))
        return float(np.mean(same))

    assert identity(0) > 0.94  # two lineages of ~1.8 % substitutions each
    assert identity(7) < 0.5  # off by a few bases: unrelated


def test_config_fragment_passes_the_pipeline_checks(tiny):
    import yaml

    from crossglue.config import load_and_check

    config = yaml.safe_load((tiny / "config.yaml").read_text())
    sheet = load_and_check(config, Path(__file__).resolve().parents[1] / "config" / "schema" / "config.schema.yaml")
    assert set(sheet.modality) == {"rna", "atac", "multiome"}
    assert [s["name"] for s in config["species"]] == list(SPECIES)
    assert {(c["from"], c["to"]) for c in config["chains"]} == {("human", "macaque"), ("macaque", "human")}


def test_fast_tsv_writer_matches_pandas():
    from crossglue.simulate.writers import _digits, _label_bytes, tsv_bytes

    table = pd.DataFrame(
        {"chrom": pd.Categorical(["chr1", "NC_041754.1", "chr1"]), "start": [0, 9, 123456789], "n": [1, 10, 7]}
    )
    got = tsv_bytes(
        [
            _label_bytes(table.chrom.cat.codes.to_numpy(), list(table.chrom.cat.categories)),
            _digits(table.start),
            _digits(table.n),
        ]
    )
    assert got.decode() == table.to_csv(sep="\t", header=False, index=False, lineterminator="\n")
