"""Rule regulatory_links: cosine scores of every candidate element–gene pair with an empirical
null, and (demo) AUROC/AUPRC against the planted links beside the distance-only prior."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.regulatory_links")


def main(smk) -> None:
    import pandas as pd

    from crossglue.analysis.regulatory import EVALUATION_COLUMNS, evaluate_against_truth, score_runs
    from crossglue.elements.union import read_union_table
    from crossglue.graph.files import read_edge_table
    from crossglue.io_utils import read_h5ad, write_tsv

    cfg = smk.params.regulatory
    runs = {"main": smk.input.features, "ablation": smk.input.get("ablation")}  # ablation: with model.ablation
    features = {name: read_h5ad(path) for name, path in runs.items() if path}
    links = score_runs(read_edge_table(smk.input.edges), features, cfg["n_null"], cfg["seed"])
    log.info("%d candidates, %d with q <= %g", len(links), (links["q_value"] <= cfg["max_q"]).sum(), cfg["max_q"])
    evaluation = pd.DataFrame(columns=EVALUATION_COLUMNS)
    if smk.input.get("truth_cres"):
        species = list(smk.params.species)
        evaluation = evaluate_against_truth(
            links,
            read_union_table(smk.input.union, species),
            pd.read_csv(smk.input.truth_cres, sep="\t", dtype={"cre": str}),
            pd.read_csv(smk.input.truth_links, sep="\t", dtype=str),
            species,
        )
        log.info("against planted links:\n%s", evaluation.to_string(index=False))
    links = links.sort_values(["species", "q_value", "cosine"], ascending=[True, True, False])
    write_tsv(links, smk.output.links, float_format="%.6g")
    write_tsv(evaluation, smk.output.evaluation, float_format="%.4f")


run(main, snakemake)  # noqa: F821 - injected by Snakemake
