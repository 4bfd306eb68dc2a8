"""Rules annotate_cells / annotate_cells_ablation: Leiden, UMAP and label transfer in X_glue.

Writes a copy of the model's cells.h5ad with the annotation added (Snakemake cannot rewrite
a rule's own input, so results/model/cells.h5ad stays as the model wrote it).
"""

import anndata as ad

from crossglue.analysis.annotate import annotate_cells
from crossglue.io_utils import write_h5ad
from crossglue.snakemake_script import run


def main(smk) -> None:
    cfg = smk.params.annotation
    cells = ad.read_h5ad(smk.input.cells)
    annotate_cells(
        cells,
        label_key=cfg["label_key"],
        n_neighbors=cfg["n_neighbors"],
        resolution=cfg["resolution"],
        transfer_k=cfg["transfer_k"],
        min_confidence=cfg["min_confidence"],
        seed=cfg["seed"],
    )
    write_h5ad(cells, smk.output.cells)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
