"""liftOver of every species' peaks to every other species (UCSC semantics), with unmapped reasons."""

LIFTOVER = config["liftover"]


wildcard_constraints:
    source="|".join(species_names),
    target="|".join(species_names),


rule lift_peaks:
    input:
        peaks="results/peaks/{source}/peaks.tsv",
        chain_to=lambda wc: chain_path(wc.source, wc.target),
        chain_back=lambda wc: chain_path(wc.target, wc.source),
        source_sizes=lambda wc: species_cfg(wc.source)["chrom_sizes"],
        target_sizes=lambda wc: species_cfg(wc.target)["chrom_sizes"],
        source_aliases=alias_table("source"),
        target_aliases=alias_table("target"),
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
