"""Rule lift_peaks: one species' peaks lifted to another with the configured recipe, reasons kept."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.lift_peaks")


def main(smk) -> None:
    import numpy as np

    from crossglue.elements.browser_bed import mapped_bed, write_bed, write_unmapped
    from crossglue.elements.recipes import PASS, check_lifted_fraction, lift_peaks, recipe_from_config
    from crossglue.genomics.chain import assembly_of, check_chain_species, read_chain_headers, read_chains
    from crossglue.io_utils import atomic_path
    from crossglue.peaks.calling import read_peaks

    source, target = smk.wildcards.source, smk.wildcards.target
    recipe = recipe_from_config(smk.params.liftover)
    s_aliases = smk.input.source_aliases[0] if smk.input.source_aliases else None
    s_asm = assembly_of({"name": source, "chrom_sizes": smk.input.source_sizes, "chrom_aliases": s_aliases})
    t_aliases = smk.input.target_aliases[0] if smk.input.target_aliases else None
    t_asm = assembly_of({"name": target, "chrom_sizes": smk.input.target_sizes, "chrom_aliases": t_aliases})
    # Also checked when the workflow is parsed, except for files a rule writes (the demo's).
    check_chain_species(smk.input.chain_to, read_chain_headers(smk.input.chain_to), s_asm, t_asm)
    check_chain_species(smk.input.chain_back, read_chain_headers(smk.input.chain_back), t_asm, s_asm)
    chains_to = read_chains(smk.input.chain_to, s_asm.aliases, t_asm.aliases)
    chains_back = read_chains(smk.input.chain_back, t_asm.aliases, s_asm.aliases)
    peaks = read_peaks(smk.input.peaks)
    lifted = lift_peaks(peaks, chains_to, chains_back, recipe, t_asm.sizes)
    log.info("%s -> %s (%s recipe): %s", source, target, recipe.name, lifted["status"].value_counts().to_dict())
    check_lifted_fraction(
        lifted, smk.params.liftover["min_lifted_fraction"], source, target, smk.input.chain_to, recipe.name
    )

    with atomic_path(smk.output.table) as tmp:
        lifted.to_csv(tmp, sep="\t", index=False, na_rep="NA")
    write_bed(mapped_bed(lifted), smk.output.mapped)  # status and reasons: the table above
    write_unmapped(lifted, peaks, smk.output.unmapped)
    log.info("%s -> %s: %d of %d peaks pass", source, target, int(np.sum(lifted["status"] == PASS)), len(lifted))


run(main, snakemake)  # noqa: F821 - injected by Snakemake
