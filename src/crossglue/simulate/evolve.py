"""Evolve the ancestral genome into one species: indels, insertions, deletions, rearrangements.

A species genome is a table of *pieces* in species order; each piece is either a stretch of
ancestral sequence (``anc_chrom``, ``anc_start``, ``anc_end``, orientation ``strand``) or
novel sequence (``novel`` id, no ancestral coordinates). Orthology between two species and
every coordinate of genes and elements follow from the pieces exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crossglue.simulate.ancestor import Ancestor
from crossglue.simulate.intervals import free_mask


# Which ancestral chromosomes make each species chromosome (human chr2 is a fusion).
def karyotype(species: str, anc_chroms: list[str], renumber: bool = False) -> dict[str, list[str]]:
    """Species chromosome -> ancestral chromosomes joined end to end (in that order).

    ``renumber`` numbers non-human chromosomes in reverse ancestral order (chr1 of macaque is
    not homologous to human chr1), as real karyotypes are numbered by size, independently.
    """
    out: dict[str, list[str]] = {}
    nuclear = [a for a in anc_chroms if a != "ancM"]
    for anc in anc_chroms:
        name = "chrM" if anc == "ancM" else "chr" + anc[3:]
        if species == "human" and anc in ("anc2a", "anc2b"):
            name = "chr2"
        elif renumber and species != "human" and anc != "ancM":
            name = f"chr{len(nuclear) - nuclear.index(anc)}"
        out.setdefault(name, []).append(anc)
    if renumber:
        out = dict(sorted(out.items(), key=lambda kv: (kv[0] == "chrM", int(kv[0][3:]) if kv[0] != "chrM" else 0)))
    return out


@dataclass
class SpeciesGenome:
    """A species' pieces, chromosome sizes and lineage-specific insertions."""

    species: str
    pieces: pd.DataFrame  # chrom, start, end, anc_chrom, anc_start, anc_end, strand, layer, novel, key
    chrom_sizes: dict[str, int]
    insertions: pd.DataFrame  # novel, length (large lineage-specific insertions only)
    structure: dict = field(default_factory=dict)  # inversion / duplication / fusion descriptions


def _free_points(rng, chrom, length, protected, n, span=None, tries=20):
    """``n`` random positions on ``chrom`` whose [pos, pos+span] avoids ``protected``.

    ``span`` is a function drawing that many lengths (None: single points).
    """
    k = max(4 * n, 50) * tries
    pos = rng.integers(0, length, size=k)
    sp = None if span is None else np.asarray(span(k), dtype=np.int64)
    ok = free_mask(pos, np.full(k, chrom, dtype=object), protected, sp)
    return pos[ok][:n] if span is None else (pos[ok][:n], sp[ok][:n])


def _choose_duplication(rng, anc: Ancestor, protected: pd.DataFrame, chrom: str) -> tuple[int, int]:
    """A 10-70 kb source region holding a whole gene and at least one distal CRE."""
    blocks = protected[protected.chrom == chrom].reset_index(drop=True)
    distal = anc.cres[(anc.cres.kind == "distal") & (anc.cres.chrom == chrom)].centre.to_numpy()
    genes = anc.genes[anc.genes.chrom == chrom]
    order = rng.permutation(len(genes))
    for gi in order:
        g = genes.iloc[gi]
        b = int(np.searchsorted(blocks.start.to_numpy(), g.start, side="right") - 1)
        if b <= 0 or b >= len(blocks) - 1:
            continue
        ps, pe = blocks.start[b], blocks.end[b]
        has_cre = ((distal > ps) & (distal < pe)).any()
        gap_before, gap_after = ps - blocks.end[b - 1], blocks.start[b + 1] - pe
        if has_cre and 10_000 <= pe - ps <= 70_000 and gap_before > 400 and gap_after > 400:
            s = int(rng.integers(blocks.end[b - 1] + 100, ps - 100))
            e = int(rng.integers(pe + 100, blocks.start[b + 1] - 100))
            return s, e
    raise RuntimeError("simulate: no gene fit for the segmental duplication; enlarge the genome")


def _choose_family_duplication(rng, anc: Ancestor, protected: pd.DataFrame, family: dict) -> tuple[int, int]:
    """An independent duplication of the gene family another lineage duplicated (``family``:
    its duplication, ancestral coordinates), extended over the next protected block holding a
    gene, with its own breakpoints: the family becomes many2many, that neighbour one2many.
    """
    chrom = family["anc_chrom"]
    blocks = protected[protected.chrom == chrom].reset_index(drop=True)
    bs, be = blocks.start.to_numpy(), blocks.end.to_numpy()
    inside = np.flatnonzero((bs >= family["start"]) & (be <= family["end"]))
    first, last = int(inside[0]), int(inside[-1])
    gene_block = np.searchsorted(bs, anc.genes.start[anc.genes.chrom == chrom].to_numpy(), side="right") - 1
    has_gene = np.zeros(len(blocks), bool)
    has_gene[gene_block[gene_block >= 0]] = True
    for step in (1, -1):  # the neighbour after the family, else the one before it
        k = last + 1 if step > 0 else first - 1
        while 0 < k < len(blocks) - 1 and not has_gene[k]:
            k += step
        lo, hi = min(first, k), max(last, k)
        if not (0 < lo and hi < len(blocks) - 1 and has_gene[k]):
            continue
        if be[hi] - bs[lo] <= 120_000 and bs[lo] - be[lo - 1] > 400 and bs[hi + 1] - be[hi] > 400:
            s = int(rng.integers(be[lo - 1] + 100, bs[lo] - 100))
            e = int(rng.integers(be[hi] + 100, bs[hi + 1] - 100))
            return s, e
    raise RuntimeError("simulate: no neighbouring gene fit for the many-to-many duplication; enlarge the genome")


def _choose_gene_loss(rng, anc: Ancestor, protected: pd.DataFrame, chrom: str) -> dict:
    """A deletion removing one whole gene (with its promoter) and nothing else protected."""
    blocks = protected[protected.chrom == chrom].reset_index(drop=True)
    genes = anc.genes[anc.genes.chrom == chrom]
    for gi in rng.permutation(len(genes)):
        g = genes.iloc[gi]
        b = int(np.searchsorted(blocks.start.to_numpy(), g.start, side="right") - 1)
        if b <= 0 or b >= len(blocks) - 1 or blocks.end[b] < g.end:
            continue
        ps, pe = blocks.start[b], blocks.end[b]
        if pe - ps <= 40_000 and ps - blocks.end[b - 1] > 400 and blocks.start[b + 1] - pe > 400:
            lost = anc.genes[(anc.genes.chrom == chrom) & (anc.genes.start >= ps) & (anc.genes.end <= pe)]
            s = int(rng.integers(blocks.end[b - 1] + 100, ps - 50))
            e = int(rng.integers(pe + 50, blocks.start[b + 1] - 100))
            return {"anc_chrom": chrom, "start": s, "end": e, "genes": list(lost.gene)}
    raise RuntimeError("simulate: no gene fit for the lineage-specific gene loss; enlarge the genome")


def plan_events(
    rng: np.random.Generator,
    anc: Ancestor,
    species: str,
    n_insertions: int,
    novel_start: int,
    realistic: bool = False,
    family: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Events on ancestral coordinates: (anc_chrom, start, end, ins_len, novel, kind) and structure.

    ``realistic`` adds a second inversion per lineage and, in macaque, the loss of one gene.
    ``family`` (another lineage's duplication) makes this lineage duplicate the same genes too.
    """
    small_prot = anc.protected(exon_pad=20, cre_pad=30, gene_pad=None)
    large_prot = anc.protected(exon_pad=20, cre_pad=1_000, gene_pad=2_000)
    nuclear = [c for c in anc.chrom_lengths if c != "ancM"]
    structure, split_points = _structural_events(rng, anc, species, large_prot, nuclear, realistic, family)
    rows = []
    struct_iv = pd.DataFrame([{"chrom": c, "start": q - 300, "end": q + 300} for c, q in split_points])
    if "gene_loss" in structure:
        loss = structure["gene_loss"]
        rows.append(
            pd.DataFrame(
                {"anc_chrom": [loss["anc_chrom"]], "start": [loss["start"]], "end": [loss["end"]], "ins_len": 0}
                | {"kind": ["gene_loss"]}
            )
        )
        struct_iv = pd.concat(
            [
                struct_iv,
                pd.DataFrame(
                    {"chrom": [loss["anc_chrom"]], "start": [loss["start"] - 300], "end": [loss["end"] + 300]}
                ),
            ],
            ignore_index=True,
        )
    rows += _indel_events(rng, anc, nuclear, small_prot, large_prot)
    rows += _insertion_events(rng, anc, nuclear, large_prot, n_insertions)
    rows.append(
        pd.DataFrame(
            {
                "anc_chrom": [c for c, _ in split_points],
                "start": [q for _, q in split_points],
                "end": [q for _, q in split_points],
                "ins_len": 0,
                "kind": "split",
            }
        )
    )
    events = _without_conflicts(pd.concat(rows, ignore_index=True), struct_iv)
    has_novel = events.ins_len.to_numpy() > 0
    events["novel"] = -1
    events.loc[has_novel, "novel"] = np.arange(novel_start, novel_start + has_novel.sum())
    large = events.loc[events.kind == "insertion", ["novel", "ins_len", "anc_chrom", "start"]]
    insertions = large.rename(columns={"ins_len": "length", "start": "anc_pos"}).reset_index(drop=True)
    return events, insertions, structure


def _structural_events(
    rng: np.random.Generator,
    anc: Ancestor,
    species: str,
    large_prot: pd.DataFrame,
    nuclear: list[str],
    realistic: bool,
    family: dict | None,
) -> tuple[dict, list[tuple[str, int]]]:
    """The lineage's duplication, inversion(s) and (realistic macaque) gene loss, drawn in
    that order; with the (chrom, pos) that must stay piece boundaries."""
    structure: dict = {}
    split_points = []
    if species == "human":  # a segmental duplication of ancestral sequence, copied elsewhere
        src_chrom = nuclear[-1]
        s, e = _choose_duplication(rng, anc, large_prot, src_chrom)
        tgt_chrom = nuclear[1]
        p = int(_free_points(rng, tgt_chrom, anc.chrom_lengths[tgt_chrom], large_prot, 1)[0])
        structure["duplication"] = {
            "anc_chrom": src_chrom,
            "start": s,
            "end": e,
            "target_anc_chrom": tgt_chrom,
            "target": p,
        }
        split_points += [(src_chrom, s), (src_chrom, e), (tgt_chrom, p)]
    elif family is not None:  # the same family duplicated again, independently, to another chromosome
        s, e = _choose_family_duplication(rng, anc, large_prot, family)
        tgt_chrom = nuclear[0]
        p = int(_free_points(rng, tgt_chrom, anc.chrom_lengths[tgt_chrom], large_prot, 1)[0])
        structure["duplication"] = {
            "anc_chrom": family["anc_chrom"],
            "start": s,
            "end": e,
            "target_anc_chrom": tgt_chrom,
            "target": p,
        }
        split_points += [(family["anc_chrom"], s), (family["anc_chrom"], e), (tgt_chrom, p)]
    # One inversion per species, on different chromosomes, clear of the duplication.
    inv_chrom = nuclear[0] if species == "human" else nuclear[2 % len(nuclear)]
    length = anc.chrom_lengths[inv_chrom]
    inversion = _choose_inversion(rng, inv_chrom, length, large_prot, split_points, int(0.08 * length), None)
    if inversion is None:
        raise RuntimeError("simulate: no room for the inversion; enlarge the genome")
    structure["inversion"] = inversion
    split_points += [(inv_chrom, inversion["start"]), (inv_chrom, inversion["end"])]
    if realistic:  # a second inversion per lineage, on another chromosome
        inv2_chrom = nuclear[3 % len(nuclear)] if species == "human" else nuclear[0]
        length = anc.chrom_lengths[inv2_chrom]
        inversion = _choose_inversion(
            rng, inv2_chrom, length, large_prot, split_points, int(0.05 * length), int(0.12 * length)
        )
        if inversion is not None:
            structure["inversion2"] = inversion
            split_points += [(inv2_chrom, inversion["start"]), (inv2_chrom, inversion["end"])]
    if realistic and species != "human":
        structure["gene_loss"] = _choose_gene_loss(rng, anc, large_prot, nuclear[1])
    return structure, split_points


def _choose_inversion(
    rng: np.random.Generator,
    chrom: str,
    length: int,
    large_prot: pd.DataFrame,
    split_points: list[tuple[str, int]],
    min_len: int,
    max_len: int | None,
) -> dict | None:
    """An inversion longer than ``min_len`` (and shorter than ``max_len``) between free points,
    5 kb clear of the breakpoints already placed; None when there is no room."""
    cands = np.sort(_free_points(rng, chrom, length, large_prot, 400))
    busy = np.array([q for c, q in split_points if c == chrom] or [-1])
    for a in rng.permutation(cands):
        fits = cands > a + min_len
        if max_len is not None:
            fits &= cands < a + max_len
        later = cands[fits]
        if len(later) and not ((busy > a - 5_000) & (busy < later[0] + 5_000)).any():
            return {"anc_chrom": chrom, "start": int(a), "end": int(later[0])}
    return None


def _indel_events(
    rng: np.random.Generator, anc: Ancestor, nuclear: list[str], small_prot: pd.DataFrame, large_prot: pd.DataFrame
) -> list[pd.DataFrame]:
    """Per chromosome: small indels (about one per 1.5 kb) and larger deletions (one per 150 kb)."""
    rows = []
    for chrom in nuclear:
        length = anc.chrom_lengths[chrom]
        # Small indels, about one per 1.5 kb; lengths 1-30 bp, mostly short.
        n_small = length // 1_500
        pos, ln = _free_points(
            rng, chrom, length, small_prot, n_small, span=lambda k: np.minimum(rng.geometric(0.25, size=k), 30)
        )
        is_ins = rng.random(len(pos)) < 0.5
        rows.append(
            pd.DataFrame(
                {
                    "anc_chrom": chrom,
                    "start": pos,
                    "end": np.where(is_ins, pos, pos + ln),
                    "ins_len": np.where(is_ins, ln, 0),
                    "kind": np.where(is_ins, "small_ins", "small_del"),
                }
            )
        )
        # Larger deletions, 0.3-3 kb, about one per 150 kb, away from genes and CREs.
        n_del = max(1, length // 150_000)
        pos, dl = _free_points(rng, chrom, length, large_prot, n_del, span=lambda k: rng.integers(300, 3_000, size=k))
        rows.append(
            pd.DataFrame({"anc_chrom": chrom, "start": pos, "end": pos + dl, "ins_len": 0, "kind": "large_del"})
        )
    return rows


def _insertion_events(
    rng: np.random.Generator, anc: Ancestor, nuclear: list[str], large_prot: pd.DataFrame, n_insertions: int
) -> list[pd.DataFrame]:
    """Lineage-specific insertions (1-20 kb, half of them 10 kb or more: room for a gene),
    spread over the nuclear chromosomes, at least one on each while there are enough."""
    per_chrom = np.bincount(rng.integers(0, len(nuclear), size=n_insertions), minlength=len(nuclear))
    per_chrom[: min(len(nuclear), n_insertions)] = np.maximum(per_chrom[: min(len(nuclear), n_insertions)], 1)
    rows = []
    for chrom, n in zip(nuclear, per_chrom, strict=True):
        if n == 0:
            continue
        pos = _free_points(rng, chrom, anc.chrom_lengths[chrom], large_prot, int(n))
        il = np.exp(rng.uniform(np.log(1_000), np.log(20_000), size=len(pos))).astype(np.int64)
        big = max(1, len(il) // 2)
        il[:big] = rng.integers(10_000, 20_000, size=big)[: len(il[:big])]  # room for a gene
        rows.append(pd.DataFrame({"anc_chrom": chrom, "start": pos, "end": pos, "ins_len": il, "kind": "insertion"}))
    return rows


def _without_conflicts(events: pd.DataFrame, struct_iv: pd.DataFrame) -> pd.DataFrame:
    """Drop ordinary events near structural breakpoints, then any event overlapping an earlier one."""
    near = (
        ~free_mask(
            events.start.to_numpy(),
            events.anc_chrom.to_numpy().astype(object),
            struct_iv,
            (events.end - events.start).to_numpy(),
        )
        if len(struct_iv)
        else np.zeros(len(events), bool)
    )
    events = events[~near | events.kind.isin(["split", "gene_loss"]).to_numpy()]
    events = events.sort_values(["anc_chrom", "start", "end"], kind="stable").reset_index(drop=True)
    prev_end = events.groupby("anc_chrom")["end"].transform(lambda e: e.cummax().shift(1)).fillna(-1)
    return events[(events.start > prev_end) | (events.kind == "split")].reset_index(drop=True)


def _pieces_of_chrom(chrom: str, length: int, ev: pd.DataFrame) -> pd.DataFrame:
    """Ancestral stretches between events, interleaved with novel insertions (vectorised)."""
    n = len(ev)
    starts, ends = ev.start.to_numpy(), ev.end.to_numpy()
    anc_lo = np.concatenate([[0], ends])
    anc_hi = np.concatenate([starts, [length]])
    anc = pd.DataFrame(
        {
            "anc_chrom": chrom,
            "anc_start": anc_lo,
            "anc_end": anc_hi,
            "length": anc_hi - anc_lo,
            "novel": -1,
            "key": anc_lo,
            "order": 2 * np.arange(n + 1),
        }
    )
    ins = ev.ins_len.to_numpy() > 0
    nov = pd.DataFrame(
        {
            "anc_chrom": chrom,
            "anc_start": -1,
            "anc_end": -1,
            "length": ev.ins_len.to_numpy()[ins],
            "novel": ev.novel.to_numpy()[ins],
            "key": starts[ins],
            "order": 2 * np.flatnonzero(ins) + 1,
        }
    )
    out = pd.concat([anc, nov], ignore_index=True).sort_values("order", kind="stable")
    out = out[out.length > 0].drop(columns="order").reset_index(drop=True)
    out["strand"] = 1
    out["layer"] = 0
    return out


def evolve(
    rng: np.random.Generator,
    anc: Ancestor,
    species: str,
    n_insertions: int,
    novel_start: int = 0,
    realistic: bool = False,
    family: dict | None = None,
) -> SpeciesGenome:
    """Apply this species' events to the ancestor and lay its chromosomes out.

    ``family``: another lineage's duplication, duplicated here too (many2many orthologues).
    """
    events, insertions, structure = plan_events(rng, anc, species, n_insertions, novel_start, realistic, family)
    per_anc = {c: _pieces_of_chrom(c, L, events[events.anc_chrom == c]) for c, L in anc.chrom_lengths.items()}
    _rearrange(per_anc, structure)
    kar = karyotype(species, list(anc.chrom_lengths), renumber=realistic)
    pieces, sizes = _lay_out(per_anc, kar, realistic)
    structure["fusion"] = {c: parts for c, parts in kar.items() if len(parts) > 1}
    _record_landings(pieces, structure)
    # Where each lineage-specific insertion landed in this species.
    nov = pieces[pieces.novel >= 0][["novel", "chrom", "start", "end", "strand", "layer"]]
    nov = nov[nov.layer == 0].drop(columns="layer")
    insertions = insertions.merge(nov, on="novel", how="left")
    return SpeciesGenome(species, pieces, sizes, insertions, structure)


def _rearrange(per_anc: dict[str, pd.DataFrame], structure: dict) -> None:
    """Flip the inverted stretches and insert the duplicated copy (layer 1) at its target, in place."""
    for inversion in (structure.get("inversion"), structure.get("inversion2")):
        if not inversion:
            continue
        p = per_anc[inversion["anc_chrom"]]
        inside = ((p.key >= inversion["start"]) & (p.key < inversion["end"])).to_numpy()
        idx = np.flatnonzero(inside)
        flipped = p.iloc[idx[::-1]].assign(strand=-p.strand.to_numpy()[idx[::-1]])
        per_anc[inversion["anc_chrom"]] = pd.concat(
            [p.iloc[: idx[0]], flipped, p.iloc[idx[-1] + 1 :]], ignore_index=True
        )
    dup = structure.get("duplication")
    if dup:
        src = per_anc[dup["anc_chrom"]]
        copy = src[((src.key >= dup["start"]) & (src.key < dup["end"])).to_numpy()].assign(layer=1)
        tgt = per_anc[dup["target_anc_chrom"]]
        cut = int(np.searchsorted(tgt.key.to_numpy(), dup["target"], side="left"))
        copy = copy.assign(key=dup["target"])
        per_anc[dup["target_anc_chrom"]] = pd.concat([tgt.iloc[:cut], copy, tgt.iloc[cut:]], ignore_index=True)


def _lay_out(
    per_anc: dict[str, pd.DataFrame], kar: dict[str, list[str]], realistic: bool
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The species' chromosomes as consecutive pieces (start, end in its coordinates) and their sizes."""
    chrom_tables = []
    sizes = {}
    for chrom, parts in kar.items():
        t = pd.concat([per_anc[a] for a in parts], ignore_index=True)
        t.insert(0, "chrom", chrom)
        ends = np.cumsum(t.length.to_numpy())
        t.insert(1, "start", ends - t.length.to_numpy())
        t.insert(2, "end", ends)
        sizes[chrom] = int(ends[-1])
        chrom_tables.append(t)
    pieces = pd.concat(chrom_tables, ignore_index=True)
    # Nuclear chromosomes first (natural order), chrM last, as UCSC chrom.sizes usually list them.
    order = sorted(sizes, key=lambda c: (c == "chrM", len(c.rstrip("ab")), c))
    if realistic:
        order = list(kar)
    sizes = {c: sizes[c] for c in order}
    pieces["chrom_rank"] = pieces.chrom.map({c: i for i, c in enumerate(order)})
    pieces = (
        pieces.sort_values(["chrom_rank", "start"], kind="stable").drop(columns="chrom_rank").reset_index(drop=True)
    )
    return pieces, sizes


def _record_landings(pieces: pd.DataFrame, structure: dict) -> None:
    """Where the rearranged stretches landed, in this species' coordinates (added to ``structure``)."""
    for inv in (structure.get("inversion"), structure.get("inversion2")):
        if inv:
            flipped = pieces[(pieces.strand < 0) & (pieces.layer == 0) & (pieces.anc_chrom == inv["anc_chrom"])]
            inv.update(
                chrom=flipped.chrom.iloc[0], species_start=int(flipped.start.min()), species_end=int(flipped.end.max())
            )
    dup = structure.get("duplication")
    if dup:
        copy = pieces[pieces.layer == 1]
        source = pieces[
            (pieces.layer == 0)
            & (pieces.anc_chrom == dup["anc_chrom"])
            & (pieces.key >= dup["start"])
            & (pieces.key < dup["end"])
        ]
        dup.update(
            source_chrom=source.chrom.iloc[0],
            source_start=int(source.start.min()),
            source_end=int(source.end.max()),
            copy_chrom=copy.chrom.iloc[0],
            copy_start=int(copy.start.min()),
            copy_end=int(copy.end.max()),
        )


def map_positions(
    pieces: pd.DataFrame, anc_chrom: np.ndarray, pos: np.ndarray, layer: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Species (chrom, position, orientation) of ancestral bases; chrom "" where the base is absent."""
    sub = pieces[(pieces.novel < 0) & (pieces.layer == layer)]
    chroms = np.full(len(pos), "", dtype=object)
    out_pos = np.full(len(pos), -1, dtype=np.int64)
    out_strand = np.zeros(len(pos), dtype=np.int64)
    for ac, grp in sub.groupby("anc_chrom", sort=False):
        grp = grp.sort_values("anc_start")
        sel = np.flatnonzero(anc_chrom == ac)
        if not len(sel):
            continue
        a0 = grp.anc_start.to_numpy()
        i = np.searchsorted(a0, pos[sel], side="right") - 1
        ic = np.maximum(i, 0)
        hit = (i >= 0) & (grp.anc_end.to_numpy()[ic] > pos[sel])
        off = pos[sel] - a0[ic]
        strand = grp.strand.to_numpy()[ic]
        sp = np.where(strand > 0, grp.start.to_numpy()[ic] + off, grp.end.to_numpy()[ic] - 1 - off)
        chroms[sel[hit]] = grp.chrom.to_numpy()[ic][hit]
        out_pos[sel[hit]] = sp[hit]
        out_strand[sel[hit]] = strand[hit]
    return chroms, out_pos, out_strand
