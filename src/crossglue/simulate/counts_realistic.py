"""Barcodes, RNA counts and ATAC fragments of the `realistic` preset (what real data does).

Every barcode is the sum of its *components*: one nucleus, two nuclei of different types
(a heterotypic doublet, in both modalities of a multiome sample), or only ambient material
(an empty droplet). Each nucleus has a type, a continuous state and per-element Bernoulli
openness (:mod:`crossglue.simulate.states`). RNA is Poisson-lognormal with gene-specific
overdispersion around a mixture of the nucleus profile, the sample's ambient soup (a few
percent; far more in low-quality barcodes) and mitochondrial reads, times a per-species
capture bias and a multiome-chemistry bias. ATAC fragments come from open elements (NFR
fragments centred on the summit, nucleosomal ones with one end anchored near it), from a
background weighted by broad A/B compartments, and from chrM; the count column carries
PCR duplicates. A nucleus has two copies of each element and a copy yields disjoint
fragments (:func:`diploid_layout`), so no position of a singlet is covered by more than two
in-peak fragments. All draws are vectorised over nuclei and fragments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.simulate import states
from crossglue.simulate.annotate import Annotation
from crossglue.simulate.cells import BACKGROUND_LENGTHS, PEAK_LENGTHS, barcodes, unique_fragments
from crossglue.simulate.presets import Preset, SampleSpec

DOUBLET_RATE = 0.02
LOW_QUALITY_RATE = 0.04
COMPARTMENT_BIN = 100_000  # bp; A-compartment bins (holding a TSS) get 3x the background
NEURON_RNA = 1.5  # neurons carry more RNA than glia
GLIA_RNA = 0.75


@dataclass
class SpeciesBiases:
    """Per-gene technical biases of one species (truth in genes.tsv)."""

    capture: np.ndarray  # species-specific capture efficiency
    chemistry: np.ndarray  # multiome vs single-modality chemistry (shared across species via ancestry)
    sigma: np.ndarray  # lognormal sd of the Poisson rate (gene-specific overdispersion)
    mito_profile: np.ndarray  # relative expression of mitochondrial genes


def species_biases(rng: np.random.Generator, ann: Annotation, species: str) -> SpeciesBiases:
    genes = ann.genes[ann.genes.species == species]
    n = len(genes)
    anc = np.sort(ann.genes.anc_gene.unique())
    chem = pd.Series(rng.lognormal(0.0, 0.25, len(anc)), index=anc)
    mito = (genes.kind == "mito").to_numpy()
    mito_profile = np.where(mito, rng.lognormal(0.0, 0.5, n), 0.0)
    return SpeciesBiases(
        capture=rng.lognormal(0.0, 0.35, n),
        chemistry=chem.loc[genes.anc_gene].to_numpy(),
        sigma=rng.gamma(4.0, 0.1, n),
        mito_profile=mito_profile / max(mito_profile.sum(), 1e-12),
    )


def dirichlet_proportions(rng: np.random.Generator, ann: Annotation, donors: dict[str, str]) -> dict[str, np.ndarray]:
    """Type proportions per donor: species ~ Dirichlet(100 x base), donor ~ Dirichlet(300 x species)."""
    out, per_species = {}, {}
    for s in ann.species:
        base = states.BASE_PROPORTIONS / states.BASE_PROPORTIONS.sum()
        p = rng.dirichlet(100.0 * base)
        if s in states.SPECIES_ONLY_TYPES:
            share = states.SPECIES_ONLY_SHARE[s]
            p = np.append((1 - share) * p, share)
        per_species[s] = p
    for d, s in sorted(donors.items()):
        out[d] = rng.dirichlet(300.0 * per_species[s])
    return out


def make_barcodes(rng: np.random.Generator, spec: SampleSpec, ann: Annotation, props: np.ndarray) -> tuple:
    """The sample's barcode table and its components (nucleus rows; doublets have two).

    Returns (cells, comp_barcode, comp_type, comp_state): per component its barcode row,
    type index and state; empty droplets have no component.
    """
    n = spec.n_cells
    types = np.array(ann.cell_types[spec.species])
    hier = states.hierarchy_table(spec.species).set_index("cell_type")
    status = rng.choice(
        np.array(["cell", "doublet", "low_quality"]),
        size=n,
        p=[1 - DOUBLET_RATE - LOW_QUALITY_RATE, DOUBLET_RATE, LOW_QUALITY_RATE],
    )
    t1 = rng.choice(len(types), size=n, p=props)
    dbl = np.flatnonzero(status == "doublet")
    t2 = rng.choice(len(types), size=len(dbl), p=props)
    while (same := t2 == t1[dbl]).any():  # heterotypic: redraw the second parent's type
        t2[same] = rng.choice(len(types), size=int(same.sum()), p=props)
    state = rng.normal(0.0, 1.0, n + len(dbl))
    n_empty = int(round(n * (0.25 if spec.modality != "rna" else 0.03)))
    bc = barcodes(rng, n + n_empty)
    ttype = np.where(status == "doublet", "", types[t1])
    parent2 = np.full(n, "", dtype=object)
    parent2[dbl] = types[t2]
    cells = pd.DataFrame(
        {
            "barcode": bc,
            "sample": spec.name,
            "species": spec.species,
            "donor": spec.donor,
            "modality": spec.modality,
            "cell_type": np.concatenate([ttype, np.full(n_empty, "")]),
            "quality": np.concatenate([status, np.full(n_empty, "empty")]),
            "status": np.concatenate([status, np.full(n_empty, "empty")]),
            "cell_class": np.concatenate(
                [np.where(status == "doublet", "", hier.cell_class.reindex(types[t1]).to_numpy()), np.full(n_empty, "")]
            ),
            "subclass": np.concatenate(
                [np.where(status == "doublet", "", hier.subclass.reindex(types[t1]).to_numpy()), np.full(n_empty, "")]
            ),
            "state": np.concatenate(
                [np.where(status == "doublet", np.nan, np.round(state[:n], 4)), np.full(n_empty, np.nan)]
            ),
            "parent_type_1": np.concatenate([np.where(status == "doublet", types[t1], ""), np.full(n_empty, "")]),
            "parent_type_2": np.concatenate([parent2, np.full(n_empty, "")]),
        }
    )
    cells["nucleus"] = np.where(cells.status == "empty", "", spec.name + "#" + cells.barcode)
    comp_barcode = np.concatenate([np.arange(n), dbl])
    comp_type = np.concatenate([t1, t2])
    return cells, comp_barcode, comp_type, state


def _component_scale(rng, cells: pd.DataFrame, comp_barcode: np.ndarray, comp_type: np.ndarray, species: str):
    """Per component: RNA content (neurons > glia) and low-quality damage (0.15 x material)."""
    hier = states.hierarchy_table(species)
    neuron = hier.cell_class.isin(states.NEURON_CLASSES).to_numpy()[comp_type]
    damaged = cells.status.to_numpy()[comp_barcode] == "low_quality"
    return np.where(neuron, NEURON_RNA, GLIA_RNA) * np.where(damaged, 0.15, 1.0), damaged


def realistic_rna(
    rng: np.random.Generator,
    cells: pd.DataFrame,
    comp: tuple[np.ndarray, np.ndarray, np.ndarray],
    ann: Annotation,
    biases: SpeciesBiases,
    preset: Preset,
    donor_lib: float,
    multiome: bool,
    rows: np.ndarray,
) -> tuple[sp.csr_matrix, pd.DataFrame]:
    """Counts for barcode rows ``rows`` of ``cells``; also per-barcode n_umis, mito_fraction,
    ambient_fraction (truth)."""
    comp_barcode, comp_type, state = comp
    s = cells.species.iloc[0]
    model = ann.state_model
    access = states.type_accessibility(model.open_prob[s], comp_type, state, model.element_loading)
    mean = states.expression(model, s, access, comp_type, state)
    prof = mean / mean.sum(axis=1, keepdims=True)
    scale, _ = _component_scale(rng, cells, comp_barcode, comp_type, s)
    lib = rng.lognormal(np.log(preset.median_umis), 0.45, len(comp_barcode)) * donor_lib * scale
    # Barcode material = sum of its components' RNA (a doublet carries both nuclei).
    assign = sp.csr_matrix((lib, (comp_barcode, np.arange(len(comp_barcode)))), shape=(len(cells), len(comp_barcode)))
    nucleus_rna = np.asarray(assign @ prof)  # barcodes x genes, in UMIs before capture
    nucleus_lib = nucleus_rna.sum(axis=1)
    soup = nucleus_rna.sum(axis=0) / nucleus_rna.sum()  # ambient RNA of this sample
    status = cells.status.to_numpy()
    contam = np.select(
        [status == "empty", status == "low_quality"], [1.0, rng.beta(6, 8, len(cells))], rng.beta(2, 55, len(cells))
    )
    mito = np.select(
        [status == "empty", status == "low_quality"],
        [rng.beta(2, 40, len(cells)), rng.beta(4, 14, len(cells))],
        rng.beta(1.2, 110, len(cells)),
    )
    total = np.where(status == "empty", rng.lognormal(np.log(80), 0.6, len(cells)), nucleus_lib / (1 - contam + 1e-9))
    total = np.minimum(total, 30 * preset.median_umis)
    own = np.divide(nucleus_rna, nucleus_lib[:, None], out=np.zeros_like(nucleus_rna), where=nucleus_lib[:, None] > 0)
    bias = biases.capture * (biases.chemistry if multiome else 1.0)
    blocks = []
    for lo in range(0, len(rows), 2_000):  # chunks bound the dense barcodes x genes matrix
        r = rows[lo : lo + 2_000]
        q = (1 - mito[r, None]) * ((1 - contam[r, None]) * own[r] + contam[r, None] * soup) * bias
        q = q / q.sum(axis=1, keepdims=True) * (1 - mito[r, None]) + mito[r, None] * biases.mito_profile
        lam = total[r, None] * q * np.exp(biases.sigma * rng.normal(size=q.shape) - biases.sigma**2 / 2)
        blocks.append(sp.csr_matrix(rng.poisson(lam).astype(np.int32)))
    x = sp.vstack(blocks).tocsr()
    totals = np.asarray(x.sum(axis=1)).ravel()
    mito_mask = biases.mito_profile > 0
    stats = pd.DataFrame(
        {
            "n_umis": totals,
            "mito_fraction": np.round(np.asarray(x[:, mito_mask].sum(axis=1)).ravel() / np.maximum(totals, 1), 4),
            "ambient_fraction": np.round(contam[rows], 4),
        },
        index=cells.index[rows],
    )
    return x, stats


def compartment_weights(ann: Annotation, species: str, chrom_sizes: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Genome-wide (concatenated) bin starts and background weights: 3 where a bin holds a TSS."""
    names = list(chrom_sizes)
    offsets = np.concatenate([[0], np.cumsum([chrom_sizes[c] for c in names])])
    nuclear = [i for i, c in enumerate(names) if c != "chrM"]
    starts = np.concatenate([offsets[i] + np.arange(0, chrom_sizes[names[i]], COMPARTMENT_BIN) for i in nuclear])
    g = ann.genes[(ann.genes.species == species) & (ann.genes.chrom != "chrM")]
    tss = g.tss.to_numpy() + offsets[[names.index(c) for c in g.chrom]]
    has_tss = np.bincount(np.searchsorted(starts, tss, side="right") - 1, minlength=len(starts)) > 0
    return starts, np.where(has_tss, 3.0, 1.0)


def diploid_layout(copy: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Starts of in-peak fragments laid out so that no two of one DNA copy overlap.

    Tn5 cuts one copy of an element into disjoint pieces, so a diploid nucleus covers a
    position with at most two fragments; a doublet, with four copies, can show more (what
    AMULET counts). ``copy`` labels each fragment's (nucleus, element, copy): the first of
    a copy keeps its start, the others abut it, alternately on its right and its left.
    """
    order = np.lexsort((np.arange(len(copy)), copy))
    c, s, n = copy[order], start[order], length[order]
    first = np.r_[True, c[1:] != c[:-1]]
    head = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    rank = np.arange(len(c)) - head[group]
    right, left = (rank % 2 == 1), (rank > 0) & (rank % 2 == 0)

    def offset(side: np.ndarray) -> np.ndarray:
        """Sum of the lengths of the earlier fragments of the copy on that side (exclusive)."""
        w = np.where(side, n, 0)
        total = np.cumsum(w) - w
        return total - total[head[group]]

    out = s.copy()
    out[right] = (s[head] + n[head])[group][right] + offset(right)[right]
    out[left] = s[head][group][left] - offset(left)[left] - n[left]
    result = np.empty_like(start)
    result[order] = out
    return result


def realistic_fragments(
    rng: np.random.Generator,
    cells: pd.DataFrame,
    comp: tuple[np.ndarray, np.ndarray, np.ndarray],
    ann: Annotation,
    chrom_sizes: dict[str, int],
    preset: Preset,
    donor_lib: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fragments of every barcode (nuclei, doublets, empties) and per-barcode truth stats."""
    comp_barcode, comp_type, state = comp
    s = cells.species.iloc[0]
    model = ann.state_model
    status = cells.status.to_numpy()
    access = states.type_accessibility(model.open_prob[s], comp_type, state, model.element_loading)
    mean = states.expression(model, s, access, comp_type, state)
    prom = model.promoter_gene[s] >= 0
    access[:, prom] = states.promoter_open(model, s, mean)[:, prom]  # promoters follow expression
    # Empty droplets: ambient fragments from the sample's average accessibility.
    empty = np.flatnonzero(status == "empty")
    access = np.vstack([access, np.repeat(access.mean(axis=0, keepdims=True), len(empty), axis=0)])
    owner = np.concatenate([comp_barcode, empty])
    kind = status[owner]
    n_frag = np.where(
        kind == "empty",
        rng.lognormal(np.log(30), 0.9, len(owner)),
        rng.lognormal(np.log(preset.median_fragments), 0.5, len(owner))
        * donor_lib
        * np.where(kind == "low_quality", 0.2, 1.0),
    ).astype(np.int64)
    n_frag = np.maximum(n_frag, 1)
    frip = np.select(
        [kind == "empty", kind == "low_quality"],
        [rng.beta(3, 17, len(owner)), rng.beta(3, 17, len(owner))],
        rng.beta(8, 12, len(owner)),
    )
    mt = np.select(
        [kind == "empty", kind == "low_quality"],
        [rng.beta(2, 30, len(owner)), rng.beta(2, 18, len(owner))],
        rng.beta(1, 80, len(owner)),
    )
    is_open = rng.random(access.shape) < access  # per-nucleus Bernoulli openness
    n_in = rng.binomial(n_frag, frip) * is_open.any(axis=1)
    n_mt = rng.binomial(n_frag - n_in, mt)
    n_bg = n_frag - n_in - n_mt

    names = list(chrom_sizes)
    offsets = np.concatenate([[0], np.cumsum([chrom_sizes[c] for c in names])])
    present = ann.cres[f"{s}_chrom"].to_numpy() != ""
    summit = np.zeros(len(present), dtype=np.int64)
    chrom_of = ann.cres[f"{s}_chrom"].to_numpy()[present]
    summit[present] = ann.cres[f"{s}_centre"].to_numpy()[present] + offsets[[names.index(c) for c in chrom_of]]
    # In-peak fragments: a uniform pick among the component's open elements and their two
    # copies (cumulative search; element = slot // 2, so the pick is that of a haploid draw).
    row, col = np.nonzero(is_open)
    seg_lo = np.searchsorted(row, np.arange(len(owner)), side="left")
    seg_n = np.bincount(row, minlength=len(owner))
    comp_in = np.repeat(np.arange(len(owner)), n_in)
    slot = (rng.random(len(comp_in)) * 2 * seg_n[comp_in]).astype(np.int64)
    pick = col[seg_lo[comp_in] + slot // 2]
    len_in = rng.choice(len(PEAK_LENGTHS), size=len(pick), p=PEAK_LENGTHS)
    nfr = len_in < 140
    anchor = summit[pick] + np.round(rng.normal(0, np.where(nfr, 45, 25))).astype(np.int64)
    outward = rng.random(len(pick)) < 0.5  # a nucleosomal fragment extends away from the summit
    start_in = np.where(nfr, anchor - len_in // 2, np.where(outward, anchor, anchor - len_in))
    start_in = diploid_layout(comp_in * 2 * len(summit) + 2 * pick + slot % 2, start_in, len_in)

    bins, weight = compartment_weights(ann, s, chrom_sizes)
    comp_bg = np.repeat(np.arange(len(owner)), n_bg)
    b = rng.choice(len(bins), size=len(comp_bg), p=weight / weight.sum())
    start_bg = bins[b] + rng.integers(0, COMPARTMENT_BIN, len(comp_bg))
    comp_mt = np.repeat(np.arange(len(owner)), n_mt)
    m = names.index("chrM")
    start_mt = rng.integers(offsets[m], offsets[m + 1], len(comp_mt))
    len_out = rng.choice(len(BACKGROUND_LENGTHS), size=len(comp_bg) + len(comp_mt), p=BACKGROUND_LENGTHS)

    comp_all = np.concatenate([comp_in, comp_bg, comp_mt])
    start = np.concatenate([start_in, start_bg, start_mt])
    end = start + np.concatenate([len_in, len_out])
    frags, unique = unique_fragments(rng, owner[comp_all], start, end, offsets, names, cells.barcode.to_numpy())
    frip_bc = np.bincount(owner, weights=n_in, minlength=len(cells)) / np.maximum(
        np.bincount(owner, weights=n_frag, minlength=len(cells)), 1
    )
    stats = pd.DataFrame({"n_fragments": unique, "frip_target": np.round(frip_bc, 4)}, index=cells.index)
    return frags, stats
