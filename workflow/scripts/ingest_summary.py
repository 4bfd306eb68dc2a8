"""Rule ingest_summary: all samples' QC tables in one, and a per-sample summary."""

from crossglue.snakemake_script import run


def main(smk) -> None:
    import pandas as pd

    from crossglue.ingest.samples import qc_summary
    from crossglue.io_utils import write_tsv

    qc = pd.concat([pd.read_csv(p, sep="\t") for p in smk.input.qc], ignore_index=True)
    write_tsv(qc, smk.output.qc)
    write_tsv(qc_summary(qc), smk.output.summary)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
