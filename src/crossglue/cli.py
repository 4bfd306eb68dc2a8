"""The ``crossglue`` command: a small dispatcher; each subcommand registers itself in ``_COMMANDS``.

A subcommand is a pair (``add_arguments(parser)``, ``run(args) -> int``). Bad input ends with
the :class:`CrossglueError` message on stderr and exit status 1, without a traceback.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from crossglue.errors import CrossglueError, where
from crossglue.io_utils import open_output, read_maybe_gzip

_BED_NAMES = ["chrom", "start", "end", "name", "score", "strand"]


def _line_starts_with(buf: np.ndarray, starts: np.ndarray, prefix: bytes) -> np.ndarray:
    """Which lines (given by their first byte offsets) begin with ``prefix``."""
    pos = starts[:, None] + np.arange(len(prefix))
    inside = pos < len(buf)
    got = np.where(inside, buf[np.minimum(pos, len(buf) - 1)], 0)
    return (got == np.frombuffer(prefix, dtype=np.uint8)).all(axis=1)


def _empty_bed() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=np.int64 if c in ("start", "end") else object) for c in _BED_NAMES[:3]})


def read_bed(path: str | Path) -> pd.DataFrame:
    """BED3+ (``start``/``end`` as int64, other columns as strings), skipping '#', 'track',
    'browser' and blank lines.

    Columns are named chrom, start, end, name, score, strand, then ``col7``, ``col8``, ...
    Header lines are found with numpy and the table is parsed by pandas' C reader in one go.
    """
    path = Path(path)
    try:
        raw = read_maybe_gzip(path)
    except (OSError, EOFError) as exc:
        raise CrossglueError(f"{path}: cannot read BED file ({exc})") from None
    buf = np.frombuffer(raw, dtype=np.uint8)
    starts = np.concatenate(([0], np.flatnonzero(buf == 10) + 1))
    starts = starts[starts < len(buf)]
    first = buf[starts]
    skip = np.isin(first, np.frombuffer(b"#\n\r", dtype=np.uint8))
    skip |= (first == ord("t")) & _line_starts_with(buf, starts, b"track")
    skip |= (first == ord("b")) & _line_starts_with(buf, starts, b"browser")
    for k in np.flatnonzero(np.isin(first, np.frombuffer(b" \t", dtype=np.uint8))):  # rare: leading blanks
        text = raw[starts[k] : raw.find(b"\n", starts[k]) % (len(raw) + 1)].strip()
        skip[k] = not text or text.startswith((b"#", b"track", b"browser"))
    line_no = np.flatnonzero(~skip) + 1
    if not len(line_no):
        return _empty_bed()
    first_line = raw[starts[line_no[0] - 1] :].split(b"\n", 1)[0]
    n_col = first_line.count(b"\t") + 1
    if n_col < 3:
        raise CrossglueError(
            f"{where(path, int(line_no[0]))}: expected at least 3 tab-separated columns (chrom, start, end)"
        )
    options = dict(
        sep="\t",
        header=None,
        skiprows=np.flatnonzero(skip).tolist(),
        skip_blank_lines=False,
        keep_default_na=False,
        na_filter=False,
        quoting=3,
    )
    try:
        try:
            bed = pd.read_csv(
                io.BytesIO(raw), dtype={i: (np.int64 if i in (1, 2) else str) for i in range(n_col)}, **options
            )
        except (ValueError, OverflowError) as exc:
            if isinstance(exc, pd.errors.ParserError):
                raise
            bed = pd.read_csv(io.BytesIO(raw), dtype=str, **options)  # slow path, to name the bad line
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else None  # pandas counts the file's own lines
        raise CrossglueError(
            f"{where(path, line)}: expected the same number of tab-separated BED columns on every line"
        ) from None
    bed.columns = [(_BED_NAMES[i] if i < len(_BED_NAMES) else f"col{i + 1}") for i in range(bed.shape[1])]
    for col in ("start", "end"):
        if bed[col].dtype != np.int64:
            num = pd.to_numeric(bed[col], errors="coerce").to_numpy()
            bad = np.isnan(num) | (num != np.floor(num))
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise CrossglueError(
                    f"{where(path, int(line_no[k]))}: expected a non-negative integer {col}, got {bed[col].iloc[k]!r}"
                )
            bed[col] = num.astype(np.int64)
        bad = bed[col].to_numpy() < 0
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise CrossglueError(
                f"{where(path, int(line_no[k]))}: expected a non-negative integer {col}, got {bed[col].iloc[k]}"
            )
    bad = bed["start"].to_numpy() > bed["end"].to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise CrossglueError(f"{where(path, int(line_no[k]))}: start is after end")
    return bed


def _join_columns(table: pd.DataFrame) -> pd.Series:
    """Each row as one tab-joined line (vectorised over rows, looping over columns only)."""
    cols = [table[c].astype(str) for c in table.columns]
    line = cols[0]
    for col in cols[1:]:
        line = line + "\t" + col
    return line


def _bed_text(table: pd.DataFrame) -> str:
    return _join_columns(table).str.cat(sep="\n") + "\n" if len(table) else ""


def _liftover_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old_file", help="BED3+ file in the old (target) assembly")
    parser.add_argument("map_chain", help="chain file old -> new (gz or plain)")
    parser.add_argument("new_file", help="lifted BED output")
    parser.add_argument("unmapped", help="unlifted records, each after a '#reason' line")
    parser.add_argument(
        "-minMatch",
        "--min-match",
        dest="min_match",
        type=float,
        default=0.95,
        help="minimum ratio of bases that must remap (default 0.95)",
    )
    parser.add_argument(
        "-multiple",
        "--multiple",
        dest="multiple",
        action="store_true",
        help="allow multiple output regions (BED4-6 input; output chrom start end name part [strand])",
    )


def _liftover_run(args: argparse.Namespace) -> int:
    from crossglue.genomics.chain import read_chains
    from crossglue.genomics.liftover import lift_intervals

    bed = read_bed(args.old_file)
    columns = list(bed.columns)
    if args.multiple and not 4 <= len(columns) <= 6:
        raise CrossglueError(
            f"{args.old_file}: can only lift BED4, BED5, BED6 to multiple regions (got {len(columns)} columns)"
        )
    intervals = bed if "name" in bed.columns else bed.assign(name=np.arange(len(bed)).astype(str))
    result = lift_intervals(intervals, read_chains(args.map_chain), min_match=args.min_match, multiple=args.multiple)
    mapped = result.mapped
    if args.multiple:
        part = mapped.groupby(level=0, sort=False).cumcount() + 1
        out = pd.DataFrame(
            {
                "chrom": mapped["chrom"],
                "start": mapped["start"],
                "end": mapped["end"],
                "name": mapped["name"],
                "part": part,
            }
        )
        if len(columns) == 6:
            out["strand"] = mapped["strand"]
    else:
        out = mapped[columns]
    unmapped = result.unmapped
    unmapped_text = (
        ("#" + unmapped["reason"] + "\n" + _join_columns(unmapped[columns])).str.cat(sep="\n") + "\n"
        if len(unmapped)
        else ""
    )
    with open_output(args.new_file) as new, open_output(args.unmapped) as unlifted:  # gzip when named .gz
        new.write(_bed_text(out))
        unlifted.write(unmapped_text)
    return 0


def _motif_database_arguments(parser: argparse.ArgumentParser) -> None:
    from crossglue.analysis.motifs import DEFAULT_DATABASE, JASPAR_RELEASE

    parser.add_argument(
        "--out", type=Path, default=DEFAULT_DATABASE, help=f"MEME file to write (default {DEFAULT_DATABASE})"
    )
    parser.add_argument("--release", default=JASPAR_RELEASE, help=f"pyjaspar release (default {JASPAR_RELEASE})")


def _motif_database_run(args: argparse.Namespace) -> int:
    from crossglue.analysis.motifs import write_motif_database

    n = write_motif_database(args.out, args.release)
    print(f"wrote {n} {args.release} CORE vertebrate motifs to {args.out}")
    return 0


_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "liftover": (
        "move BED intervals between assemblies through a chain file (UCSC liftOver rules)",
        _liftover_arguments,
        _liftover_run,
    ),
    "motif-database": (
        "write JASPAR CORE vertebrates as MEME from the pyjaspar package (the pipeline's default motifs)",
        _motif_database_arguments,
        _motif_database_run,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossglue", description="cross-species snRNA + snATAC integration tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, _) in _COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``crossglue`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command][2](args)
    except CrossglueError as exc:
        print(f"crossglue {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
