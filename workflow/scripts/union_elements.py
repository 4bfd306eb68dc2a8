"""Rule union_elements: every species' peaks and lifts merged into one classified element table."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.union_elements")


def main(smk) -> None:
    from crossglue.elements.browser_bed import union_bed, write_bed
    from crossglue.elements.recipes import read_lift_table
    from crossglue.elements.report import write_report_inputs
    from crossglue.elements.union import build_union
    from crossglue.genomics.genome import read_chrom_sizes
    from crossglue.io_utils import atomic_path
    from crossglue.peaks.calling import read_peaks

    species = list(smk.params.species)
    peaks = {s: read_peaks(p) for s, p in zip(species, smk.input.peaks, strict=True)}
    lifts = {tuple(pair): read_lift_table(p) for pair, p in zip(smk.params.pairs, smk.input.lifts, strict=True)}
    order = {s: list(read_chrom_sizes(p)) for s, p in zip(species, smk.input.chrom_sizes, strict=True)}
    union = build_union(peaks, lifts, order)
    log.info("union: %d elements: %s", len(union), union["class"].value_counts().to_dict())
    with atomic_path(smk.output.union) as tmp:
        union.to_csv(tmp, sep="\t", index=False, na_rep="NA")
    for s, path in zip(species, smk.output.beds, strict=True):  # genome-browser tracks
        write_bed(union_bed(union, s, order[s]), path)
    summits = dict(zip(species, smk.input.summits, strict=True))
    write_report_inputs(union, peaks, lifts, summits, species, smk.output)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
