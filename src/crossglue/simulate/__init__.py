"""Simulated multi-species snRNA + snATAC dataset with known truth (docs SIMULATION.md).

``simulate(outdir, preset="demo", seed=0, scale=1.0)`` writes genomes, annotations, chains,
ortholog tables, per-sample fragments / count matrices / metadata, a sample sheet, a config
fragment and ``truth/`` tables; it returns a summary dict (paths and sizes). Same arguments,
same bytes. ``python -m crossglue.simulate OUTDIR --preset tiny`` does the same from a shell.

Layout under ``outdir`` (species ``human`` and ``macaque``):

- ``genome/{species}.chrom.sizes`` (canonical names chr1, chr2, chr2a, ..., chrM),
  ``{species}.chrom_aliases.tsv`` (UCSC / Ensembl / RefSeq names), ``{species}.gtf.gz``
  (macaque with RefSeq ``NC_`` names), ``{species}.fa.gz`` (+ ``.fai``, ``.gzi``)
- ``chains/{a}_to_{b}.over.chain.gz`` for every ordered pair
- ``orthologs/{a}_{b}.orthologs.tsv`` (Ensembl BioMart export, ``a`` = query)
- ``samples/{sample}/`` ``fragments.tsv.gz`` (+ ``.tbi``), ``filtered_feature_bc_matrix.h5``
  or ``counts.h5ad``, ``metadata.tsv``; ``samples.tsv``; ``config.yaml`` (config fragment)
- ``truth/`` cells, cres, links, orthologs, modules, genes, insertions (TSV), motifs.meme,
  structure.json, orthology.tsv.gz (every orthologous ungapped block)
"""

from __future__ import annotations

from crossglue.simulate.dataset import simulate
from crossglue.simulate.presets import PRESETS, get_preset

__all__ = ["simulate", "PRESETS", "get_preset"]
