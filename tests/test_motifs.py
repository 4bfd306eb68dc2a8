"""MEME reading, exact score thresholds, two-strand scanning and FASTA extraction."""

from __future__ import annotations

import itertools

import numpy as np
import pysam
import pytest

from crossglue.analysis.motifs import (
    BASE_CODE,
    Motif,
    element_sequences,
    log_odds,
    motif_hits,
    motif_site_counts,
    read_meme,
    scan,
    score_threshold,
)
from crossglue.errors import CrossglueError

MEME = """MEME version 4

ALPHABET= ACGT

Background letter frequencies
A 0.3 C 0.2 G 0.2 T 0.3

MOTIF M1 TFONE
letter-probability matrix: alength= 4 w= 3 nsites= 20 E= 0
1.0 0.0 0.0 0.0
0.0 1.0 0.0 0.0
0.0 0.0 0.5 0.5

MOTIF M2
letter-probability matrix: alength= 4 w= 2 nsites= 20 E= 0
0.25 0.25 0.25 0.25
0.1 0.2 0.3 0.4
"""


def encode(seq: str) -> np.ndarray:
    return BASE_CODE[np.frombuffer(seq.encode(), dtype=np.uint8)]


def test_read_meme_parses_names_background_and_matrices(tmp_path):
    path = tmp_path / "m.meme"
    path.write_text(MEME)
    motifs, bg = read_meme(path)
    assert [(m.id, m.name, m.probs.shape) for m in motifs] == [("M1", "TFONE", (3, 4)), ("M2", "M2", (2, 4))]
    assert bg.tolist() == pytest.approx([0.3, 0.2, 0.2, 0.3])
    assert motifs[0].probs[2].tolist() == [0, 0, 0.5, 0.5]


def test_read_meme_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.meme"
    path.write_text(MEME.replace("0.0 1.0 0.0 0.0", "0.0 1.0 0.0"))
    with pytest.raises(CrossglueError, match=r"bad.meme:11: motif M1 row should hold 4 probabilities"):
        read_meme(path)


def test_reads_the_real_jaspar_file(shared_data):
    motifs, bg = read_meme(shared_data / "motifs" / "JASPAR2024_CORE_vertebrates_non-redundant.meme")
    assert len(motifs) > 500
    assert {m.name for m in motifs} >= {"CTCF", "PAX6"}
    assert all(np.allclose(m.probs.sum(axis=1), 1) for m in motifs)


def test_score_threshold_is_exact_against_enumerating_every_kmer():
    rng = np.random.default_rng(0)
    motif = Motif("x", "x", rng.dirichlet(np.ones(4) * 0.5, size=5))
    bg = np.array([0.3, 0.2, 0.2, 0.3])
    lo = log_odds(motif, bg)
    kmers = np.array(list(itertools.product(range(4), repeat=5)))
    scores = lo[np.arange(5), kmers].sum(axis=1)
    prob = bg[kmers].prod(axis=1)
    for p in (1e-3, 1e-2, 0.1):
        t = score_threshold(lo, bg, p, resolution=0.001)
        # k-mers at or above t are at most p of the background (up to rounding 5 positions
        # on a 0.001 grid) ...
        assert prob[scores >= t + 0.003].sum() <= p
        # ... and admitting the next attainable score below t would exceed p
        next_below = scores[scores < t - 0.003].max()
        assert prob[scores >= next_below].sum() > p


def test_scan_takes_the_best_window_on_either_strand_and_skips_n():
    motif = Motif("m", "m", np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]))  # ACG
    bg = np.full(4, 0.25)
    lo = log_odds(motif, bg)
    best = lo.max(axis=1).sum()
    seqs = np.vstack([encode("TTTACGTTT"), encode("TTTCGTTTT"), encode("TTTTTTTTT"), encode("TTTACNTTT")])
    scores = scan(seqs, lo)
    assert scores[0] == pytest.approx(best)
    assert scores[1] == pytest.approx(best)  # CGT is ACG on the minus strand
    assert scores[2] < 0 and scores[3] < best


def test_element_sequences_cut_intervals_from_an_indexed_fasta(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">chr1\nACGTACGTAC\nGTACGT\n>chr2\nTTTTGGGG\n")
    pysam.faidx(str(fa))
    codes = element_sequences(fa, np.array(["chr1", "chr2", "chr1"]), np.array([8, 2, 14]), np.array([12, 6, 18]))
    assert codes.tolist() == [[0, 1, 2, 3], [3, 3, 2, 2], [2, 3, 4, 4]]  # past the end -> 4
    # a FASTA naming chromosomes differently is read through the alias table
    renamed = element_sequences(fa, np.array(["NC_1"]), np.array([8]), np.array([12]), aliases={"chr1": "NC_1"})
    assert renamed.tolist() == [[0, 1, 2, 3]]
    with pytest.raises(CrossglueError, match=r"no sequence named \['chrX'\]"):
        element_sequences(fa, np.array(["chrX"]), np.array([0]), np.array([4]))


def test_planted_instances_are_hits_and_random_sequence_rarely(tmp_path):
    rng = np.random.default_rng(3)
    # a motif as informative as typical TF motifs: the consensus base has probability 0.85
    major = rng.integers(0, 4, size=12)
    probs = np.full((12, 4), 0.05)
    probs[np.arange(12), major] = 0.85
    motif = Motif("m", "m", probs)
    bg = np.full(4, 0.25)
    seqs = rng.integers(0, 4, size=(400, 300)).astype(np.uint8)
    planted = np.arange(200)
    instances = np.array([rng.choice(4, p=row) for row in motif.probs for _ in range(200)]).reshape(12, 200).T
    seqs[planted, 100:112] = instances
    hits = motif_hits(seqs, [motif], bg, p=1e-4)["m"].to_numpy()
    assert hits[planted].mean() > 0.6
    assert hits[200:].mean() < 0.1  # expected 2 strands * 289 windows * 1e-4 = 0.058


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """The simulator's tiny dataset, FASTA with planted motif instances included."""
    import logging

    from crossglue.simulate import simulate

    logging.getLogger("crossglue").setLevel(logging.WARNING)
    out = tmp_path_factory.mktemp("tiny")
    simulate(out, "tiny", seed=0)
    return out


def test_planted_module_motifs_are_found_in_their_elements_and_rarely_elsewhere(tiny_demo):
    import pandas as pd

    truth = tiny_demo / "truth"
    motifs, background = read_meme(truth / "motifs.meme")
    by_id = {m.id: m for m in motifs}
    cres = pd.read_csv(truth / "cres.tsv", sep="\t")
    modules = pd.read_csv(truth / "modules.tsv", sep="\t")
    assert len(modules) >= 2
    for module in modules.itertuples():
        s = module.species
        present = cres[cres[f"{s}_chrom"].notna()]
        codes = element_sequences(
            tiny_demo / "genome" / f"{s}.fa.gz",
            present[f"{s}_chrom"].to_numpy(),
            present[f"{s}_start"].astype(int).to_numpy(),
            present[f"{s}_end"].astype(int).to_numpy(),
        )
        hits = motif_hits(codes, [by_id[module.motif]], background)[module.motif].to_numpy()
        members = present["cre"].isin(module.cres.split(",")).to_numpy()
        assert hits[members].mean() >= 0.8, module.module
        assert hits[~members].mean() <= 0.2, module.module


def test_memelite_scanner_agrees_with_the_exact_scanner_on_genome_sequence(tiny_demo, shared_data):
    """20 JASPAR 2024 matrices over the simulated genome's CRE sequences (no real genome is in
    the shared data; the simulator's AT-rich composition and planted sites stand in for it).
    memelite calls a hit from a 0.01-bit p-value grid under uniform letters, the exact scanner
    from the same grid built by convolution: they differ only where a window's score ties the
    threshold. Measured here: agreement 1.0000 per (sequence, motif), Jaccard 1.000 at 1e-4."""
    import pandas as pd

    from crossglue.analysis.motifs import motif_hits_exact

    motifs, background = read_meme(shared_data / "motifs" / "JASPAR2024_CORE_vertebrates_non-redundant.meme")
    chosen = motifs[::44][:20]
    cres = pd.read_csv(tiny_demo / "truth" / "cres.tsv", sep="\t")
    present = cres[cres["human_chrom"].notna()]
    codes = element_sequences(
        tiny_demo / "genome" / "human.fa.gz",
        present["human_chrom"].to_numpy(),
        present["human_start"].astype(int).to_numpy(),
        present["human_end"].astype(int).to_numpy(),
    )
    fast = motif_hits(codes, chosen, background, p=1e-4).to_numpy()
    exact = motif_hits_exact(codes, chosen, background, p=1e-4).to_numpy()
    agreement = (fast == exact).mean()
    jaccard = (fast & exact).sum() / (fast | exact).sum()
    print(f"\n{codes.shape[0]} sequences x 20 motifs: agreement {agreement:.4f}, Jaccard {jaccard:.3f}")
    assert exact.sum() >= 100
    assert agreement >= 0.999 and jaccard >= 0.97


def test_site_counts_count_each_position_once_on_either_strand_and_agree_with_hits():
    # ACGT is its own reverse complement: each site hits both strands at one position
    motif = Motif("m", "m", np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]] * 2))
    bg = np.full(4, 0.25)
    seqs = np.vstack([encode("TTACGTACGTTTTTTTTTTT"), encode("ACGTACGTTTACGTACGTTT"), encode("TTTTTTTTTTTTTTTTTTTT")])
    counts = motif_site_counts(seqs, [motif], bg, p=1e-4)["m"]
    assert counts.tolist() == [1, 2, 0]
    assert (motif_hits(seqs, [motif], bg, p=1e-4)["m"] == (counts > 0)).all()


def test_hits_never_count_a_window_over_n_or_padding():
    motif = Motif("m", "m", np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]] * 2))
    bg = np.full(4, 0.25)
    seqs = np.vstack([encode("TTACGTACGTTT"), encode("TTACGTNCGTTT"), np.append(encode("TTTTTTACGTAC"), [4, 4, 4])[3:]])
    assert motif_hits(seqs, [motif], bg, p=1e-4)["m"].tolist() == [True, False, False]


def test_motif_database_is_jaspar_2024_core_vertebrates_byte_for_byte(tmp_path, shared_data):
    from crossglue.cli import main

    out = tmp_path / "resources" / "jaspar.meme"
    assert main(["motif-database", "--out", str(out)]) == 0
    reference = shared_data / "motifs" / "JASPAR2024_CORE_vertebrates_non-redundant.meme"
    assert out.read_bytes() == reference.read_bytes()
    motifs, bg = read_meme(out)
    assert len(motifs) == 879 and bg.tolist() == [0.25] * 4


def test_every_planted_jaspar_matrix_is_in_the_default_database_under_its_name(shared_data):
    from crossglue.simulate.jaspar import JASPAR_COUNTS

    motifs, _ = read_meme(shared_data / "motifs" / "JASPAR2024_CORE_vertebrates_non-redundant.meme")
    names = {m.id: m.name for m in motifs}
    assert {k: names.get(k) for k in JASPAR_COUNTS} == {k: v[0] for k, v in JASPAR_COUNTS.items()}


def test_motif_database_of_an_unknown_release_is_refused(tmp_path, capsys):
    from crossglue.cli import main

    assert main(["motif-database", "--out", str(tmp_path / "x.meme"), "--release", "JASPAR1999"]) == 1
    assert capsys.readouterr().err == (
        "crossglue motif-database: JASPAR release JASPAR1999 is not in the pyjaspar package (it has JASPAR2014, "
        "JASPAR2016, JASPAR2018, JASPAR2020, JASPAR2022, JASPAR2024, JASPAR2026)\n"
    )
    assert not (tmp_path / "x.meme").exists()


def test_the_workflow_the_makefile_and_the_library_name_one_default_database():
    from pathlib import Path

    from crossglue.analysis.motif_database import DEFAULT_DATABASE

    repo = Path(__file__).resolve().parents[1]
    assert str(DEFAULT_DATABASE) in (repo / "workflow/rules/common.smk").read_text()
    assert f"MOTIF_DB := {DEFAULT_DATABASE}" in (repo / "Makefile").read_text()
    assert "/resources/" in (repo / ".gitignore").read_text().splitlines()
