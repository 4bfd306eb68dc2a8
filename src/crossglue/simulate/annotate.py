"""Species annotation with known truth: genes, CREs and their classes, activities, links,
planted species-specific modules, and the gene orthology table.

Ancestral genes and CREs are carried into each species through its pieces; lineage-specific
insertions add novel CREs (class ``<species>_sequence``) and a few genes without orthologues;
the segmental duplication copies a gene and its CREs (one2many genes, ``ambiguous`` CREs);
in the realistic preset macaque duplicates the same family again, independently (many2many).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crossglue.simulate import states
from crossglue.simulate.ancestor import MAX_LINK_DISTANCE, Ancestor, make_exons, random_gene_symbols
from crossglue.simulate.evolve import SpeciesGenome, map_positions
from crossglue.simulate.intervals import concat_ranges
from crossglue.simulate.jaspar import JASPAR_COUNTS, jaspar_name, jaspar_pwm
from crossglue.simulate.presets import SHARED_CELL_TYPES, SPECIFIC_CELL_TYPE, Preset

ID_PREFIX = {"human": ("ENSG", "ENST"), "macaque": ("ENSMMUG", "ENSMMUT")}
PROMOTER_EFFECT = 0.3  # weight of a gene's own promoter in its expression
MODULE_ACTIVITY = 2.5  # activity of a planted module CRE in its cell types
MODULE_EFFECT = 3.0  # link effect of a planted module CRE on its targets
SPECIES_ACCESSIBLE_FRACTION = 0.12  # of conserved distal CREs, per species
SIBLING_TYPES = (("ExN_upper", "ExN_deep"), ("InN_PVALB", "InN_SST"))
# Symbol of a duplicate copy: human paralogues get names of their own (HGNC), macaque ones
# keep the symbol of the human orthologue they were projected from (Ensembl), so two
# macaque genes share one symbol.
COPY_SUFFIX = {"human": "L", "macaque": ""}


@dataclass
class Annotation:
    """Everything the cells and the writers need, plus the truth tables' content."""

    species: list[str]
    cell_types: dict[str, list[str]]
    # species, gene_id, version, gene_name, chrom, start, end, strand, tss, gene_type, anc_gene, copy, kind,
    # is_tf, expr_level
    genes: pd.DataFrame
    exons: pd.DataFrame  # species, gene_id, chrom, start, end, exon_number
    cres: pd.DataFrame  # cre, class, kind, module, copy_of, anc_chrom, anc_centre, <sp>_chrom, <sp>_centre
    activity: dict[str, np.ndarray]  # species -> (n_cres, n_cell_types), NaN where the CRE is absent
    links: pd.DataFrame  # species, cre (row index into cres), gene_id, effect, distance
    modules: pd.DataFrame  # module, species, cell_types, tf_gene_id, tf_name, motif, cres, genes
    orthologs: pd.DataFrame  # gene_a, gene_b, homology_type, pid_target, pid_query, confidence
    motifs: dict[str, np.ndarray]  # motif name -> (width, 4) probabilities over A, C, G, T
    motif_names: dict[str, str] = field(default_factory=dict)  # motif -> name (JASPAR TF name)
    state_model: states.StateModel | None = None  # realistic preset only


def cell_types_of(species: str, realistic: bool = False) -> list[str]:
    """The cell types of one species: the textbook catalogue, or the realistic hierarchy's."""
    if realistic:
        extra = states.SPECIES_ONLY_TYPES.get(species)
        return states.shared_types() + ([extra[0]] if extra else [])
    extra = SPECIFIC_CELL_TYPE.get(species)
    return list(SHARED_CELL_TYPES) + ([extra] if extra else [])


def random_motif(rng: np.random.Generator, width: int) -> np.ndarray:
    """An information-rich PWM: one dominant base (p ~ 0.85) per position."""
    m = 0.15 * rng.dirichlet(np.full(4, 0.5), size=width)
    m[np.arange(width), rng.integers(0, 4, size=width)] += 0.85
    return m / m.sum(axis=1, keepdims=True)


# --- genes ----------------------------------------------------------------------------------


def _map_genes(anc: Ancestor, genome: SpeciesGenome, layer: int, keep: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Species coordinates of ancestral genes (exons are protected, so every exon base maps)."""
    genes = anc.genes[keep]
    exons = anc.exons[anc.exons.gene.isin(genes.gene)]
    c1, p1, s1 = map_positions(genome.pieces, exons.chrom.to_numpy(), exons.start.to_numpy(), layer)
    c2, p2, _ = map_positions(genome.pieces, exons.chrom.to_numpy(), exons.end.to_numpy() - 1, layer)
    if (c1 == "").any() or (c2 == "").any():
        raise RuntimeError("simulate: an exon base was lost in evolution (protection failed)")
    ex = pd.DataFrame(
        {
            "anc_gene": exons.gene.to_numpy(),
            "chrom": c1,
            "start": np.minimum(p1, p2),
            "end": np.maximum(p1, p2) + 1,
            "exon_number": exons.exon_number.to_numpy(),
            "piece_strand": s1,
        }
    )
    span = ex.groupby("anc_gene", sort=False).agg(
        chrom=("chrom", "first"), start=("start", "min"), end=("end", "max"), piece_strand=("piece_strand", "first")
    )
    g = genes.set_index("gene").loc[span.index]
    out = pd.DataFrame(
        {
            "anc_gene": span.index,
            "chrom": span.chrom.to_numpy(),
            "start": span.start.to_numpy(),
            "end": span.end.to_numpy(),
            "strand": g.strand.to_numpy() * span.piece_strand.to_numpy(),
            "gene_name": g.symbol.to_numpy(),
            "gene_type": g.gene_type.to_numpy(),
            "copy": layer,
        }
    )
    return out, ex.drop(columns="piece_strand").assign(copy=layer)


def _novel_items(rng, genome: SpeciesGenome, n_genes: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lineage-specific genes (in the largest insertions) and CREs inside insertions.

    Items are placed at offsets within an insertion and converted to species coordinates
    with the insertion's orientation (an insertion may sit inside an inversion).
    """
    ins = genome.insertions.sort_values(["length", "novel"], ascending=[False, True]).reset_index(drop=True)
    k = np.arange(len(ins))
    has_gene = (k < n_genes) & (ins.length.to_numpy() >= 10_000)
    glen = np.where(has_gene, rng.integers(2_000, 5_000, size=len(ins)), 0)
    cursor = 800 + np.where(has_gene, glen + 1_500, 0)  # CREs start after the gene
    room = ins.length.to_numpy() - cursor
    n_cre = np.where(room > 4_000, 2, np.where(room > 1_200, 1, 0))
    n_cre[(~has_gene) & (rng.random(len(ins)) < 0.3)] = 0  # some insertions carry no element
    fwd = ins.strand.to_numpy() > 0

    def place(i, offset, length):
        return np.where(fwd[i], ins.start.to_numpy()[i] + offset, ins.end.to_numpy()[i] - offset - length)

    gi = np.flatnonzero(has_gene)
    gstart = place(gi, 800, glen[gi])
    genes = pd.DataFrame(
        {
            "chrom": ins.chrom.to_numpy()[gi],
            "start": gstart,
            "end": gstart + glen[gi],
            "strand": rng.choice([1, -1], size=len(gi)) * np.where(fwd[gi], 1, -1),
        }
    )
    ci = np.repeat(np.arange(len(ins)), n_cre)
    nth = concat_ranges(np.zeros(len(ins), np.int64), n_cre)
    cres = pd.DataFrame({"chrom": ins.chrom.to_numpy()[ci], "centre": place(ci, cursor[ci] + 600 + 2_000 * nth, 1)})
    return genes, cres


def _gene_ids(rng, species: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ensembl-like stable ids (not in genome order) and version numbers."""
    numbers = 100_000 + rng.permutation(n * 3)[:n]
    return np.char.add(ID_PREFIX[species][0], np.char.zfill(numbers.astype(str), 11)), rng.integers(1, 20, size=n)


def _in_duplication(dup: dict, chrom: pd.Series, start: pd.Series, end: pd.Series) -> np.ndarray:
    """Ancestral items wholly inside a duplicated region."""
    return ((chrom == dup["anc_chrom"]) & (start >= dup["start"]) & (end <= dup["end"])).to_numpy()


def _species_genes(rng, anc: Ancestor, genomes: dict[str, SpeciesGenome], dups: dict[str, dict], n_ls_genes: int):
    """Genes and exons of every species, plus the novel CREs found in insertions.

    kind ``duplicated``: the ancestral gene was duplicated in one lineage (one2many);
    ``duplicated_both``: in both, independently (many2many); ``duplicate_copy``: a new copy.
    """
    in_dup = {s: _in_duplication(d, anc.genes.chrom, anc.genes.start, anc.genes.end) for s, d in dups.items()}
    n_lineages = np.sum([np.zeros(len(anc.genes), int), *in_dup.values()], axis=0)
    dup_genes = set(anc.genes.gene[n_lineages >= 1])
    both_genes = set(anc.genes.gene[n_lineages >= 2])
    gene_tables, exon_tables, novel_cres = [], [], {}
    lost = {g for genome in genomes.values() for g in genome.structure.get("gene_loss", {}).get("genes", [])}
    for s, genome in genomes.items():
        keep = ~anc.genes.gene.isin(genome.structure.get("gene_loss", {}).get("genes", [])).to_numpy()
        g, ex = _map_genes(anc, genome, 0, keep)
        g["kind"] = np.where(
            g.anc_gene.str.startswith("gM"), "mito", np.where(g.anc_gene.isin(dup_genes), "duplicated", "shared")
        )
        g.loc[g.anc_gene.isin(both_genes).to_numpy(), "kind"] = "duplicated_both"
        g.loc[g.anc_gene.isin(lost).to_numpy(), "kind"] = "lost_in_other"
        gene_tables.append(g.assign(species=s))
        exon_tables.append(ex.assign(species=s))
        if s in dups:
            gc, exc = _map_genes(anc, genome, 1, in_dup[s])
            gene_tables.append(gc.assign(kind="duplicate_copy", gene_name=gc.gene_name + COPY_SUFFIX[s], species=s))
            exon_tables.append(exc.assign(species=s))
        ng, novel_cres[s] = _novel_items(rng, genome, n_ls_genes)
        ng = ng.assign(
            anc_gene=[f"{s}_ls{i}" for i in range(len(ng))],
            gene_type="protein_coding",
            kind="lineage_specific",
            copy=0,
            species=s,
        )
        gene_tables.append(ng)
    genes = pd.concat(gene_tables, ignore_index=True)
    # Symbols for lineage-specific genes, distinct from every other symbol.
    ls = genes.kind == "lineage_specific"
    pool = random_gene_symbols(rng, 2 * len(genes) + 50)
    genes.loc[ls, "gene_name"] = pool[~np.isin(pool, genes.gene_name[~ls])][: int(ls.sum())]
    ls_exons = make_exons(rng, genes[ls].rename(columns={"anc_gene": "gene"}).reset_index(drop=True))
    ls_exons = ls_exons.rename(columns={"gene": "anc_gene"}).assign(copy=0)
    ls_exons["species"] = ls_exons.anc_gene.map(genes[ls].set_index("anc_gene").species)
    exons = pd.concat(exon_tables + [ls_exons], ignore_index=True)

    ids = []
    for s in genomes:
        sel = genes.species == s
        gid, ver = _gene_ids(rng, s, int(sel.sum()))
        ids.append(pd.DataFrame({"gene_id": gid, "version": ver}, index=genes.index[sel]))
    genes = genes.join(pd.concat(ids))
    genes["tss"] = np.where(genes.strand > 0, genes.start, genes.end - 1)
    key = genes.set_index(["species", "anc_gene", "copy"]).gene_id
    exons["gene_id"] = key.reindex(pd.MultiIndex.from_arrays([exons.species, exons.anc_gene, exons["copy"]])).to_numpy()
    # Expression level: shared by orthologues (ancestral), with a mild species-specific shift.
    anc_level = pd.Series(
        rng.lognormal(0.0, 0.8, size=genes.anc_gene.nunique()), index=np.sort(genes.anc_gene.unique())
    )
    genes["expr_level"] = anc_level.loc[genes.anc_gene].to_numpy() * rng.lognormal(0.0, 0.2, size=len(genes))
    genes["is_tf"] = False
    return genes, exons, novel_cres


# --- CREs -----------------------------------------------------------------------------------


def _cre_table(
    rng,
    anc: Ancestor,
    genomes: dict[str, SpeciesGenome],
    dups: dict[str, dict],
    genes: pd.DataFrame,
    novel_cres: dict[str, pd.DataFrame],
) -> pd.DataFrame:
    """One row per element: ancestral CREs, copies made by each lineage's duplication (present
    in that lineage only), novel CREs and promoters of lineage-specific genes; coordinates per
    species and the truth class."""
    species = list(genomes)
    acres = anc.cres
    in_dup = {s: _in_duplication(d, acres.chrom, acres.centre, acres.centre + 1) for s, d in dups.items()}
    in_any = np.any([np.zeros(len(acres), bool), *in_dup.values()], axis=0)
    rows, copy_species = _ancestral_rows(acres, in_dup)
    for s, genome in genomes.items():
        rows[f"{s}_chrom"], rows[f"{s}_centre"] = _placed_in(genome, rows, copy_species == s)
    novel = [_novel_rows(s, species, genes, novel_cres[s]) for s in species]
    cres = pd.concat([rows, *novel], ignore_index=True)
    cres.insert(0, "cre", np.char.add("cre", np.char.zfill(np.arange(len(cres)).astype(str), 5)))
    cres["copy_of"] = np.where(cres.copy_of >= 0, cres.cre.to_numpy()[np.maximum(cres.copy_of, 0)], "")
    ambiguous = np.concatenate([in_any, np.ones(len(rows) - len(acres), bool), np.zeros(len(cres) - len(rows), bool)])
    cres["class"] = _truth_classes(rng, cres, species, ambiguous)
    cres["module"] = ""
    return cres


def _ancestral_rows(acres: pd.DataFrame, in_dup: dict[str, np.ndarray]) -> tuple[pd.DataFrame, np.ndarray]:
    """The ancestral CREs, then each lineage's copies of those inside its duplication; with
    the lineage that made each copy ('' for an original)."""
    rows = pd.DataFrame(
        {
            "anc_chrom": acres.chrom,
            "anc_centre": acres.centre,
            "kind": acres.kind,
            "anc_gene": acres.gene,
            "copy": 0,
            "novel_species": "",
            "copy_of": -1,
        }
    )
    copy_species = np.full(len(rows), "", dtype=object)
    for s, inside in in_dup.items():
        copies = rows.iloc[: len(acres)][inside].assign(copy=1, copy_of=np.flatnonzero(inside))
        rows = pd.concat([rows, copies], ignore_index=True)
        copy_species = np.concatenate([copy_species, np.full(len(copies), s, dtype=object)])
    return rows, copy_species


def _placed_in(genome: SpeciesGenome, rows: pd.DataFrame, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chromosome and centre of each ancestral row in one species ('' and -1 where absent): a
    copy exists only in the lineage whose duplication made it (``own``)."""
    layer = rows["copy"].to_numpy()
    c, p, _ = map_positions(genome.pieces, rows.anc_chrom.to_numpy(), rows.anc_centre.to_numpy(), 0)
    if own.any():
        cc, pc, _ = map_positions(genome.pieces, rows.anc_chrom.to_numpy(), rows.anc_centre.to_numpy(), 1)
        c, p = np.where(own, cc, c), np.where(own, pc, p)
    c = np.where((layer == 1) & ~own, "", c)  # a copy exists only where its duplication happened
    loss = genome.structure.get("gene_loss")
    deleted = np.zeros(len(rows), bool)
    if loss:  # elements inside the lineage-specific gene loss are gone with it
        deleted = (
            (rows.anc_chrom == loss["anc_chrom"]) & (rows.anc_centre >= loss["start"]) & (rows.anc_centre < loss["end"])
        ).to_numpy()
    if ((c == "") & (layer == 0) & ~deleted).any():
        raise RuntimeError("simulate: a CRE centre was lost in evolution (protection failed)")
    return c, np.where(c == "", -1, p)


def _novel_rows(s: str, species: list[str], genes: pd.DataFrame, novel_cres: pd.DataFrame) -> pd.DataFrame:
    """Promoters of ``s``'s lineage-specific genes and its novel distal CREs (in ``s`` only)."""
    ng = genes[(genes.species == s) & (genes.kind == "lineage_specific")]
    prom = pd.DataFrame(
        {"chrom": ng.chrom, "centre": ng.tss - 50 * ng.strand, "kind": "promoter", "anc_gene": ng.anc_gene}
    )
    both = pd.concat([prom, novel_cres.assign(kind="distal", anc_gene="")], ignore_index=True)
    t = pd.DataFrame(
        {
            "anc_chrom": "",
            "anc_centre": -1,
            "kind": both.kind,
            "anc_gene": both.anc_gene,
            "copy": 0,
            "novel_species": s,
            "copy_of": -1,
        }
    )
    for s2 in species:
        t[f"{s2}_chrom"] = both.chrom.to_numpy() if s2 == s else ""
        t[f"{s2}_centre"] = both.centre.to_numpy() if s2 == s else -1
    return t


def _truth_classes(rng, cres: pd.DataFrame, species: list[str], ambiguous: np.ndarray) -> np.ndarray:
    """conserved, <species>_sequence (novel, or the other's deleted), ambiguous (duplicated) and,
    drawn among conserved distal CREs, <species>_accessible."""
    klass = np.full(len(cres), "conserved", dtype=object)
    is_novel = cres.novel_species.to_numpy() != ""
    klass[is_novel] = (cres.novel_species + "_sequence").to_numpy()[is_novel]
    klass[ambiguous] = "ambiguous"
    for s in species:  # deleted with a lineage-specific gene loss: sequence of the other species only
        gone = (klass == "conserved") & (cres[f"{s}_chrom"].to_numpy() == "")
        others = [o for o in species if o != s]
        klass[gone] = f"{others[0]}_sequence"
    distal_cons = np.flatnonzero((klass == "conserved") & (cres.kind.to_numpy() == "distal"))
    draw = rng.random(len(distal_cons))
    f = SPECIES_ACCESSIBLE_FRACTION
    for i, s in enumerate(species):  # species-specific accessibility on conserved sequence
        klass[distal_cons[(draw >= 1 - f * (i + 1)) & (draw < 1 - f * i)]] = f"{s}_accessible"
    return klass


# --- links ----------------------------------------------------------------------------------


def pick_links(
    rng, cre_chrom, cre_pos, cre_idx, gene_chrom, gene_tss, gene_idx, max_links=3, window=MAX_LINK_DISTANCE
) -> pd.DataFrame:
    """1-3 target genes per CRE among genes with TSS within ``window``, nearer ones likelier."""
    pairs = []
    for chrom in np.unique(cre_chrom):
        gsel = np.flatnonzero(gene_chrom == chrom)
        if not len(gsel):
            continue
        order = gsel[np.argsort(gene_tss[gsel], kind="stable")]
        tss = gene_tss[order]
        csel = np.flatnonzero(cre_chrom == chrom)
        lo = np.searchsorted(tss, cre_pos[csel] - window, side="left")
        hi = np.searchsorted(tss, cre_pos[csel] + window, side="right")
        pairs.append(pd.DataFrame({"c": np.repeat(csel, hi - lo), "g": order[concat_ranges(lo, hi - lo)]}))
    pairs = pd.concat(pairs, ignore_index=True)
    dist = np.abs(gene_tss[pairs.g] - cre_pos[pairs.c])
    key = -dist / 40_000 + rng.gumbel(size=len(pairs))  # Gumbel top-k: sampling without replacement
    rank = pd.Series(key).groupby(pairs.c.to_numpy()).rank(ascending=False, method="first").to_numpy()
    n_links = rng.choice(np.arange(1, max_links + 1), p=[0.5, 0.35, 0.15], size=len(cre_pos))
    keep = rank <= n_links[pairs.c]
    return pd.DataFrame({"cre": cre_idx[pairs.c[keep]], "gene": gene_idx[pairs.g[keep]], "distance": dist[keep]})


def _links(rng, anc: Ancestor, cres: pd.DataFrame, genes: pd.DataFrame) -> pd.DataFrame:
    """Per species: promoter -> own gene, ancestral distal CREs -> the same genes in every
    species (chosen in ancestral coordinates), copies -> copied genes, novel CREs -> genes
    near them in their species. Links farther than 150 kb in a species are dropped there."""
    species = list(genes.species.unique())
    distal_anc = np.flatnonzero(
        (cres.novel_species == "").to_numpy() & (cres.kind == "distal").to_numpy() & (cres["copy"] == 0).to_numpy()
    )
    nuclear = anc.genes[~anc.genes.gene.str.startswith("gM")]
    anc_links = pick_links(
        rng,
        cres.anc_chrom.to_numpy()[distal_anc],
        cres.anc_centre.to_numpy()[distal_anc],
        distal_anc,
        nuclear.chrom.to_numpy(),
        np.where(nuclear.strand > 0, nuclear.start, nuclear.end - 1),
        nuclear.gene.to_numpy(),
        window=MAX_LINK_DISTANCE - 25_000,
    )  # room for insertions
    anc_links = anc_links.assign(effect=rng.uniform(0.5, 1.5, size=len(anc_links)), copy=0)
    copy_rows = np.flatnonzero(cres["copy"].to_numpy() == 1)
    # original row -> its copy rows (one per lineage that duplicated it), in copy order
    copy_of_row = pd.DataFrame(
        {"cre": pd.Index(cres.cre).get_indexer(cres.copy_of.to_numpy()[copy_rows]), "copy_cre": copy_rows}
    )
    copied_genes = set(genes.anc_gene[genes.kind == "duplicate_copy"])
    copy_links = anc_links[anc_links.cre.isin(copy_of_row.cre) & anc_links.gene.isin(copied_genes)]
    copy_links = copy_links.merge(copy_of_row, on="cre", how="left", sort=False)
    copy_links = copy_links.assign(cre=copy_links.pop("copy_cre").to_numpy(), copy=1)
    prom = np.flatnonzero(cres.kind.to_numpy() == "promoter")
    prom_links = pd.DataFrame(
        {
            "cre": prom,
            "gene": cres.anc_gene.to_numpy()[prom],
            "copy": cres["copy"].to_numpy()[prom],
            "effect": PROMOTER_EFFECT,
        }
    )
    gene_key = genes.set_index(["species", "anc_gene", "copy"]).gene_id
    tables = []
    for s in species:
        present = cres[f"{s}_chrom"].to_numpy() != ""
        sl = pd.concat([anc_links, copy_links, prom_links], ignore_index=True)
        sl = sl[present[sl.cre]]
        sl["gene_id"] = gene_key.reindex(
            pd.MultiIndex.from_arrays([np.full(len(sl), s), sl.gene, sl["copy"]])
        ).to_numpy()
        sl = sl[sl.gene_id.notna()]
        sg = genes[genes.species == s]
        novel = np.flatnonzero((cres.novel_species == s).to_numpy() & (cres.kind == "distal").to_numpy())
        if len(novel):
            nl = pick_links(
                rng,
                cres[f"{s}_chrom"].to_numpy()[novel],
                cres[f"{s}_centre"].to_numpy()[novel],
                novel,
                sg.chrom.to_numpy(),
                sg.tss.to_numpy(),
                sg.gene_id.to_numpy(),
            )
            sl = pd.concat(
                [sl, nl.rename(columns={"gene": "gene_id"}).assign(effect=rng.uniform(0.5, 1.5, size=len(nl)))]
            )
        tss = sg.set_index("gene_id").tss
        sl["distance"] = np.abs(tss.loc[sl.gene_id].to_numpy() - cres[f"{s}_centre"].to_numpy()[sl.cre])
        tables.append(sl[sl.distance <= MAX_LINK_DISTANCE][["cre", "gene_id", "effect", "distance"]].assign(species=s))
    return pd.concat(tables, ignore_index=True)


# --- activity and modules -------------------------------------------------------------------


def _activity(rng, cres: pd.DataFrame, cell_types: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """CRE x cell-type activity per species: 1-3 active types per distal CRE, promoters
    everywhere, species-accessible CREs silent in the other species."""
    n = len(cres)
    shared = list(SHARED_CELL_TYPES)
    n_active = rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15], size=n)
    rank = rng.random((n, len(shared))).argsort(axis=1).argsort(axis=1)
    base = (rank < n_active[:, None]) * rng.lognormal(0.0, 0.4, size=(n, 1))
    # Sibling types (two excitatory, two inhibitory neuron types) share most elements of
    # their lineage, so they are harder to tell apart than unrelated types, as in real data.
    for a, b in SIBLING_TYPES:
        ia, ib = shared.index(a), shared.index(b)
        lineage = (np.maximum(base[:, ia], base[:, ib]) > 0) & (rng.random(n) < 0.6)
        base[lineage, ia] = base[lineage, ib] = np.maximum(base[lineage, ia], base[lineage, ib])
    broad = rng.random(n) < 0.1
    base[broad] = np.maximum(base[broad], 0.3)
    is_prom = cres.kind.to_numpy() == "promoter"
    base[is_prom] = 0.9 * rng.lognormal(0.0, 0.2, size=(int(is_prom.sum()), 1))
    species = list(cell_types)
    activity = {}
    for s in species:
        act = base * rng.lognormal(0.0, 0.15, size=base.shape)
        if len(cell_types[s]) > len(shared):  # the species-specific type resembles upper-layer neurons...
            act = np.column_stack([act, 0.8 * act[:, shared.index("ExN_upper")]])
            own = np.flatnonzero(cres["class"].to_numpy() == f"{s}_accessible")
            pick = own[rng.random(len(own)) < 0.3]
            act[pick] = 0.0  # ...and has elements of its own
            act[pick, -1] = 1.5
        act[cres[f"{s}_chrom"].to_numpy() == ""] = np.nan
        act[np.isin(cres["class"].to_numpy(), [f"{o}_accessible" for o in species if o != s])] = 0.0
        activity[s] = act
    return activity


# The demo's planted matrices: the longest of the simulator's JASPAR set first (short
# matrices such as SOX2's 7 bp are hard to find in 501 bp at FIMO's p value).
DEMO_JASPAR = sorted(JASPAR_COUNTS, key=lambda m: -len(jaspar_pwm(m)))


def _plant_modules(rng, cres, genes, links, activity, cell_types, n_per_species: int, size: int, realistic=False):
    """Species-specific modules: conserved distal CREs that gain activity in one species in
    one or two cell types, driving their targets there; each has a TF and a motif.

    ``realistic``: the motif is a real JASPAR matrix (the TF gene takes its name), module
    elements are open with probability MODULE_OPEN, and background elsewhere.
    """
    species = list(cell_types)
    shared = states.shared_types() if realistic else list(SHARED_CELL_TYPES)
    jaspar_ids = list(rng.permutation(list(JASPAR_COUNTS))) if realistic else []
    linked = links[links.species == species[0]].cre
    candidates = np.flatnonzero((cres["class"].to_numpy() == "conserved") & (cres.kind.to_numpy() == "distal"))
    candidates = rng.permutation(candidates[np.isin(candidates, linked)])
    tf_pool = genes[
        (genes.species == species[0]) & (genes.kind == "shared") & (genes.gene_type == "protein_coding")
    ].anc_gene
    tfs = rng.choice(tf_pool.to_numpy(), size=n_per_species * len(species), replace=False)
    motifs, rows = {}, []
    m = 0
    for s in species:
        for k in range(n_per_species):
            mtypes = list(rng.choice(shared, size=1 + k % 2, replace=False))
            mcres = np.sort(candidates[m * size : (m + 1) * size])
            mid = f"{s}_module{k + 1}"
            if realistic:
                motif = jaspar_ids[m]
                motifs[motif] = jaspar_pwm(motif)
                genes.loc[genes.anc_gene == tfs[m], "gene_name"] = jaspar_name(motif).upper()
            else:
                # The demo plants a real JASPAR matrix too (users scan JASPAR, so the planted
                # motif can be named); the synthetic one is still drawn so that the demo's
                # annotation stream, hence its cells and counts, stays as it was.
                random_motif(rng, int(rng.integers(10, 15)))
                motif = DEMO_JASPAR[m % len(DEMO_JASPAR)]
                motifs[motif] = jaspar_pwm(motif)
                genes.loc[genes.anc_gene == tfs[m], "gene_name"] = jaspar_name(motif).upper()
            cres.loc[mcres, "class"] = f"{s}_accessible"
            cres.loc[mcres, "module"] = mid
            for o in species:
                activity[o][mcres] = 0.02 if realistic else 0.0
            cols = [cell_types[s].index(t) for t in mtypes]
            if realistic:
                cres.loc[mcres, "branch_event"] = f"gain_{s}"
                activity[s][np.ix_(mcres, cols)] = states.MODULE_OPEN * rng.uniform(0.85, 1.15, (len(mcres), len(cols)))
            else:
                activity[s][np.ix_(mcres, cols)] = MODULE_ACTIVITY * rng.lognormal(
                    0.0, 0.2, size=(len(mcres), len(cols))
                )
            targets = links[(links.species == s) & links.cre.isin(mcres)]
            links.loc[targets.index, "effect"] = MODULE_EFFECT
            tf = genes[(genes.species == s) & (genes.anc_gene == tfs[m])].iloc[0]
            rows.append(
                {
                    "module": mid,
                    "species": s,
                    "cell_types": ",".join(mtypes),
                    "tf_gene_id": tf.gene_id,
                    "tf_name": tf.gene_name,
                    "motif": motif,
                    "cres": ",".join(cres.cre.to_numpy()[mcres]),
                    "genes": ",".join(sorted(targets.gene_id.unique())),
                }
            )
            m += 1
    if realistic:  # the other JASPAR matrices are decoys no module uses
        for motif in jaspar_ids[m:]:
            motifs[motif] = jaspar_pwm(motif)
    else:
        for extra in range(4):  # decoy motifs that no module uses
            motifs[f"SIMM{m + extra + 1:03d}"] = random_motif(rng, int(rng.integers(10, 15)))
    modules = pd.DataFrame(rows)
    if len(modules):
        modules.insert(modules.columns.get_loc("motif") + 1, "motif_name", [jaspar_name(x) for x in modules.motif])
    genes["is_tf"] = genes.anc_gene.isin(tfs) & (genes.kind == "shared")
    return modules, motifs


def _orthologs(rng, genes: pd.DataFrame, a: str, b: str, realistic: bool = False) -> pd.DataFrame:
    """Gene pairs sharing an ancestral gene (every copy with every copy); types from the
    number of partners.

    Textbook: every one2many pair is low confidence. ``realistic``, as Ensembl's whole-genome
    alignment and gene-order scores judge a duplicated family: the pair of originals (the
    positional orthologues) is high confidence, a pair with a copy is low confidence and
    2 % less identical per copy.
    """
    cols = ["anc_gene", "gene_id", "copy"]
    ga = genes[(genes.species == a) & (genes.kind != "lineage_specific")][cols]
    gb = genes[(genes.species == b) & (genes.kind != "lineage_specific")][cols]
    pairs = ga.merge(gb, on="anc_gene", suffixes=("_a", "_b"))
    n_a = pairs.groupby("anc_gene").gene_id_a.transform("nunique")
    n_b = pairs.groupby("anc_gene").gene_id_b.transform("nunique")
    kind = np.where((n_a > 1) & (n_b > 1), "many2many", np.where((n_a > 1) | (n_b > 1), "one2many", "one2one"))
    pid = np.round(rng.uniform(86, 99.8, size=len(pairs)), 4)
    n_copies = (pairs.copy_a + pairs.copy_b).to_numpy()
    if realistic:
        pid = np.round(pid - 2.0 * n_copies, 4)
    pid_query = np.round(np.clip(pid + rng.normal(0, 0.8, size=len(pairs)), 80, 100), 4)
    low = rng.random(len(pairs)) < 0.06
    confidence = np.where(low | (kind != "one2one"), 0, 1)
    if realistic:
        confidence = np.where(low | (n_copies > 0), 0, 1)
    return pd.DataFrame(
        {
            "gene_a": pairs.gene_id_a,
            "gene_b": pairs.gene_id_b,
            "homology_type": np.char.add("ortholog_", kind),
            "pid_target": pid,
            "pid_query": pid_query,
            "confidence": confidence,
        }
    )


def annotate(rng: np.random.Generator, anc: Ancestor, genomes: dict[str, SpeciesGenome], preset: Preset) -> Annotation:
    """Build every species' annotation and its truth from the ancestor and the evolved genomes."""
    species = list(genomes)
    realistic = preset.model == "realistic"
    cell_types = {s: cell_types_of(s, realistic) for s in species}
    dups = {s: g.structure["duplication"] for s, g in genomes.items() if "duplication" in g.structure}
    genes, exons, novel_cres = _species_genes(rng, anc, genomes, dups, 1 if preset.name == "tiny" else 2)
    cres = _cre_table(rng, anc, genomes, dups, genes, novel_cres)
    links = _links(rng, anc, cres, genes)
    if realistic:
        activity, cres["branch_event"] = states.open_probabilities(rng, cres, cell_types)
    else:
        activity = _activity(rng, cres, cell_types)
    modules, motifs = _plant_modules(
        rng, cres, genes, links, activity, cell_types, preset.n_modules_per_species, preset.module_size, realistic
    )
    # Real macaque annotations leave some genes without a symbol (never a TF or a mito gene).
    unnamed = (genes.species == "macaque") & (genes.kind == "shared") & ~genes.is_tf & (rng.random(len(genes)) < 0.03)
    genes.loc[unnamed, "gene_name"] = ""
    orthologs = _orthologs(rng, genes, species[0], species[1], realistic)
    motif_names = {m: jaspar_name(m) for m in motifs if m in JASPAR_COUNTS}
    ann = Annotation(species, cell_types, genes, exons, cres, activity, links, modules, orthologs, motifs, motif_names)
    if realistic:
        ann.state_model = states.build_state_model(rng, ann, activity)
    return ann
