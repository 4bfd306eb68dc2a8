"""Rule call_peaks: one species' cells grouped (labels, else Leiden clusters), pseudobulk MACS2, merged peaks."""

import logging
import tempfile
from pathlib import Path

from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.call_peaks")


def main(smk) -> None:
    from crossglue.embedding import leiden_clusters
    from crossglue.genomics.genome import read_aliases, read_chrom_sizes
    from crossglue.io_utils import atomic_path, open_output, read_h5ad
    from crossglue.peaks.calling import (
        PeakParams,
        call_species_peaks,
        cell_groups,
        every_cell_labelled,
        peaks_bed,
        read_blacklist,
    )

    species = smk.wildcards.species
    params = PeakParams.from_config(smk.params.peaks)
    sizes = read_chrom_sizes(smk.input.chrom_sizes)
    aliases = read_aliases(smk.input.aliases[0], sizes, smk.input.chrom_sizes) if smk.input.aliases else {}
    blacklist = read_blacklist(smk.input.blacklist[0], aliases, sizes) if smk.input.blacklist else None
    atac = read_h5ad(smk.input.atac)
    clusters = None
    if not every_cell_labelled(atac.obs):
        log.info(
            "%s: not every cell has a cell_type; Leiden on LSI of %d cells groups the unlabelled ones",
            species,
            atac.n_obs,
        )
        clusters = leiden_clusters(
            atac.X,
            atac.obs_names,
            params.lsi_components,
            params.n_top_tiles,
            params.n_neighbors,
            params.leiden_resolution,
            params.seed,
        )
    groups = cell_groups(atac.obs, clusters, params.min_cells_per_group)
    log.info("%s: %d groups: %s", species, groups.nunique(), groups.value_counts().to_dict())
    fragments = dict(zip(smk.params.samples, smk.input.fragments, strict=True))
    workroot = Path(smk.output.peaks).parent
    workroot.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".macs2.", dir=workroot) as work:
        peaks, summits = call_species_peaks(species, fragments, groups, aliases, sizes, work, params, blacklist)
    log.info("%s: %d merged peaks of %d bp", species, len(peaks), 2 * params.half_width + 1)
    with atomic_path(smk.output.peaks) as tmp:
        peaks.to_csv(tmp, sep="\t", index=False)
    with atomic_path(smk.output.bed) as tmp:
        peaks_bed(peaks).to_csv(tmp, sep="\t", index=False, header=False)
    with open_output(smk.output.summits) as out:  # .gz: a fixed gzip header, same bytes on rerun
        summits.to_csv(out, sep="\t", index=False)
    with atomic_path(smk.output.groups) as tmp:
        groups.rename_axis("cell").reset_index().to_csv(tmp, sep="\t", index=False)


run(main, snakemake)  # noqa: F821 - injected by Snakemake
