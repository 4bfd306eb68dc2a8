"""Each rule's conda env lists every third-party package its script imports (transitively
through the library), and every package an env lists imports here with the tested version."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"

# Import name -> conda package name, where they differ.
CONDA_NAME = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "igraph": "python-igraph",
    "torch": "pytorch",
    "snakemake": "snakemake-minimal",
}
# Conda package name -> the distribution name pip knows (for the version check).
DIST_NAME = {"pytorch": "torch", "python-igraph": "igraph", "snakemake-minimal": "snakemake", "pyyaml": "PyYAML"}
# Conda packages that are programs, not Python modules: checked on PATH instead.
PROGRAMS = {"bedtools": "bedtools", "htslib": "tabix", "macs2": "macs2", "macs3": "macs3", "python": "python3"}
STDLIB = set(sys.stdlib_module_names)


def rule_envs_and_scripts() -> list[tuple[str, Path, Path]]:
    """(rule, env file, script) for every rule that runs a script."""
    found = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=\s*rule \w+:)", smk.read_text()):
            name = re.search(r"rule (\w+):", block)
            conda = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", block)
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", block)
            if name and script:
                assert conda, f"rule {name.group(1)} in {smk.name} runs a script but declares no conda env"
                found.append(
                    (name.group(1), (smk.parent / conda.group(1)).resolve(), (smk.parent / script.group(1)).resolve())
                )
    return found


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _module_file(dotted: str) -> Path | None:
    base = SRC.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules a script needs, following crossglue imports."""
    seen: set[Path] = set()
    todo = [script]
    needed: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "crossglue":
                module = _module_file(name)
                if module:
                    todo.append(module)
                    # a package's __init__ runs on import of any of its modules
                    parts = name.split(".")
                    for i in range(1, len(parts)):
                        init = _module_file(".".join(parts[:i]))
                        if init:
                            todo.append(init)
            elif top not in STDLIB and top != "snakemake":
                needed.add(top)
    return needed


def env_packages(env_file: Path) -> dict[str, str | None]:
    """Conda package name -> pinned version (None when unpinned), pip entries included."""
    spec = yaml.safe_load(env_file.read_text())
    packages: dict[str, str | None] = {}
    for dep in spec.get("dependencies", []):
        entries = dep["pip"] if isinstance(dep, dict) else [dep]
        for entry in entries:
            match = re.match(r"([A-Za-z0-9_.\-]+)\s*(?:==?\s*([^\s,]+))?", entry)
            packages[match.group(1).lower()] = match.group(2)
    return packages


def missing_packages(script: Path, env: dict[str, str | None]) -> list[str]:
    return sorted(
        CONDA_NAME.get(mod, mod) for mod in third_party_imports(script) if CONDA_NAME.get(mod, mod).lower() not in env
    )


RULES = rule_envs_and_scripts()


def test_every_rule_with_a_script_is_checked():
    assert len(RULES) >= 3


@pytest.mark.parametrize(("rule", "env_file", "script"), RULES, ids=[r[0] for r in RULES])
def test_env_lists_every_import_of_its_script(rule, env_file, script):
    assert env_file.is_file(), f"rule {rule}: env file {env_file} is missing"
    spec = yaml.safe_load(env_file.read_text())
    assert spec["channels"][:2] == ["conda-forge", "bioconda"], f"{env_file.name}: channels"
    assert missing_packages(script, env_packages(env_file)) == [], f"rule {rule}: {env_file.name} lacks these"


def test_removing_a_package_from_an_env_is_caught():
    rule, env_file, script = next(r for r in RULES if "numpy" in third_party_imports(r[2]))
    env = env_packages(env_file)
    del env["numpy"]
    assert "numpy" in missing_packages(script, env)


ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


@pytest.mark.parametrize("env_file", ENV_FILES, ids=[p.stem for p in ENV_FILES])
def test_env_packages_are_pinned_and_importable_here(env_file):
    import shutil

    reverse = {v: k for k, v in CONDA_NAME.items()}
    for package, version in env_packages(env_file).items():
        assert version, f"{env_file.name}: {package} is not pinned"
        if package in PROGRAMS:
            assert shutil.which(PROGRAMS[package]), f"{env_file.name}: program {PROGRAMS[package]} not on PATH"
            continue
        importlib.import_module(reverse.get(package, package).replace("-", "_"))
        installed = importlib.metadata.version(DIST_NAME.get(package, package))
        assert installed.split("+")[0] == version, f"{env_file.name}: {package} {version} pinned, {installed} tested"
