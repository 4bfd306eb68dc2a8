"""Rule ortholog_links: gene–gene edges for every configured species pair, and the genes they miss."""

import logging

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.ortholog_links")


def main(smk) -> None:
    import pandas as pd

    from crossglue.graph.orthologs import link_orthologs, read_orthologs
    from crossglue.graph.settings import graph_settings
    from crossglue.io_utils import atomic_path, h5ad_var, open_output

    settings = graph_settings(smk.params.graph)
    features = {s: h5ad_var(path) for s, path in zip(smk.params.species, smk.input.rna, strict=True)}
    for var in features.values():
        var.index = var.index.astype(str)
    edges, missing = [], []
    for entry, path in zip(smk.params.tables, smk.input.tables, strict=True):
        a, b = entry["species_a"], entry["species_b"]
        table = read_orthologs(path, columns=entry.get("columns"), species_b=b)
        pair_edges, pair_missing, warnings = link_orthologs(
            table, features[a], features[b], path, (a, b), settings.orthologs
        )
        for warning in warnings:
            log.warning("%s", warning)
        log.info(
            "%s-%s (%s): %d table pairs, %d edges, %d pairs with a gene missing from the data",
            a,
            b,
            path,
            len(table),
            len(pair_edges),
            len(pair_missing),
        )
        edges.append(pair_edges.assign(species_a=a, species_b=b))
        missing.append(pair_missing.assign(species_a=a, species_b=b, table=path))
    edges_table = pd.concat(edges, ignore_index=True)
    first = ["species_a", "species_b"]
    with open_output(smk.output.links) as out:  # .gz: a fixed gzip header, same bytes on rerun
        edges_table[first + [c for c in edges_table.columns if c not in first]].to_csv(out, sep="\t", index=False)
    missing_table = pd.concat(missing, ignore_index=True)
    with atomic_path(smk.output.missing) as tmp:
        missing_table[first + [c for c in missing_table.columns if c not in first]].to_csv(tmp, sep="\t", index=False)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
