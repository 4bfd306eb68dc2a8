"""Cells × union elements counts per species, one pass over each fragments file."""

COUNTING = config["counting"]


rule count_elements:
    input:
        atac="results/ingest/{species}/atac.h5ad",
        union="results/consensus/union_peaks.tsv",
        fragments=species_fragments,
        indexes=species_fragment_indexes,
        chrom_sizes=lambda wc: species_cfg(wc.species)["chrom_sizes"],
        aliases=alias_table("species"),
    output:
        atac="results/counts/{species}/atac.h5ad",
    log:
        "logs/counts/count_elements_{species}.log",
    benchmark:
        "benchmarks/counts/count_elements_{species}.tsv"
    conda:
        "../../envs/peaks.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(300, per_mb=3),
        runtime=240,
    params:
        counting=COUNTING,
        samples=lambda wc: samples_of(wc.species, ATAC_MODALITIES),
    script:
        "../scripts/count_elements.py"
