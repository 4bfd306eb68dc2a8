"""Analysis: annotation in the joint space, integration metrics, regulatory inference,
species-differential pseudobulk tests and species-specific regulatory modules.

The annotated cells go to results/analysis/cells.h5ad (Snakemake cannot rewrite the model's
results/model/cells.h5ad, its own input): same cells, plus Leiden, UMAP and transferred labels.
"""

# Truth tables exist only for the simulated demo (or a user's own simulation).
TRUTH_DIR = ANALYSIS["truth_dir"] or (
    f"{DEMO['outdir']}/truth" if DEMO["enabled"] else None
)

# Named truth inputs per rule; empty without truth (the scripts then skip truth).
TRUTH_FILES = {
    "truth_cells": "cells.tsv",
    "truth_cres": "cres.tsv",
    "truth_links": "links.tsv",
    "truth_modules": "modules.tsv",
}
TRUTH = (
    {key: f"{TRUTH_DIR}/{name}" for key, name in TRUTH_FILES.items()}
    if TRUTH_DIR
    else {}
)
CHROM_ALIASES = {s: species_cfg(s).get("chrom_aliases") for s in ATAC_SPECIES}
MOTIF_INPUTS = (
    {
        "motifs": MOTIF_FILE,
        "fasta": GENOME_FASTA,
        "aliases": [p for p in CHROM_ALIASES.values() if p],
    }
    if USE_MOTIFS
    else {}
)


rule annotate_cells:
    input:
        cells="results/model/cells.h5ad",
        rna=expand("results/ingest/{species}/rna.h5ad", species=species_names),
        orthologs="results/graph/ortholog_links.tsv.gz",
    output:
        cells="results/analysis/cells.h5ad",
        correspondence="results/analysis/correspondence.tsv",
        species_clusters="results/analysis/species_clusters.tsv",
        figure="results/analysis/correspondence.png",
    log:
        "logs/analysis/annotate_cells.log",
    benchmark:
        "benchmarks/analysis/annotate_cells.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        # cells.h5ad (uncompressed) is read whole: its genes x cells matrices cost about their size
        mem_mb=mem_mb(550, per_mb=3),
        runtime=30,
    params:
        annotation=ANALYSIS["annotation"],
        species=species_names,
    script:
        "../scripts/annotate_cells.py"


use rule annotate_cells as annotate_cells_ablation with:
    input:
        cells="results/model_ablation/cells.h5ad",
        rna=expand("results/ingest/{species}/rna.h5ad", species=species_names),
        orthologs="results/graph/ortholog_links.tsv.gz",
    output:
        cells="results/analysis/ablation/cells.h5ad",
        correspondence="results/analysis/ablation/correspondence.tsv",
        species_clusters="results/analysis/ablation/species_clusters.tsv",
        figure="results/analysis/ablation/correspondence.png",
    log:
        "logs/analysis/annotate_cells_ablation.log",
    benchmark:
        "benchmarks/analysis/annotate_cells_ablation.tsv"


rule integration_metrics:
    input:
        unpack(lambda wc: {k: v for k, v in TRUTH.items() if k == "truth_cells"}),
        unpack(
            lambda wc: ablation_inputs(ablation="results/analysis/ablation/cells.h5ad")
        ),
        cells="results/analysis/cells.h5ad",
        rna=expand("results/ingest/{species}/rna.h5ad", species=species_names),
    output:
        metrics=report(
            "results/analysis/metrics.tsv",
            caption="../report/metrics.rst",
            category="Analysis",
        ),
    log:
        "logs/analysis/integration_metrics.log",
    benchmark:
        "benchmarks/analysis/integration_metrics.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        # the cells are read backed (obs and X_glue only), not their gene matrices
        mem_mb=mem_mb(800, per_input={"cells": 0.5, "ablation": 0.5}),
        runtime=30,
    params:
        metrics=ANALYSIS["metrics"],
        label_key=ANALYSIS["annotation"]["label_key"],
        species=species_names,
    script:
        "../scripts/integration_metrics.py"


rule regulatory_links:
    input:
        unpack(
            lambda wc: {
                k: TRUTH[k] for k in ("truth_cres", "truth_links") if k in TRUTH
            }
        ),
        unpack(
            lambda wc: ablation_inputs(ablation="results/model_ablation/features.h5ad")
        ),
        features="results/model/features.h5ad",
        cells="results/model/cells.h5ad",
        rna=per_atac_species("results/ingest/{species}/rna.h5ad"),
        atac=per_atac_species("results/counts/{species}/atac.h5ad"),
        differential_genes="results/analysis/differential_genes.tsv",
        differential_elements="results/analysis/differential_elements.tsv",
        edges="results/graph/guidance_edges.tsv.gz",
        union="results/consensus/union_peaks.tsv",
    output:
        links="results/analysis/regulatory_links.tsv",
        evaluation=report(
            "results/analysis/regulatory_evaluation.tsv",
            caption="../report/regulatory_evaluation.rst",
            category="Analysis",
        ),
    log:
        "logs/analysis/regulatory_links.log",
    benchmark:
        "benchmarks/analysis/regulatory_links.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(800),
        runtime=30,
    params:
        regulatory=ANALYSIS["regulatory"],
        species=ATAC_SPECIES,
    script:
        "../scripts/regulatory_links.py"


rule species_differential:
    input:
        cells="results/analysis/cells.h5ad",
        rna=expand("results/ingest/{species}/rna.h5ad", species=species_names),
        atac=per_atac_species("results/counts/{species}/atac.h5ad"),
        orthologs="results/graph/ortholog_links.tsv.gz",
    output:
        genes="results/analysis/differential_genes.tsv",
        elements="results/analysis/differential_elements.tsv",
    log:
        "logs/analysis/species_differential.log",
    benchmark:
        "benchmarks/analysis/species_differential.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(600),
        runtime=60,
    params:
        differential=ANALYSIS["differential"],
        species=species_names,
        atac_species=ATAC_SPECIES,
    script:
        "../scripts/species_differential.py"


rule species_modules:
    input:
        unpack(
            lambda wc: {
                k: TRUTH[k] for k in ("truth_cres", "truth_modules") if k in TRUTH
            }
        ),
        unpack(
            lambda wc: (
                {"motifs": MOTIF_FILE, "fasta": GENOME_FASTA} if USE_MOTIFS else {}
            )
        ),
        links="results/analysis/regulatory_links.tsv",
        genes="results/analysis/differential_genes.tsv",
        elements="results/analysis/differential_elements.tsv",
        union="results/consensus/union_peaks.tsv",
    output:
        modules=report(
            "results/analysis/species_modules.tsv",
            caption="../report/species_modules.rst",
            category="Analysis",
        ),
        recovery="results/analysis/module_recovery.tsv",
    log:
        "logs/analysis/species_modules.log",
    benchmark:
        "benchmarks/analysis/species_modules.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(200, per_input={"fasta": 0}),
        runtime=60,
    params:
        modules=ANALYSIS["modules"],
        species=ATAC_SPECIES,
        aliases=CHROM_ALIASES,
    script:
        "../scripts/species_modules.py"


# Motifs gained / lost where a species gained accessibility: a species pair, both genomes'
# sequence needed.
USE_TURNOVER = USE_MOTIFS and len(ATAC_SPECIES) == 2
if USE_TURNOVER:

    rule motif_turnover:
        input:
            unpack(
                lambda wc: {
                    k: TRUTH[k] for k in ("truth_cres", "truth_modules") if k in TRUTH
                }
            ),
            motifs=MOTIF_FILE,
            fasta=GENOME_FASTA,
            union="results/consensus/union_peaks.tsv",
            elements="results/analysis/differential_elements.tsv",
        output:
            turnover=report(
                "results/analysis/motif_turnover.tsv",
                caption="../report/motif_turnover.rst",
                category="Analysis",
            ),
            elements="results/analysis/motif_turnover_elements.tsv",
            recovery="results/analysis/turnover_recovery.tsv",
        log:
            "logs/analysis/motif_turnover.log",
        benchmark:
            "benchmarks/analysis/motif_turnover.tsv"
        conda:
            "../../envs/analysis.yaml"
        threads: 1
        resources:
            mem_mb=mem_mb(400, per_input={"fasta": 0}),
            runtime=60,
        params:
            turnover=ANALYSIS["turnover"],
            species=ATAC_SPECIES,
            aliases=CHROM_ALIASES,
        script:
            "../scripts/motif_turnover.py"
