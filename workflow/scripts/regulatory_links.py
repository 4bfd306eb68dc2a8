"""Rule regulatory_links: every candidate element–gene pair scored by its co-variation across
metacells, its co-divergence between species and its embedding similarity (p against
trans-chromosomal pairs, q weighted by the distance prior) and (demo) AUROC/AUPRC against
the planted links, with the ablation table."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.regulatory_links")


def main(smk) -> None:
    import pandas as pd

    from crossglue.analysis.regulatory import (
        EVALUATION_COLUMNS,
        candidate_pairs,
        embedding_cosine,
        evaluate_against_truth,
        score_links,
    )
    from crossglue.elements.union import read_union_table
    from crossglue.graph.files import read_edge_table
    from crossglue.io_utils import read_h5ad, write_tsv

    cfg = smk.params.regulatory
    species = list(smk.params.species)
    features = read_h5ad(smk.input.features)
    pairs = candidate_pairs(read_edge_table(smk.input.edges), features.obs)
    rna = {s: read_h5ad(path) for s, path in zip(species, smk.input.rna, strict=True)}
    atac = {s: read_h5ad(path) for s, path in zip(species, smk.input.atac, strict=True)}
    differential = (
        pd.read_csv(smk.input.differential_elements, sep="\t", dtype={"element": str}),
        pd.read_csv(smk.input.differential_genes, sep="\t", dtype={"gene_a": str, "gene_b": str}),
    )
    links, variants = score_links(pairs, read_h5ad(smk.input.cells), features, rna, atac, cfg, differential)
    if smk.input.get("ablation"):  # the model without element-element edges: its cosine
        links["ablation_cosine"] = embedding_cosine(pairs, read_h5ad(smk.input.ablation))
    links = links.drop(columns=["element_node", "gene_node"])
    log.info("%d candidates, %d with q <= %g", len(links), (links["q_value"] <= cfg["max_q"]).sum(), cfg["max_q"])
    evaluation = pd.DataFrame(columns=EVALUATION_COLUMNS)
    if smk.input.get("truth_cres"):
        evaluation = evaluate_against_truth(
            links,
            read_union_table(smk.input.union, species),
            pd.read_csv(smk.input.truth_cres, sep="\t", dtype={"cre": str}),
            pd.read_csv(smk.input.truth_links, sep="\t", dtype=str),
            species,
            variants,
        )
        log.info("against planted links:\n%s", evaluation.to_string(index=False))
    links = links.sort_values(["species", "q_value", "score"], ascending=[True, True, False])
    write_tsv(links, smk.output.links, float_format="%.6g")
    write_tsv(evaluation, smk.output.evaluation, float_format="%.4f")


run(main, snakemake)  # noqa: F821 - injected by Snakemake
