"""Rule guidance_graph: all layers joined into one validated, symmetric graph, written twice, summarised."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.build_graph")


def main(smk) -> None:
    import pandas as pd

    from crossglue.elements.union import read_union_table
    from crossglue.graph.assembly import build_guidance
    from crossglue.graph.files import write_edge_table, write_graphml
    from crossglue.graph.orthologs import read_ortholog_links
    from crossglue.graph.settings import graph_settings
    from crossglue.graph.summary import plot_degrees, summarise
    from crossglue.io_utils import atomic_path, h5ad_var

    species = list(smk.params.species)
    with_atac = list(smk.params.atac_species)  # species with RNA only have gene nodes only
    settings = graph_settings(smk.params.graph)
    features = {s: {"rna": h5ad_var(rna).index.astype(str)} for s, rna in zip(species, smk.input.rna, strict=True)}
    for s, atac in zip(with_atac, smk.input.atac, strict=True):
        features[s]["atac"] = h5ad_var(atac).index.astype(str)
    peak_gene = {
        s: pd.read_csv(path, sep="\t", dtype={"peak": str, "gene": str})
        for s, path in zip(with_atac, smk.input.peak_gene, strict=True)
    }
    orthologs = read_ortholog_links(smk.input.orthologs)
    union = read_union_table(smk.input.union, with_atac)
    nodes, edges = build_guidance(features, peak_gene, orthologs, union, settings, source=smk.input.union)
    summary = summarise(edges, nodes)
    for row in summary[summary["metric"].isin(["nodes", "edges"])].itertuples(index=False):
        log.info("%s %s: %g", row.metric, row.group, row.value)

    write_edge_table(edges, smk.output.edges)
    write_graphml(edges, nodes, smk.output.graphml)
    with atomic_path(smk.output.summary) as tmp:
        summary.to_csv(tmp, sep="\t", index=False)
    plot_degrees(edges, nodes, smk.output.degree_plot)
    unmatched = pd.concat([pd.read_csv(p, sep="\t", dtype=str) for p in smk.input.unmatched], ignore_index=True)
    with atomic_path(smk.output.unmatched) as tmp:
        unmatched.to_csv(tmp, sep="\t", index=False)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
