"""Rule regulatory_links: cosine scores of every candidate element–gene pair with an empirical
null, and (demo) AUROC/AUPRC against the planted links beside the distance-only prior."""

import logging

import anndata as ad
import numpy as np
import pandas as pd

from crossglue.graph.files import read_edge_table
from crossglue.io_utils import atomic_path
from crossglue.analysis.regulatory import candidate_pairs, center_by_group, distance_prior, evaluate_scores, infer_links, truth_link_labels, union_element_truth
from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.regulatory_links")

EVALUATION_COLUMNS = ["run", "score", "auroc", "auprc", "positives", "candidates"]


def main(smk) -> None:
    cfg = smk.params.regulatory
    edges = read_edge_table(smk.input.edges)
    scored = {}
    runs = {"main": smk.input.features, "ablation": smk.input.get("ablation")}  # ablation: with model.ablation
    for name, path in ((n, p) for n, p in runs.items() if p):
        features = ad.read_h5ad(path)
        pairs = candidate_pairs(edges, features.obs)
        emb = pd.DataFrame(np.asarray(features.obsm["X_glue"], dtype=float), index=features.obs_names.astype(str))
        groups = features.obs["species"].astype(str) + ":" + features.obs["kind"].astype(str)
        emb = center_by_group(emb, groups.set_axis(emb.index))
        scored[name] = infer_links(pairs, emb, n_null=cfg["n_null"], seed=cfg["seed"])
        log.info("%s: %d candidates, %d with q <= %g", name, len(pairs), (scored[name]["q_value"] <= cfg["max_q"]).sum(), cfg["max_q"])
    links = scored["main"].drop(columns=["element_node", "gene_node"])
    if "ablation" in scored:
        for column in ("cosine", "q_value", "score"):
            links[f"ablation_{column}"] = scored["ablation"][column].to_numpy()
    evaluation = pd.DataFrame(columns=EVALUATION_COLUMNS)
    if smk.input.get("truth_cres"):
        union = pd.read_csv(smk.input.union, sep="\t", dtype={"element_id": str})
        cres = pd.read_csv(smk.input.truth_cres, sep="\t", dtype={"cre": str})
        truth_links = pd.read_csv(smk.input.truth_links, sep="\t", dtype=str)
        element_truth = union_element_truth(union, cres, list(smk.params.species))
        truth = truth_link_labels(links, element_truth, truth_links)
        links["truth"] = truth
        main_scores = {
            "score": links["score"].to_numpy(), "cosine": links["cosine"].to_numpy(),
            "distance_prior": distance_prior(links), "graph_weight": links["prior"].to_numpy(),
        }
        if "corr" in links and links["corr"].notna().all():
            main_scores["metacell_corr"] = links["corr"].to_numpy(dtype=float)
        parts = [evaluate_scores(truth, main_scores).assign(run="main")]
        if "ablation" in scored:
            parts.append(evaluate_scores(truth, {"score": links["ablation_score"].to_numpy(), "cosine": links["ablation_cosine"].to_numpy()}).assign(run="ablation"))
        evaluation = pd.concat(parts, ignore_index=True)[EVALUATION_COLUMNS]
        log.info("against planted links:\n%s", evaluation.to_string(index=False))
    with atomic_path(smk.output.links) as tmp:
        links.sort_values(["species", "q_value", "cosine"], ascending=[True, True, False]).to_csv(
            tmp, sep="\t", index=False, na_rep="NA", float_format="%.6g"
        )
    with atomic_path(smk.output.evaluation) as tmp:
        evaluation.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.4f")


run(main, snakemake)  # noqa: F821 - injected by Snakemake
