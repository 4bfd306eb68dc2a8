"""liftOver: exact agreement with pyliftover (points) and CrossMap (regions), UCSC reasons, CLI."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossglue.cli import main
from crossglue.errors import CrossglueError
from crossglue.genomics.chain import ChainSet, read_chains
from crossglue.genomics.liftover import lift_intervals, lift_points

# chrA: chain 1 (+, gap at 100-150), chain 2 (- strand), chain 3 (+) adjacent to chain 2;
# chrB: chains 4 and 5 align the same bases twice (a duplication).
HAND_CHAIN = """chain 1000 chrA 1000 + 0 300 chrX 1000 + 0 250 1
100\t50\t0
150

chain 900 chrA 1000 + 400 500 chrY 1000 - 200 300 2
100

chain 800 chrA 1000 + 500 600 chrX 1000 + 500 600 3
100

chain 700 chrB 500 + 0 100 chrX 1000 + 800 900 4
100

chain 600 chrB 500 + 5 100 chrY 1000 + 0 95 5
95
"""

HAND_INTERVALS = pd.DataFrame(
    {
        "chrom": ["chrA", "chrA", "chrA", "chrA", "chrA", "chrB", "chrC", "chrA", "chrA"],
        "start": [110, 50, 10, 410, 450, 10, 0, 250, 700],
        "end": [140, 250, 90, 490, 550, 60, 10, 450, 800],
        "name": ["gap", "partial", "plus", "minus", "split", "dup", "missing", "two", "outside"],
        "score": [1, 2, 3, 4, 5, 6, 7, 8, 9],
    }
)


@pytest.fixture()
def hand_chain(tmp_path: Path) -> tuple[Path, ChainSet]:
    path = tmp_path / "hand.chain"
    path.write_text(HAND_CHAIN)
    return path, read_chains(path)


def _reasons(result) -> dict[str, tuple[str, str]]:
    un = result.unmapped
    return dict(zip(un["name"], zip(un["reason"], un["reason_code"])))


def test_every_unmapped_reason(hand_chain) -> None:
    result = lift_intervals(HAND_INTERVALS, hand_chain[1])
    assert _reasons(result) == {
        "gap": ("Deleted in new", "deleted"),
        "partial": ("Partially deleted in new", "partially_deleted"),
        "split": ("Split in new", "split"),
        "dup": ("Duplicated in new", "duplicated"),
        "missing": ("Deleted in new", "chrom_not_in_chain"),
        "two": ("Split in new", "split"),
        "outside": ("Deleted in new", "deleted"),
    }
    mapped = result.mapped
    assert mapped[["name", "chrom", "start", "end", "strand", "chain", "mapped_fraction", "score"]].values.tolist() == [
        ["plus", "chrX", 10, 90, "+", 1, 1.0, 3],
        ["minus", "chrY", 710, 790, "-", 2, 1.0, 4],  # q- [210, 290) of a 1000 bp sequence
    ]
    assert mapped.index.tolist() == [2, 3]
    # the unmapped table is the input rows, extra columns included
    assert result.unmapped["score"].tolist() == [1, 2, 5, 6, 7, 8, 9]


def test_min_match_is_fraction_of_interval_within_one_chain(hand_chain) -> None:
    rows = HAND_INTERVALS[HAND_INTERVALS["name"] == "partial"]
    assert lift_intervals(rows, hand_chain[1], min_match=0.76).mapped.empty
    mapped = lift_intervals(rows, hand_chain[1], min_match=0.75).mapped
    # 150 of 200 bases aligned; the gap inside the chain is absorbed into the lifted span
    assert mapped[["chrom", "start", "end", "mapped_fraction"]].values.tolist() == [["chrX", 50, 200, 0.75]]


def test_multiple_reports_every_chain_in_target_order(hand_chain) -> None:
    result = lift_intervals(HAND_INTERVALS, hand_chain[1], multiple=True)
    got = result.mapped[["name", "chrom", "start", "end", "strand", "chain"]].values.tolist()
    assert got == [
        ["plus", "chrX", 10, 90, "+", 1],
        ["minus", "chrY", 710, 790, "-", 2],
        ["split", "chrY", 700, 750, "-", 2],  # each chain judged on its own part of the interval
        ["split", "chrX", 500, 550, "+", 3],
        ["dup", "chrX", 810, 860, "+", 4],
        ["dup", "chrY", 5, 55, "+", 5],
        ["two", "chrX", 200, 250, "+", 1],
        ["two", "chrY", 750, 800, "-", 2],
    ]
    assert set(_reasons(result)) == {"gap", "partial", "missing", "outside"}


def test_chain_nested_in_another_chains_gap(tmp_path: Path) -> None:
    path = tmp_path / "nested.chain"
    path.write_text(HAND_CHAIN + "chain 100 chrA 1000 + 110 130 chrY 1000 + 500 520 6\n20\n")
    chains = read_chains(path)
    rows = HAND_INTERVALS[HAND_INTERVALS["name"].isin(["gap", "partial"])]
    # chain 1 aligns 150 of the 200 bases around the nested chain 6 (20 bases)
    assert _reasons(lift_intervals(rows, chains)) == {
        "gap": ("Partially deleted in new", "partially_deleted"),
        "partial": ("Split in new", "split"),
    }
    mapped = lift_intervals(rows, chains, min_match=0.7).mapped
    assert mapped[["name", "chrom", "start", "end", "chain", "mapped_fraction"]].values.tolist() == [
        ["partial", "chrX", 50, 200, 1, 0.75]
    ]
    both = lift_intervals(rows, chains, min_match=0.05, multiple=True).mapped
    assert both[["name", "chrom", "start", "end", "chain"]].values.tolist() == [
        ["gap", "chrY", 500, 520, 6],
        ["partial", "chrX", 50, 200, 1],
        ["partial", "chrY", 500, 520, 6],
    ]


def test_input_strand_flips_on_minus_chain(hand_chain) -> None:
    rows = HAND_INTERVALS.iloc[[2, 3, 3]].assign(strand=["-", "+", "."])
    mapped = lift_intervals(rows, hand_chain[1]).mapped
    assert mapped["strand"].tolist() == ["-", "-", "."]


def test_hand_chain_points_match_pyliftover(hand_chain) -> None:
    pyliftover = pytest.importorskip("pyliftover")
    path, chains = hand_chain
    lo = pyliftover.LiftOver(str(path))
    chrom = np.repeat(["chrA", "chrB", "chrC"], 1001)
    pos = np.tile(np.arange(1001), 3)
    _assert_points_match(lo, chrom, pos, chains)


def _assert_points_match(lo, chrom: np.ndarray, pos: np.ndarray, chains: ChainSet) -> None:
    ours = lift_points(chrom, pos, chains)
    mine = Counter(zip(ours["query"].tolist(), ours["chrom"].tolist(), ours["pos"].tolist(), ours["strand"].tolist()))
    ref: Counter = Counter()
    for i, (c, p) in enumerate(zip(chrom.tolist(), pos.tolist())):
        for hit in lo.convert_coordinate(c, p) or []:
            ref[(i, hit[0], hit[1], hit[2])] += 1
    assert sum(ref.values()) > 0
    assert mine == ref


def _random_points(chains: ChainSet, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points plus points on and next to block edges, where off-by-one errors live."""
    rng = np.random.default_rng(seed)
    sizes = chains.header.drop_duplicates("t_name").set_index("t_name")["t_size"]
    chrom = rng.choice(sizes.index.to_numpy(), n // 2, p=(sizes / sizes.sum()).to_numpy())
    pos = (rng.random(n // 2) * sizes[chrom].to_numpy()).astype(np.int64)
    pick = rng.integers(0, len(chains.blocks), n - n // 2)
    b = chains.blocks.iloc[pick]
    edge = (
        b["t_start"].to_numpy()
        + np.where(rng.random(len(b)) < 0.5, 0, b["size"].to_numpy())
        + rng.integers(-1, 1, len(b))
    )
    e_chrom = chains.header["t_name"].to_numpy()[b["chain"].to_numpy()]
    return np.concatenate((chrom, e_chrom, ["chrNotInChain"] * 10)), np.concatenate(
        (pos, np.maximum(edge, 0), np.arange(10))
    )


@pytest.mark.parametrize("name", ["hg19ToHg38.over.chain.gz", "GRCh37_to_GRCh38.chain.gz"])
def test_real_chain_points_match_pyliftover(shared_data: Path, name: str) -> None:
    pyliftover = pytest.importorskip("pyliftover")
    path = shared_data / "chains" / name
    chains = read_chains(path)
    chrom, pos = _random_points(chains, 100_000, seed=7)
    _assert_points_match(pyliftover.LiftOver(str(path)), chrom, pos, chains)


def _crossmap_region(chain_path: Path, intervals: pd.DataFrame, tmp_path: Path, min_ratio: float) -> pd.DataFrame:
    """CrossMap 0.7.4 region mode on a BED4 file; returns name -> (chrom, start, end, ratio) for mapped rows."""
    from cmmodule.mapregion import crossmap_region_file
    from cmmodule.utils import read_chain_file

    mapping, _, _ = read_chain_file(str(chain_path))
    bed = tmp_path / "in.bed"
    intervals[["chrom", "start", "end", "name"]].to_csv(bed, sep="\t", header=False, index=False)
    crossmap_region_file(mapping, str(bed), str(tmp_path / "out.bed"), min_ratio=min_ratio)
    out = pd.read_csv(tmp_path / "out.bed", sep="\t", header=None, names=["chrom", "start", "end", "name", "ratio"])
    return out.set_index("name")


def test_real_chain_intervals_match_crossmap(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("cmmodule")
    path = shared_data / "chains" / "hg19ToHg38.over.chain.gz"
    chains = read_chains(path)
    rng = np.random.default_rng(11)
    n = 3000
    sizes = chains.header.drop_duplicates("t_name").set_index("t_name")["t_size"]
    chrom = rng.choice(sizes.index.to_numpy(), n, p=(sizes / sizes.sum()).to_numpy())
    length = rng.integers(20, 20_000, n)
    start = (rng.random(n) * (sizes[chrom].to_numpy() - length)).astype(np.int64)
    # plus 1000 intervals around block edges of '-' strand chains
    minus_blocks = chains.blocks[chains.header["q_strand"].to_numpy()[chains.blocks["chain"]] == "-"]
    b = minus_blocks.iloc[rng.integers(0, len(minus_blocks), 1000)]
    b_len = rng.integers(20, 2000, 1000)
    b_start = np.maximum(
        b["t_start"].to_numpy()
        + np.where(rng.random(1000) < 0.5, 0, b["size"].to_numpy())
        - (rng.random(1000) * b_len).astype(np.int64),
        0,
    )
    chrom = np.concatenate((chrom, chains.header["t_name"].to_numpy()[b["chain"].to_numpy()]))
    start, length = np.concatenate((start, b_start)), np.concatenate((length, b_len))
    intervals = pd.DataFrame(
        {"chrom": chrom, "start": start, "end": start + length, "name": [f"r{i}" for i in range(len(start))]}
    )
    ours = lift_intervals(intervals, chains, min_match=0.95)
    assert (ours.mapped["strand"] == "-").sum() > 200
    ref = _crossmap_region(path, intervals, tmp_path, min_ratio=0.95)

    # Chains with aligned bases in each interval; CrossMap pools chains, UCSC judges each one.
    touching = lift_intervals(intervals, chains, min_match=1e-12, multiple=True).mapped
    n_chains = touching["name"].value_counts().reindex(intervals["name"], fill_value=0).to_numpy()
    frac = touching.groupby("name")["mapped_fraction"].sum().reindex(intervals["name"], fill_value=0).to_numpy()
    on_edge = np.isclose(frac, 0.95, rtol=0, atol=1e-9)  # UCSC multiplies, CrossMap divides
    one = (n_chains == 1) & ~on_edge
    assert one.sum() > 2000 and (n_chains == 0).sum() > 50

    ours_m = ours.mapped.set_index("name")[["chrom", "start", "end"]]
    span = touching.set_index("name")[["chrom", "start", "end"]]
    names = intervals["name"].to_numpy()
    single = set(names[one])
    ref_single = sorted(single & set(ref.index))
    # Wherever CrossMap maps a one-chain interval, it lands exactly where UCSC's rules put it.
    pd.testing.assert_frame_equal(ref.loc[ref_single, ["chrom", "start", "end"]], span.loc[ref_single])
    # Same decision, except CrossMap's shortcut: an interval touching a single aligned block is
    # reported with map_ratio=1.0000 whatever its coverage (UCSC: partially deleted).
    assert set(ours_m.index) & single <= set(ref.index)
    extra = sorted((set(ref.index) & single) - set(ours_m.index))
    assert (ref.loc[extra, "ratio"] == "map_ratio=1.0000").all()
    assert (ours.unmapped.set_index("name").loc[extra, "reason_code"] == "partially_deleted").all()
    assert len(set(ours_m.index) & single) > 2000
    # Nothing touches: both refuse.
    assert not (set(names[n_chains == 0]) & (set(ours_m.index) | set(ref.index)))
    # Several chains: ours never calls it deleted, and a UCSC hit lies inside CrossMap's pooled span.
    multi = set(names[n_chains > 1])
    assert not (
        {"deleted"} & set(ours.unmapped.set_index("name").loc[sorted(multi - set(ours_m.index)), "reason_code"])
    )
    for name in sorted(multi & set(ours_m.index) & set(ref.index)):
        a, b = ours_m.loc[name], ref.loc[name]
        if a["chrom"] == b["chrom"]:
            assert b["start"] <= a["start"] and a["end"] <= b["end"]


def test_rejects_bad_intervals(hand_chain) -> None:
    with pytest.raises(CrossglueError, match=r"lift_intervals: interval table lacks columns \['name'\]"):
        lift_intervals(HAND_INTERVALS.drop(columns="name"), hand_chain[1])
    with pytest.raises(CrossglueError, match="row 1 \\(b\\): expected 0 <= start <= end, got start=9 end=5"):
        lift_intervals(
            pd.DataFrame({"chrom": ["chrA"] * 2, "start": [0, 9], "end": [5, 5], "name": ["a", "b"]}), hand_chain[1]
        )


def test_cli_liftover(hand_chain, tmp_path: Path) -> None:
    chain_path = hand_chain[0]
    bed = tmp_path / "old.bed"
    bed.write_text(
        "track name=x\n"
        "chrA\t10\t90\tplus\t0\t+\tkeep1\n"
        "chrA\t410\t490\tminus\t0\t+\tkeep2\n"
        "chrA\t110\t140\tgap\t0\t-\tkeep3\n"
        "chrA\t50\t250\tpartial\t0\t+\tkeep4\n"
    )
    new, unmapped = tmp_path / "new.bed", tmp_path / "unmapped.bed"
    assert main(["liftover", str(bed), str(chain_path), str(new), str(unmapped)]) == 0
    assert new.read_text() == "chrX\t10\t90\tplus\t0\t+\tkeep1\nchrY\t710\t790\tminus\t0\t-\tkeep2\n"
    assert unmapped.read_text() == (
        "#Deleted in new\nchrA\t110\t140\tgap\t0\t-\tkeep3\n"
        "#Partially deleted in new\nchrA\t50\t250\tpartial\t0\t+\tkeep4\n"
    )
    assert main(["liftover", str(bed), str(chain_path), str(new), str(unmapped), "-minMatch=0.7"]) == 0
    assert new.read_text().splitlines()[2] == "chrX\t50\t200\tpartial\t0\t+\tkeep4"
    assert unmapped.read_text() == "#Deleted in new\nchrA\t110\t140\tgap\t0\t-\tkeep3\n"


def test_cli_multiple_and_bed3(hand_chain, tmp_path: Path) -> None:
    bed = tmp_path / "old.bed"
    bed.write_text("chrB\t10\t60\tdup\nchrA\t250\t450\ttwo\n")
    new, unmapped = tmp_path / "new.bed", tmp_path / "un.bed"
    assert main(["liftover", str(bed), str(hand_chain[0]), str(new), str(unmapped), "-multiple"]) == 0
    assert new.read_text() == (
        "chrX\t810\t860\tdup\t1\nchrY\t5\t55\tdup\t2\nchrX\t200\t250\ttwo\t1\nchrY\t750\t800\ttwo\t2\n"
    )
    assert unmapped.read_text() == ""
    bed.write_text("chrB\t10\t60\nchrC\t1\t2\n")
    assert main(["liftover", str(bed), str(hand_chain[0]), str(new), str(unmapped)]) == 0
    assert new.read_text() == ""
    assert unmapped.read_text() == "#Duplicated in new\nchrB\t10\t60\n#Deleted in new\nchrC\t1\t2\n"


def test_cli_ragged_bed_names_line(hand_chain, tmp_path: Path, capsys) -> None:
    bed = tmp_path / "old.bed"
    bed.write_text("browser x\nchrA\t10\t90\n\nchrA\t1\t2\tname\textra\n")
    assert main(["liftover", str(bed), str(hand_chain[0]), str(tmp_path / "n.bed"), str(tmp_path / "u.bed")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"crossglue liftover: {bed}:4: expected the same number of tab-separated BED columns on every line"
    )


def test_cli_reads_gzip_bed(hand_chain, tmp_path: Path) -> None:
    import gzip

    bed = tmp_path / "old.bed.gz"
    with gzip.open(bed, "wt") as handle:
        handle.write("#comment\nchrA\t10\t90\tplus\n")
    new, un = tmp_path / "new.bed", tmp_path / "un.bed"
    assert main(["liftover", str(bed), str(hand_chain[0]), str(new), str(un)]) == 0
    assert new.read_text() == "chrX\t10\t90\tplus\n"


def test_cli_bad_bed_names_line(hand_chain, tmp_path: Path, capsys) -> None:
    bed = tmp_path / "old.bed"
    bed.write_text("# header\nchrA\t10\t90\nchrA\tten\t90\n")
    new = tmp_path / "new.bed"
    assert main(["liftover", str(bed), str(hand_chain[0]), str(new), str(tmp_path / "un.bed")]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"crossglue liftover: {bed}:3: expected a non-negative integer start, got 'ten'"
    )
    assert not new.exists()
    bed.write_text("chrA\t10\t90\nchrA\t50\t40\n")
    assert main(["liftover", str(bed), str(hand_chain[0]), str(new), str(tmp_path / "un.bed")]) == 1
    assert capsys.readouterr().err.strip() == f"crossglue liftover: {bed}:2: start is after end"


def _cli_lift(bed: Path, chain: Path, tmp_path: Path, *options: str) -> tuple[str, str]:
    new, unmapped = tmp_path / "cli.bed", tmp_path / "cli.unmapped"
    assert main(["liftover", str(bed), str(chain), str(new), str(unmapped), *options]) == 0
    return new.read_text(), unmapped.read_text()


def test_cli_chunks_give_the_same_file_as_one_pass(hand_chain, tmp_path: Path, monkeypatch) -> None:
    """Records are parsed, lifted and written a few hundred KB at a time: tiny chunks (a few
    lines, split anywhere) change nothing, whatever the line endings, comments and strands."""
    from crossglue.genomics import bedfile

    rng = np.random.default_rng(5)
    n = 400
    chrom = rng.choice(["chrA", "chrB", "chrC"], n)
    start = rng.integers(0, 900, n)
    end = start + rng.integers(0, 100, n)
    strand = rng.choice(["+", "-", "."], n)
    lines = [
        f"{c}\t{s}\t{e}\tr{i}\t{i % 1000}\t{t}\textra{i}"
        for i, (c, s, e, t) in enumerate(zip(chrom, start, end, strand))
    ]
    lines[7] += "\r"  # one CRLF line
    lines.insert(100, "# a comment in the middle")
    lines.insert(200, "")
    bed = tmp_path / "many.bed"
    bed.write_text("track name=t\n" + "\n".join(lines))  # no newline after the last record
    for options in ((), ("-minMatch=0.5",)):
        whole = _cli_lift(bed, hand_chain[0], tmp_path, *options)
        with monkeypatch.context() as m:
            m.setattr(bedfile, "_CHUNK_BYTES", 97)
            m.setattr(bedfile, "_CHUNK", 3)
            assert _cli_lift(bed, hand_chain[0], tmp_path, *options) == whole
        # and both agree with the table API
        table = pd.DataFrame(
            {"chrom": chrom, "start": start, "end": end, "name": [f"r{i}" for i in range(n)], "strand": strand}
        )
        min_match = 0.5 if options else 0.95
        result = lift_intervals(table, hand_chain[1], min_match=min_match)
        got = [line.split("\t") for line in whole[0].splitlines()]
        assert [g[3] for g in got] == result.mapped["name"].tolist()
        assert [(g[0], int(g[1]), int(g[2]), g[5]) for g in got] == list(
            zip(result.mapped["chrom"], result.mapped["start"], result.mapped["end"], result.mapped["strand"])
        )
        assert all(g[6] == "extra" + g[3][1:] and g[4] == str(int(g[3][1:]) % 1000) for g in got)
        unmapped = whole[1].splitlines()
        assert [u.split("\t")[3] for u in unmapped[1::2]] == result.unmapped["name"].tolist()
        assert unmapped[0::2] == ["#" + r for r in result.unmapped["reason"]]
    assert "\r" not in whole[0] and whole[0].endswith("\n") and whole[1].endswith("\n")


def test_cli_bad_record_in_a_later_chunk_names_its_line(hand_chain, tmp_path: Path, monkeypatch, capsys) -> None:
    from crossglue.genomics import bedfile

    bed = tmp_path / "late.bed"
    bed.write_text("#h\n" + "chrA\t10\t20\n" * 50 + "chrA\t1e3\t2000\n")
    monkeypatch.setattr(bedfile, "_CHUNK_BYTES", 64)
    assert main(["liftover", str(bed), str(hand_chain[0]), str(tmp_path / "n.bed"), str(tmp_path / "u.bed")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"crossglue liftover: {bed}:52: expected a non-negative integer start, got '1e3'"
    )
    assert not (tmp_path / "n.bed").exists() and not (tmp_path / "u.bed").exists()


def test_cli_never_imports_pandas(hand_chain, tmp_path: Path) -> None:
    """The command's start-up cost: numpy and its own modules only (a new process, as users run it)."""
    import subprocess
    import sys

    bed = tmp_path / "old.bed"
    bed.write_text("chrA\t10\t90\tplus\t0\t+\n")
    code = (
        "import sys\nfrom crossglue.cli import main\n"
        f"assert main(['liftover', {str(bed)!r}, {str(hand_chain[0])!r}, {str(tmp_path / 'n.bed')!r}, "
        f"{str(tmp_path / 'u.bed')!r}]) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'scipy', 'pyarrow')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "n.bed").read_text() == "chrX\t10\t90\tplus\t0\t+\n"


def test_read_bed_table_keeps_columns_as_text(tmp_path: Path) -> None:
    from crossglue.cli import read_bed

    bed = tmp_path / "t.bed"
    bed.write_text("browser position chr1\nchr1\t5\t10\tn1\t0\t+\tx\nchr2\t0\t3\tn2\t7\t-\ty\n")
    table = read_bed(bed)
    assert list(table.columns) == ["chrom", "start", "end", "name", "score", "strand", "col7"]
    assert table["start"].tolist() == [5, 0] and table["start"].dtype == np.int64
    assert table["score"].tolist() == ["0", "7"] and table["col7"].tolist() == ["x", "y"]
    (tmp_path / "e.bed").write_text("# nothing\n")
    assert read_bed(tmp_path / "e.bed").columns.tolist() == ["chrom", "start", "end"]
