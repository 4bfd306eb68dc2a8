"""Rule peak_gene_links: one species' RNA genes placed on its annotation, linked to its elements."""

import logging

import anndata as ad
import pandas as pd
import scipy.sparse as sp

from crossglue.graph.element_edges import element_coordinates, read_union_table
from crossglue.genomics.genome import read_aliases, read_chrom_sizes
from crossglue.graph.settings import graph_settings
from crossglue.io_utils import h5ad_var as h5ad_var
from crossglue.genomics.gtf import read_genes
from crossglue.io_utils import atomic_path, open_output
from crossglue.graph.peak_gene import PairedCounts, link_species
from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.peak_gene_links")


def _counts(adata: ad.AnnData) -> sp.csr_matrix:
    return sp.csr_matrix(adata.layers["counts"] if "counts" in adata.layers else adata.X)


def _paired_counts(rna_path: str, atac_path: str) -> PairedCounts:
    """Raw counts of the nuclei present in both the RNA and the ATAC AnnData (multiome)."""
    rna = ad.read_h5ad(rna_path)
    atac = ad.read_h5ad(atac_path)
    paired = rna.obs_names.intersection(atac.obs_names)
    return PairedCounts(_counts(rna[paired]), rna.var_names, _counts(atac[paired]), atac.var_names)


def main(smk) -> None:
    species = smk.wildcards.species
    settings = graph_settings(smk.params.graph)
    sizes = read_chrom_sizes(smk.input.chrom_sizes)
    aliases = read_aliases(smk.input.aliases[0]) if smk.input.aliases else {}
    annotation = read_genes(smk.input.gtf, aliases, sizes)

    rna_var = h5ad_var(smk.input.rna)
    data_genes = pd.DataFrame(
        {
            "gene_id": rna_var.index.astype(str),
            "gene_name": rna_var.get("gene_name", pd.Series("", index=rna_var.index)).astype(str),
        }
    )
    union = read_union_table(smk.input.union, smk.params.species)
    atac_peaks = h5ad_var(smk.input.atac).index.astype(str)
    peaks = element_coordinates(union, species)
    absent = ~atac_peaks.isin(peaks["peak_id"])
    if absent.any():
        log.warning(
            "%s: %d ATAC features have no coordinates in %s, e.g. %s",
            species,
            int(absent.sum()),
            smk.input.union,
            list(atac_peaks[absent][:3]),
        )
    peaks = peaks[peaks["peak_id"].isin(atac_peaks)]
    paired = _paired_counts(smk.input.rna, smk.input.atac) if settings.correlation.enabled else None

    links, annotated, unmatched = link_species(
        annotation, data_genes, peaks, settings.peak_gene, settings.correlation, paired
    )
    log.info(
        "%s: %d of %d RNA genes placed on the annotation (%d by symbol); %d unmatched",
        species,
        len(annotated),
        len(data_genes),
        int((annotated["matched_by"] == "symbol").sum()),
        len(unmatched),
    )
    log.info("%s: %d peak-gene edges (%d by overlap)", species, len(links), int((links["distance"] == 0).sum()))
    if links["corr"].notna().any():
        log.info(
            "%s: metacell correlation from %d paired nuclei; %d edges with FDR < 0.1 and r > 0",
            species,
            paired.rna.shape[0],
            int(((links["fdr"] < 0.1) & (links["corr"] > 0)).sum()),
        )
    elif settings.correlation.enabled:
        log.info(
            "%s: %d paired nuclei (graph.correlation.min_paired_cells = %d): no correlation scores",
            species,
            0 if paired is None else paired.rna.shape[0],
            settings.correlation.min_paired_cells,
        )

    with open_output(smk.output.links) as out:  # .gz: a fixed gzip header, same bytes on rerun
        links.to_csv(out, sep="\t", index=False, na_rep="NA")
    with atomic_path(smk.output.genes) as tmp:
        annotated.to_csv(tmp, sep="\t", index=False)
    with atomic_path(smk.output.unmatched) as tmp:
        unmatched.assign(species=species)[["species", "gene_id", "gene_name", "reason"]].to_csv(
            tmp, sep="\t", index=False
        )


run(main, snakemake)  # noqa: F821 - injected by Snakemake
