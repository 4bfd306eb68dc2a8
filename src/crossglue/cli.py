"""The ``crossglue`` command: a small dispatcher; each subcommand registers itself in ``_COMMANDS``.

A subcommand is a pair (``add_arguments(parser)``, ``run(args) -> int``). Bad input ends with
the :class:`CrossglueError` message on stderr and exit status 1, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from crossglue.errors import CrossglueError

if TYPE_CHECKING:
    import pandas as pd

# Imports are lazy: `crossglue liftover` loads numpy and its own modules only (no pandas),
# so the whole process stays several times faster than CrossMap's (bench/bench_liftover.py).

_BED_NAMES = ["chrom", "start", "end", "name", "score", "strand"]


def read_bed(path: str | Path) -> pd.DataFrame:
    """BED3+ as a table (``start``/``end`` int64, other columns strings), skipping '#', 'track',
    'browser' and blank lines; columns chrom, start, end, name, score, strand, col7, col8, ...

    The records are read by :func:`crossglue.genomics.bedfile.read_bed_lines` (same checks).
    """
    import numpy as np
    import pandas as pd

    from crossglue.genomics.bedfile import read_bed_lines

    bed = read_bed_lines(path)
    if bed is None:
        return pd.DataFrame(
            {"chrom": pd.Series(dtype=object), "start": pd.Series(dtype=np.int64), "end": pd.Series(dtype=np.int64)}
        )
    columns = {}
    for k in range(bed.n_col):
        name = _BED_NAMES[k] if k < len(_BED_NAMES) else f"col{k + 1}"
        columns[name] = bed.start if k == 1 else bed.end if k == 2 else bed.column_text(k)
    return pd.DataFrame(columns)


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


def _strand_segment(bed, row, minus):
    """Column 6 of each lifted record, '+' and '-' swapped where the chain reverses the sequence."""
    import numpy as np

    from crossglue.genomics.bedfile import Copy

    lo, hi = bed.field(5)
    lo, length = lo[row], (hi - lo)[row]
    total = int(length.sum())
    rel = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
    source = np.concatenate((np.frombuffer(b"+-", np.uint8), bed.buf[np.repeat(lo, length) + rel]))
    offset = 2 + np.cumsum(length) - length
    one = length == 1
    byte = bed.buf[np.minimum(lo, len(bed.buf) - 1)]
    offset = np.where(minus & one & (byte == ord("+")), 1, np.where(minus & one & (byte == ord("-")), 0, offset))
    return Copy(source, offset, length)


def _lifted_segments(bed, lifted, index, names, multiple: bool) -> list:
    """A lifted record: new chrom, start, end, then the input's own bytes (column 6 flipped on '-')."""
    import numpy as np

    from crossglue.genomics.bedfile import Const, Copy, Int

    n_col, row = bed.n_col, lifted.row
    table, name_at, name_len = names  # each name with its tab
    segments = [
        Copy(table, name_at[lifted.chain], name_len[lifted.chain]),
        Int(lifted.start),
        Const(b"\t"),
        Int(lifted.end),
    ]
    if multiple:  # chrom start end name part [strand]
        name_end = bed.tab(3) if n_col >= 5 else bed.line_end
        lo = bed.tab(2)[row]
        first = np.flatnonzero(np.concatenate(([True], row[1:] != row[:-1]))) if len(row) else row
        part = np.arange(len(row)) - np.repeat(first, np.diff(np.append(first, len(row)))) + 1
        segments += [Copy(bed.buf, lo, name_end[row] - lo), Const(b"\t"), Int(part)]
        if n_col == 6:
            segments += [Const(b"\t"), _strand_segment(bed, row, lifted.minus)]
    elif n_col >= 6:
        lo, strand_lo, strand_hi = bed.tab(2)[row], bed.tab(4)[row] + 1, bed.tab(5)[row]
        segments += [
            Copy(bed.buf, lo, strand_lo - lo),
            _strand_segment(bed, row, lifted.minus),
            Copy(bed.buf, strand_hi, bed.line_end[row] - strand_hi),
        ]
    elif n_col >= 4:
        lo, hi = bed.tab(2)[row], bed.line_end[row]
        if _newline_follows(bed, hi):  # the line's own newline ends the copy
            return [*segments, Copy(bed.buf, lo, hi + 1 - lo)]
        segments.append(Copy(bed.buf, lo, hi - lo))
    return [*segments, Const(b"\n")]


def _newline_follows(bed, ends) -> bool:
    """Whether every one of these record ends is followed by a plain '\n' (not '\r\n', not EOF)."""
    return bool(len(ends)) and int(ends.max()) < len(bed.buf) and bool((bed.buf[ends] == 10).all())


def _liftover_run(args: argparse.Namespace) -> int:
    import numpy as np

    from crossglue.genomics.bedfile import Const, Copy, format_lines, iter_bed_chunks, text_table
    from crossglue.genomics.chain import read_chain_arrays
    from crossglue.genomics.liftover import REASON_CODES, REASONS, block_index, chrom_codes, lift_arrays
    from crossglue.io_utils import open_output

    index = block_index(read_chain_arrays(args.map_chain))
    names = text_table([f"{name}\t" for name in index.chains.header["q_name"].tolist()])
    reasons, reason_at, reason_len = text_table([""] + [f"#{REASONS[c]}\n" for c in REASON_CODES[1:]])
    with open_output(args.new_file, "wb") as new, open_output(args.unmapped, "wb") as unmapped:  # gzip if .gz
        for bed in iter_bed_chunks(args.old_file):  # a few MB of records at a time
            if args.multiple and not 4 <= bed.n_col <= 6:
                raise CrossglueError(
                    f"{args.old_file}: can only lift BED4, BED5, BED6 to multiple regions (got {bed.n_col} columns)"
                )
            code = chrom_codes(index, bed.chrom_names)[bed.chrom]
            lifted = lift_arrays(index, code, bed.start, bed.end, min_match=args.min_match, multiple=args.multiple)
            for chunk in format_lines(_lifted_segments(bed, lifted, index, names, args.multiple), len(lifted.row)):
                new.write(chunk)
            # Unlifted: UCSC's '#reason' line, then the input line as it was.
            failed = np.flatnonzero(lifted.reason)
            why = lifted.reason[failed]
            lo, hi = bed.line_start[failed], bed.line_end[failed]
            unlifted = [Copy(reasons, reason_at[why], reason_len[why])]
            if _newline_follows(bed, hi):
                unlifted.append(Copy(bed.buf, lo, hi + 1 - lo))
            else:
                unlifted += [Copy(bed.buf, lo, hi - lo), Const(b"\n")]
            for chunk in format_lines(unlifted, len(failed)):
                unmapped.write(chunk)
    return 0


def _motif_database_arguments(parser: argparse.ArgumentParser) -> None:
    from crossglue.analysis.motif_database import DEFAULT_DATABASE, JASPAR_RELEASE

    parser.add_argument(
        "--out", type=Path, default=DEFAULT_DATABASE, help=f"MEME file to write (default {DEFAULT_DATABASE})"
    )
    parser.add_argument("--release", default=JASPAR_RELEASE, help=f"pyjaspar release (default {JASPAR_RELEASE})")


def _motif_database_run(args: argparse.Namespace) -> int:
    from crossglue.analysis.motif_database import write_motif_database

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
