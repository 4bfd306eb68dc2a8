"""Write one simulated dataset: run the stages (ancestor, evolution, annotation, sequences,
cells) and write every input file plus ``truth/`` (layout in ``crossglue.simulate``)."""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from crossglue.io_utils import atomic_path
from crossglue.simulate import writers as w
from crossglue.simulate.ancestor import CRE_HALF_WIDTH, build_ancestor
from crossglue.simulate.annotate import ID_PREFIX, Annotation, annotate
from crossglue.simulate.evolve import SpeciesGenome, evolve
from crossglue.simulate.orthology import chain_blocks, orthologous_blocks
from crossglue.simulate.presets import ASSEMBLIES, SPECIES, Preset, SampleSpec, get_preset
from crossglue.simulate.sample_models import Donors, sample_model
from crossglue.simulate.sequence import ancestral_sequences, fasta_bytes, plant_motifs, species_sequences, write_meme

log = logging.getLogger("crossglue.simulate")

DIVERGENCE = 0.018  # substitutions per base from the ancestor, per lineage
REFSEQ_NAMES = {  # RefSeq accessions by species (macaque GTF and fragments use them)
    "human": {"chr1": "NC_000001.11", "chr2": "NC_000002.12", "chr3": "NC_000003.12", "chrM": "NC_012920.1"},
}
MACAQUE_MITO = "NC_005943.1"


def chrom_aliases(species: str, sizes: dict[str, int]) -> dict[str, list[str]]:
    """Per canonical chromosome: [Ensembl name, RefSeq accession]."""
    out = {}
    nuclear = [c for c in sizes if c != "chrM"]
    for i, c in enumerate(nuclear):
        ens = c[3:]
        refseq = (
            REFSEQ_NAMES["human"].get(c, f"NC_0000{i + 1:02d}.1") if species == "human" else f"NC_{41754 + i:06d}.1"
        )
        out[c] = [ens, refseq]
    if "chrM" in sizes:
        out["chrM"] = ["MT", REFSEQ_NAMES["human"]["chrM"] if species == "human" else MACAQUE_MITO]
    return out


def _file_names(species: str, sizes: dict[str, int]) -> dict[str, str]:
    """Chromosome naming used in this species' GTF and fragments (RefSeq for macaque)."""
    if species == "macaque":
        return {c: names[1] for c, names in chrom_aliases(species, sizes).items()}
    return {c: c for c in sizes}


def simulate(
    outdir: str | Path, preset: str = "demo", seed: int = 0, scale: float = 1.0, write_fasta: bool | None = None
) -> dict:
    """Write the full simulated input set and its truth under ``outdir``; return a summary."""
    t0 = time.perf_counter()
    p = get_preset(preset, scale)
    write_fasta = p.write_fasta if write_fasta is None else write_fasta
    out = Path(outdir)
    prefix = str(outdir).rstrip("/")
    # Independent streams per stage: writing FASTA or not leaves every other file unchanged.
    genome_rng, annot_rng, seq_rng, cell_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    anc = build_ancestor(genome_rng, p)
    genomes: dict[str, SpeciesGenome] = {}
    realistic = p.model == "realistic"
    for i, s in enumerate(SPECIES):
        # realistic: the other lineage duplicates the first one's duplicated genes too (many2many).
        family = genomes[SPECIES[0]].structure.get("duplication") if realistic and i > 0 else None
        genomes[s] = evolve(
            genome_rng, anc, s, p.n_insertions, novel_start=1_000_000 * (i + 1), realistic=realistic, family=family
        )
    ann = annotate(annot_rng, anc, genomes, p)
    log.info("genomes and annotation: %.1f s", time.perf_counter() - t0)

    paths: dict = {"species": {}, "chains": [], "orthologs": []}
    anc_seq = ancestral_sequences(seq_rng, anc.chrom_lengths) if write_fasta else None
    for s, g in genomes.items():
        paths["species"][s] = _write_genome(seq_rng, out, prefix, s, g, ann, anc_seq)
    _write_chains_and_orthology(out, prefix, genomes, ann, paths)
    sample_rows, cell_tables, sample_stats = _write_samples(cell_rng, out, prefix, p, ann, genomes)
    _write_truth(out, ann, genomes, pd.concat(cell_tables, ignore_index=True))
    sheet = pd.DataFrame(
        sample_rows, columns=["sample", "species", "donor", "modality", "fragments", "counts", "metadata"]
    )
    w.write_table(out / "samples.tsv", sheet)
    config = {
        "samples": f"{prefix}/samples.tsv",
        "species": [paths["species"][s]["config"] for s in SPECIES],
        "chains": paths["chains"],
        "orthologs": paths["orthologs"],
        **p.config_overrides,
    }
    w.write_bytes(out / "config.yaml", yaml.safe_dump(config, sort_keys=False).encode())
    elapsed = time.perf_counter() - t0
    summary = {
        "outdir": prefix,
        "preset": preset,
        "seed": seed,
        "scale": scale,
        "seconds": round(elapsed, 2),
        "species": {
            s: {
                "chrom_sizes": genomes[s].chrom_sizes,
                "genes": int((ann.genes.species == s).sum()),
                "cres": int((ann.cres[f"{s}_chrom"] != "").sum()),
            }
            for s in SPECIES
        },
        "samples": sample_stats,
        "config": config,
    }
    log.info("simulated %s (seed %d, scale %g) in %.1f s", preset, seed, scale, elapsed)
    return summary


def _write_genome(rng, out: Path, prefix: str, s: str, g: SpeciesGenome, ann: Annotation, anc_seq: dict | None) -> dict:
    """Chromosome sizes, aliases, GTF and (with ``anc_seq``) the FASTA of one species."""
    gdir = out / "genome"
    w.write_chrom_sizes(gdir / f"{s}.chrom.sizes", g.chrom_sizes)
    w.write_aliases(gdir / f"{s}.chrom_aliases.tsv", chrom_aliases(s, g.chrom_sizes), ["ucsc", "ensembl", "refseq"])
    genes = ann.genes[ann.genes.species == s]
    exons = ann.exons[ann.exons.species == s]
    gtf = w.gtf_text(
        genes,
        exons,
        _file_names(s, g.chrom_sizes),
        list(g.chrom_sizes),
        ID_PREFIX[s][1],
        "ENSEMBL" if s != "human" else "HAVANA",
    )
    w.write_bytes(gdir / f"{s}.gtf.gz", w.gzip_bytes(gtf))
    cfg = {
        "name": s,
        "assembly": ASSEMBLIES[s],
        "chrom_sizes": f"{prefix}/genome/{s}.chrom.sizes",
        "gtf": f"{prefix}/genome/{s}.gtf.gz",
        "chrom_aliases": f"{prefix}/genome/{s}.chrom_aliases.tsv",
    }
    if anc_seq is not None:
        seqs = species_sequences(rng, g.pieces, anc_seq, g.chrom_sizes, DIVERGENCE)
        for m in ann.modules[ann.modules.species == s].itertuples():  # a few modules per species
            rows = ann.cres.set_index("cre").loc[m.cres.split(",")]
            plant_motifs(rng, seqs, rows[f"{s}_chrom"].to_numpy(), rows[f"{s}_centre"].to_numpy(), ann.motifs[m.motif])
        text, fai = fasta_bytes(seqs, {})
        w.write_fasta(gdir / f"{s}.fa.gz", text, fai)
        cfg["fasta"] = f"{prefix}/genome/{s}.fa.gz"
    cfg["mito_chrom"] = "chrM"
    return {"config": cfg}


def _write_chains_and_orthology(
    out: Path, prefix: str, genomes: dict[str, SpeciesGenome], ann: Annotation, paths: dict
) -> None:
    block_tables = []
    for a, b in itertools.permutations(SPECIES, 2):
        blocks = orthologous_blocks(genomes[a].pieces, genomes[b].pieces)
        cb = chain_blocks(blocks, genomes[a].chrom_sizes, genomes[b].chrom_sizes)
        path = out / "chains" / f"{a}_to_{b}.over.chain.gz"
        w.write_chain_file(path, cb, genomes[a].chrom_sizes, genomes[b].chrom_sizes)
        paths["chains"].append({"from": a, "to": b, "path": f"{prefix}/chains/{a}_to_{b}.over.chain.gz"})
        if SPECIES.index(a) < SPECIES.index(b):
            block_tables.append(
                pd.DataFrame(
                    {
                        "species_a": a,
                        "chrom_a": blocks.a_chrom,
                        "start_a": blocks.a_start,
                        "copy_a": blocks.a_layer,
                        "species_b": b,
                        "chrom_b": blocks.b_chrom,
                        "start_b": blocks.b_start,
                        "copy_b": blocks.b_layer,
                        "size": blocks["size"],
                        "strand": np.where(blocks.strand > 0, "+", "-"),
                    }
                ).sort_values(["chrom_a", "start_a", "copy_a", "copy_b"], kind="stable")
            )
    w.write_table(out / "truth" / "orthology.tsv.gz", pd.concat(block_tables, ignore_index=True), compress=True)
    for a, b in itertools.combinations(SPECIES, 2):
        path = out / "orthologs" / f"{a}_{b}.orthologs.tsv"
        w.write_table(path, biomart_table(ann, a, b))
        paths["orthologs"].append({"species_a": a, "species_b": b, "path": f"{prefix}/orthologs/{a}_{b}.orthologs.tsv"})


def biomart_table(ann: Annotation, a: str, b: str) -> pd.DataFrame:
    """Ensembl BioMart ortholog export with species ``a`` as query (every query gene listed)."""
    B = b.capitalize()
    ga = ann.genes[ann.genes.species == a].set_index("gene_id")
    gb = ann.genes[ann.genes.species == b].set_index("gene_id")
    o = ann.orthologs
    table = pd.DataFrame({"gene_a": ga.index}).merge(o, on="gene_a", how="left")
    table = table.sort_values(["gene_a", "gene_b"], kind="stable", na_position="last")
    has = table.gene_b.notna()
    conf = table.confidence.astype("Int64").astype(str).replace("<NA>", "")
    return pd.DataFrame(
        {
            "Gene stable ID": table.gene_a,
            "Gene name": ga.gene_name.reindex(table.gene_a).to_numpy(),
            f"{B} gene stable ID": table.gene_b.fillna(""),
            f"{B} gene name": np.where(has, gb.gene_name.reindex(table.gene_b.fillna("")).fillna("").to_numpy(), ""),
            f"{B} homology type": table.homology_type.fillna(""),
            f"%id. target {B} gene identical to query gene": table.pid_target.map(
                lambda x: "" if pd.isna(x) else f"{x:g}"
            ),
            f"%id. query gene identical to target {B} gene": table.pid_query.map(
                lambda x: "" if pd.isna(x) else f"{x:g}"
            ),
            f"{B} orthology confidence [0 low, 1 high]": conf.to_numpy(),
        }
    )


def _write_samples(rng, out: Path, prefix: str, p: Preset, ann: Annotation, genomes: dict[str, SpeciesGenome]):
    """Every sample's fragments, counts and metadata; per-barcode truth tables and stats."""
    model = sample_model(rng, p, ann, genomes)
    donors = sorted({sp.donor for sp in p.samples})
    donor_lib = dict(zip(donors, rng.lognormal(0.0, 0.2, len(donors)), strict=True))
    donor_sex = dict(zip(donors, rng.choice(["F", "M"], len(donors)), strict=True))
    donor_age = dict(zip(donors, rng.integers(25, 70, len(donors)), strict=True))
    # Donor effect on expression: a mild per-gene shift shared by all samples of the donor.
    donor_species = {spec.donor: spec.species for spec in p.samples}
    donor_shift = {d: rng.lognormal(0.0, 0.1, len(model.genes(donor_species[d]))) for d in donors}
    effects = Donors(donor_lib, donor_shift)
    rows, tables, stats = [], [], {}
    for spec in p.samples:
        s = spec.species
        genes = model.genes(s)
        cells, ctx = model.barcodes(rng, spec)
        sdir = out / "samples" / spec.name
        rel = f"{prefix}/samples/{spec.name}"
        row = {
            "sample": spec.name,
            "species": s,
            "donor": spec.donor,
            "modality": spec.modality,
            "fragments": "",
            "counts": "",
            "metadata": "",
        }
        cells["n_umis"] = pd.array([pd.NA] * len(cells), dtype="Int64")
        cells["mito_fraction"] = np.nan
        cells["n_fragments"] = pd.array([pd.NA] * len(cells), dtype="Int64")
        cells["frip_target"] = np.nan
        stat = {"modality": spec.modality, "nuclei": int((cells.quality != "empty").sum()), "barcodes": len(cells)}
        if spec.modality in ("atac", "multiome"):
            names = _file_names(s, genomes[s].chrom_sizes)
            frags, uniq, frip, header = model.fragments(rng, spec, cells, ctx, effects, names)
            w.write_fragments(sdir / "fragments.tsv.gz", frags, names, header)
            cells["n_fragments"], cells["frip_target"] = uniq, np.round(frip, 4)
            row["fragments"] = f"{rel}/fragments.tsv.gz"
            stat["fragments"] = len(frags)
        if spec.modality in ("rna", "multiome"):
            rna_cells = cells if spec.modality == "rna" else cells[cells.quality != "empty"]
            x, totals, mito = model.rna(rng, spec, cells, rna_cells, ctx, effects)
            cells.loc[rna_cells.index, "n_umis"] = totals
            cells.loc[rna_cells.index, "mito_fraction"] = np.round(mito, 4)
            row["counts"] = _write_counts(sdir, rel, spec, x, rna_cells, genes)
            stat["rna_barcodes"], stat["genes"] = int(x.shape[0]), int(x.shape[1])
        if spec.metadata != "none":
            row["metadata"] = _write_metadata(sdir, rel, spec, cells, donor_sex, donor_age)
        rows.append(row)
        tables.append(cells.drop(columns="type_index", errors="ignore"))
        stats[spec.name] = stat
    return rows, tables, stats


def _write_counts(sdir: Path, rel: str, spec: SampleSpec, x, rna_cells: pd.DataFrame, genes: pd.DataFrame) -> str:
    """The count matrix in the sample's format (h5ad or Cell Ranger h5); its samples.tsv path."""
    ids = (genes.gene_id + "." + genes.version.astype(str)).to_numpy()
    s = spec.species
    if spec.counts_format == "h5ad":
        w.write_counts_h5ad(
            sdir / "counts.h5ad", x, rna_cells.barcode.to_numpy(), ids, genes.gene_name.to_numpy(), ASSEMBLIES[s]
        )
        return f"{rel}/counts.h5ad"
    w.write_10x_h5(
        sdir / "filtered_feature_bc_matrix.h5",
        x,
        rna_cells.barcode.to_numpy(),
        ids,
        genes.gene_name.to_numpy(),
        ASSEMBLIES[s],
    )
    return f"{rel}/filtered_feature_bc_matrix.h5"


def _write_metadata(
    sdir: Path, rel: str, spec: SampleSpec, cells: pd.DataFrame, donor_sex: dict, donor_age: dict
) -> str:
    """Per passing nucleus: donor covariates, and the authors' cell type where the sample has labels."""
    good = cells[cells.quality == "cell"]
    meta = pd.DataFrame({"barcode": good.barcode})
    if spec.metadata == "labels":
        meta["cell_type"] = good.cell_type.to_numpy()
    meta["donor"] = spec.donor
    meta["sex"] = donor_sex[spec.donor]
    meta["age"] = donor_age[spec.donor]
    meta["region"] = "ACC"
    w.write_table(sdir / "metadata.tsv", meta)
    return f"{rel}/metadata.tsv"


def _write_truth(out: Path, ann: Annotation, genomes: dict[str, SpeciesGenome], cells: pd.DataFrame) -> None:
    """Truth tables (TSV, NA for missing values):

    - cells: cell (``sample#barcode``), barcode, sample, species, donor, modality, cell_type,
      quality (cell | low_quality | high_mito | empty), nucleus, n_umis, mito_fraction,
      n_fragments (unique), frip_target
    - cres: cre, class, kind (distal | promoter), module, copy_of (the duplicated original),
      anc_chrom, anc_centre, per species ``{s}_chrom/_start/_end/_centre`` (canonical names,
      501 bp = centre +/- 250, like summit-centred peaks), ``activity.{s}.{cell_type}``
    - links: species, cre, gene_id, gene_name, effect, distance (TSS to centre), cre_active
    - orthologs, modules (cell_types, TF, motif, cres, target genes), genes, insertions,
      structure.json (inversion, duplication per lineage that has one, fusion), orthology.tsv.gz,
      motifs.meme (columns: ``crossglue.simulate`` docstring)
    """
    tdir = out / "truth"
    cells = cells.copy()
    cells.insert(0, "cell", cells["sample"] + "#" + cells.barcode)
    cells["cell_type"] = cells.cell_type.replace("", np.nan)
    cells["nucleus"] = cells.nucleus.replace("", np.nan)
    w.write_table(tdir / "cells.tsv", cells)

    w.write_table(tdir / "cres.tsv", _truth_cres(ann))

    w.write_table(tdir / "links.tsv", _truth_links(ann))

    a, b = ann.species[0], ann.species[1]
    orth = ann.orthologs.assign(species_a=a, species_b=b)[
        ["species_a", "gene_a", "species_b", "gene_b", "homology_type", "pid_target", "pid_query", "confidence"]
    ]
    w.write_table(tdir / "orthologs.tsv", orth)
    w.write_table(tdir / "modules.tsv", ann.modules)
    genes = ann.genes[
        [
            "species",
            "gene_id",
            "version",
            "gene_name",
            "chrom",
            "start",
            "end",
            "strand",
            "tss",
            "gene_type",
            "kind",
            "anc_gene",
            "is_tf",
        ]
        + [c for c in ("capture_bias", "chemistry_bias", "overdispersion_sd", "state_loading") if c in ann.genes]
    ]
    w.write_table(tdir / "genes.tsv", genes)
    write_meme_atomic(tdir / "motifs.meme", ann)
    ins = pd.concat([g.insertions.assign(species=s) for s, g in genomes.items()], ignore_index=True)
    w.write_table(
        tdir / "insertions.tsv", ins[["species", "chrom", "start", "end", "strand", "length", "anc_chrom", "anc_pos"]]
    )
    structure = {s: {k: v for k, v in g.structure.items()} for s, g in genomes.items()}
    w.write_bytes(tdir / "structure.json", (json.dumps(_jsonable(structure), indent=1, sort_keys=True) + "\n").encode())


def _truth_cres(ann: Annotation) -> pd.DataFrame:
    """truth/cres.tsv: per element its class, kind, module, ancestral and per-species coordinates
    (501 bp around the centre; NA where absent) and activity per cell type."""
    cres = ann.cres
    table = cres[["cre", "class", "kind", "module", "copy_of", "anc_chrom", "anc_centre"]].copy()
    table["anc_chrom"] = table.anc_chrom.replace("", np.nan)
    table["anc_centre"] = table.anc_centre.where(table.anc_centre >= 0)
    table = table.astype({"anc_centre": "Int64"})
    for s in ann.species:
        c = cres[f"{s}_chrom"]
        present = c != ""
        centre = cres[f"{s}_centre"]
        table[f"{s}_chrom"] = c.where(present)
        table[f"{s}_start"] = (centre - CRE_HALF_WIDTH).where(present).astype("Int64")
        table[f"{s}_end"] = (centre + CRE_HALF_WIDTH + 1).where(present).astype("Int64")
        table[f"{s}_centre"] = centre.where(present).astype("Int64")
    for s in ann.species:
        act = pd.DataFrame(np.round(ann.activity[s], 4), columns=[f"activity.{s}.{t}" for t in ann.cell_types[s]])
        table = pd.concat([table, act], axis=1)
    if ann.state_model is not None:
        table["branch_event"] = cres.branch_event.replace("", np.nan).to_numpy()
        table["state_loading"] = np.round(ann.state_model.element_loading, 4)
    return table


def _truth_links(ann: Annotation) -> pd.DataFrame:
    """truth/links.tsv: planted element-gene links with the gene's symbol and whether the element is ever active."""
    cres = ann.cres
    links = ann.links.copy()
    links["cre_id"] = cres.cre.to_numpy()[links.cre]
    names = ann.genes.set_index(["species", "gene_id"]).gene_name
    links["gene_name"] = names.loc[list(zip(links.species, links.gene_id, strict=True))].to_numpy()
    links["cre_active"] = False
    for s in ann.species:
        sel = (links.species == s).to_numpy()
        links.loc[sel, "cre_active"] = (np.nan_to_num(ann.activity[s]).sum(axis=1) > 0)[links.cre.to_numpy()[sel]]
    links = links[["species", "cre_id", "gene_id", "gene_name", "effect", "distance", "cre_active"]].rename(
        columns={"cre_id": "cre"}
    )
    links["effect"] = links.effect.round(4)
    return links.sort_values(["species", "cre", "gene_id"], kind="stable")


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_meme_atomic(path: Path, ann: Annotation) -> None:
    """Module motifs (named after their TF) and decoys, in MEME format."""
    tf_of = dict(zip(ann.modules.motif, ann.modules.tf_name, strict=True)) if len(ann.modules) else {}
    tf_of = {**ann.motif_names, **tf_of}
    with atomic_path(path) as tmp:
        write_meme(ann.motifs, tf_of, tmp)
