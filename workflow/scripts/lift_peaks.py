"""Rule lift_peaks: one species' peaks lifted to another with the configured recipe, reasons kept."""

import logging

import numpy as np
import pandas as pd

from crossglue.genomics.chain import read_chains
from crossglue.genomics.genome import read_aliases, read_chrom_sizes
from crossglue.io_utils import atomic_path
from crossglue.peaks.calling import read_peaks
from crossglue.snakemake_script import run
from crossglue.elements.union import PASS, lift_peaks, recipe_from_config

log = logging.getLogger("crossglue.lift_peaks")


def main(smk) -> None:
    source, target = smk.wildcards.source, smk.wildcards.target
    recipe = recipe_from_config(smk.params.liftover)
    s_aliases = read_aliases(smk.input.source_aliases[0]) if smk.input.source_aliases else None
    t_aliases = read_aliases(smk.input.target_aliases[0]) if smk.input.target_aliases else None
    chains_to = read_chains(smk.input.chain_to, s_aliases, t_aliases)
    chains_back = read_chains(smk.input.chain_back, t_aliases, s_aliases)
    peaks = read_peaks(smk.input.peaks)
    lifted = lift_peaks(peaks, chains_to, chains_back, recipe, read_chrom_sizes(smk.input.target_sizes))
    log.info("%s -> %s (%s recipe): %s", source, target, recipe.name, lifted["status"].value_counts().to_dict())

    with atomic_path(smk.output.table) as tmp:
        lifted.to_csv(tmp, sep="\t", index=False, na_rep="NA")
    mapped = lifted[lifted["lifted_chrom"].notna()]
    with atomic_path(smk.output.mapped) as tmp:
        pd.DataFrame(
            {
                "chrom": mapped["lifted_chrom"], "start": mapped["lifted_start"], "end": mapped["lifted_end"],
                "name": mapped["peak_id"], "score": 0, "strand": ".",
                "status": mapped["status"], "reason": mapped["reason"].fillna("."),
            }
        ).to_csv(tmp, sep="\t", index=False, header=False)  # fmt: skip
    failed = lifted[lifted["status"] != PASS].merge(peaks[["peak_id", "chrom", "start", "end"]], on="peak_id",
                                                     suffixes=("_lifted", ""))  # fmt: skip
    with atomic_path(smk.output.unmapped) as tmp:
        pd.DataFrame(
            {
                "chrom": failed["chrom"], "start": failed["start"], "end": failed["end"], "name": failed["peak_id"],
                "status": failed["status"], "reason_code": failed["reason_code"],
                "reason": failed["reason"].astype(str).str.replace("\t", " "),
            }
        ).to_csv(tmp, sep="\t", index=False, header=False)  # fmt: skip
    log.info("%s -> %s: %d of %d peaks pass", source, target, int(np.sum(lifted["status"] == PASS)), len(lifted))


run(main, snakemake)  # noqa: F821 - injected by Snakemake
