"""Peak–gene links inside each species: distance weights, metacell co-variation where nuclei are paired."""


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
        mem_mb=mem_mb(420),
        runtime=60,
    params:
        graph={k: GRAPH[k] for k in ("peak_gene", "correlation")},
        species=ATAC_SPECIES,  # the union table's species
    script:
        "../scripts/peak_gene_links.py"
