"""Rule count_elements: cells × union elements of one species, Tn5 insertions (or fragments) per element."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.count_elements")


def main(smk) -> None:
    import anndata as ad
    import scipy.sparse as sp

    from crossglue.elements.counting import count_fragments_file
    from crossglue.elements.union import read_union_table, species_elements
    from crossglue.genomics.genome import read_aliases, read_chrom_sizes
    from crossglue.io_utils import read_h5ad, write_h5ad

    species = smk.wildcards.species
    cfg = dict(smk.params.counting or {})
    mode = cfg.get("mode", "insertions")
    chunk_rows = int(cfg.get("chunk_rows", 2_000_000))
    sizes = read_chrom_sizes(smk.input.chrom_sizes)
    aliases = read_aliases(smk.input.aliases[0], sizes, smk.input.chrom_sizes) if smk.input.aliases else {}
    obs = read_h5ad(smk.input.atac, backed="r").obs.copy()
    elements = species_elements(read_union_table(smk.input.union, [species]), species)
    counts = sp.csr_matrix((len(obs), len(elements)), dtype="int32")
    for sample, path in zip(smk.params.samples, smk.input.fragments, strict=True):
        part, n_read = count_fragments_file(path, sample, obs.index, elements, aliases, sizes, mode, chunk_rows)
        counts = counts + part
        log.info("%s %s: %d fragments read, %d %s in elements", species, sample, n_read, int(part.sum()), mode)
    adata = ad.AnnData(X=sp.csr_matrix(counts, dtype="int32"), obs=obs, var=elements)
    adata.uns["counting"] = {"mode": mode}
    write_h5ad(adata, smk.output.atac)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
