"""The README's "From a notebook" example runs exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _notebook_example() -> str:
    section = README.read_text().split("### From a notebook", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_notebook_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    namespace: dict = {}
    exec(compile(_notebook_example(), str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["u"].shape == (80, 50)
    assert len(namespace["v"]) == namespace["toy"].edges["source"].nunique()
    # the saved file is tensors and plain values only
    payload = torch.load(tmp_path / "glue.pt", weights_only=True)
    assert payload["format"] == 2 and isinstance(payload["nodes"], list)
