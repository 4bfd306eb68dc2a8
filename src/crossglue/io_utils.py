"""Small I/O helpers shared by every stage: outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A failed or killed job therefore never leaves a half-written output that a rerun
    would mistake for a finished one. ``suffix`` defaults to the target's own suffixes so
    that libraries which dispatch on the extension (``.gz``, ``.h5ad``) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the output the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def open_output(path: str | Path, mode: str = "wt", compresslevel: int = 6) -> Iterator[IO]:
    """Open ``path`` for writing via :func:`atomic_path`; gzip when its name ends in .gz.

    The gzip header carries mtime 0 and no file name (``gzip.open`` would store the time
    and the temporary file's random name), so a rerun writes the same bytes.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        if not path.name.endswith(".gz"):
            with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as plain:
                yield plain
            return
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel) as packed,
        ):
            if "b" in mode:
                yield packed
            else:
                with io.TextIOWrapper(packed, encoding="utf-8") as text:
                    yield text


def is_gzip(path: str | Path) -> bool:
    """True when the file starts with the gzip magic bytes (gzip and bgzip alike)."""
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def read_maybe_gzip(path: str | Path) -> bytes:
    """The whole file, inflated when it is gzip/bgzip, whatever its name says."""
    with (gzip.open if is_gzip(path) else open)(path, "rb") as handle:
        return handle.read()


def h5ad_var(path: str | Path):
    """The ``var`` table of an h5ad file (features as index) without loading its matrix."""
    import h5py
    from anndata.io import read_elem

    from crossglue.errors import CrossglueError

    path = Path(path)
    if not path.is_file():
        raise CrossglueError(f"{path} does not exist")
    try:
        with h5py.File(path, "r") as handle:
            return read_elem(handle["var"])
    except (OSError, KeyError) as err:
        raise CrossglueError(f"{path}: not an h5ad file with a 'var' table ({err})") from None


def write_tsv(table, path: str | Path, index: bool = False, float_format: str | None = None) -> None:
    """A table as TSV (gzip when the name ends .gz, through :func:`open_output`, so reruns are
    byte-identical), missing values as ``NA``; whole file or nothing."""
    with open_output(path) as out:
        table.to_csv(out, sep="\t", index=index, na_rep="NA", float_format=float_format)


def _h5ad_ready(adata):
    """Nullable columns as h5ad can store them (strings with NA -> categorical, Int64 -> float)."""
    import numpy as np
    import pandas as pd

    for frame in (adata.obs, adata.var):
        for col in frame.columns:
            dtype = frame[col].dtype
            if isinstance(dtype, pd.StringDtype) or pd.api.types.is_object_dtype(dtype):
                frame[col] = pd.Categorical(frame[col].astype("string").to_numpy(dtype=object, na_value=np.nan))
            elif isinstance(dtype, pd.Int64Dtype):
                frame[col] = frame[col].astype("float64")
    return adata


def write_h5ad(adata, path: str | Path, compression: str | None = "gzip") -> None:
    """Write an AnnData atomically (whole file or nothing), nullable columns made storable."""
    with atomic_path(path) as tmp:
        _h5ad_ready(adata).write_h5ad(tmp, compression=compression)


def write_h5mu(mdata, path: str | Path, compression: str | None = "gzip") -> None:
    """Write a MuData atomically (whole file or nothing), each modality's nullable columns made storable."""
    for mod in mdata.mod.values():
        _h5ad_ready(mod)
    with atomic_path(path) as tmp:
        mdata.write_h5mu(tmp, compression=compression)


def read_h5ad(path: str | Path, backed: str | None = None):
    """An AnnData file, or an error naming it (missing, or not an h5ad file)."""
    import anndata as ad

    from crossglue.errors import CrossglueError

    path = Path(path)
    if not path.is_file():
        raise CrossglueError(f"{path} does not exist")
    try:
        return ad.read_h5ad(path, backed=backed)
    except (OSError, KeyError) as err:
        raise CrossglueError(f"{path}: not a readable h5ad file ({err})") from None
