"""Genome sequences: a random ancestor, species copies with substitutions, planted motifs.

Sequences are uint8 codes 0-3 (A, C, G, T). A species sequence is assembled from its
pieces, so orthologous bases really are related; module CREs receive instances of their
TF's motif in the species where they gained activity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crossglue.simulate.intervals import concat_ranges

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
GC_CONTENT = 0.41


def random_sequence(rng: np.random.Generator, n: int) -> np.ndarray:
    p = [(1 - GC_CONTENT) / 2, GC_CONTENT / 2, GC_CONTENT / 2, (1 - GC_CONTENT) / 2]
    return rng.choice(4, size=n, p=p).astype(np.uint8)


def ancestral_sequences(rng: np.random.Generator, chrom_lengths: dict[str, int]) -> dict[str, np.ndarray]:
    return {c: random_sequence(rng, L) for c, L in chrom_lengths.items()}


def species_sequences(
    rng: np.random.Generator,
    pieces: pd.DataFrame,
    anc_seq: dict[str, np.ndarray],
    chrom_sizes: dict[str, int],
    divergence: float,
) -> dict[str, np.ndarray]:
    """Gather each chromosome's bases from its pieces (reverse-complemented where inverted), then mutate."""
    novel_lengths = pieces[pieces.novel >= 0].groupby("novel").length.first()
    novel_seq = random_sequence(rng, int(novel_lengths.sum()))
    novel_off = pd.Series(np.cumsum(novel_lengths.to_numpy()) - novel_lengths.to_numpy(), index=novel_lengths.index)
    out = {}
    for chrom in chrom_sizes:  # one vectorised gather per chromosome bounds the index arrays
        p = pieces[pieces.chrom == chrom]
        length, strand = p.length.to_numpy(), p.strand.to_numpy()
        within = concat_ranges(np.zeros(len(p), np.int64), length)
        rev = np.repeat(strand < 0, length)
        pos = np.repeat(np.where(p.novel >= 0, novel_off.reindex(p.novel).fillna(0).to_numpy(), p.anc_start), length)
        pos = pos.astype(np.int64) + np.where(rev, np.repeat(length, length) - 1 - within, within)
        seq = np.empty(len(pos), dtype=np.uint8)
        novel = np.repeat(p.novel.to_numpy() >= 0, length)
        seq[novel] = novel_seq[pos[novel]]
        anc_names, anc_code = np.unique(p.anc_chrom.to_numpy().astype(str), return_inverse=True)
        src = np.repeat(anc_code, length)
        for code, anc in enumerate(anc_names):  # the few ancestral chromosomes this one is made of
            sel = (src == code) & ~novel
            if sel.any():
                seq[sel] = anc_seq[anc][pos[sel]]
        seq[rev] = 3 - seq[rev]
        mut = np.flatnonzero(rng.random(len(seq)) < divergence)
        seq[mut] = (seq[mut] + rng.integers(1, 4, size=len(mut))).astype(np.uint8) % 4
        assert len(seq) == chrom_sizes[chrom]
        out[chrom] = seq
    return out


def plant_motifs(
    rng: np.random.Generator,
    seqs: dict[str, np.ndarray],
    chroms: np.ndarray,
    centres: np.ndarray,
    pwm: np.ndarray,
    per_site: int = 3,
) -> None:
    """Write ``per_site`` motif instances (sampled from ``pwm``) around each centre, in place."""
    width = len(pwm)
    offsets = np.array([-90, -15, 60])[:per_site]
    for chrom, centre in zip(chroms, centres, strict=True):
        for off in offsets:
            cum = pwm.cumsum(axis=1)
            site = (rng.random((width, 1)) > cum).sum(axis=1).astype(np.uint8)
            if rng.random() < 0.5:
                site = 3 - site[::-1]
            start = int(centre) + int(off)
            seqs[chrom][start : start + width] = site


def fasta_bytes(seqs: dict[str, np.ndarray], names: dict[str, str], width: int = 60) -> tuple[bytes, list[tuple]]:
    """FASTA text and its .fai rows (name, length, offset, line bases, line bytes)."""
    chunks, fai = [], []
    offset = 0
    for chrom, seq in seqs.items():
        header = f">{names.get(chrom, chrom)}\n".encode()
        letters = BASES[seq]
        n = len(letters)
        full = n // width * width
        body = np.concatenate(
            [letters[:full].reshape(-1, width), np.full((full // width, 1), ord("\n"), np.uint8)], axis=1
        ).tobytes()
        if n > full:
            body += letters[full:].tobytes() + b"\n"
        chunks += [header, body]
        offset += len(header)
        fai.append((names.get(chrom, chrom), n, offset, width, width + 1))
        offset += len(body)
    return b"".join(chunks), fai


def write_meme(motifs: dict[str, np.ndarray], names: dict[str, str], path) -> None:
    """Motifs in MEME v4 text (probability matrices), as JASPAR exports them."""
    lines = [
        "MEME version 4",
        "",
        "ALPHABET= ACGT",
        "",
        "strands: + -",
        "",
        "Background letter frequencies",
        "A 0.295 C 0.205 G 0.205 T 0.295",
        "",
    ]
    for motif, pwm in motifs.items():
        lines += [
            f"MOTIF {motif} {names.get(motif, motif)}",
            f"letter-probability matrix: alength= 4 w= {len(pwm)} nsites= 20 E= 0",
        ]
        lines += [" ".join(f"{x:.6f}" for x in row) for row in pwm]
        lines.append("")
    path.write_text("\n".join(lines))
