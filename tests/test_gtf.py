"""GTF genes: coordinates converted once, versions stripped, genes matched without silent loss."""

from __future__ import annotations

import gzip
import time

import pandas as pd
import pytest

from crossglue.errors import CrossglueError
from crossglue.genomics.gtf import match_genes, read_gene_table, read_genes, write_gene_table

GTF = (
    "##format: gtf\n"
    '1\tENSEMBL\tgene\t11\t20\t.\t+\t.\tgene_id "ENSG01.3"; gene_name "AAA"; gene_biotype "protein_coding";\n'
    '1\tENSEMBL\ttranscript\t11\t20\t.\t+\t.\tgene_id "ENSG01.3"; transcript_id "T1";\n'
    'MT\tENSEMBL\tgene\t5\t9\t.\t-\t.\tgene_id "ENSG02.1"; gene_name "MT-CO1"; gene_type "Mt_tRNA";\n'
    'chrUn\tENSEMBL\tgene\t1\t9\t.\t-\t.\tgene_id "ENSG03"; gene_name "UNPLACED";\n'
    '1\tENSEMBL\tgene\t100\t300\t.\t-\t.\tgene_id "ENSG04.2"; gene_name "DUP"; gene_type "lncRNA";\n'
    '1\tENSEMBL\tgene\t400\t500\t.\t+\t.\tgene_id "ENSG05.2"; gene_name "DUP";\n'
)
SIZES = {"chr1": 1000, "chrM": 16}
ALIASES = {"1": "chr1", "MT": "chrM", "chr1": "chr1", "chrM": "chrM"}


@pytest.fixture()
def gtf(tmp_path):
    path = tmp_path / "genes.gtf.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(GTF)
    return path


def test_gene_records_are_bed_coordinates_with_strand_aware_tss(gtf):
    genes = read_genes(gtf, ALIASES, SIZES)
    first = genes.iloc[0].to_dict()
    assert first == {
        "gene_id": "ENSG01",
        "gene_id_version": "ENSG01.3",
        "gene_name": "AAA",
        "gene_type": "protein_coding",
        "chrom": "chr1",
        "start": 10,
        "end": 20,
        "strand": "+",
        "tss": 10,
    }
    mito = genes.set_index("gene_id").loc["ENSG02"]
    assert (mito.chrom, mito.start, mito.end, mito.tss, mito.gene_type) == ("chrM", 4, 9, 8, "Mt_tRNA")


def test_contigs_absent_from_the_species_are_left_out_with_a_warning(gtf, caplog):
    genes = read_genes(gtf, ALIASES, SIZES)
    assert "ENSG03" not in set(genes.gene_id) and len(genes) == 4
    assert "1 genes on 1 contigs absent from the species' chromosomes were left out (e.g. chrUn)" in caplog.text


def test_plain_text_and_no_translation(tmp_path):
    path = tmp_path / "g.gtf"
    path.write_text(GTF)
    genes = read_genes(path)
    assert list(genes.chrom) == ["1", "MT", "chrUn", "1", "1"]


def test_transcript_only_gtf_takes_gene_extent_from_transcripts(tmp_path):
    path = tmp_path / "t.gtf"
    path.write_text(
        '1\tx\ttranscript\t11\t20\t.\t-\t.\tgene_id "G1.1"; gene_name "A";\n'
        '1\tx\texon\t5\t30\t.\t-\t.\tgene_id "G1.1"; gene_name "A";\n'
    )
    gene = read_genes(path).iloc[0]
    assert (gene.gene_id, gene.start, gene.end, gene.tss) == ("G1", 4, 30, 29)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1\tx\tgene\t11\t20\t.\t+\n", "bad.gtf:2: expected 9 tab-separated GTF columns, got 7"),
        ('1\tx\tgene\tten\t20\t.\t+\t.\tgene_id "G";\n', "bad.gtf:2: expected integer start >= 1 and end >= start"),
        ('1\tx\tgene\t30\t20\t.\t+\t.\tgene_id "G";\n', "bad.gtf:2: expected integer start >= 1 and end >= start"),
        ('1\tx\tgene\t10\t20\t.\t*\t.\tgene_id "G";\n', "bad.gtf:2: expected strand '+', '-' or '.', got '*'"),
        ('1\tx\tgene\t10\t20\t.\t+\t.\tgene_name "G";\n', "bad.gtf:2: record has no gene_id attribute"),
    ],
)
def test_malformed_lines_are_named(tmp_path, line, message):
    path = tmp_path / "bad.gtf"
    path.write_text('1\tx\tgene\t1\t5\t.\t+\t.\tgene_id "OK";\n' + line)
    with pytest.raises(CrossglueError) as err:
        read_genes(path)
    assert str(err.value).startswith(f"{tmp_path}/{message}")


def test_gtf_sharing_no_chromosome_with_species_is_an_error(gtf):
    with pytest.raises(CrossglueError, match="chromosome.*'1'.*not among the 2 chromosomes"):
        read_genes(gtf, {}, {"chrZ": 10, "chrY": 10})


def test_match_by_versionless_id_then_unique_symbol_reports_the_rest(gtf):
    genes = read_genes(gtf, ALIASES, SIZES)
    matched, unmatched = match_genes(["ENSG01.9", "MT-CO1", "DUP", "ENSG05", "NOPE"], genes)
    assert list(matched.data_gene) == ["ENSG01.9", "MT-CO1", "ENSG05"]
    assert list(matched.gene_id) == ["ENSG01", "ENSG02", "ENSG05"]
    assert list(matched.matched_by) == ["id", "symbol", "id"]
    assert unmatched == ["DUP", "NOPE"]  # an ambiguous symbol is reported, not guessed


def test_match_from_a_table_with_ids_and_symbols(gtf):
    import pandas as pd

    genes = read_genes(gtf, ALIASES, SIZES)
    data = pd.DataFrame({"gene_id": ["X1", "ENSG04.1"], "gene_name": ["AAA", "whatever"]})
    matched, unmatched = match_genes(data, genes)
    assert list(zip(matched.data_gene, matched.gene_id, matched.matched_by)) == [
        ("X1", "ENSG01", "symbol"),
        ("ENSG04.1", "ENSG04", "id"),
    ]
    assert unmatched == []


def test_real_gencode_reads_fast_and_whole(shared_data):
    t = time.perf_counter()
    genes = read_genes(shared_data / "annotation" / "hg38_gencode_v48_genes.gtf.gz")
    elapsed = time.perf_counter() - t
    assert len(genes) == 78894 and genes.gene_id.is_unique
    tp53 = genes.set_index("gene_name").loc["TP53"]
    # the file's record: chr17 gene 7661778 7687546 (1-based closed, minus strand)
    assert (tp53.chrom, tp53.start, tp53.end, tp53.strand, tp53.tss) == ("chr17", 7661777, 7687546, "-", 7687545)
    assert not genes.gene_id.str.contains(r"\.\d+$").any()
    assert elapsed < 10


def test_gene_ending_past_its_chromosome_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "past.gtf"
    path.write_text(
        GTF
        + '1\tENSEMBL\tgene\t900\t1000\t.\t+\t.\tgene_id "ENSG06.1"; gene_name "LAST";\n'  # ends on the last base: fine
        + '1\tENSEMBL\tgene\t950\t1001\t.\t+\t.\tgene_id "ENSG07.1"; gene_name "OVER";\n'
    )
    with pytest.raises(CrossglueError) as err:
        read_genes(path, ALIASES, SIZES)
    assert str(err.value) == (
        f"{path}:9: gene ENSG07.1 (OVER) ends at 1,001, past the end of chr1 (1,000 bp in the chrom sizes; 1 gene(s) "
        "do); the GTF and the chrom sizes must be of one assembly: use the annotation of the species' assembly"
    )


def test_transcript_only_gene_past_its_chromosome_is_named_at_its_first_record(tmp_path):
    path = tmp_path / "t.gtf"
    path.write_text(
        '1\tx\ttranscript\t10\t50\t.\t+\t.\tgene_id "G1"; transcript_id "T1";\n'
        '1\tx\texon\t990\t1200\t.\t+\t.\tgene_id "G1"; transcript_id "T1";\n'
    )
    with pytest.raises(CrossglueError) as err:
        read_genes(path, ALIASES, SIZES)
    assert str(err.value).startswith(f"{path}:1: gene G1 ends at 1,200, past the end of chr1 (1,000 bp")


def test_gene_table_written_once_per_species_reads_back_identical(gtf, tmp_path):
    genes = read_genes(gtf, ALIASES, SIZES)
    genes.loc[genes["gene_name"] == "AAA", "gene_name"] = "NA"  # a symbol, not a missing value
    write_gene_table(genes, tmp_path / "genes.tsv.gz")
    pd.testing.assert_frame_equal(read_gene_table(tmp_path / "genes.tsv.gz"), genes)
    unplaced = read_genes(gtf)  # chromosome "1", gene without a name
    write_gene_table(unplaced, tmp_path / "unplaced.tsv.gz")
    pd.testing.assert_frame_equal(read_gene_table(tmp_path / "unplaced.tsv.gz"), unplaced)
    assert match_genes(["ENSG01", "DUP"], read_gene_table(tmp_path / "unplaced.tsv.gz"))[0].equals(
        match_genes(["ENSG01", "DUP"], unplaced)[0]
    )


def test_real_gencode_gene_table_reads_back_identical(shared_data, tmp_path):
    genes = read_genes(shared_data / "annotation" / "hg38_gencode_v48_genes.gtf.gz")
    write_gene_table(genes, tmp_path / "genes.tsv.gz")
    pd.testing.assert_frame_equal(read_gene_table(tmp_path / "genes.tsv.gz"), genes)


def test_a_foreign_table_in_place_of_the_gene_table_is_named(tmp_path):
    (tmp_path / "genes.tsv").write_text("gene\tchrom\nA\tchr1\n")
    with pytest.raises(CrossglueError, match=r"genes.tsv: expected the gene table columns \['gene_id', "):
        read_gene_table(tmp_path / "genes.tsv")
