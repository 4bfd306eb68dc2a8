"""Rule report: the self-contained HTML report and its figures as PNG files."""

from pathlib import Path

from crossglue.snakemake_script import run


def main(smk) -> None:
    from crossglue.report import ReportInputs, build_report

    i = smk.input
    inputs = ReportInputs(
        species=list(smk.params.species),
        qc_summary=i.qc_summary,
        qc_plots=list(i.qc_plots),
        consensus_summary=i.consensus_summary,
        liftover_reasons=i.liftover_reasons,
        peak_widths=i.peak_widths,
        consensus_plots=list(i.consensus_plots),
        graph_summary=i.graph_summary,
        graph_plots=list(i.graph_plots),
        training_logs={"main": i.training_main, "ablation": i.get("training_ablation")},
        cells=i.cells,
        metrics=i.metrics,
        links=i.links,
        link_evaluation=i.link_evaluation,
        differential_genes=i.differential_genes,
        differential_elements=i.differential_elements,
        modules=i.modules,
        module_recovery=i.module_recovery,
        correspondence=i.correspondence,
        species_clusters=i.species_clusters,
        correspondence_figure=i.correspondence_figure,
        motif_turnover=i.motif_turnover[0] if i.motif_turnover else None,
        has_truth=bool(smk.params.has_truth),
        rna_features=dict(zip(smk.params.species, i.rna_features, strict=True)),
        union_elements=i.union_elements,
    )
    cfg = smk.params.report
    build_report(
        inputs,
        smk.output.html,
        figure_dir=Path(smk.output.umap).parent,
        title=cfg["title"],
        max_q=smk.params.max_q,
        top_modules=cfg["top_modules"],
    )


run(main, snakemake)  # noqa: F821 - injected by Snakemake
