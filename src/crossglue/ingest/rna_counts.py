"""snRNA counts from a 10x h5 (v3 layout), a 10x MTX directory or an h5ad, as one AnnData.

Whatever the input, the result has cells (barcodes) as rows, raw integer counts as a CSR
``X`` (int32), var ``gene_id`` (version suffix stripped, as var_names) and ``gene_name``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from crossglue.errors import CrossglueError
from crossglue.genomics.gtf import strip_version


def _strings(values) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def _read_10x_h5(path: Path) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    try:
        with h5py.File(path, "r") as f:
            if "matrix" not in f:
                raise CrossglueError(
                    f"{path}: not a 10x v3 h5 (no 'matrix' group; Cell Ranger 2 h5 files are not supported)"
                )
            m = f["matrix"]
            n_genes, n_cells = (int(v) for v in m["shape"][:])
            x = sp.csc_matrix((m["data"][:], m["indices"][:], m["indptr"][:]), shape=(n_genes, n_cells))
            barcodes = _strings(m["barcodes"][:])
            feat = m["features"]
            ids, names = _strings(feat["id"][:]), _strings(feat["name"][:])
            kind = _strings(feat["feature_type"][:]) if "feature_type" in feat else np.full(n_genes, "Gene Expression")
    except OSError as err:
        raise CrossglueError(f"{path}: cannot read as a 10x h5 file: {err}") from None
    except KeyError as err:
        raise CrossglueError(f"{path}: 10x h5 lacks the dataset {err}") from None
    gex = kind == "Gene Expression"  # multiome h5 files also hold the Peaks features
    return x.T.tocsr()[:, np.flatnonzero(gex)], barcodes, ids[gex], names[gex]


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def _find(directory: Path, stems: tuple[str, ...]) -> Path:
    for stem in stems:
        for name in (stem, f"{stem}.gz"):
            if (directory / name).is_file():
                return directory / name
    raise CrossglueError(f"{directory}: 10x MTX directory lacks {stems[0]}(.gz)")


def _read_mtx_dir(path: Path) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    matrix = _find(path, ("matrix.mtx",))
    features = _find(path, ("features.tsv", "genes.tsv"))
    barcodes_file = _find(path, ("barcodes.tsv",))
    try:
        with _open_text(matrix) as fh:
            x = sp.csr_matrix(scipy.io.mmread(fh)).T.tocsr()
    except (ValueError, OSError) as err:
        raise CrossglueError(f"{matrix}: cannot read as a MatrixMarket file: {err}") from None
    feat = pd.read_csv(features, sep="\t", header=None, dtype=str)
    barcodes = pd.read_csv(barcodes_file, sep="\t", header=None, dtype=str)[0].to_numpy(dtype=object)
    if x.shape != (len(barcodes), len(feat)):
        raise CrossglueError(
            f"{matrix}: matrix is {x.shape[1]} genes x {x.shape[0]} barcodes, but {features.name} lists {len(feat)} "
            f"and {barcodes_file.name} {len(barcodes)}"
        )
    ids = feat[0].to_numpy(dtype=object)
    names = feat[1].to_numpy(dtype=object) if feat.shape[1] > 1 else ids
    if feat.shape[1] > 2:
        gex = (feat[2] == "Gene Expression").to_numpy()
        return x[:, np.flatnonzero(gex)], barcodes, ids[gex], names[gex]
    return x, barcodes, ids, names


def _read_h5ad(path: Path) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    try:
        adata = ad.read_h5ad(path)
    except OSError as err:
        raise CrossglueError(f"{path}: cannot read as h5ad: {err}") from None
    x = adata.layers["counts"] if "counts" in adata.layers else adata.X
    var = adata.var
    id_col = next((c for c in ("gene_id", "gene_ids") if c in var), None)
    ids = var[id_col].astype(str).to_numpy(dtype=object) if id_col else np.asarray(var.index, dtype=object)
    name_col = next((c for c in ("gene_name", "gene_symbols", "feature_name") if c in var), None)
    names = var[name_col].astype(str).to_numpy(dtype=object) if name_col else np.asarray(var.index, dtype=object)
    return sp.csr_matrix(x), np.asarray(adata.obs_names, dtype=object), ids, names


def read_rna_counts(path: str | Path) -> ad.AnnData:
    """Raw counts of one sample; the format is taken from the path (directory, .h5, .h5ad).

    Raises on missing files, non-integer or negative counts (naming the first offending
    entry: barcode and gene), and duplicate barcodes.
    """
    path = Path(path)
    if not path.exists():
        raise CrossglueError(f"{path}: RNA counts not found (expected a 10x .h5, a 10x MTX directory or an .h5ad)")
    if path.is_dir():
        x, barcodes, ids, names = _read_mtx_dir(path)
    elif path.suffix == ".h5ad":
        x, barcodes, ids, names = _read_h5ad(path)
    elif path.suffix == ".h5":
        x, barcodes, ids, names = _read_10x_h5(path)
    else:
        raise CrossglueError(f"{path}: unknown RNA counts format (expected a 10x .h5, a 10x MTX directory or an .h5ad)")
    x = sp.csr_matrix(x)
    x.sum_duplicates()
    bad = np.flatnonzero((x.data != np.round(x.data)) | (x.data < 0) | ~np.isfinite(x.data))
    if len(bad):
        k = bad[0]
        row = int(np.searchsorted(x.indptr, k, side="right") - 1)
        col = int(x.indices[k])
        raise CrossglueError(
            f"{path}: counts must be non-negative integers (raw UMI counts, not normalised values); "
            f"barcode {barcodes[row]} gene {ids[col]} has {x.data[k].item()!r}"
        )
    dup = pd.Index(barcodes).duplicated()
    if dup.any():
        raise CrossglueError(f"{path}: barcode {barcodes[np.flatnonzero(dup)[0]]} appears more than once")
    gene_id = strip_version(ids).to_numpy(dtype=object)
    names = np.where(pd.isna(names) | (names == ""), gene_id, names).astype(object)
    var = pd.DataFrame({"gene_id": gene_id, "gene_name": names}, index=pd.Index(gene_id, name=None))
    adata = ad.AnnData(
        X=sp.csr_matrix(x, dtype=np.int32), obs=pd.DataFrame(index=pd.Index(barcodes, name=None)), var=var
    )
    if not adata.var_names.is_unique:
        # the same id twice (e.g. two versions of one gene): keep both, distinguishable
        adata.var_names_make_unique()
    return adata
