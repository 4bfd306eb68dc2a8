"""The execution profiles print shell commands only where the workflow has any: every rule
runs a script today, for which Snakemake would print `Shell command: None` per job."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def rules_with_shell() -> list[str]:
    """Rules whose body has a `shell:` directive."""
    found = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=\s*rule \w+:)", smk.read_text()):
            name = re.search(r"rule (\w+):", block)
            if name and re.search(r"^\s+shell:", block, re.M):
                found.append(name.group(1))
    return found


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_shell_commands_are_printed_exactly_when_a_rule_has_one(profile):
    settings = yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())
    shell_rules = rules_with_shell()
    assert bool(settings.get("printshellcmds")) == bool(shell_rules), (
        f"profiles/{profile}/config.yaml: printshellcmds should be {bool(shell_rules)} "
        f"(rules with shell: {shell_rules or 'none'})"
    )
