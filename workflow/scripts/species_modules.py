"""Rule species_modules: species-specific elements linked to genes changed in the same
direction, grouped by shared motifs; (demo) precision and recall of the planted modules."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.species_modules")


def main(smk) -> None:
    import pandas as pd

    from crossglue.analysis.modules import ModuleSettings, call_modules, module_recovery, specific_linked_elements
    from crossglue.analysis.motifs import read_meme, union_motif_hits
    from crossglue.analysis.regulatory import union_element_truth
    from crossglue.config import settings_from
    from crossglue.elements.union import read_union_table
    from crossglue.genomics.genome import read_aliases
    from crossglue.io_utils import atomic_path

    cfg = smk.params.modules
    species = list(smk.params.species)
    settings = settings_from(ModuleSettings, "analysis.modules", cfg)
    links = pd.read_csv(smk.input.links, sep="\t", dtype={"element": str, "gene": str})
    de = pd.read_csv(smk.input.genes, sep="\t", dtype={"gene_a": str, "gene_b": str})
    da = pd.read_csv(smk.input.elements, sep="\t", dtype={"element": str}).rename(columns={"element": "feature"})
    union = read_union_table(smk.input.union, species)
    classes = pd.Series(union["class"].astype(str).to_numpy(), index=union["element_id"].to_numpy())
    linked = specific_linked_elements(links, de, da, classes, species, settings)
    log.info("%d species-specific element–gene links pass specificity, link and direction", len(linked))

    hits, motif_names = None, {}
    if smk.input.get("motifs") and smk.input.get("fasta"):
        motifs, background = read_meme(smk.input.motifs)
        motif_names = {m.id: m.name for m in motifs}
        aliases = {s: read_aliases(path) for s, path in smk.params.aliases.items() if path}
        fasta = dict(zip(species, smk.input.fasta, strict=True))
        hits = union_motif_hits(union, species, fasta, motifs, background, settings.motif_p, aliases)
        log.info("scanned union elements for %d motifs", len(motifs))
        silent = [m for m in motifs if not any(table[m.id].any() for table in hits.values())]
        if silent:
            log.warning(
                "%d of %d motifs hit no element at analysis.modules.motif_p = %g, so they cannot name a "
                "module: %s%s. Short or degenerate matrices cannot reach a small p (FIMO's default is "
                "1e-4; a larger motif_p admits them, with more background hits)",
                len(silent),
                len(motifs),
                settings.motif_p,
                ", ".join(m.name for m in silent[:8]),
                ", ..." if len(silent) > 8 else "",
            )
    gene_names = {}
    if "gene_name" in de:
        gene_names = dict(zip(de["gene_a"], de["gene_name"].astype(str), strict=True)) | dict(
            zip(de["gene_b"], de["gene_name"].astype(str), strict=True)
        )
    modules = call_modules(linked, settings, hits=hits, motif_names=motif_names, gene_names=gene_names)
    log.info("%d modules", len(modules))
    recovery = pd.DataFrame(columns=["metric", "value"])
    if smk.input.get("truth_modules"):
        cres = pd.read_csv(smk.input.truth_cres, sep="\t", dtype={"cre": str})
        planted = pd.read_csv(smk.input.truth_modules, sep="\t", dtype=str)
        scores = module_recovery(modules, union_element_truth(union, cres, species), planted)
        recovery = pd.DataFrame({"metric": list(scores), "value": list(scores.values())})
        log.info("planted module recovery:\n%s", recovery.to_string(index=False))
    with atomic_path(smk.output.modules) as tmp:
        modules.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6g")
    with atomic_path(smk.output.recovery) as tmp:
        recovery.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.4f")


run(main, snakemake)  # noqa: F821 - injected by Snakemake
