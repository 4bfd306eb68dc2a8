"""The union element table: one row per regulatory element, its coordinates per species and its class."""


rule union_elements:
    input:
        peaks=per_atac_species("results/peaks/{species}/peaks.tsv"),
        summits=per_atac_species("results/peaks/{species}/summits.tsv.gz"),
        chrom_sizes=[species_cfg(s)["chrom_sizes"] for s in ATAC_SPECIES],
        lifts=[f"results/liftover/{a}_to_{b}.tsv" for a, b in ATAC_PAIRS],
    output:
        union="results/consensus/union_peaks.tsv",
        summary="results/consensus/summary.tsv",
        reasons="results/consensus/liftover_reasons.tsv",
        widths="results/consensus/peak_widths.tsv",
        beds=per_atac_species("results/consensus/union_elements.{species}.bed"),
        plot_classes="results/consensus/plots/element_classes.png",
        plot_reasons="results/consensus/plots/liftover_reasons.png",
        plot_widths="results/consensus/plots/peak_widths.png",
    log:
        "logs/consensus/union_elements.log",
    benchmark:
        "benchmarks/consensus/union_elements.tsv"
    conda:
        "../../envs/peaks.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(160),
        runtime=30,
    params:
        species=ATAC_SPECIES,
        pairs=ATAC_PAIRS,
    script:
        "../scripts/union_elements.py"
