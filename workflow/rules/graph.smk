"""The guidance graph: every layer (peak–gene, ortholog, element–element) in one validated graph."""


rule guidance_graph:
    input:
        rna=expand("results/ingest/{species}/rna.h5ad", species=species_names),
        atac=per_atac_species("results/counts/{species}/atac.h5ad"),
        peak_gene=per_atac_species("results/graph/{species}/peak_gene.tsv.gz"),
        unmatched=per_atac_species("results/graph/{species}/unmatched_genes.tsv"),
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
        atac_species=ATAC_SPECIES,
    script:
        "../scripts/build_graph.py"
