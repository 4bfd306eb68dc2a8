"""Rules annotate_cells / annotate_cells_ablation: Leiden, UMAP and label transfer in X_glue,
species-specific clusters and the cross-species swap check.

Writes a copy of the model's cells.h5ad with the annotation added (Snakemake cannot rewrite
a rule's own input, so results/model/cells.h5ad stays as the model wrote it), the cluster and
correspondence tables and the correspondence figure.
"""

from crossglue.snakemake_script import run


def main(smk) -> None:
    from crossglue.analysis.annotate import annotate_cells
    from crossglue.analysis.correspondence import correspondence_figure
    from crossglue.graph.orthologs import read_ortholog_links
    from crossglue.io_utils import read_h5ad, write_h5ad, write_tsv

    cfg = smk.params.annotation
    cells = read_h5ad(smk.input.cells)
    rna = {s: read_h5ad(path) for s, path in zip(smk.params.species, smk.input.rna, strict=True)}
    orthologs = read_ortholog_links(smk.input.orthologs)
    tables = annotate_cells(
        cells,
        label_key=cfg["label_key"],
        n_neighbors=cfg["n_neighbors"],
        resolution=cfg["resolution"],
        transfer_k=cfg["transfer_k"],
        min_confidence=cfg["min_confidence"],
        seed=cfg["seed"],
        rna=rna,
        orthologs=orthologs,
        species_resolution=cfg["species_resolution"],
        min_counterpart_ratio=cfg["min_counterpart_ratio"],
        min_cluster_cells=cfg["min_cluster_cells"],
        mapping_k=cfg["mapping_k"],
    )
    write_tsv(tables["correspondence"], smk.output.correspondence)
    write_tsv(tables["species_clusters"], smk.output.species_clusters)
    correspondence_figure(tables["correspondence"], smk.output.figure)
    write_h5ad(cells, smk.output.cells)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
