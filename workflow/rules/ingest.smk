"""Ingest: each species' genes from its GTF (parsed once), per-sample QC and filtering, then one
RNA and one ATAC AnnData per species."""


rule species_genes:
    input:
        gtf=lambda wc: species_cfg(wc.species)["gtf"],
        chrom_sizes=lambda wc: species_cfg(wc.species)["chrom_sizes"],
        aliases=alias_table("species"),
    output:
        genes="results/ingest/{species}/genes.tsv.gz",
    log:
        "logs/ingest/species_genes_{species}.log",
    benchmark:
        "benchmarks/ingest/species_genes_{species}.tsv"
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(170, per_input={"gtf": 50}),
        runtime=30,
    script:
        "../scripts/species_genes.py"


rule ingest_sample:
    input:
        fragments=lambda wc: (
            [get_fragments(wc)]
            if samples.loc[wc.sample, "modality"] in ("atac", "multiome")
            else []
        ),
        index=lambda wc: (
            [get_fragments_index(wc)]
            if samples.loc[wc.sample, "modality"] in ("atac", "multiome")
            else []
        ),
        counts=lambda wc: (
            [get_counts(wc)]
            if samples.loc[wc.sample, "modality"] in ("rna", "multiome")
            else []
        ),
        metadata=get_metadata,
        genes=lambda wc: f"results/ingest/{samples.loc[wc.sample, 'species']}/genes.tsv.gz",
        chrom_sizes=lambda wc: species_cfg(samples.loc[wc.sample, "species"])[
            "chrom_sizes"
        ],
        aliases=alias_table("sample"),
    output:
        qc="results/ingest/samples/{sample}/qc.tsv",
        rna="results/ingest/samples/{sample}/rna.h5ad",
        atac="results/ingest/samples/{sample}/atac.h5ad",
        plot="results/ingest/qc/{sample}.png",
    log:
        "logs/ingest/ingest_sample_{sample}.log",
    benchmark:
        "benchmarks/ingest/ingest_sample_{sample}.tsv"
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(170, per_mb=12.5, streamed="fragments"),
        runtime=60,
    params:
        sample=lambda wc: {
            key: samples.loc[wc.sample, key]
            for key in ("species", "donor", "modality")
        },
        thresholds=ingest_thresholds,
        tile_size=ingest_tile_size,
        mito_chrom=lambda wc: species_cfg(samples.loc[wc.sample, "species"]).get(
            "mito_chrom"
        ),
    script:
        "../scripts/ingest_sample.py"


rule merge_species:
    input:
        rna=lambda wc: expand(
            "results/ingest/samples/{sample}/rna.h5ad",
            sample=samples_of(wc.species, ["rna", "multiome"]),
        ),
        atac=lambda wc: expand(
            "results/ingest/samples/{sample}/atac.h5ad",
            sample=samples_of(wc.species, ["atac", "multiome"]),
        ),
        chrom_sizes=lambda wc: species_cfg(wc.species)["chrom_sizes"],
    output:
        rna="results/ingest/{species}/rna.h5ad",
        atac="results/ingest/{species}/atac.h5ad",
    log:
        "logs/ingest/merge_species_{species}.log",
    benchmark:
        "benchmarks/ingest/merge_species_{species}.tsv"
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(170),
        runtime=30,
    params:
        tile_size=config["ingest"]["tile_size"],
    script:
        "../scripts/merge_species.py"


rule ingest_summary:
    input:
        qc=expand("results/ingest/samples/{sample}/qc.tsv", sample=samples.index),
    output:
        qc="results/ingest/qc.tsv",
        summary="results/ingest/qc_summary.tsv",
    log:
        "logs/ingest/ingest_summary.log",
    benchmark:
        "benchmarks/ingest/ingest_summary.tsv"
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(140),
        runtime=10,
    script:
        "../scripts/ingest_summary.py"
