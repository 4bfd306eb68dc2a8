"""Rule species_differential: pseudobulks per species × donor × cell type (cell types from the
annotation), DESeq2 species contrasts inside each cell type for one-to-one orthologous genes
and for elements present in both species."""

from crossglue.snakemake_script import run


def main(smk) -> None:
    from crossglue.analysis.differential import species_pair_tests, species_pseudobulk
    from crossglue.graph.orthologs import read_ortholog_links
    from crossglue.io_utils import read_h5ad, write_tsv

    cfg = smk.params.differential
    species = list(smk.params.species)
    cells = read_h5ad(smk.input.cells, backed="r").obs.copy()
    orthologs = read_ortholog_links(smk.input.orthologs)
    rna = {
        s: species_pseudobulk(p, s, "rna", cells, cfg["min_cells"]) for s, p in zip(species, smk.input.rna, strict=True)
    }
    atac = {
        s: species_pseudobulk(p, s, "atac", cells, cfg["min_cells"])
        for s, p in zip(smk.params.atac_species, smk.input.atac, strict=True)  # species with RNA only: none
    }
    genes, elements = species_pair_tests(
        rna, atac, orthologs, species, cfg["min_donors"], cfg["min_total_count"], smk.threads
    )
    write_tsv(genes, smk.output.genes, float_format="%.6g")
    write_tsv(elements, smk.output.elements, float_format="%.6g")


run(main, snakemake)  # noqa: F821 - injected by Snakemake
