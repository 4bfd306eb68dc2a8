"""Configuration and sample-sheet checks that run before any job starts.

The JSON schema (``config.schema.yaml`` in this package; ``config/schema/`` links to it) is
the one home of every key and its default: settings dataclasses take their defaults from it
(:func:`schema_defaults`) and are built from config by :func:`settings_from`. This module turns
schema violations into one message per problem that names the key (``ingest.atac.min_fragments``)
or the sample-sheet row, and adds the checks a schema cannot express: files that exist,
a chain for every ordered pair of species with ATAC samples (a species with RNA samples only
needs none), samples that name known species, an RNA sample for every species and an ATAC
sample for at least one, QC minimums not above their maximums.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from crossglue.errors import CrossglueError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
MODALITIES = ("rna", "atac", "multiome")
SAMPLE_COLUMNS = ("sample", "species", "donor", "modality", "fragments", "counts", "metadata")
REQUIRED_SAMPLE_COLUMNS = ("sample", "species", "donor", "modality")


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def schema_section(section: str) -> dict:
    """The schema of a dotted config section, e.g. ``"model.train"``."""
    node = _schema()
    for part in section.split("."):
        node = node["properties"][part]
    return node


def schema_defaults(section: str) -> dict:
    """The default of every key of a config section that has one, from the schema."""
    return {k: copy.deepcopy(v["default"]) for k, v in schema_section(section)["properties"].items() if "default" in v}


def settings_from(cls: type, section: str, values: dict | None = None, **fixed: Any):
    """An instance of the settings dataclass ``cls`` from config values, defaults from the schema.

    The values are checked against the schema of ``section`` first, so a notebook caller gets
    the same message for a typo or a value out of range as a pipeline run does. Schema keys
    that a rule reads (threads, memory) rather than the library are accepted and not passed on.
    """
    values = copy.deepcopy(dict(values or {}))
    problems = _errors(values, schema_section(section), section.split("."))
    if problems:
        raise CrossglueError("; ".join(problems))
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known}, **fixed)


def section_settings(section: str, values: dict | None = None) -> dict:
    """The values of a config section, checked against its schema, with every default filled in."""
    values = copy.deepcopy(dict(values or {}))
    sub = schema_section(section)
    problems = _errors(values, sub, section.split("."))
    if problems:
        raise CrossglueError("; ".join(problems))
    _fill_defaults(values, sub)
    return values


def _errors(instance: Any, schema: dict, prefix: list[str]) -> list[str]:
    """Every schema violation of ``instance`` as a message naming its key, in key order."""
    validator = jsonschema.Draft202012Validator(schema)
    messages = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        path = [*prefix, *err.absolute_path]
        key = _key(path)
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            for name in sorted(set(err.instance) - set(allowed)):
                full = f"{key}.{name}" if path else name
                messages.append(f"config key '{full}' is not a known key; expected one of: {', '.join(allowed)}")
        else:
            messages.append(f"config key '{key}': {err.message}")
    return messages


def schema_errors(config: dict, schema_path: str | Path) -> list[str]:
    """Every schema violation of ``config`` as a message naming its key, in key order."""
    return _errors(config, yaml.safe_load(Path(schema_path).read_text()), [])


def _fill_defaults(instance: Any, schema: dict) -> None:
    """Insert each missing key's schema default, recursively (objects and array items)."""
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                _fill_defaults(instance[key], sub)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill_defaults(item, schema["items"])


def check_schema(config: dict, schema_path: str | Path, source: str) -> None:
    """Raise one :class:`CrossglueError` listing every schema violation; fill in defaults."""
    problems = schema_errors(config, schema_path)
    if problems:
        raise CrossglueError(f"{source}: invalid configuration:\n  " + "\n  ".join(problems))
    _fill_defaults(config, yaml.safe_load(Path(schema_path).read_text()))


def read_samples(path: str | Path) -> pd.DataFrame:
    """Read the sample sheet (TSV), indexed by sample, with row numbers kept for messages."""
    path = Path(path)
    if not path.is_file():
        raise CrossglueError(f"sample sheet {path} does not exist (config key 'samples')")
    try:
        sheet = pd.read_csv(path, sep="\t", dtype=str, comment="#", keep_default_na=False)
    except pd.errors.ParserError as err:
        raise CrossglueError(f"{path}: not a tab-separated table ({err})") from None
    except pd.errors.EmptyDataError:
        raise CrossglueError(
            f"{path}: the sample sheet is empty; write a header line ({', '.join(SAMPLE_COLUMNS)}, tab-separated) "
            "and one row per sample"
        ) from None
    missing = [c for c in REQUIRED_SAMPLE_COLUMNS if c not in sheet.columns]
    if missing:
        raise CrossglueError(
            f"{path}: missing column(s) {', '.join(missing)}; expected columns: {', '.join(SAMPLE_COLUMNS)}"
        )
    unknown = [c for c in sheet.columns if c not in SAMPLE_COLUMNS]
    if unknown:
        raise CrossglueError(
            f"{path}: unknown column(s) {', '.join(unknown)}; expected columns: {', '.join(SAMPLE_COLUMNS)}"
        )
    if sheet.empty:
        raise CrossglueError(f"{path}: the sample sheet lists no sample (only its header); add one row per sample")
    for col in SAMPLE_COLUMNS:
        if col not in sheet.columns:
            sheet[col] = ""
    sheet = sheet.apply(lambda c: c.str.strip())
    # Line numbers as a user sees them in an editor: header is line 1.
    sheet["line"] = range(2, len(sheet) + 2)
    dup = sheet["sample"].duplicated(keep=False)
    if dup.any():
        first = sheet.loc[dup].iloc[0]
        raise CrossglueError(f"{path}:{first['line']}: sample '{first['sample']}' appears more than once")
    return sheet.set_index("sample", drop=False)


def check_samples(sheet: pd.DataFrame, species: list[str], path: str | Path, produced: set[str]) -> None:
    """Check each row: known species and modality, the files its modality needs exist."""
    for row in sheet.itertuples(index=False):
        at = f"{path}:{row.line} (sample '{row.sample}')"
        if not row.sample or not row.sample.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise CrossglueError(f"{at}: sample names may hold letters, digits, '_', '-' and '.' only")
        if row.species not in species:
            raise CrossglueError(f"{at}: species '{row.species}' is not in config 'species' ({', '.join(species)})")
        if row.modality not in MODALITIES:
            raise CrossglueError(f"{at}: modality '{row.modality}' is not one of {', '.join(MODALITIES)}")
        if not row.donor:
            raise CrossglueError(f"{at}: column 'donor' is empty")
        needs = {"rna": ["counts"], "atac": ["fragments"], "multiome": ["counts", "fragments"]}[row.modality]
        for col in needs:
            value = getattr(row, col)
            if not value:
                raise CrossglueError(f"{at}: modality '{row.modality}' needs a '{col}' path")
            _require_file(value, f"{at}, column '{col}'", produced)
        if row.metadata:
            _require_file(row.metadata, f"{at}, column 'metadata'", produced)
        if row.fragments and row.modality != "rna":
            _require_file(row.fragments + ".tbi", f"{at}, tabix index of column 'fragments'", produced)


ATAC_MODALITIES = ("atac", "multiome")  # samples with a fragments file
RNA_MODALITIES = ("rna", "multiome")  # samples with a counts matrix


def atac_species(sheet: pd.DataFrame, species: list[str]) -> list[str]:
    """The species (in config order) with an ATAC or multiome sample: those whose peaks are called.

    A species with RNA samples only joins the model through its ortholog edges: it needs no
    peaks, no liftOver and no chain file.
    """
    with_atac = set(sheet.loc[sheet["modality"].isin(ATAC_MODALITIES), "species"])
    return [s for s in species if s in with_atac]


def check_species_samples(sheet: pd.DataFrame, species: list[str], path: str | Path) -> None:
    """Every species has samples, among them an RNA one (its genes are its graph nodes), and at least
    one species has ATAC samples (the union elements come from its peaks)."""
    for name in species:
        modalities = set(sheet.loc[sheet["species"] == name, "modality"])
        if not modalities:
            raise CrossglueError(
                f"{path}: no sample of species '{name}' (config 'species' lists it); add its samples to the sheet "
                "or remove the species from config 'species'"
            )
        if not modalities & set(RNA_MODALITIES):
            raise CrossglueError(
                f"{path}: species '{name}' has no RNA sample (modality {' or '.join(RNA_MODALITIES)}); its genes are "
                "the species' gene nodes in the guidance graph: add one, or remove the species from config 'species'"
            )
    if not atac_species(sheet, species):
        raise CrossglueError(
            f"{path}: no species has an ATAC sample (modality {' or '.join(ATAC_MODALITIES)}); peaks are called from "
            "the fragments of at least one species: add one"
        )


# (section, minimum key, maximum key): a minimum above its maximum lets no cell pass.
THRESHOLD_PAIRS = (("ingest.atac", "min_fragments", "max_fragments"), ("ingest.rna", "min_counts", "max_counts"))


def check_thresholds(config: dict) -> None:
    """Pairs of QC thresholds that no cell could satisfy together (the schema checks each alone)."""
    for section, low_key, high_key in THRESHOLD_PAIRS:
        values = config
        for part in section.split("."):
            values = values.get(part) or {}
        low, high = values.get(low_key), values.get(high_key)
        if low is not None and high is not None and low > high:
            modality = section.split(".")[-1].upper()
            raise CrossglueError(
                f"config key '{section}.{low_key}' ({low}) is greater than '{section}.{high_key}' ({high}): no cell "
                f"can pass {modality} QC; lower {low_key} or raise {high_key}"
            )


def _require_file(path: str, what: str, produced: set[str]) -> None:
    if path in produced or Path(path).exists():
        return
    raise CrossglueError(f"{what}: file {path} does not exist")


def check_species(config: dict, produced: set[str], with_atac: list[str] | None = None) -> None:
    """Unique species, their files, a chain for every ordered pair of ``with_atac`` (default: every
    species), orthologs for every pair."""
    names = [s["name"] for s in config["species"]]
    with_atac = names if with_atac is None else with_atac
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CrossglueError(f"config key 'species': species '{dup[0]}' is listed more than once")
    for i, spec in enumerate(config["species"]):
        for key in ("chrom_sizes", "gtf", "chrom_aliases", "fasta", "blacklist"):
            if spec.get(key):
                _require_file(spec[key], f"config key 'species[{i}].{key}' (species '{spec['name']}')", produced)
    chains = {}
    for i, chain in enumerate(config["chains"]):
        for end in ("from", "to"):
            if chain[end] not in names:
                raise CrossglueError(
                    f"config key 'chains[{i}].{end}': species '{chain[end]}' is not in 'species' ({', '.join(names)})"
                )
        _require_file(chain["path"], f"config key 'chains[{i}].path'", produced)
        chains[(chain["from"], chain["to"])] = chain["path"]
    for a, b in itertools.permutations(with_atac, 2):
        if (a, b) not in chains:
            raise CrossglueError(
                f"config key 'chains': no chain file from '{a}' to '{b}'; every ordered pair of species with ATAC "
                f"samples needs one (add an entry with from: {a}, to: {b}, path: ...)"
            )
    pairs = set()
    for i, table in enumerate(config["orthologs"]):
        for end in ("species_a", "species_b"):
            if table[end] not in names:
                raise CrossglueError(
                    f"config key 'orthologs[{i}].{end}': species '{table[end]}' "
                    f"is not in 'species' ({', '.join(names)})"
                )
        _require_file(table["path"], f"config key 'orthologs[{i}].path'", produced)
        pairs.add(frozenset((table["species_a"], table["species_b"])))
    for a, b in itertools.combinations(names, 2):
        if frozenset((a, b)) not in pairs:
            raise CrossglueError(f"config key 'orthologs': no ortholog table for species '{a}' and '{b}'")


def demo_outputs(config: dict, sheet: pd.DataFrame) -> set[str]:
    """The input paths the ``demo`` rule writes: every configured path under ``demo.outdir``."""
    if not config["demo"]["enabled"]:
        return set()
    root = config["demo"]["outdir"].rstrip("/") + "/"
    paths = [config["samples"]]
    for spec in config["species"]:
        paths += [spec.get(k) for k in ("chrom_sizes", "gtf", "chrom_aliases", "fasta", "blacklist")]
        if spec.get("fasta"):
            paths += [spec["fasta"] + ".fai", spec["fasta"] + ".gzi"]
    paths += [c["path"] for c in config["chains"]] + [o["path"] for o in config["orthologs"]]
    for row in sheet.itertuples(index=False):
        paths += [row.counts, row.metadata, row.fragments]
        if row.fragments:
            paths.append(row.fragments + ".tbi")
    return {p for p in paths if p and p.startswith(root)}


def load_and_check(config: dict, schema_path: str | Path, source: str = "config") -> pd.DataFrame:
    """Validate ``config`` (schema, species, chains, samples); return the sample sheet."""
    check_schema(config, schema_path, source)
    check_thresholds(config)
    demo_root = config["demo"]["outdir"].rstrip("/") + "/" if config["demo"]["enabled"] else None
    if demo_root and not Path(config["samples"]).exists() and config["samples"].startswith(demo_root):
        raise CrossglueError(
            f"config key 'samples': {config['samples']} lies under the demo output folder and cannot be read "
            "before the demo is generated; point 'samples' at config/samples.tsv"
        )
    sheet = read_samples(config["samples"])
    produced = demo_outputs(config, sheet)
    names = [s["name"] for s in config["species"]]
    check_species(config, produced, atac_species(sheet, names))
    check_samples(sheet, names, config["samples"], produced)
    check_species_samples(sheet, names, config["samples"])
    return sheet
