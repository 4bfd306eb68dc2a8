"""Rule ingest_sample: QC one sample, keep passing cells, write qc.tsv, rna.h5ad, atac.h5ad, plot."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.ingest_sample")


def main(smk) -> None:
    from crossglue.genomics.genome import read_aliases, read_chrom_sizes
    from crossglue.genomics.gtf import read_gene_table
    from crossglue.ingest.qc_plots import plot_sample_qc
    from crossglue.ingest.samples import Sample, Species, ingest_sample
    from crossglue.io_utils import write_h5ad, write_tsv

    row = smk.params.sample
    alias_path = smk.input.aliases[0] if smk.input.aliases else None
    sizes = read_chrom_sizes(smk.input.chrom_sizes)
    aliases = read_aliases(alias_path, sizes, smk.input.chrom_sizes) if alias_path else {}
    species = Species(
        name=row["species"],
        sizes=sizes,
        genes=read_gene_table(smk.input.genes),  # the GTF, parsed once for the species
        aliases=aliases,
        alias_source=alias_path,
        mito_chrom=smk.params.mito_chrom,
    )
    sample = Sample(
        name=smk.wildcards.sample,
        species=row["species"],
        donor=row["donor"],
        modality=row["modality"],
        fragments=smk.input.fragments[0] if smk.input.fragments else None,
        counts=smk.input.counts[0] if smk.input.counts else None,
        metadata=smk.input.metadata[0] if smk.input.metadata else None,
    )
    result = ingest_sample(sample, species, smk.params.thresholds, smk.params.tile_size)
    write_tsv(result.qc, smk.output.qc)
    write_h5ad(result.rna, smk.output.rna)
    write_h5ad(result.atac, smk.output.atac)
    plot_sample_qc(result.qc, smk.params.thresholds, smk.output.plot, title=sample.name)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
