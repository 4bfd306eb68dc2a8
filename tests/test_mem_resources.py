"""Issue 13 item 10: heavy rules ask memory for what their inputs weigh, not the whole 16 GB budget.

The ``mem_mb`` resource callable of workflow/rules/common.smk, taken from the file as it is
(its plain-Python functions and constants), fed the inputs of a small and a large job.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[1] / "workflow" / "rules"


@pytest.fixture(scope="module")
def mem_mb():
    text = (RULES / "common.smk").read_text()
    namespace: dict = {}
    for name in ("files_mb", "mem_mb"):  # each top-level def up to the next top-level statement
        block = re.search(rf"^def {name}\(.*?(?=^[A-Za-z_#@])", text, flags=re.M | re.S).group(0)
        exec(compile("import os\n" + block, "common.smk", "exec"), namespace)
    for name in ("STREAMED_CHUNK_MB", "STREAMED_PER_MB"):
        block = re.search(rf"^{name} = .*?(?=^[A-Za-z_#@])", text, flags=re.M | re.S).group(0)
        exec(block, namespace)
    return namespace["mem_mb"]


class Inputs(list):
    """Snakemake's ``input``: iterable over every file, named inputs as attributes."""

    def __init__(self, **named):
        super().__init__(named.values())
        self.__dict__.update(named)


def _file(path: Path, mb: float) -> str:
    with open(path, "wb") as fh:
        fh.truncate(int(mb * 2**20))  # sparse: the size is what counts
    return str(path)


def test_ingest_memory_follows_the_fragments_size_and_stays_far_below_the_budget(mem_mb, tmp_path):
    estimate = mem_mb(170, per_mb=12.5, per_input={"gtf": 50}, streamed="fragments")
    gtf = _file(tmp_path / "genes.gtf.gz", 2.5)
    small = Inputs(fragments=_file(tmp_path / "small.tsv.gz", 1), gtf=gtf)
    demo = Inputs(fragments=_file(tmp_path / "demo.tsv.gz", 30), gtf=gtf)
    large = Inputs(fragments=_file(tmp_path / "large.tsv.gz", 1_000), gtf=gtf)
    # 1.5 x (170 + 12.5 x 1 + 50 x 2.5) = 461 -> the 500 MB floor
    assert estimate(None, small, 1) == 500
    # 1.5 x (170 + 12.5 x 30 + 50 x 2.5) = 1005 -> rounded up to 1100
    assert estimate(None, demo, 1) == 1100
    # Streamed: the first 60 MB at 12.5, the other 940 MB at 3 (not 12.5 x 1,000 = 12.5 GB).
    assert estimate(None, large, 1) == int(-(-1.5 * (170 + 12.5 * 60 + 3 * 940 + 125) // 100)) * 100 == 5800
    assert estimate(None, demo, 2) == 2200  # doubled on a retry


def test_missing_inputs_cost_nothing_until_they_exist(mem_mb, tmp_path):
    estimate = mem_mb(750, per_mb=3)
    assert estimate(None, Inputs(bam=str(tmp_path / "absent.bam")), 1) == 1200  # 1.5 x 750, before the input exists


def test_no_rule_asks_a_fixed_share_of_the_budget():
    fixed = {
        (path.name, m.group(1))
        for path in RULES.glob("*.smk")
        for m in re.finditer(r"\bmem_mb\s*=\s*(?!mem_mb\()([^,\n]+)", path.read_text())
    }
    # The demo simulator (a fixed dataset) and train_model (the model.mem_mb key) only.
    assert fixed == {("demo.smk", "4000"), ("model.smk", 'config["model"]["mem_mb"]')}
