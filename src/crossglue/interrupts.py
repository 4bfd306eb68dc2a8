"""Ctrl-C of Snakemake stops its running jobs: for Snakemake's own process (common.smk).

Kept apart from :mod:`crossglue.snakemake_script` (which every job imports): it needs
psutil, a dependency of Snakemake but not of the jobs' environments.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any


def forward_interrupts_to_jobs(grace: float = 3.0, term_after: float = 15.0) -> None:
    """On SIGINT, pass the signal on to the running jobs, as a terminal's Ctrl-C does.

    For Snakemake's own process (the Snakefile calls it). Snakemake 9's local executor
    answers SIGINT by waiting for its running jobs to finish, so when the signal reached
    Snakemake alone (``kill -INT``, an IDE's stop button, a wrapper script) a training job
    ran on for hours and Snakemake with it. ``grace`` seconds after the signal, every
    descendant process still alive gets SIGINT (a terminal's Ctrl-C has already reached
    them, and most are gone); ``term_after`` seconds later, SIGTERM.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous) or getattr(previous, "forwards_to_jobs", False):
        return  # SIGINT ignored on purpose (nohup, `&`), or already installed

    def forward(signum: int, frame: Any) -> None:
        threading.Thread(target=_interrupt_descendants, args=(os.getpid(), grace, term_after), daemon=True).start()
        previous(signum, frame)

    forward.forwards_to_jobs = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, forward)


def _interrupt_descendants(pid: int, grace: float, term_after: float) -> None:
    import psutil  # a Snakemake dependency

    time.sleep(grace)
    try:
        jobs = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    for job in jobs:
        try:
            job.send_signal(signal.SIGINT)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(jobs, timeout=term_after)
    for job in alive:
        try:
            job.terminate()
        except psutil.Error:
            pass
