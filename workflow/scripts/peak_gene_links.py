"""Rule peak_gene_links: one species' RNA genes (placed on the annotation at ingest) linked to its elements."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.peak_gene_links")


def main(smk) -> None:
    from crossglue.graph.peak_gene import link_species_files
    from crossglue.graph.settings import graph_settings
    from crossglue.io_utils import write_tsv

    settings = graph_settings(smk.params.graph)
    links, genes, unmatched = link_species_files(
        smk.wildcards.species, smk.input.rna, smk.input.atac, smk.input.union, smk.params.species, settings
    )
    write_tsv(links, smk.output.links)
    write_tsv(genes, smk.output.genes)
    write_tsv(unmatched, smk.output.unmatched)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
