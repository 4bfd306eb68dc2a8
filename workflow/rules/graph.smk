"""Guidance graph: peak-gene links per species, ortholog links, element links, one graph."""

from crossglue.graph.settings import graph_settings

GRAPH = config["graph"]
try:
    graph_settings(GRAPH)  # typos in graph settings stop the run before any job
except CrossglueError as err:
    raise WorkflowError(f"crossglue: {err}") from None


rule peak_gene_links:
    input:
        rna="results/ingest/{species}/rna.h5ad",
        atac="results/counts/{species}/atac.h5ad",
        union="results/consensus/union_peaks.tsv",
    output:
        links="results/graph/{species}/peak_gene.tsv.gz",
        genes="results/graph/{species}/gene_annotation.tsv",
        unmatched="results/graph/{species}/unmatched_genes.tsv",
    log:
        "logs/graph/peak_gene_links_{species}.log",
    benchmark:
        "benchmarks/graph/peak_gene_links_{species}.tsv"
    conda:
        "../../envs/graph.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(420, per_input={"gtf": 50}),
        runtime=60,
    params:
        graph={k: GRAPH[k] for k in ("peak_gene", "correlation")},
        species=species_names,
    script:
        "../scripts/peak_gene_links.py"


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


rule guidance_graph:
    input:
        rna=expand("results/ingest/{species}/rna.h5ad", species=species_names),
        atac=expand("results/counts/{species}/atac.h5ad", species=species_names),
        peak_gene=expand(
            "results/graph/{species}/peak_gene.tsv.gz", species=species_names
        ),
        unmatched=expand(
            "results/graph/{species}/unmatched_genes.tsv", species=species_names
        ),
        orthologs="results/graph/ortholog_links.tsv.gz",
        union="results/consensus/union_peaks.tsv",
    output:
        edges="results/graph/guidance_edges.tsv.gz",
        graphml="results/graph/guidance.graphml.gz",
        summary="results/graph/summary.tsv",
        degree_plot="results/graph/degree_distribution.png",
        unmatched="results/graph/unmatched_genes.tsv",
    log:
        "logs/graph/guidance_graph.log",
    benchmark:
        "benchmarks/graph/guidance_graph.tsv"
    conda:
        "../../envs/graph.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(250),
        runtime=30,
    params:
        graph={k: GRAPH[k] for k in ("element_weights", "element_edges")},
        species=species_names,
    script:
        "../scripts/build_graph.py"
