"""Gene records from a GTF (gz or plain), and matching of data genes to them.

GTF is 1-based closed; the table returned here is 0-based half-open (BED), converted once
at read. Attributes are parsed column-wise with regular expressions over the whole
attribute column, never line by line. The workflow parses each species' GTF once (rule
species_genes) into a gene table (:func:`write_gene_table`); every sample's ingest reads
that table (:func:`read_gene_table`), and later stages read the coordinates ingest placed
in ``rna.var``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.errors import CrossglueError, where
from crossglue.genomics.genome import canonical_names
from crossglue.io_utils import read_maybe_gzip, write_tsv

log = logging.getLogger(__name__)

GENE_COLUMNS = ["gene_id", "gene_id_version", "gene_name", "gene_type", "chrom", "start", "end", "strand", "tss"]
# Ensembl/GENCODE version suffix: ENSG00000000003.15 -> ENSG00000000003; GENCODE's
# pseudo-autosomal copies keep their tag (ENSG00000002586.20_PAR_Y -> ENSG00000002586_PAR_Y).
VERSION_SUFFIX = r"\.\d+(?=(?:_PAR_Y)?$)"


def strip_version(ids: pd.Series | pd.Index | np.ndarray | list) -> pd.Series:
    """Gene ids without their Ensembl version suffix."""
    return pd.Series(np.asarray(ids, dtype=object)).astype(str).str.replace(VERSION_SUFFIX, "", regex=True)


def _read_text(path: Path) -> str:
    try:
        return read_maybe_gzip(path).decode()
    except FileNotFoundError:
        raise CrossglueError(f"{path}: GTF file not found") from None
    except (EOFError, OSError, UnicodeDecodeError) as err:
        raise CrossglueError(f"{path}: cannot read the GTF (truncated or not gzip/text?): {err}") from None


def _attribute(attrs: pd.Series, key: str) -> pd.Series:
    return attrs.str.extract(rf'(?:^|;)\s*{key}\s+"([^"]*)"', expand=False)


def _gene_type(attrs: pd.Series) -> np.ndarray:
    """GENCODE ``gene_type``, else Ensembl ``gene_biotype``, else empty."""
    kind = _attribute(attrs, "gene_type").to_numpy(dtype=object)
    missing = pd.isna(kind)
    if missing.any():
        kind[missing] = _attribute(attrs[missing], "gene_biotype").to_numpy(dtype=object)
    return np.where(pd.isna(kind), "", kind).astype(object)


def read_genes(
    gtf: str | Path, aliases: dict[str, str] | None = None, sizes: dict[str, int] | None = None
) -> pd.DataFrame:
    """One row per gene: gene_id (unversioned), gene_id_version, gene_name, gene_type,
    chrom, start, end (0-based half-open), strand and tss (0-based position of the first base).

    Uses the ``gene`` records; a GTF without them (transcripts/exons only) gets each gene's
    extent from its other records. With ``sizes``, chromosome names are made canonical
    through ``aliases``; genes on contigs the species' chrom sizes lack are dropped with a
    warning (annotations often carry unplaced scaffolds), but a GTF sharing no chromosome
    with the species is an error.
    """
    path = Path(gtf)
    table = _gene_table(_gene_records(path), path)
    if sizes is not None:
        table = _on_species_chromosomes(table, aliases, sizes, path)
    table["tss"] = np.where(table["strand"].to_numpy() == "-", table["end"].to_numpy() - 1, table["start"].to_numpy())
    return table[GENE_COLUMNS].reset_index(drop=True)


def _gene_records(path: Path) -> pd.DataFrame:
    """The GTF's ``gene`` records split into their nine columns (all records when it has no
    gene records), with start, end and strand checked; index: 0-based line number."""
    lines = pd.Series(_read_text(path).split("\n"))
    data = lines[(lines.str.len() > 0) & ~lines.str.startswith("#")]
    short = (data.str.count("\t") < 8).to_numpy()
    if short.any():
        bad = data.index[short][0]
        raise CrossglueError(
            f"{where(path, int(bad) + 1)}: expected 9 tab-separated GTF columns, "
            f"got {len(str(lines[bad]).split(chr(9)))}"
        )
    # split only the gene records when there are any (half the lines of a gene-level GTF)
    gene_lines = data[data.str.contains("\tgene\t", regex=False).to_numpy()]
    fields = (gene_lines if len(gene_lines) else data).str.split("\t", n=8, expand=True)
    fields.columns = ["chrom", "source", "feature", "start", "end", "score", "strand", "frame", "attributes"]
    genes = fields[fields["feature"] == "gene"]
    if genes.empty:
        genes = fields
    start = pd.to_numeric(genes["start"], errors="coerce")
    end = pd.to_numeric(genes["end"], errors="coerce")
    bad = start.isna() | end.isna() | (start < 1) | (end < start)
    if bad.any():
        row = genes.index[bad.to_numpy()][0]
        raise CrossglueError(
            f"{where(path, int(row) + 1)}: expected integer start >= 1 and end >= start (GTF is 1-based closed), "
            f"got start={genes.at[row, 'start']!r} end={genes.at[row, 'end']!r}"
        )
    bad = ~genes["strand"].isin(["+", "-", "."])
    if bad.any():
        row = genes.index[bad.to_numpy()][0]
        raise CrossglueError(
            f"{where(path, int(row) + 1)}: expected strand '+', '-' or '.', got {genes.at[row, 'strand']!r}"
        )
    return genes


def _gene_table(genes: pd.DataFrame, path: Path) -> pd.DataFrame:
    """One row per gene from its records (BED coordinates); a gene known only from
    transcript/exon records spans them all."""
    start = pd.to_numeric(genes["start"]).to_numpy(np.int64)  # checked by _gene_records
    end = pd.to_numeric(genes["end"]).to_numpy(np.int64)
    gene_id = _attribute(genes["attributes"], "gene_id")
    if gene_id.isna().any():
        row = genes.index[gene_id.isna().to_numpy()][0]
        raise CrossglueError(f"{where(path, int(row) + 1)}: record has no gene_id attribute")
    table = pd.DataFrame(
        {
            "gene_id_version": gene_id.to_numpy(),
            "gene_name": _attribute(genes["attributes"], "gene_name").fillna("").to_numpy(),
            "gene_type": _gene_type(genes["attributes"]),
            "chrom": genes["chrom"].to_numpy(),
            "start": start - 1,  # 1-based closed -> 0-based half-open
            "end": end,
            "strand": genes["strand"].to_numpy(),
            "line": genes.index.to_numpy() + 1,
        }
    )
    if not (genes["feature"] == "gene").any():  # extents from transcripts/exons
        table = (
            table.groupby("gene_id_version", sort=False)
            .agg(
                gene_name=("gene_name", "first"),
                gene_type=("gene_type", "first"),
                chrom=("chrom", "first"),
                start=("start", "min"),
                end=("end", "max"),
                strand=("strand", "first"),
                line=("line", "first"),
            )
            .reset_index()
        )
    table.insert(0, "gene_id", strip_version(table["gene_id_version"]).to_numpy())
    return table


def _on_species_chromosomes(
    table: pd.DataFrame, aliases: dict[str, str] | None, sizes: dict[str, int], path: Path
) -> pd.DataFrame:
    """Genes on the species' chromosomes, canonically named; the rest left out with a warning."""
    known = table["chrom"].isin(list(sizes) + list((aliases or {}).keys()))
    if not known.any():
        canonical_names(table["chrom"].to_numpy()[:1], aliases, sizes, source=str(path))  # raises, naming it
    if not known.all():
        dropped = table.loc[~known, "chrom"].unique()
        log.warning(
            "%s: %d genes on %d contigs absent from the species' chromosomes were left out (e.g. %s)",
            path,
            int((~known).sum()),
            len(dropped),
            ", ".join(map(str, dropped[:3])),
        )
    table = table[known].copy()
    table["chrom"] = canonical_names(table["chrom"].to_numpy(), aliases, sizes, source=str(path))
    _check_within_chromosomes(table, sizes, path)
    return table


GENE_TEXT_COLUMNS = ["gene_id", "gene_id_version", "gene_name", "gene_type", "chrom", "strand"]


def write_gene_table(genes: pd.DataFrame, path: str | Path) -> None:
    """The table of :func:`read_genes` as TSV, read back identical by :func:`read_gene_table`."""
    write_tsv(genes[GENE_COLUMNS], path)


def read_gene_table(path: str | Path) -> pd.DataFrame:
    """A gene table written by :func:`write_gene_table`: the frame :func:`read_genes` returned
    (text stays text: chromosome ``1`` and gene name ``NA`` are not numbers or missing)."""
    try:
        table = pd.read_csv(path, sep="\t", dtype={c: str for c in GENE_TEXT_COLUMNS}, na_filter=False)
    except FileNotFoundError:
        raise CrossglueError(f"{path}: gene table not found (rule species_genes writes it from the GTF)") from None
    if list(table.columns) != GENE_COLUMNS:
        raise CrossglueError(
            f"{path}: expected the gene table columns {GENE_COLUMNS}, got {list(table.columns)}; "
            "delete it and let rule species_genes write it again"
        )
    for col in GENE_TEXT_COLUMNS:
        table[col] = table[col].astype(object)
    return table


def _check_within_chromosomes(table: pd.DataFrame, sizes: dict[str, int], path: Path) -> None:
    """A gene ending past its chromosome means the GTF and the chrom sizes are of different assemblies."""
    length = table["chrom"].map(sizes).to_numpy(np.int64)
    past = np.flatnonzero(table["end"].to_numpy(np.int64) > length)
    if len(past):
        gene = table.iloc[past[0]]
        name = f"{gene['gene_id_version']} ({gene['gene_name']})" if gene["gene_name"] else gene["gene_id_version"]
        raise CrossglueError(
            f"{where(path, int(gene['line']))}: gene {name} ends at {int(gene['end']):,}, past the end of "
            f"{gene['chrom']} ({int(length[past[0]]):,} bp in the chrom sizes; {len(past)} gene(s) do); the GTF and "
            "the chrom sizes must be of one assembly: use the annotation of the species' assembly"
        )


def match_genes(
    data: pd.DataFrame | pd.Index | list | np.ndarray, genes: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """Place each data gene on the annotation: by id (version-insensitive), else by symbol.

    ``data``: var names (ids or symbols), or a DataFrame with ``gene_id`` and/or
    ``gene_name``. A symbol counts only when it names exactly one annotated gene. Returns
    (matched: one row per matched data gene in data order, with ``data_index`` (position),
    ``data_gene`` (the data's own label), the annotation columns and ``matched_by`` in
    {id, symbol}; unmatched: the data labels that found no record), so nothing is dropped
    silently.
    """
    if isinstance(data, pd.DataFrame):
        ids = data["gene_id"].astype(str).to_numpy() if "gene_id" in data else np.full(len(data), "", dtype=object)
        symbols = data["gene_name"].astype(str).to_numpy() if "gene_name" in data else ids
        labels = ids if "gene_id" in data else symbols
    else:
        ids = symbols = labels = np.asarray(data, dtype=object).astype(str)
    by_id = genes.drop_duplicates("gene_id").set_index("gene_id")
    names = genes["gene_name"].astype(str)
    unique_names = genes[(names != "") & ~names.duplicated(keep=False)].set_index("gene_name")
    plain_ids = strip_version(ids)
    hit_id = plain_ids.isin(by_id.index).to_numpy()
    hit_name = ~hit_id & pd.Series(symbols).isin(unique_names.index).to_numpy()
    cols = [c for c in genes.columns if c != "gene_id"]
    parts = [
        by_id.loc[plain_ids[hit_id]].reset_index().assign(data_index=np.flatnonzero(hit_id), matched_by="id"),
        unique_names.loc[pd.Series(symbols)[hit_name]]
        .reset_index()
        .assign(data_index=np.flatnonzero(hit_name), matched_by="symbol"),
    ]
    matched = pd.concat(parts, ignore_index=True).sort_values("data_index", kind="stable")
    matched["data_gene"] = np.asarray(labels)[matched["data_index"].to_numpy()]
    matched = matched[["data_index", "data_gene", "gene_id", *cols, "matched_by"]].reset_index(drop=True)
    unmatched = [str(x) for x in np.asarray(labels)[~(hit_id | hit_name)]]
    return matched, unmatched
