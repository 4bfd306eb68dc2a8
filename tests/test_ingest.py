"""Ingest of whole samples: passing cells, ids, annotation, tiles, merges, and no output on failure."""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import anndata as ad
import numpy as np
import pandas as pd
import pysam
import pytest
from workflow_runner import run_script

from crossglue.errors import CrossglueError
from crossglue.genomics.genome import read_aliases, read_chrom_sizes
from crossglue.genomics.gtf import read_gene_table, read_genes
from crossglue.ingest.samples import Sample, Species, ingest_sample, tile_table

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
THRESHOLDS = {
    "atac": {"min_fragments": 3, "min_tss_enrichment": 0.0},
    "rna": {"min_counts": 5, "max_mito_fraction": 0.5},
}
GTF = (
    '1\tx\tgene\t1001\t3000\t.\t+\t.\tgene_id "ENSG1.2"; gene_name "GENE1";\n'
    'MT\tx\tgene\t10\t60\t.\t+\t.\tgene_id "ENSGMT.1"; gene_name "MT-CO1";\n'
)
# (chrom, start, end, barcode, count): A passes; B has too few fragments; C passes ATAC but not RNA;
# D exists in the fragments only.
FRAGMENTS = [
    ("1", 990, 1010, "A-1", 1),
    ("1", 4990, 5010, "A-1", 2),
    ("1", 6000, 6100, "A-1", 1),
    ("1", 100, 200, "B-1", 1),
    ("1", 300, 400, "C-1", 1),
    ("1", 500, 600, "C-1", 1),
    ("1", 700, 800, "C-1", 1),
    ("1", 900, 1000, "D-1", 1),
    ("1", 910, 1000, "D-1", 1),
    ("1", 920, 1000, "D-1", 1),
]
# RNA: A passes; B passes RNA; C fails (1 count); E exists in RNA only. XLOC_99 is not annotated.
RNA_BARCODES = ["A-1", "B-1", "C-1", "E-1"]
RNA_COUNTS = np.array([[5, 1, 0], [10, 0, 0], [1, 0, 0], [10, 0, 3]])
RNA_IDS, RNA_NAMES = ["ENSG1.2", "ENSGMT.1", "XLOC_99"], ["GENE1", "MT-CO1", "novel"]


def write_fragments(path: Path, rows) -> Path:
    table = pd.DataFrame(rows).sort_values([0, 1], kind="stable")
    plain = path.with_name(path.name + ".txt")
    table.to_csv(plain, sep="\t", header=False, index=False)
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    pysam.tabix_index(str(path), preset="bed", force=True)
    return path


def write_10x_h5(path: Path, counts, barcodes, ids, names) -> Path:
    import h5py
    import scipy.sparse as sp

    x = sp.csc_matrix(np.asarray(counts).T)
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["barcodes"] = np.array(barcodes, dtype="S")
        m["data"], m["indices"], m["indptr"] = x.data, x.indices, x.indptr
        m["shape"] = np.array(x.shape, dtype=np.int32)
        m.create_group("features")
        m["features/id"], m["features/name"] = np.array(ids, dtype="S"), np.array(names, dtype="S")
        m["features/feature_type"] = np.array(["Gene Expression"] * len(ids), dtype="S")
    return path


@pytest.fixture()
def toy(tmp_path):
    genome = tmp_path / "genome"
    genome.mkdir()
    (genome / "toy.chrom.sizes").write_text("chr1\t12000\nchrM\t100\n")
    (genome / "toy.aliases.tsv").write_text("# ucsc\tensembl\nchr1\t1\nchrM\tMT\n")
    with gzip.open(genome / "toy.gtf.gz", "wt") as fh:
        fh.write(GTF)
    data = tmp_path / "data"
    data.mkdir()
    paths = {
        "fragments": write_fragments(data / "fragments.tsv.gz", FRAGMENTS),
        "counts": write_10x_h5(data / "m.h5", RNA_COUNTS, RNA_BARCODES, RNA_IDS, RNA_NAMES),
        "metadata": data / "meta.tsv",
        "gtf": genome / "toy.gtf.gz",
        "chrom_sizes": genome / "toy.chrom.sizes",
        "aliases": genome / "toy.aliases.tsv",
    }
    paths["metadata"].write_text("barcode\tcell_type\tregion\nA-1\tAstro\tACC\nC-1\tNeuron\tACC\n")
    return SimpleNamespace(**paths, root=tmp_path)


def test_species_gene_table_is_the_gtf_as_ingest_read_it(toy):
    pd.testing.assert_frame_equal(read_gene_table(species_genes_script(toy)), species_of(toy).genes)


def species_of(toy) -> Species:
    sizes, aliases = read_chrom_sizes(toy.chrom_sizes), read_aliases(toy.aliases)
    return Species("toy", sizes, read_genes(toy.gtf, aliases, sizes), aliases, str(toy.aliases))


def multiome(toy, **changes) -> Sample:
    fields = dict(
        name="mo",
        species="toy",
        donor="d1",
        modality="multiome",
        fragments=str(toy.fragments),
        counts=str(toy.counts),
        metadata=str(toy.metadata),
    )
    return Sample(**{**fields, **changes})


def test_multiome_keeps_nuclei_passing_both_modalities_under_one_id(toy):
    result = ingest_sample(multiome(toy), species_of(toy), THRESHOLDS, tile_size=5000)
    qc = result.qc.set_index("barcode")
    assert sorted(qc.index) == ["A-1", "B-1", "C-1", "D-1", "E-1"]  # every barcode of either modality
    assert qc["pass"].to_dict() == {"A-1": True, "B-1": False, "C-1": False, "D-1": False, "E-1": False}
    assert qc.loc["A-1", "n_fragments"] == 3 and qc.loc["A-1", "total_reads"] == 4
    assert qc.loc["A-1", "mito_fraction"] == pytest.approx(1 / 6)
    assert list(result.rna.obs_names) == list(result.atac.obs_names) == ["mo#A-1"]
    obs = result.rna.obs.iloc[0]
    assert (
        obs["sample"],
        obs["species"],
        obs["donor"],
        obs["modality"],
        obs["nucleus"],
        obs["cell_type"],
        obs["region"],
    ) == ("mo", "toy", "d1", "multiome", "mo#A-1", "Astro", "ACC")


def test_atac_cells_count_insertions_on_genome_tiles(toy):
    atac = ingest_sample(multiome(toy), species_of(toy), THRESHOLDS, tile_size=5000).atac
    assert list(atac.var_names) == ["chr1:0-5000", "chr1:5000-10000", "chr1:10000-12000", "chrM:0-100"]
    # A's insertions: 990, 1009 | 4990 | 5009, 6000, 6099 -> 3 in the first tile, 3 in the second
    assert atac.X.toarray().tolist() == [[3, 3, 0, 0]]
    assert atac.uns["tile_size"] == 5000 and atac.uns["fragments"] == str(toy.fragments)


def test_rna_var_is_annotated_and_unannotated_genes_are_kept_and_reported(toy, caplog):
    result = ingest_sample(multiome(toy), species_of(toy), THRESHOLDS, tile_size=5000)
    var = result.rna.var
    assert list(var_names := var.index) == ["ENSG1", "ENSGMT", "XLOC_99"], var_names
    assert (var.loc["ENSG1", "chrom"], var.loc["ENSG1", "start"], var.loc["ENSG1", "strand"]) == ("chr1", 1000, "+")
    assert var["in_annotation"].tolist() == [True, True, False]
    assert result.unmatched_genes == ["XLOC_99"]
    assert "1 of 3 genes are not in the toy annotation (kept, without coordinates), e.g. XLOC_99" in caplog.text
    assert result.rna.X.toarray().tolist() == [[5, 1, 0]]


def test_metadata_barcodes_absent_from_the_data_are_an_error(toy):
    toy.metadata.write_text("barcode\tcell_type\nA-1\tAstro\nZ-1\tX\nY-1\tX\n")
    with pytest.raises(CrossglueError) as err:
        ingest_sample(multiome(toy), species_of(toy), THRESHOLDS, tile_size=5000)
    assert str(err.value) == (
        f"{toy.metadata}: 2 of 3 metadata barcodes are not in the data of sample mo, e.g. Z-1, Y-1 "
        "(barcodes are expected without the sample prefix, exactly as in the data)"
    )


def test_duplicate_metadata_barcodes_are_an_error(toy):
    toy.metadata.write_text("barcode\tcell_type\nA-1\tAstro\nA-1\tNeuron\n")
    with pytest.raises(CrossglueError) as err:
        ingest_sample(multiome(toy), species_of(toy), THRESHOLDS, tile_size=5000)
    assert str(err.value) == f"{toy.metadata}: barcode A-1 appears more than once in the metadata"


def test_pbsmall_fragment_counts_per_cell_equal_a_direct_count(shared_data, tmp_path):
    path = shared_data / "singlecell" / "archr_pbsmall" / "PBSmall.tsv.gz"
    genes = pd.DataFrame({"chrom": ["chr5"], "tss": [1_000_000], "strand": ["+"]})
    species = Species("human", {"chr5": 180_915_260, "chr11": 135_006_516}, genes)
    sample = Sample("pb", "human", "d", "atac", fragments=str(path))
    # every barcode is a cell here: no doublet calls (they would remove the expected 2.5 %)
    result = ingest_sample(sample, species, {"atac": {}, "doublets": {"enabled": False}}, tile_size=5000)
    with gzip.open(path, "rt") as fh:
        direct = pd.read_csv(fh, sep="\t", header=None).groupby(3).size()
    ours = result.qc.set_index("barcode")["n_fragments"]
    assert ours.sort_index().to_dict() == direct.sort_index().to_dict()
    rows = pd.Series(np.asarray(result.atac.X.sum(axis=1)).ravel(), index=result.atac.obs["barcode"].to_numpy())
    assert (rows == 2 * ours.reindex(rows.index)).all()  # every insertion lands on one tile
    assert result.atac.n_obs == 150 and result.rna.n_obs == 0


def test_tile_table_covers_each_chromosome_once():
    tiles = tile_table({"a": 12, "b": 5}, 5)
    assert list(tiles.index) == ["a:0-5", "a:5-10", "a:10-12", "b:0-5"]


def species_genes_script(toy) -> str:
    """The species' gene table, parsed from its GTF once by rule species_genes' script."""
    genes = toy.root / "species" / "toy_genes.tsv.gz"
    if not genes.exists():
        run_script(
            "species_genes.py",
            toy.root / "species" / "species_genes.log",
            input={"gtf": str(toy.gtf), "chrom_sizes": str(toy.chrom_sizes), "aliases": [str(toy.aliases)]},
            output={"genes": str(genes)},
            wildcards={"species": "toy"},
        )
    return str(genes)


def ingest_script(toy, out: Path, sample: Sample, counts_files, fragments_files) -> dict:
    genes = species_genes_script(toy)
    outputs = {
        k: str(out / "samples" / sample.name / f)
        for k, f in (("qc", "qc.tsv"), ("rna", "rna.h5ad"), ("atac", "atac.h5ad"))
    }
    outputs["plot"] = str(out / "qc" / f"{sample.name}.png")
    run_script(
        "ingest_sample.py",
        out / f"{sample.name}.log",
        input={
            "fragments": fragments_files,
            "index": [f"{f}.tbi" for f in fragments_files],
            "counts": counts_files,
            "metadata": [sample.metadata] if sample.metadata else [],
            "genes": genes,
            "chrom_sizes": str(toy.chrom_sizes),
            "aliases": [str(toy.aliases)],
        },
        output=outputs,
        params={
            "sample": {"species": sample.species, "donor": sample.donor, "modality": sample.modality},
            "thresholds": THRESHOLDS,
            "tile_size": 5000,
            "mito_chrom": "MT",
        },
        wildcards={"sample": sample.name},
    )
    return outputs


def test_failed_sample_leaves_no_output_and_logs_the_reason(toy):
    toy.metadata.write_text("barcode\tcell_type\nZ-1\tX\n")
    out = toy.root / "results"
    with pytest.raises(SystemExit):
        ingest_script(toy, out, multiome(toy), [str(toy.counts)], [str(toy.fragments)])
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written == [out / "mo.log"]
    assert "metadata barcodes are not in the data of sample mo, e.g. Z-1" in (out / "mo.log").read_text()


def test_scripts_ingest_and_merge_a_species(toy):
    out = toy.root / "results"
    mo = ingest_script(toy, out, multiome(toy), [str(toy.counts)], [str(toy.fragments)])
    # a second, RNA-only sample with one extra gene and no metadata
    counts = write_10x_h5(toy.root / "data" / "r.h5", [[4, 0, 0, 9]], ["A-1"], [*RNA_IDS, "ENSG1X"], [*RNA_NAMES, "X"])
    r1 = ingest_script(toy, out, Sample("r1", "toy", "d2", "rna", counts=str(counts)), [str(counts)], [])
    assert Path(mo["plot"]).stat().st_size > 0
    qc = pd.read_csv(mo["qc"], sep="\t")
    assert list(qc.columns[:2]) == ["sample", "barcode"] and len(qc) == 5

    merged = {"rna": str(out / "toy" / "rna.h5ad"), "atac": str(out / "toy" / "atac.h5ad")}
    run_script(
        "merge_species.py",
        out / "merge.log",
        input={"rna": [mo["rna"], r1["rna"]], "atac": [mo["atac"]], "chrom_sizes": str(toy.chrom_sizes)},
        output=merged,
        params={"tile_size": 5000},
        wildcards={"species": "toy"},
    )
    rna, atac = ad.read_h5ad(merged["rna"]), ad.read_h5ad(merged["atac"])
    assert list(rna.obs_names) == ["mo#A-1", "r1#A-1"] and list(atac.obs_names) == ["mo#A-1"]
    assert set(rna.var_names) == {"ENSG1", "ENSGMT", "XLOC_99", "ENSG1X"}
    x = rna.to_df()
    assert x.loc["r1#A-1"].to_dict() == {**dict.fromkeys(rna.var_names, 0), "ENSG1": 4, "ENSG1X": 9}
    assert x.loc["mo#A-1", "ENSG1X"] == 0
    assert rna.X.dtype == np.int32 and pd.isna(rna.obs.loc["r1#A-1", "cell_type"])
    assert rna.var.loc["ENSG1", "chrom"] == "chr1"

    summary = {"qc": str(out / "qc.tsv"), "summary": str(out / "qc_summary.tsv")}
    run_script("ingest_summary.py", out / "summary.log", input={"qc": [mo["qc"], r1["qc"]]}, output=summary)
    table = pd.read_csv(summary["summary"], sep="\t").set_index("sample")
    assert table.loc["mo", "n_barcodes"] == 5 and table.loc["mo", "n_pass"] == 1 and table.loc["r1", "n_pass"] == 1


def test_streaming_in_small_chunks_gives_the_same_sample(toy):
    whole = ingest_sample(multiome(toy), species_of(toy), THRESHOLDS, tile_size=5000)
    streamed = ingest_sample(multiome(toy), species_of(toy), THRESHOLDS, tile_size=5000, chunk_rows=3)
    pd.testing.assert_frame_equal(whole.qc, streamed.qc)
    assert (whole.atac.X != streamed.atac.X).nnz == 0


def test_mitochondrial_fragments_stay_out_of_qc_and_tiles_and_are_reported(toy):
    # A-1 gets four chrM fragments (named MT in the file, as Ensembl-style references write it)
    mt_rows = [("MT", 10, 40, "A-1", 1), ("MT", 20, 60, "A-1", 3), ("MT", 30, 70, "A-1", 1), ("MT", 40, 90, "A-1", 1)]
    write_fragments(toy.fragments, FRAGMENTS + mt_rows)
    result = ingest_sample(multiome(toy), species_of(toy), THRESHOLDS, tile_size=5000)
    qc = result.qc.set_index("barcode")
    assert qc.loc["A-1", "n_fragments"] == 3 and qc.loc["A-1", "total_reads"] == 4  # as without chrM
    assert qc.loc["A-1", "mito_fraction_atac"] == pytest.approx(4 / 7)
    assert qc.loc["C-1", "mito_fraction_atac"] == 0.0
    assert result.atac.X.toarray().tolist() == [[3, 3, 0, 0]]  # nothing in chrM:0-100


def test_max_mito_fraction_of_atac_drops_mtdna_rich_nuclei(toy):
    write_fragments(toy.fragments, FRAGMENTS + [("MT", 10 + i, 60, "A-1", 1) for i in range(4)])
    thresholds = {**THRESHOLDS, "atac": {**THRESHOLDS["atac"], "max_mito_fraction": 0.5}}
    with pytest.raises(CrossglueError) as err:  # A-1 was the only nucleus passing both modalities
        ingest_sample(multiome(toy), species_of(toy), thresholds, tile_size=5000)
    assert str(err.value) == (
        "sample mo: 0 of 5 barcodes pass both ATAC and RNA QC (2 pass ATAC, 3 pass RNA, none both); a multiome "
        "nucleus has the same barcode in the fragments and the counts file: check that both come from the same library"
    )


def test_mito_chrom_of_the_config_is_found_through_the_aliases():
    species = Species("x", {"chr1": 10, "mito": 5}, pd.DataFrame(), aliases={"MtDNA": "mito"}, mito_chrom="MtDNA")
    assert species.mito_chroms() == {"mito"}
    assert Species("y", {"chr1": 10, "chrM": 5}, pd.DataFrame()).mito_chroms() == {"chrM"}


def test_a_sample_without_a_passing_cell_is_an_error_naming_the_threshold(toy):
    sample = Sample("at", "toy", "d1", "atac", fragments=str(toy.fragments))
    thresholds = {"atac": {"min_fragments": 500, "min_tss_enrichment": 0.0}}
    with pytest.raises(CrossglueError) as err:
        ingest_sample(sample, species_of(toy), thresholds, tile_size=5000)
    assert str(err.value) == (
        "sample at: 0 of 4 barcodes pass ATAC QC (median 3 fragments vs ingest.atac.min_fragments 500); "
        "lower the threshold or drop the sample from the sample sheet"
    )


def test_a_sample_writes_an_empty_layer_for_the_modality_it_lacks(toy):
    rna_only = ingest_sample(
        Sample("r", "toy", "d1", "rna", counts=str(toy.counts)),
        species_of(toy),
        {"rna": THRESHOLDS["rna"]},
        tile_size=None,
    )
    assert rna_only.atac.shape == (0, 0) and rna_only.rna.n_obs == 3
    atac_only = ingest_sample(
        Sample("a", "toy", "d1", "atac", fragments=str(toy.fragments)),
        species_of(toy),
        {"atac": THRESHOLDS["atac"]},
        tile_size=5000,
    )
    assert atac_only.rna.shape == (0, 0) and atac_only.atac.n_obs == 3


def test_merging_samples_that_all_lost_every_cell_is_an_error(tmp_path):
    from crossglue.ingest.samples import empty_atac, merge_samples
    from crossglue.io_utils import write_h5ad

    paths = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
    for path in paths:
        write_h5ad(empty_atac({"chr1": 10}, 5), path)
    with pytest.raises(CrossglueError) as err:
        merge_samples(paths, empty_atac({"chr1": 10}, 5))
    assert str(err.value) == (
        f"{paths[0]}, {paths[1]}: no sample keeps a cell after QC, so the species has no cells of this modality to "
        "cluster; see results/ingest/qc_summary.tsv and lower the ingest thresholds or drop the samples"
    )
