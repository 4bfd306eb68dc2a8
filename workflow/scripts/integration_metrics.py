"""Rule integration_metrics: every metric for the main (and, with model.ablation, the
ablation) embedding, against the given labels and (demo) against the true cell types."""

from crossglue.snakemake_script import run


def main(smk) -> None:
    import pandas as pd

    from crossglue.analysis.evaluation import integration_table
    from crossglue.io_utils import atomic_path, read_h5ad

    cfg = smk.params.metrics
    paths = {"main": smk.input.cells, "ablation": smk.input.get("ablation")}
    # backed: obs and obsm come into memory, the cells x genes matrices stay on disk
    runs = {name: read_h5ad(path, backed="r") for name, path in paths.items() if path}
    rna = {species: read_h5ad(path) for species, path in zip(smk.params.species, smk.input.rna, strict=True)}
    truth_path = smk.input.get("truth_cells")
    table = integration_table(
        runs,
        rna,
        smk.params.label_key,
        k=cfg["k"],
        n_pcs=cfg["n_pcs"],
        seed=cfg["seed"],
        truth=pd.read_csv(truth_path, sep="\t", dtype=str) if truth_path else None,
        truth_source=str(truth_path),
    )
    with atomic_path(smk.output.metrics) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.4f")


run(main, snakemake)  # noqa: F821 - injected by Snakemake
