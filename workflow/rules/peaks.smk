"""Peaks per species, liftOver between every ordered pair, the union element table, counts."""

PEAKS = config["peaks"]
LIFTOVER = config["liftover"]
COUNTING = config["counting"]
SPECIES_PAIRS = [(a, b) for a in species_names for b in species_names if a != b]
ATAC_MODALITIES = ["atac", "multiome"]  # samples with a fragments file


wildcard_constraints:
    source="|".join(species_names),
    target="|".join(species_names),


rule call_peaks:
    input:
        atac="results/ingest/{species}/atac.h5ad",
        fragments=lambda wc: [
            samples.loc[s, "fragments"]
            for s in samples_of(wc.species, ATAC_MODALITIES)
        ],
        indexes=lambda wc: [
            samples.loc[s, "fragments"] + ".tbi"
            for s in samples_of(wc.species, ATAC_MODALITIES)
        ],
        chrom_sizes=lambda wc: species_cfg(wc.species)["chrom_sizes"],
        aliases=lambda wc: (
            [species_cfg(wc.species)["chrom_aliases"]]
            if species_cfg(wc.species).get("chrom_aliases")
            else []
        ),
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


rule lift_peaks:
    input:
        peaks="results/peaks/{source}/peaks.tsv",
        chain_to=lambda wc: chain_path(wc.source, wc.target),
        chain_back=lambda wc: chain_path(wc.target, wc.source),
        source_sizes=lambda wc: species_cfg(wc.source)["chrom_sizes"],
        target_sizes=lambda wc: species_cfg(wc.target)["chrom_sizes"],
        source_aliases=lambda wc: (
            [species_cfg(wc.source)["chrom_aliases"]]
            if species_cfg(wc.source).get("chrom_aliases")
            else []
        ),
        target_aliases=lambda wc: (
            [species_cfg(wc.target)["chrom_aliases"]]
            if species_cfg(wc.target).get("chrom_aliases")
            else []
        ),
    output:
        table="results/liftover/{source}_to_{target}.tsv",
        mapped="results/liftover/{source}_to_{target}.mapped.bed",
        unmapped="results/liftover/{source}_to_{target}.unmapped.bed",
    log:
        "logs/liftover/lift_peaks_{source}_to_{target}.log",
    benchmark:
        "benchmarks/liftover/lift_peaks_{source}_to_{target}.tsv"
    conda:
        "../../envs/peaks.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(120),
        runtime=60,
    params:
        liftover=LIFTOVER,
        # Which chain is `to` and which `back` is not in the input set: swapping the two
        # paths in the config must rerun the lift (Snakemake's params trigger).
        chains=lambda wc: {
            "to": chain_path(wc.source, wc.target),
            "back": chain_path(wc.target, wc.source),
        },
    script:
        "../scripts/lift_peaks.py"


rule union_elements:
    input:
        peaks=expand("results/peaks/{species}/peaks.tsv", species=species_names),
        summits=expand("results/peaks/{species}/summits.tsv.gz", species=species_names),
        chrom_sizes=[species_cfg(s)["chrom_sizes"] for s in species_names],
        lifts=[f"results/liftover/{a}_to_{b}.tsv" for a, b in SPECIES_PAIRS],
    output:
        union="results/consensus/union_peaks.tsv",
        summary="results/consensus/summary.tsv",
        reasons="results/consensus/liftover_reasons.tsv",
        widths="results/consensus/peak_widths.tsv",
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
        species=species_names,
        pairs=SPECIES_PAIRS,
    script:
        "../scripts/union_elements.py"


rule count_elements:
    input:
        atac="results/ingest/{species}/atac.h5ad",
        union="results/consensus/union_peaks.tsv",
        fragments=lambda wc: [
            samples.loc[s, "fragments"]
            for s in samples_of(wc.species, ATAC_MODALITIES)
        ],
        indexes=lambda wc: [
            samples.loc[s, "fragments"] + ".tbi"
            for s in samples_of(wc.species, ATAC_MODALITIES)
        ],
        chrom_sizes=lambda wc: species_cfg(wc.species)["chrom_sizes"],
        aliases=lambda wc: (
            [species_cfg(wc.species)["chrom_aliases"]]
            if species_cfg(wc.species).get("chrom_aliases")
            else []
        ),
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
