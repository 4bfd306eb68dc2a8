"""Score a finished pipeline run against the simulator's ``truth/`` tables.

One call, :func:`score_run`, reads a run directory (``results/`` and the simulator's
``demo/truth/``) and returns a :class:`Score`: a tidy table of named figures (section,
figure, value, reason) and per-type tables (confusion matrices, per-class union scores).
A figure whose truth column or pipeline output is absent is ``NaN`` with a ``reason``
instead of an error, so the same scorer runs on ``demo`` and ``realistic`` runs.

From a shell::

    python -m crossglue.simulate.score RUN_DIR [--truth DIR] [--json out.json]

prints every figure and table (``--json`` also writes them as JSON).

Sections and what they score:

- ``qc``: fraction of planted doublets / low-quality / empty barcodes absent from the cells
  the pipeline kept (rows of ``results/model/cells.h5ad``, else ``results/ingest/*/``), and
  the fraction of real nuclei kept, per modality (a multiome nucleus counts in both).
- ``union``: precision and recall of every union element class against truth CRE classes.
- ``transfer``: kNN(15) label transfer in ``X_glue`` from the labelled cells of one species to
  the other species' cells, per direction and modality pair; accuracy, balanced accuracy,
  the row-normalised confusion table and its largest off-diagonal share; then the pipeline's
  own transferred labels (``results/analysis/cells.h5ad``) scored the same way.
- ``integration``: FOSCTTM per species on multiome nuclei, MAP on true types and the Seurat
  alignment score of species within the types both species have, for ``model`` and
  ``model_ablation``.
- ``links``: AUROC / AUPRC of the pipeline's link score and of distance alone, on all
  candidates and on distal ones (> 2 kb); empirical FDR among links with q <= 0.1.
- ``modules``: element and gene precision / recall of the called modules against the
  planted ones, and the fraction of planted modules whose motif the pipeline names (as a
  module's motif or one of its motif family, and as the motif alone).
- ``turnover``: of the union elements of planted modules, the fraction where the motif
  turnover analysis finds the planted motif gained in the module's species, and the
  fraction of planted modules with >= 80 % of their elements so found.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# --- everything this module takes from the library: one place, so moves are one edit --------
from crossglue.analysis.annotate import UNASSIGNED, has_label
from crossglue.analysis.metrics import (
    foscttm,
    knn_transfer_accuracy,  # noqa: F401 - the figure's definition; see knn_predict
    mean_average_precision,
    seurat_alignment_score,
)
from crossglue.analysis.modules import module_recovery
from crossglue.analysis.regulatory import distance_prior, evaluate_scores, truth_link_labels, union_element_truth
from crossglue.analysis.turnover import planted_turnover

# ---------------------------------------------------------------------------------------------

NA = float("nan")
K_TRANSFER = 15
DISTAL_BP = 2_000
LINK_Q = 0.1
MODALITIES = ("rna", "atac")
BAD_STATUSES = ("doublet", "low_quality", "empty")  # always reported; others in the truth too
SECTIONS = ("qc", "union", "transfer", "labels", "integration", "links", "modules", "turnover")
RUNS = {"main": "model", "ablation": "model_ablation"}
LABEL_RUNS = {"main": "results/analysis/cells.h5ad", "ablation": "results/analysis/ablation/cells.h5ad"}


class Missing(Exception):
    """An input a figure needs is absent: the figure is NA with this reason."""


@dataclass
class Score:
    """Figures (columns section, figure, value, reason) and named per-type tables."""

    figures: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def value(self, figure: str) -> float:
        row = self.figures.loc[self.figures["figure"] == figure, "value"]
        if row.empty:
            raise KeyError(figure)
        return float(row.iloc[0])

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.figures["figure"], self.figures["value"].astype(float), strict=True))

    def to_string(self) -> str:
        shown = self.figures.assign(value=self.figures["value"].map(lambda v: "NA" if pd.isna(v) else f"{v:.4f}"))
        parts = [shown.to_string(index=False)]
        for name, table in self.tables.items():
            parts.append(f"\n== {name} ==\n" + table.round(3).to_string())
        return "\n".join(parts)

    def to_json(self) -> dict:
        figs = self.figures.astype(object).where(self.figures.notna(), None)
        return {
            "figures": figs.to_dict(orient="records"),
            "tables": {k: json.loads(v.to_json(orient="split")) for k, v in self.tables.items()},
        }


class _Figures:
    """Collects rows; ``na`` records a reason."""

    def __init__(self, section: str):
        self.section, self.rows = section, []

    def add(self, figure: str, value, reason: str = "") -> None:
        value = NA if value is None else float(value)
        if np.isnan(value) and not reason:
            reason = "not computable (empty or single-class input)"
        self.rows.append({"section": self.section, "figure": figure, "value": value, "reason": reason})

    def na(self, names, reason: str) -> None:
        for name in names:
            self.add(name, NA, reason)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["section", "figure", "value", "reason"])


# --- reading a run ----------------------------------------------------------------------------


class Run:
    """Lazy, cached access to a run's outputs and truth; a missing file raises :class:`Missing`."""

    def __init__(self, root: Path, truth: Path | None = None):
        self.root = Path(root)
        self.truth_dir = Path(truth) if truth else self.root / "demo" / "truth"
        self._cache: dict = {}

    def _get(self, key, load):
        if key not in self._cache:
            try:
                self._cache[key] = load()
            except Missing as err:
                self._cache[key] = err
        if isinstance(self._cache[key], Missing):
            raise self._cache[key]
        return self._cache[key]

    def path(self, rel: str, truth: bool = False) -> Path:
        p = (self.truth_dir if truth else self.root) / rel
        if not p.exists():
            raise Missing(f"missing {p}")
        return p

    def tsv(self, rel: str, truth: bool = False, **kw) -> pd.DataFrame:
        return self._get(("tsv", rel, truth), lambda: pd.read_csv(self.path(rel, truth), sep="\t", **kw))

    def truth_cells(self) -> pd.DataFrame:
        return self.tsv("cells.tsv", truth=True, dtype={"cell": str, "cell_type": str})

    def species(self) -> list[str]:
        try:
            return sorted(self.truth_cells()["species"].astype(str).unique())
        except Missing:
            sheet = self.tsv("config/samples.tsv")
            return sorted(sheet["species"].astype(str).unique())

    def cres(self) -> pd.DataFrame:
        return self.tsv("cres.tsv", truth=True, dtype={"cre": str})

    def union(self) -> pd.DataFrame:
        return self.tsv("results/consensus/union_peaks.tsv", dtype={"element_id": str})

    def element_truth(self) -> pd.DataFrame:
        return self._get("element_truth", lambda: union_element_truth(self.union(), self.cres(), self.species()))

    def h5ad(self, rel: str):
        import anndata as ad

        return self._get(("h5ad", rel), lambda: ad.read_h5ad(self.path(rel)))

    def kept_cells(self) -> tuple[pd.DataFrame, str]:
        """(cell_id, modality) of every profile the pipeline kept, and where that was read."""

        def load():
            try:
                obs = self.h5ad("results/model/cells.h5ad").obs
                ids = obs["cell_id"] if "cell_id" in obs else pd.Series(obs.index, index=obs.index)
                return pd.DataFrame(
                    {"cell_id": ids.astype(str).to_numpy(), "modality": obs["modality"].astype(str).to_numpy()}
                ), "results/model/cells.h5ad"
            except Missing:
                pass
            import anndata as ad

            parts = []
            for s in self.species():
                for m in MODALITIES:
                    p = self.root / f"results/ingest/{s}/{m}.h5ad"
                    if p.exists():
                        parts.append(
                            pd.DataFrame({"cell_id": ad.read_h5ad(p, backed="r").obs_names.astype(str), "modality": m})
                        )
            if not parts:
                raise Missing("missing results/model/cells.h5ad and results/ingest/{species}/{rna,atac}.h5ad")
            return pd.concat(parts, ignore_index=True), "results/ingest/*/{rna,atac}.h5ad"

        return self._get("kept", load)


def true_types(truth_cells: pd.DataFrame, cell_ids) -> np.ndarray:
    """True cell type of each cell id (None where the truth has none: empty droplets, doublets)."""
    table = truth_cells.set_index("cell")["cell_type"]
    values = table.reindex(pd.Index(np.asarray(cell_ids).astype(str))).astype(object).to_numpy()
    return np.where(pd.isna(values) | (values == ""), None, values)


def status_column(truth_cells: pd.DataFrame) -> str | None:
    """The truth column naming what each barcode is (``status``; the demo's ``quality``)."""
    for name in ("status", "quality"):
        if name in truth_cells:
            return name
    return None


# --- QC ---------------------------------------------------------------------------------------


def qc_figures(
    truth_cells: pd.DataFrame | None, kept: pd.DataFrame | None, reason: str = "", source: str = ""
) -> pd.DataFrame:
    """Fraction of each planted bad barcode class removed, and of real nuclei kept, per modality.

    ``truth_cells``: cells.tsv (cell, modality rna/atac/multiome, status or quality);
    ``kept``: (cell_id, modality) of the profiles the pipeline kept.
    """
    f = _Figures("qc")
    names = [f"qc.{s}_removed.{m}" for s in BAD_STATUSES for m in MODALITIES] + [
        f"qc.real_nuclei_kept.{m}" for m in MODALITIES
    ]
    if truth_cells is None or kept is None:
        f.na(names, reason)
        return f.frame()
    col = status_column(truth_cells)
    if col is None:
        f.na(names, "truth cells.tsv has no status (or quality) column")
        return f.frame()
    status = truth_cells[col].astype(str).to_numpy()
    statuses = list(BAD_STATUSES) + sorted(set(status) - set(BAD_STATUSES) - {"cell"})
    kept_keys = pd.MultiIndex.from_frame(kept[["cell_id", "modality"]].astype(str))
    for m in MODALITIES:
        has = truth_cells["modality"].astype(str).isin([m, "multiome"]).to_numpy()
        ids = truth_cells["cell"].astype(str).to_numpy()
        is_kept = pd.MultiIndex.from_arrays([ids, np.full(len(ids), m)]).isin(kept_keys)
        for s in statuses:
            sel = has & (status == s)
            if sel.any():
                f.add(f"qc.{s}_removed.{m}", 1.0 - is_kept[sel].mean())
            else:
                f.add(f"qc.{s}_removed.{m}", NA, f"truth has no '{s}' barcodes with {m}")
        sel = has & (status == "cell")
        f.add(
            f"qc.real_nuclei_kept.{m}",
            is_kept[sel].mean() if sel.any() else NA,
            f"kept = rows of {source}" if sel.any() else f"truth has no real {m} nuclei",
        )
    return f.frame()


# --- union element classes --------------------------------------------------------------------


def element_truth_class(
    union: pd.DataFrame, element_truth: pd.DataFrame, cres: pd.DataFrame, species: list[str]
) -> pd.DataFrame:
    """Each union element's matched truth CRE and its class (a CRE matched in a species where the
    element has a called peak wins; None where no truth CRE lies within 250 bp)."""
    et = element_truth.reindex(union["element_id"].astype(str).to_numpy())
    cre = np.full(len(union), None, dtype=object)
    for pass_peak in (True, False):
        for s in species:
            if s not in et:
                continue
            ok = et[s].notna().to_numpy() & pd.isna(cre)
            if pass_peak and f"{s}_peak" in union:
                ok &= union[f"{s}_peak"].notna().to_numpy()
            cre[ok] = et[s].to_numpy()[ok]
    classes = cres.set_index("cre")["class"].astype(str)
    truth_class = classes.reindex(pd.Index(cre.astype(str))).to_numpy()
    truth_class = np.where(pd.isna(cre), None, truth_class)
    return pd.DataFrame(
        {
            "element_id": union["element_id"].astype(str).to_numpy(),
            "class": union["class"].astype(str).to_numpy(),
            "cre": cre,
            "truth": truth_class,
        }
    )


def union_figures(union, element_truth, cres, species, reason: str = "") -> tuple[pd.DataFrame, dict]:
    """Per class: precision (called elements of the class whose truth CRE has it; an element
    with no truth CRE counts against), recall (truth CREs of the class found by some element
    whose call is that class, among truth CREs some element found) and detection (truth CREs
    of the class found by any element)."""
    f = _Figures("union")
    classes = ["conserved"] + [f"{s}_{k}" for k in ("accessible", "sequence") for s in species]
    names = [f"union.{c}.{m}" for c in classes for m in ("precision", "recall")]
    if union is None:
        f.na(names, reason)
        return f.frame(), {}
    scored = element_truth_class(union, element_truth, cres, species)
    found = scored[scored["cre"].notna()]
    rows = []
    for c in classes:
        called = scored[scored["class"] == c]
        precision = (called["truth"] == c).mean() if len(called) else NA
        truth_c = cres.loc[cres["class"].astype(str) == c, "cre"].astype(str)
        hit = found[found["cre"].isin(truth_c)]
        per_cre = hit.groupby("cre")["class"].agg(lambda x: (x == c).any())
        recall = per_cre.mean() if len(per_cre) else NA
        f.add(f"union.{c}.precision", precision, "" if len(called) else f"the pipeline called no {c} elements")
        f.add(f"union.{c}.recall", recall, "" if len(per_cre) else f"no truth {c} CRE was found by any element")
        rows.append(
            {
                "class": c,
                "called": len(called),
                "precision": precision,
                "truth_cres": len(truth_c),
                "detected": len(per_cre),
                "detection": len(per_cre) / len(truth_c) if len(truth_c) else NA,
                "recall": recall,
            }
        )
    f.add("union.unmatched_elements", (scored["cre"].isna()).mean())
    table = pd.DataFrame(rows).set_index("class")
    confusion = pd.crosstab(scored["class"], scored["truth"].fillna("(none)"))
    return f.frame(), {"union classes": table, "union class x truth class (elements)": confusion}


# --- label transfer ---------------------------------------------------------------------------


def knn_predict(ref: np.ndarray, ref_labels: np.ndarray, query: np.ndarray, k: int = K_TRANSFER) -> np.ndarray:
    """Labels voted by each query cell's k nearest reference cells (as knn_transfer_accuracy)."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=min(k, len(ref))).fit(ref, np.asarray(ref_labels).astype(str))
    return clf.predict(query)


def balanced_accuracy(truth, predicted, types=None) -> float:
    """Mean over true types (those in ``types`` when given) of the share predicted right."""
    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    keep = np.isin(truth, list(types)) if types is not None else np.ones(len(truth), bool)
    if not keep.any():
        return NA
    frame = pd.DataFrame({"t": truth[keep], "ok": truth[keep] == predicted[keep]})
    return float(frame.groupby("t")["ok"].mean().mean())


def confusion(truth, predicted) -> pd.DataFrame:
    """True type x assigned type, row-normalised."""
    return pd.crosstab(
        pd.Series(np.asarray(truth).astype(str), name="true"),
        pd.Series(np.asarray(predicted).astype(str), name="assigned"),
        normalize="index",
    )


def largest_off_diagonal(table: pd.DataFrame) -> tuple[float, str]:
    """The largest share of a true type assigned to another type, and which."""
    stacked = table.stack()
    off = stacked[[t != a for t, a in stacked.index]]
    off = off[off.index.get_level_values(1) != UNASSIGNED]
    if off.empty or off.max() == 0:
        return 0.0, ""
    (t, a), v = off.idxmax(), off.max()
    return float(v), f"{t} -> {a}"


def _directions(species):
    return [(a, b) for a in species for b in species if a != b]


def transfer_figures(
    obs: pd.DataFrame | None, x: np.ndarray | None, species: list[str], run: str = "main", reason: str = ""
) -> tuple[pd.DataFrame, dict]:
    """kNN(15) transfer from the labelled cells of species A (given ``cell_type``) to the
    unlabelled cells of species B with a true type (``obs['true_type']``), per modality pair
    and over all modalities."""
    f = _Figures("transfer")
    pairs = [("all", "all")] + [(a, b) for a in MODALITIES for b in MODALITIES]
    names = []
    for a, b in _directions(species):
        for ma, mb in pairs:
            tag = f"transfer.{run}.{a}_to_{b}" + ("" if ma == "all" else f".{ma}_to_{mb}")
            names += [f"{tag}.accuracy", f"{tag}.shared_accuracy", f"{tag}.balanced_accuracy"]
        names += [
            f"transfer.{run}.{a}_to_{b}.largest_off_diagonal",
            f"transfer.{run}.{a}_to_{b}.largest_off_diagonal_shared",
        ]
    if len(species) < 2:
        f.na([f"transfer.{run}.cross_species"], f"fewer than two species ({', '.join(species)})")
        return f.frame(), {}
    if obs is None:
        f.na(names, reason)
        return f.frame(), {}
    tables = {}
    labelled = has_label(obs["cell_type"])
    sp, mod = obs["species"].astype(str).to_numpy(), obs["modality"].astype(str).to_numpy()
    true = obs["true_type"].to_numpy()
    has_true = pd.notna(true)
    given = obs["cell_type"].astype(str).to_numpy()
    for a, b in _directions(species):
        for ma, mb in pairs:
            tag = f"transfer.{run}.{a}_to_{b}" + ("" if ma == "all" else f".{ma}_to_{mb}")
            ref = labelled & (sp == a) & ((mod == ma) if ma != "all" else True)
            query = ~labelled & has_true & (sp == b) & ((mod == mb) if mb != "all" else True)
            if not ref.any() or not query.any():
                why = (
                    f"no labelled {a} {'cells' if ma == 'all' else ma + ' cells'}"
                    if not ref.any()
                    else f"no unlabelled {b} {'cells' if mb == 'all' else mb + ' cells'} with a true type"
                )
                f.na(
                    [f"{tag}.accuracy", f"{tag}.shared_accuracy", f"{tag}.balanced_accuracy"]
                    + ([f"{tag}.largest_off_diagonal", f"{tag}.largest_off_diagonal_shared"] if ma == "all" else []),
                    why,
                )
                continue
            pred = knn_predict(x[ref], given[ref], x[query])
            t = true[query].astype(str)
            ref_types = set(given[ref])
            f.add(f"{tag}.accuracy", (pred == t).mean())
            # over the query cells whose type the reference has (a species-only type can only be wrong)
            shared = np.isin(t, list(ref_types))
            f.add(
                f"{tag}.shared_accuracy",
                (pred[shared] == t[shared]).mean() if shared.any() else NA,
                "" if shared.any() else "no query cell has a type the reference has",
            )
            f.add(
                f"{tag}.balanced_accuracy",
                balanced_accuracy(t, pred, ref_types),
                "" if np.isin(t, list(ref_types)).any() else "no query cell has a type the reference has",
            )
            if ma == "all":
                table = confusion(t, pred)
                v, which = largest_off_diagonal(table)
                f.add(f"{tag}.largest_off_diagonal", v)
                f.rows[-1]["reason"] = which  # not a reason: names the pair
                v, which = largest_off_diagonal(table.loc[[i for i in table.index if i in ref_types]])
                f.add(f"{tag}.largest_off_diagonal_shared", v)
                f.rows[-1]["reason"] = which
                tables[f"kNN transfer ({run}) {a} -> {b}: true x assigned (row-normalised)"] = table
    return f.frame(), tables


def pipeline_label_figures(
    obs: pd.DataFrame | None, truth_cells: pd.DataFrame | None, species: list[str], run: str = "main", reason: str = ""
) -> tuple[pd.DataFrame, dict]:
    """The pipeline's ``cell_type_transferred`` on cells without a given label, per species:
    accuracy, balanced accuracy over the labelled types, ``unassigned`` share among cells of
    the labelled types and among cells of types no labelled cell has, and the share labelled
    as a type only other species have."""
    f = _Figures("labels")
    pre = f"labels.{run}"
    names = [
        f"{pre}.{s}.{m}"
        for s in species
        for m in (
            "accuracy",
            "balanced_accuracy",
            "unassigned_shared_types",
            "unassigned_novel_types",
            "labelled_as_absent_type",
            "largest_off_diagonal",
        )
    ]
    if obs is None or truth_cells is None:
        f.na(names, reason)
        return f.frame(), {}
    if "cell_type_transferred" not in obs:
        f.na(names, "cells.h5ad has no cell_type_transferred column")
        return f.frame(), {}
    tables = {}
    labelled = has_label(obs["cell_type"])
    label_types = set(obs.loc[labelled, "cell_type"].astype(str))
    true = obs["true_type"].to_numpy()
    sp = obs["species"].astype(str).to_numpy()
    pred = obs["cell_type_transferred"].astype(str).to_numpy()
    good = truth_cells[truth_cells["cell_type"].notna() & (truth_cells["cell_type"].astype(str) != "")]
    for s in species:
        q = ~labelled & pd.notna(true) & (sp == s)
        if not q.any():
            f.na([n for n in names if n.startswith(f"{pre}.{s}.")], f"no unlabelled {s} cells with a true type")
            continue
        t, p = true[q].astype(str), pred[q]
        f.add(f"{pre}.{s}.accuracy", (t == p).mean())
        f.add(
            f"{pre}.{s}.balanced_accuracy",
            balanced_accuracy(t, p, label_types),
            "" if np.isin(t, list(label_types)).any() else "no cell has a labelled type",
        )
        shared = np.isin(t, list(label_types))
        f.add(
            f"{pre}.{s}.unassigned_shared_types",
            (p[shared] == UNASSIGNED).mean() if shared.any() else NA,
            "" if shared.any() else f"no {s} cell has a labelled type",
        )
        novel_types = sorted(set(t) - label_types)
        f.add(
            f"{pre}.{s}.unassigned_novel_types",
            (p[~shared] == UNASSIGNED).mean() if (~shared).any() else NA,
            "" if (~shared).any() else f"every true {s} type has labelled cells",
        )
        absent = label_types - set(good.loc[good["species"].astype(str) == s, "cell_type"].astype(str))
        f.add(
            f"{pre}.{s}.labelled_as_absent_type",
            np.isin(p, list(absent)).mean() if absent else NA,
            "" if absent else f"every labelled type exists in {s}",
        )
        table = confusion(t, p)
        v, which = largest_off_diagonal(table)
        f.add(f"{pre}.{s}.largest_off_diagonal", v)
        f.rows[-1]["reason"] = which
        tables[f"pipeline labels ({run}) {s}: true x transferred (row-normalised)"] = table
        if novel_types:
            tables[f"pipeline labels ({run}) {s}: novel types"] = pd.DataFrame({"novel_type": novel_types})
    return f.frame(), tables


def correspondence_figures(
    table: pd.DataFrame | None, clusters: pd.DataFrame | None, run: str = "main", reason: str = ""
) -> pd.DataFrame:
    """The swap check's output (``correspondence.tsv``, ``species_clusters.tsv``): how many
    type pairs it flags as swapped (the swaps are named in the reason), how many clusters it
    reports as candidate species-specific types, and how many clusters' transferred label is
    not their best ortholog partner."""
    f = _Figures("labels")
    names = [
        f"labels.{run}.swapped_pairs",
        f"labels.{run}.species_specific_clusters",
        f"labels.{run}.mislabelled_clusters",
    ]
    if table is None or clusters is None:
        f.na(names, reason)
        return f.frame()
    swaps = table[table["swap"].astype(str) == "True"]
    f.add(names[0], len(swaps))
    f.rows[-1]["reason"] = "; ".join(
        f"{r.species_a} {r.group_a} / {r.species_b} {r.group_b}" for r in swaps.itertuples()
    )
    specific = clusters[clusters["species_specific"].astype(str) == "True"].drop_duplicates("cluster")
    f.add(names[1], len(specific))
    f.rows[-1]["reason"] = "; ".join(f"{r.cluster} ({r.top_label})" for r in specific.itertuples())
    if "label_mismatch" in clusters:
        wrong = clusters[clusters["label_mismatch"].astype(str) == "True"]
        f.add(names[2], len(wrong))
        f.rows[-1]["reason"] = "; ".join(f"{r.cluster} {r.top_label} -> {r.partner}" for r in wrong.itertuples())
    else:
        f.na(names[2:], "species_clusters.tsv has no label_mismatch column")
    return f.frame()


# --- integration ------------------------------------------------------------------------------


def paired_rows(obs: pd.DataFrame, species: str) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (rna, atac) of the multiome nuclei of ``species`` seen in both modalities."""
    paired = obs[(obs["species"].astype(str) == species) & obs["nucleus"].notna()]
    pos = pd.Series(np.arange(len(obs)), index=obs.index)
    rna = paired[paired["modality"].astype(str) == "rna"]
    atac = paired[paired["modality"].astype(str) == "atac"]
    rna = pd.Series(pos[rna.index].to_numpy(), index=rna["nucleus"].astype(str).to_numpy())
    atac = pd.Series(pos[atac.index].to_numpy(), index=atac["nucleus"].astype(str).to_numpy())
    common = rna.index.intersection(atac.index)
    return rna[common].to_numpy(), atac[common].to_numpy()


def integration_figures(
    obs: pd.DataFrame | None, x: np.ndarray | None, species: list[str], run: str = "main", reason: str = ""
) -> pd.DataFrame:
    """FOSCTTM per species, MAP on true types, species alignment within the shared types.
    ``obs`` holds only cells with a true type (``true_type``)."""
    f = _Figures("integration")
    names = [f"integration.{run}.foscttm_{s}" for s in species] + [
        f"integration.{run}.mean_average_precision",
        f"integration.{run}.species_alignment_shared_types",
    ]
    if obs is None:
        f.na(names, reason)
        return f.frame()
    for s in species:
        r, a = paired_rows(obs, s)
        f.add(
            f"integration.{run}.foscttm_{s}",
            foscttm(x[r], x[a]) if len(r) >= 2 else NA,
            "" if len(r) >= 2 else f"fewer than 2 paired {s} nuclei",
        )
    true = obs["true_type"].astype(str).to_numpy()
    f.add(f"integration.{run}.mean_average_precision", mean_average_precision(x, true))
    shared = obs.groupby("true_type", observed=True)["species"].nunique()
    in_shared = obs["true_type"].isin(shared.index[shared == len(species)]).to_numpy()
    f.add(
        f"integration.{run}.species_alignment_shared_types",
        seurat_alignment_score(x[in_shared], obs["species"].astype(str).to_numpy()[in_shared])
        if in_shared.any()
        else NA,
        "" if in_shared.any() else "no type exists in every species",
    )
    return f.frame()


# --- regulatory links -------------------------------------------------------------------------


def link_figures(links, element_truth, truth_links, reason: str = "") -> tuple[pd.DataFrame, dict]:
    """AUROC / AUPRC of the link score and of distance alone (all and distal candidates), and
    the empirical FDR among links called at q <= 0.1 and the share of planted links they hold."""
    f = _Figures("links")
    names = [
        f"links.{sub}.{score}.{m}"
        for sub in ("all", "distal")
        for score in ("score", "distance")
        for m in ("auroc", "auprc")
    ]
    names += ["links.candidates", "links.planted", "links.planted_fraction", "links.called_fdr", "links.called"]
    names += ["links.called_recall"]
    if links is None:
        f.na(names, reason)
        return f.frame(), {}
    truth = truth_link_labels(links, element_truth, truth_links)
    f.add("links.candidates", len(truth))
    f.add("links.planted", truth.sum())
    f.add("links.planted_fraction", truth.mean() if len(truth) else NA)
    rows = []
    if "distance" in links and links["distance"].notna().all():
        distal = np.abs(links["distance"].to_numpy(dtype=float)) > DISTAL_BP
        subsets = {"all": np.ones(len(links), bool), "distal": distal}
    else:
        subsets = {"all": np.ones(len(links), bool)}
        f.na([n for n in names if n.startswith("links.distal.")], "regulatory_links.tsv has no distance column")
    prior = distance_prior(links)
    for sub, mask in subsets.items():
        ev = evaluate_scores(
            truth[mask], {"score": links["score"].to_numpy(dtype=float)[mask], "distance": prior[mask]}
        )
        for r in ev.itertuples():
            f.add(
                f"links.{sub}.{r.score}.auroc",
                r.auroc,
                "" if r.positives else f"no planted links among {sub} candidates",
            )
            f.add(
                f"links.{sub}.{r.score}.auprc",
                r.auprc,
                "" if r.positives else f"no planted links among {sub} candidates",
            )
        rows.append(ev.assign(subset=sub))
    if "q_value" in links:
        called = links["q_value"].to_numpy(dtype=float) <= LINK_Q
        f.add("links.called", called.sum())
        f.add(
            "links.called_fdr",
            1.0 - truth[called].mean() if called.any() else NA,
            "" if called.any() else f"no link has q <= {LINK_Q}",
        )
        f.add("links.called_recall", truth[called].sum() / truth.sum() if truth.any() else NA)
    else:
        f.na(["links.called", "links.called_fdr", "links.called_recall"], "regulatory_links.tsv has no q_value column")
    return f.frame(), {"links: AUROC/AUPRC": pd.concat(rows).set_index(["subset", "score"])}


# --- modules ----------------------------------------------------------------------------------


def _explode(frame: pd.DataFrame, column: str, name: str) -> pd.DataFrame:
    out = frame.assign(**{name: frame[column].astype(str).str.split(",")}).explode(name)
    return out[out[name].notna() & ~out[name].isin(["", "nan", "NA"])]


def motif_keys(planted: pd.DataFrame) -> list[str]:
    """Columns of modules.tsv naming the planted motif (id or name, e.g. motif, motif_name, jaspar_id)."""
    return [c for c in planted.columns if "motif" in c.lower() or "jaspar" in c.lower()]


def module_figures(modules, element_truth, planted, reason: str = "") -> pd.DataFrame:
    """Element precision / recall (``module_recovery``), gene precision / recall over (species,
    gene) and the fraction of planted modules whose motif (id or name, case-insensitive) a
    called module of the same species names: as its motif or one of its family
    (``motif_named``), or as its motif alone (``motif_lead``)."""
    f = _Figures("modules")
    names = [
        "modules.called",
        "modules.element_precision",
        "modules.element_recall",
        "modules.gene_precision",
        "modules.gene_recall",
        "modules.motif_named",
        "modules.motif_lead",
    ]
    if modules is None:
        f.na(names, reason)
        return f.frame()
    f.add("modules.called", len(modules))
    if modules.empty:  # nothing called: precision is undefined, but nothing planted was found
        f.na(["modules.element_precision", "modules.gene_precision"], "the pipeline called no modules")
        for figure in ("modules.element_recall", "modules.gene_recall", "modules.motif_named", "modules.motif_lead"):
            f.add(figure, 0.0 if len(planted) else NA, "" if len(planted) else "no planted modules")
        return f.frame()
    rec = module_recovery(modules, element_truth, planted)
    f.add("modules.element_precision", rec["precision"])
    f.add("modules.element_recall", rec["recall"])
    called = _explode(modules, "genes", "gene")
    truth = _explode(planted, "genes", "gene")
    c_keys = pd.MultiIndex.from_frame(called[["species", "gene"]].astype(str)).unique()
    t_keys = pd.MultiIndex.from_frame(truth[["species", "gene"]].astype(str)).unique()
    f.add("modules.gene_precision", c_keys.isin(t_keys).mean())
    f.add(
        "modules.gene_recall",
        t_keys.isin(c_keys).mean() if len(t_keys) else NA,
        "" if len(t_keys) else "no planted genes",
    )
    p_cols = motif_keys(planted)
    if not p_cols or not any(c in modules for c in ("motif", "motif_name")):
        f.na(
            ["modules.motif_named", "modules.motif_lead"],
            "truth modules.tsv has no motif column" if not p_cols else "species_modules.tsv has no motif column",
        )
        return f.frame()
    for figure, columns in (
        ("modules.motif_named", ("motif", "motif_name", "similar_motifs", "similar_motif_names")),
        ("modules.motif_lead", ("motif", "motif_name")),
    ):
        hit = _planted_motif_named(modules, planted, [c for c in columns if c in modules], p_cols)
        f.add(figure, hit.mean() if len(planted) else NA, "" if len(planted) else "no planted modules")
    return f.frame()


def _planted_motif_named(modules: pd.DataFrame, planted: pd.DataFrame, c_cols: list[str], p_cols: list[str]):
    """Per planted module: whether a called module of its species names its motif (id or name,
    case-insensitive) in one of ``c_cols`` (comma-separated lists allowed)."""
    named = set()
    for c in c_cols:
        listed = _explode(modules[["species", c]], c, "name")
        named |= set(zip(listed["species"].astype(str), listed["name"].astype(str).str.lower()))
    hit = np.zeros(len(planted), bool)
    for c in p_cols:
        vals = planted[c].astype(str).str.lower().to_numpy()
        hit |= (
            np.array([(s, v) in named for s, v in zip(planted["species"].astype(str), vals, strict=True)])
            & planted[c].notna().to_numpy()
        )
    return hit


def turnover_figures(changes, element_truth, planted, reason: str = "") -> pd.DataFrame:
    """Planted motifs found gained by the motif turnover analysis (``planted_turnover``)."""
    f = _Figures("turnover")
    names = ["turnover.planted_gained", "turnover.modules_80pct_gained"]
    if changes is None:
        f.na(names, reason)
        return f.frame()
    per_module = planted_turnover(changes, element_truth, planted)
    total = per_module["n_elements"].sum()
    f.add(names[0], per_module["n_gained"].sum() / total if total else NA, "" if total else "no planted elements")
    f.add(
        names[1],
        (per_module["fraction_gained"] >= 0.8).mean() if len(per_module) else NA,
        "" if len(per_module) else "no planted modules",
    )
    return f.frame()


# --- the whole run ----------------------------------------------------------------------------


def cells_with_truth(run: Run, rel: str) -> tuple[pd.DataFrame, np.ndarray]:
    """obs (with ``true_type``) and X_glue of a cells.h5ad, limited to cells with a true type."""
    cells = run.h5ad(rel)
    ids = cells.obs["cell_id"] if "cell_id" in cells.obs else pd.Series(cells.obs_names, index=cells.obs_names)
    obs = cells.obs.copy()
    obs["true_type"] = true_types(run.truth_cells(), ids)
    keep = obs["true_type"].notna().to_numpy()
    if "X_glue" not in cells.obsm:
        raise Missing(f"{rel} has no obsm['X_glue']")
    return obs[keep], np.asarray(cells.obsm["X_glue"], dtype=float)[keep]


def _try(fn):
    try:
        return fn(), ""
    except Missing as err:
        return None, str(err)


def score_run(root, truth: Path | None = None) -> Score:
    """Every figure for the run at ``root`` (truth tables from ``truth`` or ``root/demo/truth``)."""
    run = Run(root, truth)
    species = run.species()
    parts, tables = [], {}

    truth_cells, why_t = _try(run.truth_cells)
    kept, why_k = _try(run.kept_cells)
    parts.append(qc_figures(truth_cells, kept[0] if kept else None, why_t or why_k, kept[1] if kept else ""))

    ut, why = _try(lambda: (run.union(), run.element_truth(), run.cres()))
    fr, tb = union_figures(*(ut or (None, None, None)), species, why)
    parts.append(fr)
    tables |= tb

    for name, rel in RUNS.items():
        data, why = _try(lambda rel=rel: cells_with_truth(run, f"results/{rel}/cells.h5ad"))
        fr, tb = transfer_figures(*(data or (None, None)), species, name, why)
        parts.append(fr)
        tables |= tb
        parts.append(integration_figures(*(data or (None, None)), species, name, why))

    for name, rel in LABEL_RUNS.items():
        data, why = _try(lambda rel=rel: cells_with_truth(run, rel))
        fr, tb = pipeline_label_figures(data[0] if data else None, truth_cells, species, name, why or why_t)
        parts.append(fr)
        tables |= tb
        folder = rel.rsplit("/", 1)[0]
        check, why_c = _try(
            lambda folder=folder: (run.tsv(f"{folder}/correspondence.tsv"), run.tsv(f"{folder}/species_clusters.tsv"))
        )
        parts.append(correspondence_figures(*(check or (None, None)), name, why_c))

    lt, why = _try(
        lambda: (
            run.tsv("results/analysis/regulatory_links.tsv", dtype={"element": str, "gene": str}),
            run.element_truth(),
            run.tsv("links.tsv", truth=True, dtype=str),
        )
    )
    fr, tb = link_figures(*(lt or (None, None, None)), why)
    parts.append(fr)
    tables |= tb

    mt, why = _try(
        lambda: (
            run.tsv("results/analysis/species_modules.tsv", dtype=str),
            run.element_truth(),
            run.tsv("modules.tsv", truth=True, dtype=str),
        )
    )
    parts.append(module_figures(*(mt or (None, None, None)), why))

    tt, why = _try(
        lambda: (
            run.tsv("results/analysis/motif_turnover_elements.tsv", dtype=str),
            run.element_truth(),
            run.tsv("modules.tsv", truth=True, dtype=str),
        )
    )
    parts.append(turnover_figures(*(tt or (None, None, None)), why))

    figures = pd.concat(parts, ignore_index=True)
    order = {name: i for i, name in enumerate(SECTIONS)}
    figures = figures.sort_values("section", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    return Score(figures, tables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crossglue.simulate.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished pipeline run (holds results/ and demo/truth/)")
    parser.add_argument("--truth", type=Path, default=None, help="truth tables (default RUN_DIR/demo/truth)")
    parser.add_argument("--json", type=Path, default=None, help="also write figures and tables here as JSON")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        parser.error(f"{args.run_dir} is not a directory")
    score = score_run(args.run_dir, args.truth)
    print(score.to_string())
    if args.json:
        args.json.write_text(json.dumps(score.to_json(), indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
