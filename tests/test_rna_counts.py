"""RNA counts from 10x h5, MTX directory and h5ad agree; bad counts are refused by name."""

from __future__ import annotations

import gzip

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from crossglue.errors import CrossglueError
from crossglue.ingest.rna_counts import read_rna_counts

COUNTS = np.array([[0, 3, 1], [2, 0, 0], [5, 1, 0], [0, 0, 7]])  # 4 barcodes x 3 genes
BARCODES = np.array(["AAAC-1", "AAAG-1", "CCCT-1", "GGGA-1"])
IDS = np.array(["ENSG1.4", "ENSG2.1", "ENSG3"])
NAMES = np.array(["ONE", "MT-CO1", "THREE"])


def write_10x_h5(path, counts=COUNTS, barcodes=BARCODES, ids=IDS, names=NAMES, kinds=None):
    x = sp.csc_matrix(np.asarray(counts).T)  # features x barcodes, as Cell Ranger stores it
    kinds = kinds if kinds is not None else ["Gene Expression"] * len(ids)
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["barcodes"] = np.array(barcodes, dtype="S")
        m["data"], m["indices"], m["indptr"] = x.data, x.indices, x.indptr
        m["shape"] = np.array(x.shape, dtype=np.int32)
        feat = m.create_group("features")
        feat["id"], feat["name"] = np.array(ids, dtype="S"), np.array(names, dtype="S")
        feat["feature_type"] = np.array(kinds, dtype="S")
    return path


def write_mtx(directory, counts=COUNTS, barcodes=BARCODES):
    directory.mkdir()
    with gzip.open(directory / "matrix.mtx.gz", "wb") as fh:
        scipy.io.mmwrite(fh, sp.coo_matrix(np.asarray(counts).T))
    pd.DataFrame({"id": IDS, "name": NAMES, "type": "Gene Expression"}).to_csv(
        directory / "features.tsv.gz", sep="\t", header=False, index=False
    )
    pd.Series(barcodes).to_csv(directory / "barcodes.tsv.gz", header=False, index=False)
    return directory


def write_h5ad(path, counts=COUNTS):
    """As scanpy.read_10x_h5 leaves it: symbols as var_names, ids in var['gene_ids'], float X."""
    var = pd.DataFrame({"gene_ids": IDS}, index=NAMES)
    ad.AnnData(
        X=sp.csr_matrix(np.asarray(counts, dtype=np.float32)), obs=pd.DataFrame(index=BARCODES), var=var
    ).write_h5ad(path)
    return path


@pytest.fixture(params=["h5", "mtx", "h5ad"])
def counts_path(request, tmp_path):
    return {
        "h5": lambda: write_10x_h5(tmp_path / "f.h5"),
        "mtx": lambda: write_mtx(tmp_path / "mtx"),
        "h5ad": lambda: write_h5ad(tmp_path / "c.h5ad"),
    }[request.param]()


def test_every_format_gives_integer_csr_with_unversioned_gene_ids(counts_path):
    adata = read_rna_counts(counts_path)
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.int32
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS)
    assert list(adata.obs_names) == list(BARCODES)
    assert list(adata.var_names) == ["ENSG1", "ENSG2", "ENSG3"]
    assert list(adata.var["gene_name"]) == list(NAMES)


def test_multiome_h5_keeps_gene_expression_only(tmp_path):
    counts = np.hstack([COUNTS, np.ones((4, 1), int)])
    path = write_10x_h5(
        tmp_path / "m.h5",
        counts,
        ids=[*IDS, "chr1:1-500"],
        names=[*NAMES, "chr1:1-500"],
        kinds=["Gene Expression"] * 3 + ["Peaks"],
    )
    adata = read_rna_counts(path)
    assert list(adata.var_names) == ["ENSG1", "ENSG2", "ENSG3"]
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS)


def _error(path) -> str:
    with pytest.raises(CrossglueError) as err:
        read_rna_counts(path)
    return str(err.value)


def test_normalised_values_are_refused_naming_the_first_entry(tmp_path):
    counts = COUNTS.astype(float)
    counts[2, 1] = 0.5
    path = write_h5ad(tmp_path / "norm.h5ad", counts)
    assert _error(path) == (
        f"{path}: counts must be non-negative integers (raw UMI counts, not normalised values); "
        "barcode CCCT-1 gene ENSG2.1 has 0.5"
    )


def test_duplicate_barcodes_are_refused(tmp_path):
    path = write_10x_h5(tmp_path / "d.h5", barcodes=["AAAC-1", "AAAG-1", "AAAC-1", "GGGA-1"])
    assert _error(path) == f"{path}: barcode AAAC-1 appears more than once"


def test_missing_inputs_are_named(tmp_path):
    assert _error(tmp_path / "none.h5") == (
        f"{tmp_path}/none.h5: RNA counts not found (expected a 10x .h5, a 10x MTX directory or an .h5ad)"
    )
    directory = write_mtx(tmp_path / "mtx")
    (directory / "barcodes.tsv.gz").unlink()
    assert _error(directory) == f"{directory}: 10x MTX directory lacks barcodes.tsv(.gz)"


def test_real_archr_rna_h5ad_reads_as_integer_counts(shared_data):
    path = shared_data / "singlecell" / "archr_pbsmall" / "ArchR_seRNA_PBMC_hg19_chr5_chr11.h5ad"
    raw = ad.read_h5ad(path)
    adata = read_rna_counts(path)
    assert adata.shape == raw.shape and adata.X.dtype == np.int32
    assert int(adata.X.sum()) == int(round(float(raw.X.sum())))
