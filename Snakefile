"""crossglue: cross-species snRNA + snATAC integration with a homology-aware GLUE model.

Run `snakemake --profile profiles/local` (workstation) or `snakemake --profile profiles/slurm`
(cluster). config/config.yaml defaults to the bundled simulated demo; config/README.md
documents every key.
"""


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/peaks.smk"
include: "workflow/rules/liftover.smk"
include: "workflow/rules/consensus.smk"
include: "workflow/rules/counts.smk"
include: "workflow/rules/links.smk"
include: "workflow/rules/orthologs.smk"
include: "workflow/rules/graph.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
