"""Every job script pins its thread pools to the rule's ``threads`` (crossglue.snakemake_script)."""

from __future__ import annotations

import subprocess
import sys

# Two jobs' worth of limit_threads in one process (the tests run scripts in-process, and a
# script may import numba through scanpy or memelite before run() pins threads): numba
# re-reads NUMBA_NUM_THREADS at every compilation and raises once its pool has started.
CODE = """
import numpy as np
from crossglue.snakemake_script import limit_threads
limit_threads(1)
import numba

@numba.njit(parallel=True)
def total(x):
    s = 0.0
    for i in numba.prange(len(x)):
        s += x[i]
    return s

total(np.ones(10))
limit_threads(2)
print(total(np.ones(10, dtype=np.int64)), numba.get_num_threads())
"""


def test_thread_limits_change_after_numba_started_without_breaking_its_compilations():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["10.0", "1"]  # the pool started with one thread keeps it
