"""The bundled demo: a simulated two-species dataset with known truth (SIMULATION.md)."""

from crossglue.config import demo_outputs

DEMO_TRUTH = [
    f"{DEMO['outdir']}/truth/{name}"
    for name in (
        "cells.tsv",
        "cres.tsv",
        "links.tsv",
        "orthologs.tsv",
        "modules.tsv",
        "genes.tsv",
        "motifs.meme",
    )
]


if DEMO["enabled"]:

    rule demo:
        output:
            sorted(demo_outputs(config, samples)) + DEMO_TRUTH,
        log:
            "logs/demo.log",
        benchmark:
            "benchmarks/demo.tsv"
        conda:
            "../../envs/simulate.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            simulation={k: DEMO[k] for k in ("preset", "seed", "scale")},
            outdir=lambda wildcards, output: os.path.commonpath(output),
        script:
            "../scripts/simulate_demo.py"
