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

Truth columns (NA where a value does not apply; the `realistic` preset adds the starred ones):

- cells.tsv: cell (``sample#barcode``), barcode, sample, species, donor, modality,
  cell_type (NA for doublets and empty droplets, so scorers skip them), quality
  (textbook: cell | low_quality | high_mito | empty; realistic: = status), status* (cell |
  doublet | low_quality | empty), cell_class*, subclass*, state* (the nucleus' continuous
  within-type latent value), parent_type_1*/parent_type_2* (the two types of a doublet),
  nucleus (shared id of the RNA and ATAC of one multiome nucleus), n_umis, mito_fraction,
  n_fragments (unique), frip_target (planned in-peak share), ambient_fraction* (share of the
  barcode's RNA from the sample's ambient soup)
- cres.tsv: cre, class (conserved | ambiguous | {s}_accessible | {s}_sequence, the latter
  also for elements deleted with the macaque gene loss), kind, module, copy_of, anc_chrom,
  anc_centre, ``{s}_chrom/_start/_end/_centre``, ``activity.{s}.{type}`` (realistic: the
  per-type open probability), branch_event* (gain_{s} | loss_{s}: which lineage changed a
  species-accessible element), state_loading* (logit shift of openness per unit of state)
- links.tsv: species, cre, gene_id, gene_name, effect, distance, cre_active
- modules.tsv: module, species, cell_types, tf_gene_id, tf_name, motif (realistic: the
  JASPAR 2024 matrix id, e.g. MA0143.5), motif_name*, cres, genes
- genes.tsv: species, gene_id, version, gene_name, chrom, start, end, strand, tss,
  gene_type, kind (shared | duplicated: its ancestral gene was duplicated in one lineage,
  one2many | duplicated_both*: duplicated in both lineages independently, many2many |
  duplicate_copy: a copy, human symbol + ``L``, macaque the original's symbol |
  lineage_specific | mito | lost_in_other), anc_gene, is_tf, capture_bias*,
  chemistry_bias* (multiome samples), overdispersion_sd* (of the Poisson-lognormal rate),
  state_loading*
- orthologs.tsv: species_a, gene_a, species_b, gene_b, homology_type, pid_target,
  pid_query, confidence (every copy paired with every copy; realistic: the pair of
  originals is high confidence, a pair with a copy low and 2 % less identical per copy);
  structure.json: inversion, inversion2*, duplication (human; realistic: macaque too, of
  the same family plus a neighbouring gene), fusion, gene_loss* per species
"""

from __future__ import annotations

from crossglue.simulate.dataset import simulate
from crossglue.simulate.presets import PRESETS, get_preset

__all__ = ["simulate", "PRESETS", "get_preset"]
