"""Chromosome names and sizes of one species, and the translation of foreign names to them.

The canonical names of a species are those of its chrom sizes file. Every other naming
(Ensembl ``1``, RefSeq ``NC_000001.11``, UCSC ``chr1``) is translated through the species'
alias table. Every row of an alias table lists names of one chromosome, in whatever column
order: UCSC hub ``chromAlias.txt`` (one row per chromosome, a ``# ucsc refseq ...`` header,
or the same header without ``#`` as bigBed dumps write it), UCSC's legacy database
``chromAlias.txt`` (``alias<TAB>ucscName<TAB>source``, one row per alias) or a plain
two-column table either way round. Which name is canonical is decided by the chrom sizes:
rows sharing a name are one chromosome, and its canonical name is the one the chrom sizes
list.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.errors import CrossglueError, where


def _data_lines(path: str | Path) -> list[tuple[int, list[str]]]:
    """(1-based line number, tab-separated fields) of every non-blank, non-comment line."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise CrossglueError(f"{path}: file not found") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):  # small files: one row per chromosome
        if line.strip() and not line.startswith("#"):
            rows.append((number, line.rstrip("\r").split("\t")))
    return rows


def read_chrom_sizes(path: str | Path) -> dict[str, int]:
    """Canonical chromosome name -> length, in file order (two tab-separated columns)."""
    sizes: dict[str, int] = {}
    for number, fields in _data_lines(path):
        if len(fields) < 2 or not fields[1].strip().isdigit():
            raise CrossglueError(
                f"{where(path, number)}: expected 'name<TAB>length' with an integer length, got {fields!r}"
            )
        name = fields[0].strip()
        if name in sizes:
            raise CrossglueError(f"{where(path, number)}: chromosome {name!r} is listed twice")
        sizes[name] = int(fields[1])
    if not sizes:
        raise CrossglueError(f"{path}: no chromosome sizes found (expected 'name<TAB>length' lines)")
    return sizes


# Words of a header line (hub tables, bigBed dumps) and of a legacy table's source column.
_HEADER_WORDS = {
    "ucsc",
    "refseq",
    "genbank",
    "ensembl",
    "ncbi",
    "gencode",
    "insdc",
    "assembly",
    "custom",
    "alias",
    "aliases",
    "chrom",
    "chromosome",
    "name",
    "sequencename",
    "source",
    "ucscname",
    "aliasname",
}
_SOURCE_WORDS = {"ucsc", "refseq", "genbank", "ensembl", "ncbi", "gencode", "insdc", "assembly", "custom"}


def _alias_rows(path: str | Path) -> list[tuple[int, list[str]]]:
    """Data rows of an alias table: header line and source-label column dropped, blanks removed."""
    rows = [(n, [f.strip() for f in fields]) for n, fields in _data_lines(path)]
    if rows and all(f.lstrip("#").strip().lower() in _HEADER_WORDS for f in rows[0][1] if f):
        rows = rows[1:]  # a header without '#'
    width = max((len(f) for _, f in rows), default=0)
    label = [j for j in range(width) if {f[j].lower() for _, f in rows if j < len(f) and f[j]} <= _SOURCE_WORDS]
    return [(n, [x for j, x in enumerate(f) if x and j not in label]) for n, f in rows]


def read_aliases(
    path: str | Path, sizes: dict[str, int] | None = None, sizes_source: str | None = None
) -> dict[str, str]:
    """Alias -> canonical name from a chromosome alias table (layouts: see the module docstring).

    With ``sizes`` (the species' chrom sizes, from ``sizes_source``) the canonical name of
    each chromosome is the one the chrom sizes list, in whichever column it stands; a table
    none of whose names is a chromosome of ``sizes`` is refused, and so is a name that would
    join two chromosomes of ``sizes``. Without ``sizes`` the first column is canonical.
    The canonical name maps to itself.
    """
    rows = _alias_rows(path)
    if sizes is None:
        return _first_column_aliases(path, rows)
    parent: dict[str, str] = {}
    chrom_of: dict[str, str] = {}  # root -> the chrom sizes name of its chromosome

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for number, names in rows:
        for name in names:
            if name not in parent:
                parent[name] = name
                if name in sizes:
                    chrom_of[name] = name
        root = find(names[0]) if names else None
        for name in names[1:]:
            other = find(name)
            if other == root:
                continue
            a, b = chrom_of.get(root), chrom_of.get(other)
            if a is not None and b is not None:
                raise CrossglueError(
                    f"{where(path, number)}: alias {name!r} names both {b!r} and {a!r}, two chromosomes of "
                    f"{sizes_source or 'the chrom sizes'}; a row of an alias table lists names of one chromosome"
                )
            parent[other] = root
            if b is not None:
                chrom_of[root] = b
    if not chrom_of:
        table = [n for _, names in rows for n in names][:4]
        raise CrossglueError(
            f"{path}: no name in this alias table is a chromosome of {sizes_source or 'the chrom sizes'} "
            f"(alias table e.g. {', '.join(map(repr, table)) or 'nothing'}; chrom sizes e.g. "
            f"{', '.join(map(repr, list(sizes)[:4]))}); expected one column to hold the chrom sizes' names: "
            "is the table for another assembly?"
        )
    return {name: chrom_of[find(name)] for name in parent if find(name) in chrom_of}


def _first_column_aliases(path: str | Path, rows: list[tuple[int, list[str]]]) -> dict[str, str]:
    """Alias -> the first name of its row (no chrom sizes to decide by)."""
    aliases: dict[str, str] = {}
    for number, names in rows:
        for name in names:
            previous = aliases.setdefault(name, names[0])
            if previous != names[0]:
                raise CrossglueError(f"{where(path, number)}: alias {name!r} names both {previous!r} and {names[0]!r}")
    return aliases


def canonical_names(
    names: pd.Series | np.ndarray,
    aliases: dict[str, str] | None,
    sizes: dict[str, int],
    source: str,
    alias_source: str | None = None,
) -> np.ndarray:
    """Translate chromosome ``names`` to the canonical names of ``sizes`` (vectorised).

    A name already canonical stays; any other goes through ``aliases``. A name unknown to
    both raises, naming ``source`` (the file being read), the first unknown names and the
    alias table (``alias_source``) that was searched.
    """
    codes, uniques = pd.factorize(pd.Series(np.asarray(names, dtype=object)).astype(str), sort=True)
    uniques = np.asarray(uniques, dtype=object)
    aliases = aliases or {}
    translated = np.array(
        [u if u in sizes else aliases.get(u, "") for u in uniques], dtype=object
    )  # one entry per distinct name, not per record
    known = np.array([t in sizes for t in translated], dtype=bool)
    if not known.all():
        unknown = [str(u) for u in uniques[~known]][:5]
        table = f"alias table {alias_source}" if alias_source else ("the alias table" if aliases else "no alias table")
        raise CrossglueError(
            f"{source}: chromosome(s) {', '.join(map(repr, unknown))} not among the {len(sizes)} chromosomes of the "
            f"species' chrom sizes (e.g. {', '.join(list(sizes)[:3])}) nor in {table}; "
            "add them to the species' chrom_aliases table"
        )
    return translated[codes] if len(codes) else np.array([], dtype=object)


def mito_chromosomes(sizes: dict[str, int], aliases: dict[str, str] | None = None) -> set[str]:
    """Canonical names of the mitochondrial chromosome (chrM, MT, M, chrMT or an alias of them)."""
    mito_names = {"chrm", "mt", "m", "chrmt"}
    found = {c for c in sizes if c.lower() in mito_names}
    found |= {c for a, c in (aliases or {}).items() if a.lower() in mito_names and c in sizes}
    return found
