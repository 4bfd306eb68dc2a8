"""Nuclei, RNA counts and ATAC fragments drawn from the annotation's truth.

Expression of a gene in a cell type is a baseline plus the activity of its linked CREs
(weighted by link effect); accessibility of a CRE is its activity. Counts are negative
binomial around library-size-scaled means; fragments are Tn5 cuts around active CRE
centres plus uniform background, with nucleosomal fragment lengths and PCR duplicates.
All draws are vectorised over cells and fragments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.simulate.annotate import Annotation
from crossglue.simulate.presets import SPECIFIC_CELL_TYPE, Preset, SampleSpec

BASE_PROPORTIONS = np.array([0.24, 0.18, 0.08, 0.07, 0.16, 0.19, 0.08])
NB_THETA = 8.0  # negative-binomial shape (inverse overdispersion)
DUP_P = 0.55  # geometric parameter of reads per unique fragment (mean 1.8)


def barcodes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique 10x-style barcodes ``ACGT...-1``."""
    out = np.zeros(0, dtype=object)
    while len(out) < n:
        codes = rng.integers(0, 4, size=(2 * n + 10, 16)).astype(np.uint8)
        s = np.frombuffer(b"ACGT", np.uint8)[codes].view("S16").ravel().astype(str)
        out = pd.unique(np.concatenate([out, s + "-1"]))
    return out[:n]


def type_proportions(rng: np.random.Generator, species: list[str]) -> dict[str, np.ndarray]:
    """Unequal, species-dependent cell-type proportions (the species-specific type last)."""
    out = {}
    for s in species:
        p = BASE_PROPORTIONS * rng.lognormal(0.0, 0.35, size=len(BASE_PROPORTIONS))
        p = p / p.sum()
        if s in SPECIFIC_CELL_TYPE:
            p = np.concatenate([0.95 * p, [0.05]])
        out[s] = p
    return out


def expression_profiles(rng: np.random.Generator, ann: Annotation, species: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Genes of ``species`` (GTF order) and their relative expression per cell type (genes x types)."""
    genes = ann.genes[ann.genes.species == species].reset_index(drop=True)
    links = ann.links[ann.links.species == species]
    gi = pd.Series(np.arange(len(genes)), index=genes.gene_id)[links.gene_id].to_numpy()
    act = np.nan_to_num(ann.activity[species])
    w = sp.csr_matrix((links.effect.to_numpy(), (gi, links.cre.to_numpy())), shape=(len(genes), act.shape[0]))
    drive = np.asarray(w @ act)
    mean = genes.expr_level.to_numpy()[:, None] * (0.05 + drive)
    for m in ann.modules[ann.modules.species == species].itertuples():  # TF-like programme of each module
        cols = [ann.cell_types[species].index(t) for t in m.cell_types.split(",")]
        mean[np.ix_(genes.index[genes.gene_id == m.tf_gene_id], cols)] *= 6.0
    mito = (genes.kind == "mito").to_numpy()
    mean[mito] = 0.0
    nuclear = mean / mean.sum(axis=0, keepdims=True)
    return genes, nuclear


def _nb(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    return rng.poisson(rng.gamma(NB_THETA, mean / NB_THETA)).astype(np.int32)


def _length_pmf(weights: tuple[float, float, float, float]) -> np.ndarray:
    """Fragment length distribution: nucleosome-free, mono-, di-, tri-nucleosome, 10.4 bp helical ripple."""
    length = np.arange(1001, dtype=float)
    nfr = length**2 * np.exp(-length / 22.0)
    comps = [nfr / nfr.sum()]
    for mu, sd in ((200, 22), (395, 30), (590, 40)):
        g = np.exp(-0.5 * ((length - mu) / sd) ** 2)
        comps.append(g / g.sum())
    pmf = sum(w * c for w, c in zip(weights, comps, strict=True))
    pmf *= 1 + 0.25 * np.cos(2 * np.pi * length / 10.4) * (length < 300)
    pmf[:20] = 0
    return pmf / pmf.sum()


PEAK_LENGTHS = _length_pmf((0.65, 0.27, 0.06, 0.02))
BACKGROUND_LENGTHS = _length_pmf((0.45, 0.40, 0.11, 0.04))


def make_nuclei(rng: np.random.Generator, spec: SampleSpec, ann: Annotation, props: np.ndarray) -> pd.DataFrame:
    """The sample's barcodes: real nuclei (some low quality or high mito) and empty droplets."""
    n = spec.n_cells
    types = np.array(ann.cell_types[spec.species])
    t = rng.choice(len(types), size=n, p=props)
    quality = rng.choice(np.array(["cell", "low_quality", "high_mito"]), size=n, p=[0.93, 0.04, 0.03])
    if spec.modality == "atac":
        quality[quality == "high_mito"] = "cell"
    n_empty = int(round(n * (0.25 if spec.modality != "rna" else 0.03)))
    bc = barcodes(rng, n + n_empty)
    cells = pd.DataFrame(
        {
            "barcode": bc,
            "sample": spec.name,
            "species": spec.species,
            "donor": spec.donor,
            "modality": spec.modality,
            "cell_type": np.concatenate([types[t], np.full(n_empty, "")]),
            "type_index": np.concatenate([t, np.full(n_empty, len(types))]),
            "quality": np.concatenate([quality, np.full(n_empty, "empty")]),
        }
    )
    cells["nucleus"] = np.where(cells.quality == "empty", "", spec.name + "#" + cells.barcode)
    return cells


def simulate_rna(
    rng,
    cells: pd.DataFrame,
    profiles: np.ndarray,
    mito_mask: np.ndarray,
    preset: Preset,
    donor_shift: np.ndarray,
    donor_lib: float,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """NB counts for the barcodes in ``cells``: (matrix, total UMIs, mito fraction)."""
    q = cells.quality.to_numpy()
    lib = np.where(
        q == "empty",
        rng.lognormal(np.log(60), 0.6, len(q)),
        np.where(
            q == "low_quality",
            rng.lognormal(np.log(150), 0.5, len(q)),
            rng.lognormal(np.log(preset.median_umis), 0.45, len(q)) * donor_lib,
        ),
    )
    mito_frac = np.where(q == "high_mito", rng.uniform(0.25, 0.55, len(q)), rng.beta(2, 60, len(q)))
    ambient = profiles.mean(axis=1, keepdims=True)
    prof = np.concatenate([profiles, ambient], axis=1) * donor_shift[:, None]
    prof /= prof.sum(axis=0, keepdims=True)
    mito_prof = mito_mask / max(mito_mask.sum(), 1)
    blocks = []
    for lo in range(0, len(q), 2_000):  # chunks bound the dense cells x genes mean matrix
        sl = slice(lo, lo + 2_000)
        p = prof[:, cells.type_index.to_numpy()[sl]].T * (1 - mito_frac[sl, None]) + mito_frac[sl, None] * mito_prof
        blocks.append(sp.csr_matrix(_nb(rng, lib[sl, None] * p)))
    x = sp.vstack(blocks).tocsr()
    totals = np.asarray(x.sum(axis=1)).ravel()
    mito_obs = np.asarray(x[:, mito_mask > 0].sum(axis=1)).ravel() / np.maximum(totals, 1)
    return x, totals, mito_obs


def simulate_fragments(
    rng, cells: pd.DataFrame, ann: Annotation, chrom_sizes: dict[str, int], preset: Preset, donor_lib: float
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Fragments of the barcodes in ``cells``: (sorted table, unique fragments per barcode, FRiP target)."""
    sp_name = cells.species.iloc[0]
    q = cells.quality.to_numpy()
    n_frag = np.where(
        q == "empty",
        rng.lognormal(np.log(25), 0.9, len(q)),
        np.where(
            q == "low_quality",
            rng.lognormal(np.log(300), 0.4, len(q)),
            rng.lognormal(np.log(preset.median_fragments), 0.45, len(q)) * donor_lib,
        ),
    ).astype(np.int64)
    n_frag = np.maximum(n_frag, 1)
    frip = np.where(
        q == "cell",
        np.clip(rng.beta(7, 13, len(q)), 0.18, 0.55),
        np.where(q == "high_mito", np.clip(rng.beta(7, 13, len(q)), 0.18, 0.55), 0.02),
    )
    n_in = rng.binomial(n_frag, frip)
    n_bg = n_frag - n_in

    cres = ann.cres
    present = cres[f"{sp_name}_chrom"].to_numpy() != ""
    names = list(chrom_sizes)
    offsets = np.concatenate([[0], np.cumsum([chrom_sizes[c] for c in names])])
    chrom_idx = {c: i for i, c in enumerate(names)}
    cre_chrom = cres[f"{sp_name}_chrom"].to_numpy()[present]
    centre = cres[f"{sp_name}_centre"].to_numpy()[present] + offsets[[chrom_idx[c] for c in cre_chrom]]
    act = np.nan_to_num(ann.activity[sp_name][present])
    act = np.concatenate([act, act.mean(axis=1, keepdims=True)], axis=1)  # ambient for empty droplets
    prob = act / act.sum(axis=0, keepdims=True)

    type_index = cells.type_index.to_numpy()
    cell_of_in = np.repeat(np.arange(len(q)), n_in)
    cre_pick = np.empty(len(cell_of_in), dtype=np.int64)
    types_of_in = type_index[cell_of_in]
    for t in np.unique(types_of_in):  # one categorical draw per cell type
        sel = np.flatnonzero(types_of_in == t)
        cre_pick[sel] = rng.choice(len(centre), size=len(sel), p=prob[:, t])
    len_in = rng.choice(len(PEAK_LENGTHS), size=len(cre_pick), p=PEAK_LENGTHS)
    mid = centre[cre_pick] + np.round(rng.normal(0, 55, len(cre_pick))).astype(np.int64)
    start_in = mid - len_in // 2

    cell_of_bg = np.repeat(np.arange(len(q)), n_bg)
    nuclear_len = offsets[chrom_idx["chrM"]] if "chrM" in chrom_idx else offsets[-1]
    mito_bg = rng.random(len(cell_of_bg)) < 0.015
    start_bg = np.where(
        mito_bg,
        rng.integers(offsets[chrom_idx.get("chrM", 0)], offsets[-1], len(cell_of_bg)),
        rng.integers(0, nuclear_len, len(cell_of_bg)),
    )
    len_bg = rng.choice(len(BACKGROUND_LENGTHS), size=len(cell_of_bg), p=BACKGROUND_LENGTHS)

    cell = np.concatenate([cell_of_in, cell_of_bg])
    start = np.concatenate([start_in, start_bg])
    end = start + np.concatenate([len_in, len_bg])
    frags, unique_per_cell = unique_fragments(rng, cell, start, end, offsets, names, cells.barcode.to_numpy())
    return frags, unique_per_cell, frip


def unique_fragments(
    rng: np.random.Generator,
    cell: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    offsets: np.ndarray,
    names: list[str],
    barcode_names: np.ndarray,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Sorted unique fragments from genome-wide (concatenated) coordinates: fragments that
    cross a chromosome end are dropped, identical ones of a barcode merged with their PCR
    reads summed in ``count``; also the unique fragments per barcode."""
    ci = np.searchsorted(offsets, start, side="right") - 1
    ok = (start >= 0) & (ci < len(names)) & (end <= offsets[np.minimum(ci + 1, len(names))])
    cell, start, end, ci = cell[ok], start[ok], end[ok], ci[ok]
    start, end = start - offsets[ci], end - offsets[ci]
    order = np.lexsort((cell, end, start, ci))
    cell, start, end, ci = cell[order], start[order], end[order], ci[order]
    # Identical fragments of one barcode are one unique fragment (their reads add up).
    new = np.ones(len(cell), bool)
    new[1:] = (cell[1:] != cell[:-1]) | (start[1:] != start[:-1]) | (end[1:] != end[:-1]) | (ci[1:] != ci[:-1])
    run = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    reads = np.bincount(run, weights=rng.geometric(DUP_P, size=len(cell))).astype(np.int64)
    frags = pd.DataFrame(
        {
            "chrom": pd.Categorical.from_codes(ci[first], categories=names),
            "start": start[first],
            "end": end[first],
            "barcode": barcode_names[cell[first]],
            "count": reads,
        }
    )
    return frags, np.bincount(cell[first], minlength=len(barcode_names))
