"""Ortholog gene–gene edges across two species from an Ensembl BioMart-style table.

Two layouts load: a BioMart export with its header (``Gene stable ID``, ``<Species> gene
stable ID``, ``<Species> homology type``, ``<Species> orthology confidence [0 low, 1 high]``)
and any table, with or without header, described by a column mapping (field -> 0-based
position or header name), such as the headerless Ensembl 102 macaque–human one2one file.

Weights: one2one 1; one2many and many2many 1/n, n the larger number of partners either
gene has in the table; both multiplied by a confidence factor so that a low-confidence
pair still links the species, just more weakly.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.config import schema_defaults
from crossglue.errors import CrossglueError
from crossglue.genomics.gtf import strip_version

FIELDS = ("gene_a", "name_a", "gene_b", "name_b", "homology_type", "confidence")
REQUIRED = ("gene_a", "gene_b")
HOMOLOGY_TYPES = ("one2one", "one2many", "many2many")
_BIOMART_OTHER_ID = re.compile(r"^(.+) gene stable ID$")


_DEFAULTS = schema_defaults("graph.orthologs")


@dataclass(frozen=True)
class OrthologParams:
    """Weight of a one2one pair, of a one2many/many2many pair before 1/n, and of low confidence.

    A pair's confidence c in [0, 1] scales its weight by ``low + (1 - low) * c``.
    """

    one2one: float = _DEFAULTS["one2one"]
    many: float = _DEFAULTS["many"]
    low_confidence: float = _DEFAULTS["low_confidence"]


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise CrossglueError(f"ortholog table {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise CrossglueError(f"{path}: cannot be read as a tab-separated text table ({err})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise CrossglueError(f"{path}: the ortholog table is empty")
    return lines


def _biomart_mapping(header: list[str], path: Path, species_b: str | None) -> dict[str, str]:
    """Find the BioMart columns of the query species (a) and the other species (b)."""
    if "Gene stable ID" not in header:
        raise CrossglueError(
            f"{path}:1: no 'Gene stable ID' column; expected an Ensembl BioMart ortholog export with its header, "
            "or give a 'columns' mapping (gene_a, gene_b, name_a, name_b, homology_type, confidence -> "
            "0-based position or header name)"
        )
    others = [m.group(1) for m in map(_BIOMART_OTHER_ID.match, header) if m]
    if len(others) > 1 and species_b:
        others = [o for o in others if o.lower().startswith(species_b.lower())] or others
    if len(others) != 1:
        found = ", ".join(f"'{o} gene stable ID'" for o in others) or "none"
        raise CrossglueError(
            f"{path}:1: expected exactly one '<Species> gene stable ID' column for the other species, found {found}; "
            "give a 'columns' mapping to choose"
        )
    other = others[0]
    mapping = {"gene_a": "Gene stable ID", "gene_b": f"{other} gene stable ID"}
    optional = {
        "name_a": "Gene name",
        "name_b": f"{other} gene name",
        "homology_type": f"{other} homology type",
        "confidence": f"{other} orthology confidence [0 low, 1 high]",
    }
    mapping.update({k: v for k, v in optional.items() if v in header})
    return mapping


def read_orthologs(
    path: str | Path, columns: dict[str, int | str] | None = None, species_b: str | None = None
) -> pd.DataFrame:
    """Read an ortholog table into gene_a, name_a, gene_b, name_b, homology_type, confidence, line.

    ``columns`` maps fields to 0-based positions (headerless file) or header names; without
    it the BioMart header is recognised (``species_b`` picks among several other species).
    Rows without a partner gene (BioMart lists genes that have no ortholog) are dropped.
    Gene ids lose their Ensembl version suffix; ``line`` is the 1-based line in the file.
    """
    path = Path(path)
    lines = pd.Series(_read_lines(path), dtype=object)
    mapping, first_data, n_fields = _column_positions(path, lines, columns, species_b)
    table = _split_fields(path, lines, mapping, first_data, n_fields)
    return _checked_types_and_confidence(path, table, mapping)


def _column_positions(
    path: Path, lines: pd.Series, columns: dict[str, int | str] | None, species_b: str | None
) -> tuple[dict[str, int], int, int]:
    """Field -> 0-based column, the first data line (0-based) and the number of fields, from
    the user's mapping or the BioMart header, each checked against the file."""
    if columns:
        unknown = sorted(set(columns) - set(FIELDS))
        if unknown:
            raise CrossglueError(
                f"ortholog column mapping for {path}: unknown field(s) {', '.join(unknown)}; "
                f"expected fields {', '.join(FIELDS)}"
            )
        missing = [f for f in REQUIRED if f not in columns]
        if missing:
            raise CrossglueError(f"ortholog column mapping for {path}: field(s) {', '.join(missing)} are required")
        positional = all(isinstance(v, int) for v in columns.values())
        if not positional and not all(isinstance(v, str) for v in columns.values()):
            raise CrossglueError(
                f"ortholog column mapping for {path}: use either 0-based positions or header names, not both"
            )
    else:
        positional = False
    first_data = 0 if positional else 1
    header = [] if positional else lines.iloc[0].split("\t")
    n_fields = len(header) if header else lines.iloc[0].count("\t") + 1
    if columns is None:
        mapping: dict[str, int | str] = dict(_biomart_mapping(header, path, species_b))
    else:
        mapping = dict(columns)
    if not positional:
        absent = [f"{k} -> '{v}'" for k, v in mapping.items() if v not in header]
        if absent:
            raise CrossglueError(f"{path}:1: header lacks column(s) {', '.join(absent)}; header is {header}")
        mapping = {k: header.index(v) for k, v in mapping.items()}
    too_far = [f"{k} -> {v}" for k, v in mapping.items() if not 0 <= int(v) < n_fields]
    if too_far:
        raise CrossglueError(
            f"ortholog column mapping for {path}: position(s) {', '.join(too_far)} outside the {n_fields} "
            f"field(s) of line {first_data + 1}"
        )
    return mapping, first_data, n_fields


def _split_fields(
    path: Path, lines: pd.Series, mapping: dict[str, int], first_data: int, n_fields: int
) -> pd.DataFrame:
    """The mapped fields of every data line (ids unversioned), rows without a partner gene dropped."""
    body = lines.iloc[first_data:]
    line_no = np.arange(first_data + 1, len(lines) + 1)
    fields_per_line = body.str.count("\t").to_numpy() + 1
    bad = np.flatnonzero(fields_per_line != n_fields)
    if bad.size:
        i = bad[0]
        raise CrossglueError(
            f"{path}:{line_no[i]}: {fields_per_line[i]} tab-separated field(s); expected {n_fields} like line "
            f"{first_data + 1}"
        )
    cells = body.str.split("\t", expand=True) if len(body) else pd.DataFrame(columns=range(n_fields))
    table = pd.DataFrame({"line": line_no})
    for field in FIELDS:
        table[field] = cells[mapping[field]].str.strip().to_numpy() if field in mapping else ""
    table["gene_a"] = strip_version(table["gene_a"])
    table["gene_b"] = strip_version(table["gene_b"])
    return table[(table["gene_a"] != "") & (table["gene_b"] != "")].reset_index(drop=True)


def _checked_types_and_confidence(path: Path, table: pd.DataFrame, mapping: dict[str, int]) -> pd.DataFrame:
    """Homology types (``ortholog_`` prefix dropped, inferred when unmapped) and confidences in [0, 1]."""
    kind = table["homology_type"].str.replace(r"^ortholog_", "", regex=True)
    if "homology_type" not in mapping:
        kind = pd.Series(_infer_types(table), index=table.index)
    bad = ~kind.isin(HOMOLOGY_TYPES)
    if bad.any():
        row = table.loc[bad].iloc[0]
        raise CrossglueError(
            f"{path}:{row['line']}: homology type '{row['homology_type']}'; expected one of "
            + ", ".join(f"ortholog_{t}" for t in HOMOLOGY_TYPES)
        )
    table["homology_type"] = kind.to_numpy()

    conf_text = table["confidence"].replace("", "1")
    confidence = pd.to_numeric(conf_text, errors="coerce")
    bad = ~confidence.between(0, 1)
    if bad.any():
        row = table.loc[bad].iloc[0]
        raise CrossglueError(
            f"{path}:{row['line']}: orthology confidence '{row['confidence']}'; expected a number in [0, 1] "
            "(BioMart: 0 low, 1 high) or nothing"
        )
    table["confidence"] = confidence.to_numpy(np.float64)
    return table[["gene_a", "name_a", "gene_b", "name_b", "homology_type", "confidence", "line"]]


def _partners(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    pairs = table.drop_duplicates(["gene_a", "gene_b"])
    n_a = table["gene_a"].map(pairs["gene_a"].value_counts()).to_numpy()
    n_b = table["gene_b"].map(pairs["gene_b"].value_counts()).to_numpy()
    return n_a, n_b


def _infer_types(table: pd.DataFrame) -> np.ndarray:
    """one2one / one2many / many2many from partner counts, for tables without a type column."""
    n_a, n_b = _partners(table)
    return np.where((n_a == 1) & (n_b == 1), "one2one", np.where((n_a > 1) & (n_b > 1), "many2many", "one2many"))


def ortholog_edges(
    table: pd.DataFrame, genes_a: pd.Index, genes_b: pd.Index, params: OrthologParams = OrthologParams()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Edges between genes present in both data sets, and the table rows that were lost.

    Returns (edges: gene_a, gene_b, homology_type, confidence, n_partners, weight;
    missing: the table's rows whose gene_a and/or gene_b is absent from the data, with a
    ``missing`` column saying which: ``a``, ``b`` or ``both``).
    """
    n_a, n_b = _partners(table)
    n = np.maximum(n_a, n_b).astype(np.float64)
    base = np.where(table["homology_type"].to_numpy() == "one2one", params.one2one, params.many / n)
    factor = params.low_confidence + (1 - params.low_confidence) * table["confidence"].to_numpy(np.float64)
    scored = table.assign(n_partners=n.astype(np.int64), weight=base * factor)
    # Data ids may carry a version suffix: match without it, name nodes as the data does.
    data_a = pd.Series(np.asarray(genes_a, dtype=object), index=strip_version(pd.Series(genes_a, dtype=str)).to_numpy())
    data_b = pd.Series(np.asarray(genes_b, dtype=object), index=strip_version(pd.Series(genes_b, dtype=str)).to_numpy())
    data_a, data_b = data_a[~data_a.index.duplicated()], data_b[~data_b.index.duplicated()]
    in_a = scored["gene_a"].isin(data_a.index).to_numpy()
    in_b = scored["gene_b"].isin(data_b.index).to_numpy()
    edges = scored[in_a & in_b].drop_duplicates(["gene_a", "gene_b"])
    edges = edges.assign(
        gene_a=data_a.reindex(edges["gene_a"]).to_numpy(), gene_b=data_b.reindex(edges["gene_b"]).to_numpy()
    )
    edges = edges[edges["weight"] > 0]
    missing = scored[~(in_a & in_b)].copy()
    missing["missing"] = np.where(~in_a & ~in_b, "both", np.where(~in_a, "a", "b"))[~(in_a & in_b)]
    cols = ["gene_a", "gene_b", "homology_type", "confidence", "n_partners", "weight"]
    return edges[cols].reset_index(drop=True), missing.drop(columns=["n_partners", "weight"]).reset_index(drop=True)


# --- matching a table to the data: orientation, symbols, nothing matched ----------------------


def _examples(values: pd.Series, n: int = 3) -> str:
    return ", ".join(repr(v) for v in pd.unique(values.astype(str))[:n]) or "none"


def _symbol_lookup(features: pd.DataFrame) -> pd.Series:
    """Gene symbol -> feature id, for symbols that name exactly one feature."""
    if "gene_name" not in features:
        return pd.Series(dtype=object)
    names = pd.Series(features.index.astype(str), index=features["gene_name"].astype(str).to_numpy())
    names = names[names.index != ""]
    return names[~names.index.duplicated(keep=False)]


def _by_symbol(table: pd.DataFrame, symbols_a: pd.Series, symbols_b: pd.Series) -> pd.DataFrame:
    """``table`` with gene_a/gene_b replaced by the features their symbol names (ids kept where none does).

    A row's symbol is its name column, or its id column for tables keyed by symbol.
    """
    out = table.copy()
    for side, symbols in (("a", symbols_a), ("b", symbols_b)):
        key = table[f"name_{side}"].where(table[f"name_{side}"] != "", table[f"gene_{side}"])
        by_id = table[f"gene_{side}"].map(symbols).to_numpy(dtype=object)
        by_name = key.map(symbols).to_numpy(dtype=object)
        found = np.where(pd.notna(by_name), by_name, np.where(pd.notna(by_id), by_id, table[f"gene_{side}"]))
        out[f"gene_{side}"] = strip_version(pd.Series(found, index=table.index, dtype=object)).to_numpy()
    return out


def link_orthologs(
    table: pd.DataFrame,
    features_a: pd.DataFrame,
    features_b: pd.DataFrame,
    source: str,
    species: tuple[str, str],
    params: OrthologParams = OrthologParams(),
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """:func:`ortholog_edges` of ``table`` against each species' RNA features, refusing silent failures.

    ``features_x``: a species' RNA ``var`` (index: feature ids, optional ``gene_name``).
    A table oriented the other way (species_a's ids in gene_b) is an error that says how to
    fix the config: guessing would leave a config that says the opposite of its table. When
    no id matches but symbols do, rows are matched by symbol (returned as a warning). No
    edge at all is an error naming the file, the rows read and unmatched ids of both sides.
    Returns (edges, missing, warnings).
    """
    a, b = species
    ids_a = pd.Index(strip_version(pd.Series(features_a.index.astype(str))))
    ids_b = pd.Index(strip_version(pd.Series(features_b.index.astype(str))))
    direct = int((table["gene_a"].isin(ids_a) & table["gene_b"].isin(ids_b)).sum())
    swapped = int((table["gene_a"].isin(ids_b) & table["gene_b"].isin(ids_a)).sum())
    if swapped > 2 * direct:
        raise CrossglueError(
            f"{source}: the ortholog table is oriented the other way: {swapped} of its {len(table)} row(s) have a "
            f"{b} gene in gene_a and a {a} gene in gene_b, only {direct} the configured way round "
            f"(species_a: {a}, species_b: {b}); swap species_a and species_b of this table in config 'orthologs' "
            f"(species_a: {b}, species_b: {a})"
        )
    warnings = []
    if direct == 0 and len(table):
        by_symbol = _by_symbol(table, _symbol_lookup(features_a), _symbol_lookup(features_b))
        matched = int((by_symbol["gene_a"].isin(ids_a) & by_symbol["gene_b"].isin(ids_b)).sum())
        if matched:
            warnings.append(
                f"{source}: no row's gene ids match the RNA features of both {a} and {b} (table e.g. "
                f"{_examples(table['gene_a'])}; {a} features e.g. {_examples(pd.Series(features_a.index))}); matched "
                f"{matched} of {len(table)} row(s) by gene symbol instead (symbols naming several genes are left "
                "out); a table keyed by the annotation's gene ids links exactly"
            )
            table = by_symbol
    edges, missing = ortholog_edges(table, features_a.index, features_b.index, params)
    if edges.empty:
        lost_a = missing.loc[missing["missing"].isin(["a", "both"]), "gene_a"]
        lost_b = missing.loc[missing["missing"].isin(["b", "both"]), "gene_b"]
        raise CrossglueError(
            f"{source}: 0 ortholog edges between {a} and {b} from {len(table)} table row(s) with a partner: no row "
            f"has both genes among the RNA features. Unmatched {a} ids e.g. {_examples(lost_a)} ({a} features e.g. "
            f"{_examples(pd.Series(features_a.index))}); unmatched {b} ids e.g. {_examples(lost_b)} ({b} features "
            f"e.g. {_examples(pd.Series(features_b.index))}). Check the table's columns (config 'orthologs' "
            "columns) and that it names genes by the ids or symbols of the species' annotation"
        )
    return edges, missing, warnings


def one2one_pairs(
    orthologs: pd.DataFrame, species_a: str, species_b: str, source: str = "ortholog table"
) -> pd.DataFrame:
    """``gene_a`` (of ``species_a``), ``gene_b`` (of ``species_b``) of every one2one pair in the
    ortholog edge table (``results/graph/ortholog_links.tsv.gz``), whichever way it is written."""
    need = {"species_a", "species_b", "gene_a", "gene_b", "homology_type"}
    if not need <= set(orthologs.columns):
        raise CrossglueError(f"{source}: expected columns {sorted(need)}, found {list(orthologs.columns)}")
    one = orthologs[orthologs["homology_type"].astype(str) == "one2one"]
    fwd = one[(one["species_a"] == species_a) & (one["species_b"] == species_b)][["gene_a", "gene_b"]]
    rev = one[(one["species_a"] == species_b) & (one["species_b"] == species_a)][["gene_b", "gene_a"]]
    rev.columns = ["gene_a", "gene_b"]
    return pd.concat([fwd, rev], ignore_index=True).drop_duplicates().astype(str)


def read_ortholog_links(path: str | Path) -> pd.DataFrame:
    """The ortholog edge table written by rule ``ortholog_links`` (gene ids kept as strings)."""
    return pd.read_csv(path, sep="\t", dtype={"gene_a": str, "gene_b": str, "species_a": str, "species_b": str})
