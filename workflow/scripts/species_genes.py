"""Rule species_genes: one species' GTF parsed once into the gene table every sample's ingest reads."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.species_genes")


def main(smk) -> None:
    from crossglue.genomics.genome import read_aliases, read_chrom_sizes
    from crossglue.genomics.gtf import read_genes, write_gene_table

    sizes = read_chrom_sizes(smk.input.chrom_sizes)
    alias_path = smk.input.aliases[0] if smk.input.aliases else None
    aliases = read_aliases(alias_path, sizes, smk.input.chrom_sizes) if alias_path else {}
    genes = read_genes(smk.input.gtf, aliases, sizes)
    log.info("%s: %d genes on %d chromosomes", smk.wildcards.species, len(genes), genes["chrom"].nunique())
    write_gene_table(genes, smk.output.genes)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
