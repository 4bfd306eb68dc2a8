"""The report: one self-contained HTML file from every stage's outputs, and its figures as
PNGs for `snakemake --report` (report: directives, captions under workflow/report/)."""


rule report:
    input:
        unpack(
            lambda wc: ablation_inputs(
                training_ablation="results/model_ablation/training_log.tsv"
            )
        ),
        qc_summary="results/ingest/qc_summary.tsv",
        qc_plots=expand("results/ingest/qc/{sample}.png", sample=samples.index),
        consensus_summary="results/consensus/summary.tsv",
        liftover_reasons="results/consensus/liftover_reasons.tsv",
        peak_widths="results/consensus/peak_widths.tsv",
        consensus_plots=[
            "results/consensus/plots/element_classes.png",
            "results/consensus/plots/liftover_reasons.png",
            "results/consensus/plots/peak_widths.png",
        ],
        graph_summary="results/graph/summary.tsv",
        graph_plots=["results/graph/degree_distribution.png"],
        training_main="results/model/training_log.tsv",
        cells="results/analysis/cells.h5ad",
        metrics="results/analysis/metrics.tsv",
        links="results/analysis/regulatory_links.tsv",
        link_evaluation="results/analysis/regulatory_evaluation.tsv",
        differential_genes="results/analysis/differential_genes.tsv",
        differential_elements="results/analysis/differential_elements.tsv",
        modules="results/analysis/species_modules.tsv",
        module_recovery="results/analysis/module_recovery.tsv",
        correspondence="results/analysis/correspondence.tsv",
        species_clusters="results/analysis/species_clusters.tsv",
        correspondence_figure="results/analysis/correspondence.png",
        motif_turnover=(["results/analysis/motif_turnover.tsv"] if USE_TURNOVER else []),
        # gene symbols (var gene_name) and element coordinates for readable tables
        rna_features=expand("results/ingest/{species}/rna.h5ad", species=species_names),
        union_elements="results/consensus/union_peaks.tsv",
    output:
        html=report(
            "results/report/report.html",
            caption="../report/report_html.rst",
            category="Report",
        ),
        umap=report(
            "results/report/figures/umap.png",
            caption="../report/umap.rst",
            category="Figures",
        ),
        training=report(
            "results/report/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Figures",
        ),
        metrics=report(
            "results/report/figures/metrics.png",
            caption="../report/metrics_figure.rst",
            category="Figures",
        ),
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(200),
        runtime=20,
    params:
        species=species_names,
        has_truth=bool(TRUTH_DIR),
        report=REPORT,
        max_q=ANALYSIS["regulatory"]["max_q"],
    script:
        "../scripts/build_report.py"
