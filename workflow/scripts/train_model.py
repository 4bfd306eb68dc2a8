"""Rule train_model: per-species AnnData + guidance graph → cells.h5ad, features.h5ad."""

from crossglue.model.stage import ModelSettings, run_model_stage
from crossglue.snakemake_script import run

MODEL_KEYS = set(ModelSettings.__dataclass_fields__)


def main(smk):
    species = smk.params.species
    settings = ModelSettings(**{k: v for k, v in smk.params.settings.items() if k in MODEL_KEYS})
    run_model_stage(
        rna=dict(zip(species, smk.input.rna)),
        atac=dict(zip(species, smk.input.atac)),
        edges_path=smk.input.edges,
        out={**dict(smk.output.items()), "checkpoints": smk.params.checkpoints},
        settings=settings,
        element_edges=smk.params.element_edges,
        threads=smk.threads,
    )


run(main, snakemake)  # noqa: F821
