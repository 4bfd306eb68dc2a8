"""crossglue: cross-species snRNA + snATAC integration with a homology-aware GLUE model.

Run `snakemake --cores 8` (workstation) or `snakemake --profile profiles/slurm` (cluster).
config/config.yaml defaults to the bundled simulated demo; config/README.md documents every key.
"""


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/ingest.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
