"""Gzip outputs are byte-identical on rerun: fixed header (mtime 0, no file name)."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from crossglue.cli import main as cli_main
from crossglue.genomics.chain import chains_from_blocks, write_chains
from crossglue.graph.files import write_edge_table, write_graphml
from crossglue.io_utils import open_output
from crossglue.simulate.writers import write_table

REPO = Path(__file__).resolve().parents[1]

EDGES = pd.DataFrame(
    {
        "source": ["h:a", "h:b", "h:a", "h:b"],
        "target": ["h:b", "h:a", "h:a", "h:b"],
        "weight": [0.5, 0.5, 1.0, 1.0],
        "sign": 1,
        "type": ["peak_gene", "peak_gene", "self", "self"],
    }
)
NODES = pd.DataFrame({"node": ["h:a", "h:b"], "species": "h", "modality": ["rna", "atac"]})
CHAINS = chains_from_blocks(
    pd.DataFrame(
        {
            "chain_id": [1, 1],
            "t_name": "chr1",
            "q_name": "chr1",
            "q_strand": "+",
            "t_start": [0, 200],
            "q_start": [10, 230],
            "size": [150, 300],
        }
    ),
    {"chr1": 10_000},
    {"chr1": 10_000},
)


def _write_everything(folder: Path) -> None:
    folder.mkdir()
    write_edge_table(EDGES, folder / "edges.tsv.gz")
    write_graphml(EDGES, NODES, folder / "graph.graphml.gz")
    write_chains(CHAINS, folder / "a_to_b.over.chain.gz")
    with open_output(folder / "table.tsv.gz") as out:  # how the workflow scripts write .gz tables
        EDGES.to_csv(out, sep="\t", index=False)
    with open_output(folder / "raw.bin.gz", "wb") as out:
        out.write(b"\x00\x01 bytes")
    write_table(folder / "truth.tsv.gz", EDGES, compress=True)  # the simulator's writer
    (folder / "in.bed").write_text("chr1\t20\t60\tx\nchr1\t5000\t5010\ty\n")
    assert (
        cli_main(
            [
                "liftover",
                str(folder / "in.bed"),
                str(folder / "a_to_b.over.chain.gz"),
                str(folder / "lifted.bed.gz"),
                str(folder / "unlifted.bed.gz"),
            ]
        )
        == 0
    )
    (folder / "in.bed").unlink()


def test_gzip_outputs_written_a_second_apart_are_byte_identical(tmp_path):
    _write_everything(tmp_path / "first")
    time.sleep(1.1)  # gzip's header holds seconds
    _write_everything(tmp_path / "second")
    files = sorted(p.name for p in (tmp_path / "first").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "second").iterdir())
    assert len(files) == 8
    for name in files:
        first, second = (tmp_path / "first" / name).read_bytes(), (tmp_path / "second" / name).read_bytes()
        assert first[:2] == b"\x1f\x8b", f"{name} is not gzip"
        assert first[3] & 0x08 == 0, f"{name}: gzip header stores a file name"
        assert first[4:8] == b"\0\0\0\0", f"{name}: gzip header stores a time"
        assert first == second, name
    assert gzip.decompress((tmp_path / "first" / "lifted.bed.gz").read_bytes()).decode() == "chr1\t30\t70\tx\n"
    table = pd.read_csv(tmp_path / "first" / "table.tsv.gz", sep="\t")
    pd.testing.assert_frame_equal(table, EDGES)


def test_plain_names_are_written_plain(tmp_path):
    with open_output(tmp_path / "t.tsv") as out:
        out.write("a\tb\n")
    assert (tmp_path / "t.tsv").read_bytes() == b"a\tb\n"


def test_a_failed_gzip_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), open_output(tmp_path / "t.tsv.gz") as out:
        out.write("partial")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def _gz_outputs_by_script() -> list[tuple[str, str, str]]:
    """(rule, output key, script) for every rule output whose name ends in .gz."""
    found = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for rule in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = rule.split(":", 1)[0]
            output = re.search(r"^    output:\n((?:        .*\n|\s*\n)+)", rule, flags=re.M)
            script = re.search(r'^    script:\n\s+"([^"]+)"', rule, flags=re.M)
            if output and script:
                for key in re.findall(r'^        (\w+)=\s*(?:\w+\()?"[^"]*\.gz"', output.group(1), flags=re.M):
                    found.append((name, key, Path(script.group(1)).name))
    return found


def test_every_gz_output_of_a_rule_is_written_with_the_fixed_header():
    """Static: each script hands its .gz outputs to open_output or a library writer that uses it
    (io_utils.write_tsv, the graph, chain and gene-table writers)."""
    writers = (
        "open_output(",
        "write_tsv(",
        "write_edge_table(",
        "write_graphml(",
        "write_chains(",
        "write_gene_table(",
    )
    outputs = _gz_outputs_by_script()
    assert {key for _, key, _ in outputs} >= {"summits", "links", "edges", "graphml"}
    for rule, key, script in outputs:
        lines = [
            line
            for line in (REPO / "workflow" / "scripts" / script).read_text().splitlines()
            if f"output.{key}" in line
        ]
        assert lines and all(any(w in line for w in writers) for line in lines), (rule, key, script, lines)
