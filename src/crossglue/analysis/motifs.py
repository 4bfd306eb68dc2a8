"""TF motifs: the motif database, MEME files, element sequences and motif hits.

The default database is JASPAR 2024 CORE vertebrates (non-redundant, 879 matrices), written
as MEME at install (``crossglue motif-database``, run by ``make install``) from the SQLite
file shipped inside the pinned pyjaspar wheel, so no run downloads anything.

Sequences come from an indexed (optionally bgzip-compressed) FASTA through pysam; each
chromosome is read once and elements are cut out with one fancy index, so scanning never
loops over elements. A motif hit is a window (either strand, no N) whose log-odds score
against the file's background reaches the score that a random window exceeds with
probability ``p`` (FIMO's rule). :func:`motif_hits` scans with memelite's FIMO (numba;
~30x faster than the numpy scanner, 1.1 s for 20,000 × 501 bp × 20 JASPAR motifs on one
core, bench/bench_motifs.py); its p values assume uniform letters on a 0.1-bit grid.
:func:`motif_hits_exact` is the numpy reference: thresholds exact under the file's
background on a 0.01-bit grid; the two agree on >= 98 % of hits on real sequence
(tests/test_motifs.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.errors import CrossglueError

BASE_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    BASE_CODE[ord(_b)] = _i
    BASE_CODE[ord(_b.lower())] = _i


@dataclass
class Motif:
    """One position weight matrix: ``probs`` is (width, 4) over A, C, G, T."""

    id: str
    name: str
    probs: np.ndarray


def read_meme(path: str | Path) -> tuple[list[Motif], np.ndarray]:
    """Motifs and background frequencies (A, C, G, T; uniform when absent) of a MEME file."""
    path = Path(path)
    if not path.is_file():
        raise CrossglueError(f"motif file {path} does not exist")
    lines = path.read_text().splitlines()
    background = np.full(4, 0.25)
    motifs: list[Motif] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("Background letter frequencies") and i + 1 < len(lines):
            fields = lines[i + 1].split()
            try:
                freqs = dict(zip(fields[0::2], map(float, fields[1::2]), strict=True))
                background = np.array([freqs[b] for b in "ACGT"])
            except (ValueError, KeyError):
                raise CrossglueError(
                    f"{path}:{i + 2}: background line should read 'A p C p G p T p', got '{lines[i + 1]}'"
                ) from None
        elif line.startswith("MOTIF"):
            fields = line.split()
            if len(fields) < 2:
                raise CrossglueError(f"{path}:{i + 1}: MOTIF line without an identifier")
            motif_id, name = fields[1], fields[2] if len(fields) > 2 else fields[1]
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("letter-probability matrix"):
                if lines[j].strip().startswith("MOTIF"):
                    raise CrossglueError(f"{path}:{i + 1}: motif {motif_id} has no letter-probability matrix")
                j += 1
            if j >= len(lines):
                raise CrossglueError(f"{path}:{i + 1}: motif {motif_id} has no letter-probability matrix")
            header = lines[j]
            try:
                width = int(header.split("w=")[1].split()[0])
            except (IndexError, ValueError):
                raise CrossglueError(
                    f"{path}:{j + 1}: matrix header should give 'w= <width>', got '{header.strip()}'"
                ) from None
            rows = []
            for k in range(j + 1, j + 1 + width):
                try:
                    row = [float(v) for v in lines[k].split()]
                except (IndexError, ValueError):
                    row = []
                if len(row) != 4:
                    raise CrossglueError(f"{path}:{k + 1}: motif {motif_id} row should hold 4 probabilities")
                rows.append(row)
            probs = np.array(rows)
            probs = probs / probs.sum(axis=1, keepdims=True)
            motifs.append(Motif(motif_id, name, probs))
            i = j + width
        i += 1
    if not motifs:
        raise CrossglueError(f"{path}: no MOTIF entries found (expected MEME format)")
    return motifs, background / background.sum()


def log_odds(motif: Motif, background: np.ndarray, pseudocount: float = 0.01) -> np.ndarray:
    """(width, 4) log2 odds of the motif against the background, with a pseudocount so that
    a zero probability does not give -inf."""
    probs = (motif.probs + pseudocount * background) / (1 + pseudocount)
    return np.log2(probs / background)


def score_threshold(lo: np.ndarray, background: np.ndarray, p: float = 1e-4, resolution: float = 0.01) -> float:
    """Smallest log-odds score that a background window reaches with probability <= ``p``
    (exact on a grid of ``resolution``: the score distribution is built by convolving the
    per-position distributions)."""
    ints = np.round(lo / resolution).astype(np.int64)
    low = ints.min(axis=1)
    dist = np.array([1.0])
    for row, lo_row in zip(ints, low, strict=True):
        step = np.zeros(row.max() - lo_row + 1)
        np.add.at(step, row - lo_row, background)
        dist = np.convolve(dist, step)
    tail = np.cumsum(dist[::-1])[::-1]  # P(score >= offset)
    ok = np.flatnonzero(tail <= p)
    offset = ok[0] if ok.size else dist.size - 1
    return float((offset + low.sum()) * resolution)


def scan(codes: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Best log-odds score of each sequence (rows of base codes 0-3, 4 = N/padding) over every
    window on both strands; windows touching an N score -inf."""
    n, length = codes.shape
    width = lo.shape[0]
    if length < width:
        return np.full(n, -np.inf)
    table = np.vstack([lo.T, np.full((1, width), -np.inf)])  # (5, width): row = base code
    rc_lo = lo[::-1, ::-1]
    rc_table = np.vstack([rc_lo.T, np.full((1, width), -np.inf)])
    windows = length - width + 1
    fwd = np.zeros((n, windows))
    rev = np.zeros((n, windows))
    for j in range(width):  # loop over motif positions, not over sequences
        part = codes[:, j : j + windows]
        fwd += table[part, j]
        rev += rc_table[part, j]
    return np.maximum(fwd, rev).max(axis=1)


def element_sequences(
    fasta: str | Path, chrom: np.ndarray, start: np.ndarray, end: np.ndarray, aliases: dict[str, str] | None = None
) -> np.ndarray:
    """Base codes of each interval (0-based half-open), right-padded with 4 to the longest;
    bases outside the chromosome are 4 too. Reads each chromosome once. ``aliases`` (alias ->
    canonical, as ``crossglue.genomics.genome.read_aliases`` returns) lets a FASTA name its sequences
    differently from the canonical names in ``chrom``."""
    import pysam

    fasta = Path(fasta)
    if not fasta.is_file():
        raise CrossglueError(f"genome FASTA {fasta} does not exist")
    chrom = np.asarray(chrom).astype(str)
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    width = int((end - start).max(initial=0))
    out = np.full((len(chrom), width), 4, dtype=np.uint8)
    try:
        handle = pysam.FastaFile(str(fasta))
    except (OSError, ValueError) as err:
        raise CrossglueError(
            f"genome FASTA {fasta}: cannot open with an index ({err}); index it with samtools faidx"
        ) from None
    with handle:
        known = set(handle.references)
        fasta_name = {c: c for c in known}
        for alias, canonical in (aliases or {}).items():
            if alias in known:
                fasta_name.setdefault(canonical, alias)
        unknown = sorted(str(c) for c in set(chrom) - set(fasta_name))
        if unknown:
            raise CrossglueError(f"genome FASTA {fasta}: no sequence named {unknown[:3]} (has {sorted(known)[:5]})")
        for name in np.unique(chrom):
            rows = np.flatnonzero(chrom == name)
            seq = BASE_CODE[np.frombuffer(handle.fetch(fasta_name[name]).encode("ascii"), dtype=np.uint8)]
            seq = np.append(seq, np.uint8(4))  # index len(seq) -> N
            pos = start[rows, None] + np.arange(width)[None, :]
            inside = (pos >= 0) & (pos < end[rows, None]) & (pos < len(seq) - 1)
            out[rows] = seq[np.where(inside, pos, len(seq) - 1)]
    return out


def motif_hits_exact(codes: np.ndarray, motifs: list[Motif], background: np.ndarray, p: float = 1e-4) -> pd.DataFrame:
    """Boolean table (sequences × motif ids): does the sequence hold a hit at p-value ``p``?
    The numpy reference scanner (exact background thresholds; slow: one gather per motif
    position)."""
    hits = {}
    for motif in motifs:
        lo = log_odds(motif, background)
        hits[motif.id] = scan(codes, lo) >= score_threshold(lo, background, p) - 1e-9
    return pd.DataFrame(hits)


# memelite scores log2(pwm + eps) - log2(0.25); feeding it 0.25 * 2**lo - eps makes its score
# our log-odds against the file's background exactly (lo >= log2(0.01/1.01/bg), so the fed
# matrix stays positive).
_MEMELITE_EPS = 1e-4
_BIN = 0.01
_SCAN_CHUNK = 20_000  # sequences per memelite call: 40 MB of one-hot int8 at 501 bp


def motif_site_counts(codes: np.ndarray, motifs: list[Motif], background: np.ndarray, p: float = 1e-4) -> pd.DataFrame:
    """Integer table (sequences × motif ids): how many positions of the sequence start a hit at
    p-value ``p`` on either strand (memelite FIMO; a window hit on both strands counts once;
    windows touching an N or the padding do not count)."""
    from memelite import fimo

    n, length = codes.shape
    pwms = {
        str(k): np.ascontiguousarray((0.25 * 2.0 ** log_odds(m, background) - _MEMELITE_EPS).T)
        for k, m in enumerate(motifs)
    }
    out = np.zeros((n, len(motifs)), dtype=np.int32)
    for lo in range(0, n, _SCAN_CHUNK):
        part = codes[lo : lo + _SCAN_CHUNK]
        one_hot = (part[:, None, :] == np.arange(4, dtype=part.dtype)[None, :, None]).view(np.int8)
        with_n = np.flatnonzero((part >= 4).any(axis=1))  # memelite scores N as 0: drop its windows
        n_count = np.zeros((len(part), length + 1), dtype=np.int32)  # Ns before each position
        n_count[with_n, 1:] = np.cumsum(part[with_n] >= 4, axis=1)
        tables = fimo(pwms, one_hot, eps=_MEMELITE_EPS, threshold=p, bin_size=_BIN)
        for k, table in enumerate(tables):
            if not len(table):
                continue
            seq = table["sequence_name"].to_numpy(np.int64)
            start = table["start"].to_numpy(np.int64)
            clean = n_count[seq, table["end"].to_numpy(np.int64)] == n_count[seq, start]
            sites = np.unique(seq[clean] * (length + 1) + start[clean])  # one per (sequence, position)
            np.add.at(out[:, k], sites // (length + 1) + lo, 1)
    return pd.DataFrame(out, columns=[m.id for m in motifs])


def motif_hits(codes: np.ndarray, motifs: list[Motif], background: np.ndarray, p: float = 1e-4) -> pd.DataFrame:
    """Boolean table (sequences × motif ids): does the sequence hold a hit at p-value ``p``
    (:func:`motif_site_counts` > 0)?"""
    return motif_site_counts(codes, motifs, background, p) > 0


def union_motif_hits(
    union: pd.DataFrame,
    species: list[str],
    fasta: dict[str, str | Path],
    motifs: list[Motif],
    background: np.ndarray,
    p: float = 1e-4,
    aliases: dict[str, dict[str, str]] | None = None,
    counts: bool = False,
) -> dict[str, pd.DataFrame]:
    """Per species, the motif-hit table (elements present in that species × motif ids) of the
    union elements, each scanned in its own species' sequence; ``counts``: the number of sites
    (:func:`motif_site_counts`) instead of booleans."""
    hits = {}
    for s in species:
        rows = union[union[f"{s}_chrom"].notna()]
        codes = element_sequences(
            fasta[s],
            rows[f"{s}_chrom"].astype(str).to_numpy(),
            rows[f"{s}_start"].astype(np.int64).to_numpy(),
            rows[f"{s}_end"].astype(np.int64).to_numpy(),
            (aliases or {}).get(s),
        )
        scanner = motif_site_counts if counts else motif_hits
        hits[s] = scanner(codes, motifs, background, p).set_axis(rows["element_id"].astype(str).to_numpy())
    return hits
