"""Glue between a Snakemake ``script:`` and the library: logging, errors, threads, signals.

Every script in ``workflow/scripts/`` imports only the standard library and this module at
the top, does its library imports inside ``main(smk)`` and ends with ``run(main, snakemake)``
(tests/test_workflow_static.py checks both), so that an import that fails (a broken env,
torch that cannot load) lands in the rule's log like any other error. Logging and
stderr go to the rule's ``log:`` file; a :class:`CrossglueError` (bad input, explained in
its message) is printed as one clear line instead of a traceback wall; SIGTERM ends the
job through Python, so temporary files are removed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from crossglue.errors import CrossglueError


def configure_logging(log_path: str | None) -> None:
    """Send log records (and stderr) to ``log_path`` when given, else to stderr."""
    handlers: list[logging.Handler]
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        stream = open(log_path, "w", buffering=1)  # noqa: SIM115 - lives for the process
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
    else:
        handlers = [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


def limit_threads(n: int) -> None:
    """Pin BLAS, torch and numba (memelite's motif scanner) to the rule's ``threads`` so jobs
    do not fight over cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "numba" in sys.modules:
        # numba re-reads its environment at every compilation and refuses a thread count
        # other than the one its pool started with: once loaded, only set_num_threads.
        numba = sys.modules["numba"]
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    else:
        os.environ["NUMBA_NUM_THREADS"] = str(n)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run(main: Callable[[Any], None], smk: Any) -> None:
    """Run ``main(snakemake)`` with logging set up; exit 1 with the message on bad input."""
    log = smk.log[0] if len(smk.log) else None
    configure_logging(log)
    # SIGTERM (`kill`, scancel, a time limit) as an exception: atomic_path then removes its
    # temporary file instead of leaving it beside the output.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    limit_threads(max(1, int(getattr(smk, "threads", 1))))
    try:
        main(smk)
    except CrossglueError as err:
        logging.getLogger("crossglue").error("%s", err)
        print(f"crossglue error: {err}", file=sys.__stderr__)
        raise SystemExit(1) from None
