"""Rule motif_turnover: scan both species' sequence of every orthologous element, report the
motifs gained or lost where a species gained accessibility with their enrichment, and (demo)
the fraction of planted module elements whose planted motif is found gained."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.motif_turnover")


def main(smk) -> None:
    import pandas as pd

    from crossglue.analysis.motifs import read_meme, union_motif_hits
    from crossglue.analysis.regulatory import union_element_truth
    from crossglue.analysis.turnover import TurnoverSettings, motif_turnover, orthologous_elements, planted_turnover
    from crossglue.config import settings_from
    from crossglue.elements.union import read_union_table
    from crossglue.genomics.genome import read_aliases
    from crossglue.io_utils import write_tsv

    species = list(smk.params.species)
    settings = settings_from(TurnoverSettings, "analysis.turnover", smk.params.turnover)
    union = read_union_table(smk.input.union, species)
    ortho = orthologous_elements(union, species)
    differential = pd.read_csv(smk.input.elements, sep="\t", dtype={"element": str})
    motifs, background = read_meme(smk.input.motifs)
    aliases = {s: read_aliases(path) for s, path in smk.params.aliases.items() if path}
    fasta = dict(zip(species, smk.input.fasta, strict=True))
    hits = union_motif_hits(ortho, species, fasta, motifs, background, settings.motif_p, aliases, counts=True)
    log.info("scanned %d orthologous elements in both species for %d motifs", len(ortho), len(motifs))
    summary, changes = motif_turnover(
        union, hits, species, {m.id: m.name for m in motifs}, differential=differential, settings=settings
    )
    top = summary[summary["q_value"] <= 0.1]
    log.info("motifs with turnover q <= 0.1:\n%s", top.head(20).to_string(index=False) if len(top) else "none")
    recovery = pd.DataFrame(columns=["module", "species", "motif", "n_elements", "n_gained", "fraction_gained"])
    if smk.input.get("truth_modules"):
        cres = pd.read_csv(smk.input.truth_cres, sep="\t", dtype={"cre": str})
        planted = pd.read_csv(smk.input.truth_modules, sep="\t", dtype=str)
        recovery = planted_turnover(changes, union_element_truth(union, cres, species), planted)
        log.info("planted motifs found gained:\n%s", recovery.to_string(index=False))
    write_tsv(summary, smk.output.turnover, float_format="%.6g")
    write_tsv(changes, smk.output.elements)
    write_tsv(recovery, smk.output.recovery, float_format="%.4f")


run(main, snakemake)  # noqa: F821 - injected by Snakemake
