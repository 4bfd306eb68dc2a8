"""Ortholog gene–gene links between species, weighted by orthology type and confidence."""


rule ortholog_links:
    input:
        tables=[entry["path"] for entry in config["orthologs"]],
        rna=expand("results/ingest/{species}/rna.h5ad", species=species_names),
    output:
        links="results/graph/ortholog_links.tsv.gz",
        missing="results/graph/orthologs_missing.tsv",
    log:
        "logs/graph/ortholog_links.log",
    benchmark:
        "benchmarks/graph/ortholog_links.tsv"
    conda:
        "../../envs/graph.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(180),
        runtime=20,
    params:
        graph={"orthologs": GRAPH["orthologs"]},
        species=species_names,
        tables=config["orthologs"],
    script:
        "../scripts/ortholog_links.py"
