"""Small I/O helpers shared by every stage: outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


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
