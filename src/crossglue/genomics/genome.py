"""Chromosome names and sizes of one species, and the translation of foreign names to them.

The canonical names of a species are those of its chrom sizes file. Every other naming
(Ensembl ``1``, RefSeq ``NC_000001.11``, UCSC ``chr1``) is translated through the species'
alias table, read in UCSC ``chromAlias.txt`` style: one row per chromosome, first column
the canonical name, the other columns its aliases, ``#`` lines are comments.
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
            raise CrossglueError(f"{where(path, number)}: expected 'name<TAB>length' with an integer length, got {fields!r}")
        name = fields[0].strip()
        if name in sizes:
            raise CrossglueError(f"{where(path, number)}: chromosome {name!r} is listed twice")
        sizes[name] = int(fields[1])
    if not sizes:
        raise CrossglueError(f"{path}: no chromosome sizes found (expected 'name<TAB>length' lines)")
    return sizes


def read_aliases(path: str | Path) -> dict[str, str]:
    """Alias -> canonical name from a chromAlias-style table (canonical in column 1).

    The canonical name maps to itself. An alias claimed by two chromosomes is an error,
    because a translation through it would be a guess.
    """
    aliases: dict[str, str] = {}
    for number, fields in _data_lines(path):
        canonical = fields[0].strip()
        for name in [canonical, *(f.strip() for f in fields[1:])]:
            if not name:
                continue
            previous = aliases.setdefault(name, canonical)
            if previous != canonical:
                raise CrossglueError(
                    f"{where(path, number)}: alias {name!r} names both {previous!r} and {canonical!r}"
                )
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
