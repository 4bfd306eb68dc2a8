"""The ancestral genome: chromosome lengths, genes with exons, and regulatory elements.

Everything here is in ancestral coordinates (0-based, half-open). Each species' genome is
later derived from it by :mod:`crossglue.simulate.evolve`, so an ancestral position is the
shared name of a base in every species (its orthology).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossglue.simulate.intervals import free_mask, merge_intervals
from crossglue.simulate.presets import Preset

MITO_LENGTH = 16_569
# Human mitochondrial protein-coding genes (rCRS order; approximate positions, 0-based).
MITO_GENES = (
    ("MT-ND1", 3306, 4262, 1),
    ("MT-ND2", 4469, 5511, 1),
    ("MT-CO1", 5903, 7445, 1),
    ("MT-CO2", 7585, 8269, 1),
    ("MT-ATP8", 8365, 8572, 1),
    ("MT-ATP6", 8572, 9207, 1),
    ("MT-CO3", 9206, 9990, 1),
    ("MT-ND3", 10058, 10404, 1),
    ("MT-ND4L", 10469, 10766, 1),
    ("MT-ND4", 10759, 12137, 1),
    ("MT-ND5", 12336, 14148, 1),
    ("MT-ND6", 14148, 14673, -1),
    ("MT-CYB", 14746, 15887, 1),
)
CRE_HALF_WIDTH = 250  # elements are 500 bp around their centre, like summit +/- 250 peaks
MAX_LINK_DISTANCE = 150_000


@dataclass
class Ancestor:
    """Ancestral chromosomes, genes (one transcript each), exons and CREs."""

    chrom_lengths: dict[str, int]
    genes: pd.DataFrame  # gene, symbol, chrom, start, end, strand, gene_type
    exons: pd.DataFrame  # gene, chrom, start, end, exon_number
    cres: pd.DataFrame  # cre, chrom, centre, kind (distal|promoter), gene (promoter's gene or "")

    def protected(self, exon_pad: int, cre_pad: int, gene_pad: int | None) -> pd.DataFrame:
        """Merged ancestral intervals where an event of this kind may not start or end.

        ``gene_pad=None`` protects exons only (small indels may fall in introns);
        otherwise whole gene bodies padded by ``gene_pad``.
        """
        parts = [
            pd.DataFrame(
                {"chrom": self.cres.chrom, "start": self.cres.centre - cre_pad, "end": self.cres.centre + cre_pad}
            ),
            pd.DataFrame(
                {"chrom": self.exons.chrom, "start": self.exons.start - exon_pad, "end": self.exons.end + exon_pad}
            ),
        ]
        if gene_pad is not None:
            parts.append(
                pd.DataFrame(
                    {"chrom": self.genes.chrom, "start": self.genes.start - gene_pad, "end": self.genes.end + gene_pad}
                )
            )
        for chrom, length in self.chrom_lengths.items():  # chromosome ends and the mitochondrion
            edge = length if chrom == "ancM" else 20_000
            parts.append(
                pd.DataFrame({"chrom": [chrom, chrom], "start": [-1, length - edge], "end": [edge, length + 1]})
            )
        return merge_intervals(pd.concat(parts, ignore_index=True))


def random_gene_symbols(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique gene-like symbols (letters + number), none starting with MT-."""
    letters = np.array(list("ABCDEFGHIJKLNPRSTVWXZ"))
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        k = (n - len(out)) * 2
        stems = ["".join(x) for x in letters[rng.integers(0, len(letters), size=(k, 4))]]
        nums = rng.integers(1, 30, size=k)
        for s, m in zip(stems, nums, strict=True):
            sym = f"{s[: 3 + (m % 2)]}{m}"
            if sym not in seen:
                seen.add(sym)
                out.append(sym)
    return np.array(out[:n])


def make_exons(rng: np.random.Generator, genes: pd.DataFrame) -> pd.DataFrame:
    """2-8 exons per gene: first at the start, last at the end, one per equal slot (vectorised)."""
    n_exons = rng.integers(2, 9, size=len(genes))
    gi = np.repeat(np.arange(len(genes)), n_exons)
    k = np.concatenate([np.arange(n) for n in n_exons])  # exon slot within gene
    n = n_exons[gi]
    start, end = genes["start"].to_numpy()[gi], genes["end"].to_numpy()[gi]
    slot = (end - start) // n
    length = np.minimum(rng.integers(80, 400, size=len(gi)), slot // 2)
    slot_start = start + k * slot
    offset = (rng.random(len(gi)) * (slot - length)).astype(np.int64)
    ex_start = np.where(k == 0, start, slot_start + offset)
    ex_end = np.where(k == n - 1, end, ex_start + length)
    ex_start = np.where(k == n - 1, end - length, ex_start)
    strand = genes["strand"].to_numpy()[gi]
    number = np.where(strand > 0, k + 1, n - k)
    return pd.DataFrame(
        {
            "gene": genes["gene"].to_numpy()[gi],
            "chrom": genes["chrom"].to_numpy()[gi],
            "start": ex_start,
            "end": ex_end,
            "exon_number": number,
        }
    )


def build_ancestor(rng: np.random.Generator, preset: Preset) -> Ancestor:
    """Place genes, exons, promoters and distal CREs on the ancestral chromosomes."""
    chrom_lengths = dict(preset.chrom_lengths)
    gene_rows = []
    for chrom, length in chrom_lengths.items():
        n = int(length // preset.gene_spacing) + 4
        glen = np.clip(rng.lognormal(np.log(8_000), 0.6, size=n), 2_500, 50_000).astype(np.int64)
        gap = (6_000 + rng.exponential(max(preset.gene_spacing - 15_000, 1_000), size=n)).astype(np.int64)
        start = 25_000 + np.cumsum(gap) + np.concatenate([[0], np.cumsum(glen)[:-1]])
        keep = start + glen < length - 25_000
        gene_rows.append(pd.DataFrame({"chrom": chrom, "start": start[keep], "end": start[keep] + glen[keep]}))
    genes = pd.concat(gene_rows, ignore_index=True)
    genes["strand"] = rng.choice(np.array([1, -1]), size=len(genes))
    genes["gene"] = [f"g{i:05d}" for i in range(len(genes))]
    genes["symbol"] = random_gene_symbols(rng, len(genes))
    genes["gene_type"] = np.where(rng.random(len(genes)) < 0.85, "protein_coding", "lncRNA")
    exons = make_exons(rng, genes)

    mito = pd.DataFrame(MITO_GENES, columns=["symbol", "start", "end", "strand"])
    mito["chrom"] = "ancM"
    mito["gene"] = [f"gM{i:02d}" for i in range(len(mito))]
    mito["gene_type"] = "protein_coding"
    mito_exons = mito[["gene", "chrom", "start", "end"]].assign(exon_number=1)
    chrom_lengths["ancM"] = MITO_LENGTH

    # Promoter elements centred 50 bp upstream of each nuclear gene's TSS.
    tss = np.where(genes["strand"] > 0, genes["start"], genes["end"] - 1)
    prom = pd.DataFrame(
        {"chrom": genes["chrom"], "centre": tss - 50 * genes["strand"], "kind": "promoter", "gene": genes["gene"]}
    )

    distal_rows = []
    exon_iv = exons.sort_values(["chrom", "start"])
    for chrom, length in preset.chrom_lengths.items():
        n = int(length // preset.cre_spacing) * 2
        centre = np.sort(rng.integers(30_000, length - 30_000, size=n))
        distal_rows.append(pd.DataFrame({"chrom": chrom, "centre": centre}))
    distal = pd.concat(distal_rows, ignore_index=True)
    # Keep distal elements clear of exons and promoters and 1.5 kb from each other.
    avoid = pd.concat(
        [
            exon_iv.assign(start=exon_iv.start - 600, end=exon_iv.end + 600)[["chrom", "start", "end"]],
            prom.assign(start=prom.centre - 2_000, end=prom.centre + 2_000)[["chrom", "start", "end"]],
        ]
    )
    distal = distal[free_mask(distal.centre.to_numpy(), distal.chrom.to_numpy(), merge_intervals(avoid))]
    too_close = distal.groupby("chrom")["centre"].diff().fillna(np.inf) < 1_500
    distal = distal[~too_close.to_numpy()]
    n_target = int(sum(preset.chrom_lengths.values()) // preset.cre_spacing)
    distal = distal.iloc[np.sort(rng.permutation(len(distal))[:n_target])]
    distal = distal.assign(kind="distal", gene="")
    cres = pd.concat([prom, distal], ignore_index=True).sort_values(["chrom", "centre"], kind="stable")
    cres = cres.reset_index(drop=True)
    cres.insert(0, "cre", [f"a{i:06d}" for i in range(len(cres))])

    genes = pd.concat([genes, mito], ignore_index=True)[
        ["gene", "symbol", "chrom", "start", "end", "strand", "gene_type"]
    ]
    exons = pd.concat([exons, mito_exons], ignore_index=True)
    return Ancestor(chrom_lengths, genes, exons, cres)
