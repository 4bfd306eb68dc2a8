"""Chain files: real UCSC and Ensembl chains parse, round-trip exactly, and bad files are named."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossglue.errors import CrossglueError
from crossglue.genomics.chain import ChainSet, chains_from_blocks, read_chains, write_chains

SMALL = """chain 1000 chrA 1000 + 0 300 chrX 1000 + 0 250 1
100\t50\t0
150

chain 500 chrA 1000 + 400 500 chrY 1000 - 200 300 2
100
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_small_chain_tables(tmp_path: Path) -> None:
    chains = read_chains(_write(tmp_path / "small.chain", SMALL))
    assert chains.header[
        ["chain_id", "t_name", "t_start", "t_end", "q_name", "q_strand", "q_start", "q_end"]
    ].values.tolist() == [
        [1, "chrA", 0, 300, "chrX", "+", 0, 250],
        [2, "chrA", 400, 500, "chrY", "-", 200, 300],
    ]
    assert chains.blocks.values.tolist() == [[0, 0, 0, 100], [0, 150, 100, 150], [1, 400, 200, 100]]


def test_aliases_translate_target_and_query(tmp_path: Path) -> None:
    chains = read_chains(
        _write(tmp_path / "small.chain", SMALL), t_aliases={"chrA": "1"}, q_aliases={"chrX": "X", "chrY": "Y"}
    )
    assert chains.header["t_name"].tolist() == ["1", "1"]
    assert chains.header["q_name"].tolist() == ["X", "Y"]


@pytest.mark.parametrize("name, n_chains", [("hg19ToHg38.over.chain.gz", 1278), ("GRCh37_to_GRCh38.chain.gz", 3004)])
def test_real_chain_round_trip(shared_data: Path, tmp_path: Path, name: str, n_chains: int) -> None:
    source = shared_data / "chains" / name
    chains = read_chains(source)
    assert len(chains) == n_chains
    # Every chain's blocks add up to its header span (checked by the reader) and sizes match lines.
    text = gzip.open(source, "rt").read().splitlines()
    n_block_lines = sum(1 for line in text if line and not line.startswith(("chain", "#")))
    assert len(chains.blocks) == n_block_lines
    for suffix in (".chain.gz", ".chain"):
        out = tmp_path / f"again{suffix}"
        write_chains(chains, out)
        again = read_chains(out)
        pd.testing.assert_frame_equal(again.header, chains.header)
        pd.testing.assert_frame_equal(again.blocks, chains.blocks)
    if name.startswith("hg19"):  # UCSC's own layout is reproduced byte for byte
        assert gzip.open(tmp_path / "again.chain.gz").read() == gzip.open(source).read()


def test_real_ensembl_names_translate(shared_data: Path) -> None:
    chains = read_chains(
        shared_data / "chains" / "GRCh37_to_GRCh38.chain.gz",
        t_aliases={"1": "chr1"},
        q_aliases={"1": "chr1", "X": "chrX"},
    )
    assert {"chr1", "2"} <= set(chains.header["t_name"])
    assert "chrX" in set(chains.header["q_name"]) and "X" not in set(chains.header["q_name"])


def test_chains_from_blocks_write_read_identical(tmp_path: Path) -> None:
    blocks = pd.DataFrame(
        {
            "chain_id": [7, 7, 7, 3],
            "t_name": ["chr1", "chr1", "chr1", "chr2"],
            "q_name": ["c1", "c1", "c1", "c9"],
            "q_strand": ["+", "+", "+", "-"],
            "t_start": [10, 60, 200, 5],
            "q_start": [0, 55, 190, 100],
            "size": [40, 100, 30, 20],
        }
    )
    chains = chains_from_blocks(blocks, {"chr1": 1000, "chr2": 50}, {"c1": 500, "c9": 400})
    assert chains.header["chain_id"].tolist() == [7, 3]
    assert chains.header[["t_start", "t_end", "q_start", "q_end", "score"]].values.tolist() == [
        [10, 230, 0, 220, 170],
        [5, 25, 100, 120, 20],
    ]
    assert chains.blocks["chain"].tolist() == [0, 0, 0, 1]
    write_chains(chains, tmp_path / "sim.chain.gz")
    again = read_chains(tmp_path / "sim.chain.gz")
    assert again.equals(chains)
    assert (tmp_path / "sim.chain.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_chains_from_blocks_rejects_overlapping_blocks() -> None:
    blocks = pd.DataFrame(
        {
            "chain_id": [1, 1],
            "t_name": ["a", "a"],
            "q_name": ["b", "b"],
            "q_strand": ["+", "+"],
            "t_start": [0, 5],
            "q_start": [0, 20],
            "size": [10, 10],
        }
    )
    with pytest.raises(CrossglueError, match="chains_from_blocks: blocks of chain 1 overlap"):
        chains_from_blocks(blocks, {"a": 100}, {"b": 100})


@pytest.mark.parametrize(
    "text, line, expected",
    [
        ("chain 1 chrA 1000 + 0 10 chrX\n10\n", 1, "12 or 13 fields"),
        ("chain 1 chrA 1000 + 0 20 chrX 1000 + 0 20 1\n10 x 0\n10\n", 2, "non-negative integers"),
        ("chain 1 chrA 1000 + 0 20 chrX 1000 + 0 20 1\n10 0\n10\n", 2, "'size dt dq'"),
        ("chain 1 chrA 1000 + 0 20 chrX 1000 + 0 20 1\n10 0 0\n10.5\n", 3, "non-negative integers"),
        ("chain 1 chrA 1000 + 0 30 chrX 1000 + 0 30 1\n10 0 0\n10\n", 1, "blocks of this chain end at t=20"),
        (
            "chain 1 chrA 1000 + 0 10 chrX 1000 + 0 10 1\n\nchain 2 chrA 1000 + 20 30 chrX 1000 + 20 30 2\n10\n",
            1,
            "chain has no alignment blocks",
        ),
        ("10 0 0\n", 1, "before any 'chain' header"),
        ("chain 1 chrA 1000 + 0 10 chrX 1000 * 0 10 1\n10\n", 1, "qStrand"),
    ],
)
def test_malformed_chain_names_file_and_line(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = _write(tmp_path / "bad.chain", text)
    with pytest.raises(CrossglueError) as err:
        read_chains(path)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert expected in str(err.value)


def test_float_scores_stay_float_on_round_trip(tmp_path: Path) -> None:
    chains = read_chains(_write(tmp_path / "f.chain", "chain 12.0 chrA 100 + 0 10 chrX 100 + 0 10 1\n10\n"))
    assert chains.header["score"].dtype == np.float64
    write_chains(chains, tmp_path / "g.chain")
    assert read_chains(tmp_path / "g.chain").equals(chains)


def test_empty_chain_file_gives_empty_set(tmp_path: Path) -> None:
    chains = read_chains(_write(tmp_path / "empty.chain", "# nothing\n"))
    assert isinstance(chains, ChainSet) and len(chains) == 0 and len(chains.blocks) == 0
    assert np.array_equal(
        chains.header.columns,
        [
            "chain_id",
            "score",
            "t_name",
            "t_size",
            "t_strand",
            "t_start",
            "t_end",
            "q_name",
            "q_size",
            "q_strand",
            "q_start",
            "q_end",
        ],
    )
