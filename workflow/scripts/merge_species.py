"""Rule merge_species: every sample of one species in one RNA and one ATAC AnnData."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.merge_species")


def main(smk) -> None:
    from crossglue.genomics.genome import read_chrom_sizes
    from crossglue.ingest.samples import empty_atac, empty_rna, merge_samples
    from crossglue.io_utils import write_h5ad

    sizes = read_chrom_sizes(smk.input.chrom_sizes)
    rna = merge_samples(smk.input.rna, empty_rna())
    atac = merge_samples(smk.input.atac, empty_atac(sizes, smk.params.tile_size))
    log.info("%s: %d RNA cells, %d ATAC cells", smk.wildcards.species, rna.n_obs, atac.n_obs)
    write_h5ad(rna, smk.output.rna)
    write_h5ad(atac, smk.output.atac)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
