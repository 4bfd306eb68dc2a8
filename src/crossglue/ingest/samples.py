"""Ingest one sample (QC, filter, RNA and ATAC AnnData) and merge the samples of a species.

Cell ids are ``{sample}#{barcode}``. A multiome nucleus is kept only when it passes both
modalities and then appears, under the same id, in the RNA and the ATAC AnnData; ``obs``
``nucleus`` holds that id for every cell. ATAC cells are counted on fixed genome tiles
(Tn5 insertions, both ends of every unique fragment), which every sample of a species
shares, so the species merge is a plain row concatenation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.errors import CrossglueError
from crossglue.genomics.fragments import CHUNK_ROWS, Fragments, iter_fragments
from crossglue.genomics.genome import mito_chromosomes
from crossglue.genomics.gtf import match_genes
from crossglue.ingest.doublets import DoubletSettings, OverlapCounter, call_doublets
from crossglue.ingest.qc import (
    QC_METRICS,
    add_counts,
    atac_metrics,
    combine_qc,
    count_atac,
    no_cells_message,
    rna_qc,
    tss_regions,
)
from crossglue.ingest.rna_counts import read_rna_counts
from crossglue.io_utils import read_h5ad

log = logging.getLogger(__name__)

MODALITIES = {"rna": ("rna",), "atac": ("atac",), "multiome": ("rna", "atac")}

OBS_COLUMNS = ["sample", "species", "donor", "modality", "nucleus", "cell_type"]


@dataclass
class Sample:
    """One row of the samples sheet (paths may be None when the modality lacks them)."""

    name: str
    species: str
    donor: str
    modality: str
    fragments: str | None = None
    counts: str | None = None
    metadata: str | None = None


@dataclass
class Species:
    """What ingest needs to know about a genome: sizes, aliases, genes."""

    name: str
    sizes: dict[str, int]
    genes: pd.DataFrame
    aliases: dict[str, str] = field(default_factory=dict)
    alias_source: str | None = None
    mito_chrom: str | None = None  # config species[].mito_chrom; chrM/MT are recognised anyway

    def mito_chroms(self) -> set[str]:
        """Canonical names of the mitochondrial chromosome: ``mito_chrom`` (through the aliases) and chrM/MT."""
        found = mito_chromosomes(self.sizes, self.aliases)
        if self.mito_chrom:
            found.add(self.aliases.get(self.mito_chrom, self.mito_chrom))
        return found


@dataclass
class IngestedSample:
    qc: pd.DataFrame
    rna: ad.AnnData
    atac: ad.AnnData
    unmatched_genes: list[str]


def read_metadata(path: str | Path) -> pd.DataFrame:
    """Cell metadata TSV indexed by barcode (no sample prefix); a 'barcode' column is required."""
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise CrossglueError(f"{path}: metadata file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise CrossglueError(f"{path}: cannot read the metadata TSV: {err}") from None
    if "barcode" not in table:
        raise CrossglueError(f"{path}: metadata needs a 'barcode' column, found {', '.join(table.columns)}")
    dup = table["barcode"].duplicated()
    if dup.any():
        raise CrossglueError(f"{path}: barcode {table['barcode'][dup].iloc[0]} appears more than once in the metadata")
    return table.set_index("barcode")


def tile_table(sizes: dict[str, int], tile_size: int) -> pd.DataFrame:
    """Genome tiles (chrom, start, end) named ``chrom:start-end``; the last tile of a chromosome is short."""
    chroms = list(sizes)
    n = np.array([-(-sizes[c] // tile_size) for c in chroms], dtype=np.int64)
    chrom = np.repeat(np.array(chroms, dtype=object), n)
    start = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) * tile_size
    end = np.minimum(start + tile_size, np.repeat([sizes[c] for c in chroms], n))
    names = pd.Series(chrom).str.cat([pd.Series(start).astype(str), pd.Series(end).astype(str)], sep=":")
    names = names.str.replace(r":(\d+):", r":\1-", regex=True)
    return pd.DataFrame({"chrom": chrom, "start": start, "end": end}, index=pd.Index(names.to_numpy(), name=None))


def tile_counts(
    fragments: Fragments,
    rows: np.ndarray,
    n_rows: int,
    sizes: dict[str, int],
    tile_size: int,
    mito_chroms: set[str] | frozenset[str] = frozenset(),
) -> sp.csr_matrix:
    """Insertions per (cell row, tile); ``rows`` maps barcode code -> row, -1 for dropped barcodes.

    Insertions on ``mito_chroms`` are not counted (their tiles stay empty), as in the QC metrics.
    """
    n = np.array([-(-sizes[c] // tile_size) for c in fragments.chrom_names], dtype=np.int64)
    first_tile = np.concatenate([[0], np.cumsum(n)[:-1]])
    nuclear = np.array([c not in mito_chroms for c in fragments.chrom_names], dtype=bool)
    chrom, pos, barcode = fragments.insertions()
    row = rows[barcode]
    keep = (row >= 0) & nuclear[chrom]
    col = first_tile[chrom[keep]] + pos[keep] // tile_size
    matrix = sp.coo_matrix(
        (np.ones(int(keep.sum()), dtype=np.int32), (row[keep], col)), shape=(n_rows, int(n.sum()))
    ).tocsr()
    matrix.sum_duplicates()
    return matrix


def _obs(sample: Sample, barcodes: np.ndarray, qc: pd.DataFrame, metadata: pd.DataFrame | None) -> pd.DataFrame:
    ids = pd.Index(f"{sample.name}#" + pd.Series(barcodes, dtype=object).astype(str).to_numpy(dtype=object), name=None)
    obs = pd.DataFrame(
        {
            "sample": sample.name,
            "species": sample.species,
            "donor": sample.donor,
            "modality": sample.modality,
            "nucleus": ids.to_numpy(),
            "barcode": barcodes,
            "cell_type": pd.Series(pd.NA, index=range(len(barcodes)), dtype="string").to_numpy(),
        },
        index=ids,
    )
    if metadata is not None:
        meta = metadata.reindex(barcodes)
        for col in meta.columns:
            if col == "cell_type":
                obs["cell_type"] = meta[col].astype("string").to_numpy()
            elif col not in obs:
                obs[col] = meta[col].to_numpy()
    for col in qc.columns:
        obs[col] = qc.loc[barcodes, col].to_numpy()
    return obs


def empty_rna() -> ad.AnnData:
    """A 0 x 0 layer: what a sample writes for a modality it lacks."""
    return ad.AnnData(X=sp.csr_matrix((0, 0), dtype=np.int32))


def empty_atac(sizes: dict[str, int], tile_size: int) -> ad.AnnData:
    tiles = tile_table(sizes, tile_size)
    return ad.AnnData(X=sp.csr_matrix((0, len(tiles)), dtype=np.int32), var=tiles)


def _atac_pass(sample: Sample, species: Species, chunk_rows: int) -> tuple[pd.DataFrame, list[Fragments], pd.DataFrame]:
    """First pass over the fragments: QC metrics of every barcode.

    Returns the metrics, when the file fitted in one chunk that chunk (so the tile
    counting pass need not read the file again), and the loci covered by more than two
    fragments of one barcode (:class:`~crossglue.ingest.doublets.OverlapCounter`).
    """
    counts, barcodes, regions, kept_chunks = None, np.array([], dtype=object), None, []
    mito = species.mito_chroms()
    overlaps = OverlapCounter(mito)
    for k, chunk in enumerate(
        iter_fragments(sample.fragments, species.sizes, species.aliases, species.alias_source, chunk_rows)
    ):
        regions = regions or tss_regions(species.genes, chunk.chrom_names, species.sizes)
        counts = add_counts(counts, count_atac(chunk, regions, mito))
        overlaps.add(chunk)
        barcodes = chunk.barcodes
        kept_chunks = [chunk] if k == 0 else []
    if counts is None:
        raise CrossglueError(f"{sample.fragments}: the fragments file holds no fragment")
    loci = overlaps.loci()
    loci["barcode"] = np.asarray(barcodes, dtype=object)[loci["barcode"].to_numpy()]
    return atac_metrics(counts, barcodes), kept_chunks, loci


def _atac_matrix(
    sample: Sample, species: Species, cells: np.ndarray, tile_size: int, chunk_rows: int, one_chunk: list[Fragments]
) -> sp.csr_matrix:
    """Tile counts of ``cells`` (rows in that order); re-reads the fragments unless they fitted in one chunk."""
    chunks = one_chunk or iter_fragments(
        sample.fragments, species.sizes, species.aliases, species.alias_source, chunk_rows
    )
    index = pd.Index(cells)
    x = sp.csr_matrix((len(cells), len(tile_table(species.sizes, tile_size))), dtype=np.int32)
    mito = species.mito_chroms()
    for chunk in chunks:
        x = x + tile_counts(chunk, index.get_indexer(chunk.barcodes), len(cells), species.sizes, tile_size, mito)
    return x


def ingest_sample(
    sample: Sample, species: Species, thresholds: dict, tile_size: int | None, chunk_rows: int = CHUNK_ROWS
) -> IngestedSample:
    """QC every barcode of one sample, keep the passing cells, build its RNA and ATAC AnnData.

    Fragments are streamed in chunks of ``chunk_rows`` (twice when the file is larger than
    one chunk: QC first, then tile counts of the passing cells), so memory stays bounded.
    ``thresholds`` needs only the sample's own modalities (``{"rna": ...}`` for an RNA
    sample), ``tile_size`` only an ATAC layer; a modality the sample lacks gets an empty
    AnnData. A sample that keeps no cell is an error that names the threshold to blame:
    otherwise its donor would vanish from every later stage without a trace.
    """
    layers = MODALITIES.get(sample.modality)
    if layers is None:
        raise CrossglueError(f"sample {sample.name}: modality {sample.modality!r} is not one of rna, atac, multiome")
    rna = None
    atac = rna_metrics = loci = None
    if "atac" in layers:
        if not sample.fragments:
            raise CrossglueError(f"sample {sample.name}: modality {sample.modality} needs a fragments file")
        atac, one_chunk, loci = _atac_pass(sample, species, chunk_rows)
    unmatched: list[str] = []
    if "rna" in layers:
        if not sample.counts:
            raise CrossglueError(f"sample {sample.name}: modality {sample.modality} needs a counts file")
        rna = read_rna_counts(sample.counts)
        matched, unmatched = match_genes(rna.var[["gene_id", "gene_name"]], species.genes)
        rna = _annotate_var(rna, matched)
        if unmatched:
            log.warning(
                "%s: %d of %d genes are not in the %s annotation (kept, without coordinates), e.g. %s",
                sample.counts,
                len(unmatched),
                rna.n_vars,
                species.name,
                ", ".join(unmatched[:5]),
            )
        mito = rna.var["chrom"].isin(species.mito_chroms()).to_numpy()
        mito |= rna.var["gene_name"].astype(str).str.upper().str.startswith("MT-").to_numpy()
        rna_metrics = rna_qc(rna.X, rna.obs_names.to_numpy(), mito)
    qc = combine_qc(atac, rna_metrics, thresholds)

    metadata = read_metadata(sample.metadata) if sample.metadata else None
    if metadata is not None:
        absent = ~metadata.index.isin(qc.index)
        if absent.any():
            raise CrossglueError(
                f"{sample.metadata}: {int(absent.sum())} of {len(metadata)} metadata barcodes are not in the data of "
                f"sample {sample.name}, e.g. {', '.join(metadata.index[absent][:3])} "
                "(barcodes are expected without the sample prefix, exactly as in the data)"
            )
    passing = qc.index[qc["pass"].to_numpy()].to_numpy(dtype=object)
    x = _atac_matrix(sample, species, passing, tile_size, chunk_rows, one_chunk) if atac is not None else None
    qc = call_doublets(
        qc,
        {layer: (rna[passing].X if layer == "rna" else x, passing) for layer in layers},
        DoubletSettings.from_config(thresholds.get("doublets")),
        sample.name,
        loci,
    )
    kept = qc.index[qc["pass"].to_numpy()].to_numpy(dtype=object)
    if not len(kept):
        raise CrossglueError(no_cells_message(sample.name, qc, thresholds, layers))

    if rna is not None:
        rna_cells = rna[kept].copy() if len(kept) else rna[:0].copy()
        rna_cells.obs = _obs(sample, rna_cells.obs_names.to_numpy(dtype=object), qc, metadata)
    else:
        rna_cells = empty_rna()
    if atac is not None:
        x = x[pd.Index(passing).get_indexer(kept)]
        atac_cells = ad.AnnData(X=x, obs=_obs(sample, kept, qc, metadata), var=tile_table(species.sizes, tile_size))
        atac_cells.uns["fragments"] = str(sample.fragments)
        atac_cells.uns["tile_size"] = int(tile_size)
    else:
        atac_cells = empty_rna()  # no ATAC layer: 0 x 0, so tile_size does not reach RNA samples
    log.info("%s: %d of %d barcodes pass QC", sample.name, len(kept), len(qc))
    table = qc.reset_index()
    table.insert(0, "sample", sample.name)
    return IngestedSample(qc=table, rna=rna_cells, atac=atac_cells, unmatched_genes=unmatched)


def _annotate_var(rna: ad.AnnData, matched: pd.DataFrame) -> ad.AnnData:
    """var = gene_id, gene_name, chrom, start, end, strand (from the GTF), in_annotation.

    Genes without an annotation record stay (their coordinates are missing); genes matched by
    symbol take the annotation's gene_id, so var_names are Ensembl-like ids where possible.
    """
    var = rna.var[["gene_id", "gene_name"]].copy()
    rows = matched["data_index"].to_numpy()
    gene_id = var["gene_id"].to_numpy(dtype=object).copy()
    gene_id[rows] = matched["gene_id"].to_numpy(dtype=object)
    gene_name = var["gene_name"].to_numpy(dtype=object).copy()
    named = matched["gene_name"].astype(str).to_numpy() != ""
    gene_name[rows[named]] = matched["gene_name"].to_numpy(dtype=object)[named]
    out = pd.DataFrame({"gene_id": gene_id, "gene_name": gene_name})
    out["chrom"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out.loc[rows, "chrom"] = matched["chrom"].to_numpy()
    for col in ("start", "end"):
        out[col] = pd.array([pd.NA] * len(out), dtype="Int64")
        out.loc[rows, col] = matched[col].to_numpy()
    out["strand"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out.loc[rows, "strand"] = matched["strand"].to_numpy()
    out["in_annotation"] = False
    out.loc[rows, "in_annotation"] = True
    out.index = pd.Index(gene_id.astype(str), name=None)
    rna = ad.AnnData(X=rna.X, obs=rna.obs, var=out)
    if not rna.var_names.is_unique:
        rna.var_names_make_unique()
    return rna


def merge_samples(paths: list[str | Path], empty: ad.AnnData) -> ad.AnnData:
    """Concatenate per-sample AnnData (outer join on genes, zeros where a sample lacks one).

    ``empty`` stands for a species without samples of the modality; samples that all lost
    every cell are an error here, before clustering would fail on an empty matrix.
    """
    parts = [read_h5ad(p) for p in paths]
    parts = [p for p in parts if p.n_obs]
    if paths and not parts:
        raise CrossglueError(
            f"{', '.join(map(str, paths))}: no sample keeps a cell after QC, so the species has no cells of this "
            "modality to cluster; see results/ingest/qc_summary.tsv and lower the ingest thresholds or drop the samples"
        )
    if not parts:
        return empty
    merged = ad.concat(parts, join="outer", merge="first", uns_merge=None, index_unique=None)
    merged.X = sp.csr_matrix(merged.X, dtype=np.int32)
    if not merged.obs_names.is_unique:
        raise CrossglueError(f"cell id {merged.obs_names[merged.obs_names.duplicated()][0]} appears in two samples")
    fragments = {str(p.obs["sample"].iloc[0]): p.uns["fragments"] for p in parts if "fragments" in p.uns}
    if fragments:
        merged.uns["fragments"] = fragments
    if any("tile_size" in p.uns for p in parts):
        merged.uns["tile_size"] = int(parts[0].uns["tile_size"])
    return merged


def qc_summary(qc: pd.DataFrame) -> pd.DataFrame:
    """Per sample: barcodes, cells passing, doublets removed, and median metrics of the passing cells."""
    metrics = [c for c in QC_METRICS if c in qc]
    grouped = qc.groupby("sample", sort=False)
    summary = pd.DataFrame({"n_barcodes": grouped.size(), "n_pass": grouped["pass"].sum().astype(int)})
    if "doublet" in qc:  # nuclei that passed the thresholds but were called doublets (and removed)
        summary["n_doublets"] = grouped["doublet"].sum().astype(int)
    medians = qc[qc["pass"]].groupby("sample", sort=False)[metrics].median()
    return summary.join(medians.add_prefix("median_")).reset_index()
