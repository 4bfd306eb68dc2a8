"""Rule `demo`: write the simulated two-species input set and its truth (docs/SIMULATION.md)."""

import logging

from crossglue.snakemake_script import run


def main(smk) -> None:
    from crossglue.simulate import simulate

    summary = simulate(
        smk.params.outdir,
        preset=smk.params.simulation["preset"],
        seed=int(smk.params.simulation["seed"]),
        scale=float(smk.params.simulation["scale"]),
    )
    logging.getLogger("crossglue").info(
        "demo written to %s in %.1f s: %s", summary["outdir"], summary["seconds"], summary["samples"]
    )


run(main, snakemake)  # noqa: F821 - injected by Snakemake
