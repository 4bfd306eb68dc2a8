"""Command line: ``python -m crossglue.simulate OUTDIR [--preset demo] [--seed 0] [--scale 1]``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from crossglue.errors import CrossglueError
from crossglue.simulate import PRESETS, simulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crossglue.simulate", description=__doc__)
    parser.add_argument("outdir")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--no-fasta", action="store_true", help="skip the genome FASTA files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = simulate(
            args.outdir, args.preset, args.seed, args.scale, write_fasta=False if args.no_fasta else None
        )
    except CrossglueError as err:
        print(f"crossglue error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({k: summary[k] for k in ("outdir", "preset", "seed", "scale", "seconds", "samples")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
