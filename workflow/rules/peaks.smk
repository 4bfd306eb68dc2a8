"""Peaks per species: pseudobulk MACS2 calls per cell group, fixed width, iteratively merged."""

PEAKS = config["peaks"]


rule call_peaks:
    input:
        atac="results/ingest/{species}/atac.h5ad",
        fragments=species_fragments,
        indexes=species_fragment_indexes,
        chrom_sizes=lambda wc: species_cfg(wc.species)["chrom_sizes"],
        aliases=alias_table("species"),
        blacklist=lambda wc: (
            [species_cfg(wc.species)["blacklist"]]
            if species_cfg(wc.species).get("blacklist")
            else []
        ),
    output:
        peaks="results/peaks/{species}/peaks.tsv",
        bed="results/peaks/{species}/peaks.bed",
        summits="results/peaks/{species}/summits.tsv.gz",
        groups="results/peaks/{species}/cell_groups.tsv",
    log:
        "logs/peaks/call_peaks_{species}.log",
    benchmark:
        "benchmarks/peaks/call_peaks_{species}.tsv"
    conda:
        "../../envs/peaks.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(750, per_mb=3),
        runtime=240,
    params:
        peaks=PEAKS,
        samples=lambda wc: samples_of(wc.species, ATAC_MODALITIES),
    script:
        "../scripts/call_peaks.py"
