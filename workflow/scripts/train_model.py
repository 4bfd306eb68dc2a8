"""Rule train_model: per-species AnnData + guidance graph → cells.h5ad, features.h5ad."""

from crossglue.snakemake_script import run


def main(smk) -> None:
    # imported here, after run() has sent logging to the rule's log: torch can fail to load
    from crossglue.model.stage import ModelSettings, run_model_stage

    species = smk.params.species
    run_model_stage(
        rna=dict(zip(species, smk.input.rna, strict=True)),
        atac=dict(zip(smk.params.atac_species, smk.input.atac, strict=True)),  # species with RNA only: none
        edges_path=smk.input.edges,
        out={**dict(smk.output.items()), "checkpoints": smk.params.checkpoints},
        settings=ModelSettings.from_config(smk.params.settings),
        element_edges=smk.params.element_edges,
        threads=smk.threads,
        orthologs_path=smk.input.orthologs,
    )


run(main, snakemake)  # noqa: F821 - injected by Snakemake
