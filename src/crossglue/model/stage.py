"""The model stage of the pipeline: per-species AnnData + guidance graph → embeddings.

Reads each species' RNA and ATAC AnnData (raw counts), computes the encoder inputs per
domain (PCA for RNA, LSI for ATAC), selects the decoded features (``preprocess``), trains
:class:`crossglue.model.GlueModel` and writes what a user opens in scanpy:

- ``cells.h5ad``: one row per (cell, modality) — a multiome nucleus has an RNA and an ATAC
  row sharing ``obs["nucleus"]`` — with species, modality (rna or atac), assay (the
  sample's kind: rna, atac or multiome), sample, donor, the given ``cell_type``, the
  ``anchor_label`` the model was trained with in species without given labels
  (:mod:`crossglue.model.anchors`) and ``obsm["X_glue"]``. Row names are
  ``{modality}:{cell id}``. Genes by symbol are its columns: counts layer and
  log-normalised X for RNA rows, gene activity for ATAC rows (:mod:`crossglue.model.outputs`).
- ``cells.h5mu``: the same cells as a MuData, one modality per domain with its own features
  and ``varm["X_glue"]``.
- ``features.h5ad``: one row per graph node with ``obsm["X_glue"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from crossglue.config import schema_defaults, settings_from
from crossglue.errors import CrossglueError
from crossglue.graph.orthologs import one2one_pairs, read_ortholog_links
from crossglue.io_utils import atomic_path, read_h5ad, write_h5ad, write_h5mu
from crossglue.model import GlueModel, TrainConfig
from crossglue.model.anchors import AnchorSettings, anchor_labels, with_paired
from crossglue.model.data import DomainSpec
from crossglue.model.inputs import atac_lsi, rna_pca, select_features
from crossglue.model.outputs import cells_mudata, with_expression
from crossglue.model.trainer import CHECKPOINT

log = logging.getLogger("crossglue.model.stage")

OBS_COLUMNS = ("species", "modality", "sample", "donor", "cell_type", "nucleus")


_DEFAULTS = schema_defaults("model")
# Keys of ``config["model"]`` that the workflow reads (model.smk), not the library.
WORKFLOW_KEYS = ("ablation", "threads", "gpus", "mem_mb", "runtime")


@dataclass(frozen=True)
class ModelSettings:
    """``config["model"]``: representation sizes, seed, device and the training plan (defaults
    from the schema; the resource keys in :data:`WORKFLOW_KEYS` stay with the rule)."""

    latent_dim: int = _DEFAULTS["latent_dim"]
    n_pcs: int = _DEFAULTS["n_pcs"]
    n_lsi: int = _DEFAULTS["n_lsi"]
    n_top_genes: int = _DEFAULTS["n_top_genes"]
    val_fraction: float = _DEFAULTS["val_fraction"]
    seed: int = _DEFAULTS["seed"]
    device: str = _DEFAULTS["device"]
    anchors: AnchorSettings = field(default_factory=AnchorSettings)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_config(cls, values: Mapping | None) -> ModelSettings:
        """From ``config["model"]`` (schema-checked by the pipeline, key-checked here for notebooks)."""
        values = {k: v for k, v in dict(values or {}).items() if k not in WORKFLOW_KEYS}
        train = settings_from(TrainConfig, "model.train", values.pop("train", None))
        anchors = AnchorSettings.from_config(values.pop("anchors", None))
        return settings_from(cls, "model", values, train=train, anchors=anchors)


def read_edges(path: str | Path, element_edges: bool = True) -> pd.DataFrame:
    """The guidance-graph edge table; ``element_edges=False`` drops element–element edges."""
    edges = pd.read_csv(path, sep="\t", dtype={"source": str, "target": str, "type": str})
    if not element_edges:
        edges = edges[edges["type"] != "element"].reset_index(drop=True)
    return edges


def prepare_domains(
    rna: Mapping[str, str | Path], atac: Mapping[str, str | Path], settings: ModelSettings
) -> tuple[dict[str, ad.AnnData], dict[str, DomainSpec]]:
    """Load every (species, modality) AnnData and compute its encoder input."""
    domains: dict[str, ad.AnnData] = {}
    specs: dict[str, DomainSpec] = {}
    for modality, paths in (("rna", rna), ("atac", atac)):
        for species, path in paths.items():
            adata = read_h5ad(path)
            name = f"{species}:{modality}"
            if adata.n_obs == 0:
                log.warning("domain %s has no cells (%s); left out of the model", name, path)
                continue
            for col in OBS_COLUMNS:
                if col not in adata.obs.columns:
                    raise CrossglueError(f"{path}: obs has no column '{col}' (written by the ingest stage)")
            if modality == "rna":
                rna_pca(
                    adata,
                    n_comps=settings.n_pcs,
                    n_top_genes=settings.n_top_genes,
                    batch_key="sample",
                    seed=settings.seed,
                    name=name,
                )
                rep = "X_pca"
            else:
                atac_lsi(adata, n_comps=settings.n_lsi, seed=settings.seed, name=name)
                rep = "X_lsi"
            labelled = adata.obs["cell_type"].notna().any()
            paired = adata.obs["nucleus"].notna().any()
            domains[name] = adata
            specs[name] = DomainSpec(
                species=species,
                modality=modality,
                use_rep=rep,
                batch_key="sample",
                label_key="cell_type" if labelled else None,
                nucleus_key="nucleus" if paired else None,
                feature_key="selected",
            )
    if len({s.species for s in specs.values()}) < 2:
        raise CrossglueError("the model needs cells of at least two species; check the ingest QC thresholds")
    return domains, specs


# obs column the model's classifier reads: the given label, else the ortholog anchor.
MODEL_LABEL = "model_label"
# obs column of cells.h5ad with each nucleus' ortholog anchor (species without given labels).
ANCHOR_LABEL = "anchor_label"


def add_anchors(
    domains: Mapping[str, ad.AnnData],
    specs: dict[str, DomainSpec],
    orthologs: pd.DataFrame,
    settings: ModelSettings,
    source: str = "ortholog table",
) -> pd.DataFrame:
    """Give the unlabelled species' nuclei their ortholog anchors (:mod:`crossglue.model.anchors`)
    as labels of the model's classifier; returns the anchors (species, nucleus id, label,
    confidence). Domains and specs are updated in place; ``cell_type`` stays the given label."""
    rna = {s.species: domains[n] for n, s in specs.items() if s.modality == "rna"}
    species = sorted(rna)
    pairs = {(a, b): one2one_pairs(orthologs, a, b, source) for a in species for b in species if a != b}
    anchors = anchor_labels(rna, pairs, settings.anchors, seed=settings.seed)
    for name, spec in list(specs.items()):
        obs = domains[name].obs
        label = obs["cell_type"].astype(object).where(obs["cell_type"].notna(), None)
        found = anchors.get(spec.species)
        if found is not None:
            extra = (
                found["anchor_label"].reindex(obs.index)
                if spec.modality == "rna"
                else with_paired(found, rna[spec.species].obs, obs)
            )
            obs[ANCHOR_LABEL] = extra.to_numpy()
            label = label.where(label.notna(), extra)
        if label.notna().any():
            obs[MODEL_LABEL] = label.to_numpy()
            specs[name] = replace(spec, label_key=MODEL_LABEL)
    frames = [f.assign(species=s).rename_axis("cell_id").reset_index() for s, f in anchors.items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def cell_table(domains: Mapping[str, ad.AnnData], model: GlueModel) -> ad.AnnData:
    """Every cell of every domain with its embedding, as one AnnData."""
    parts = []
    for name, adata in domains.items():
        obs = adata.obs[list(OBS_COLUMNS)].copy()
        obs[ANCHOR_LABEL] = adata.obs[ANCHOR_LABEL].to_numpy() if ANCHOR_LABEL in adata.obs else None
        # The sample's kind (rna, atac or multiome) stays as `assay`; `modality` is the
        # domain's, so a multiome nucleus has one rna and one atac row.
        obs["assay"] = obs["modality"]
        obs["modality"] = name.split(":")[1]
        obs["cell_id"] = adata.obs_names.astype(str)
        obs["domain"] = name
        obs.index = obs["modality"].astype(str) + ":" + obs["cell_id"]
        parts.append(ad.AnnData(obs=obs, obsm={"X_glue": model.encode_cells(name)}))
    cells = ad.concat(parts, merge="same")
    for col in ("species", "modality", "assay", "sample", "donor", "domain"):
        cells.obs[col] = cells.obs[col].astype(str).astype("category")
    for col in ("cell_type", "nucleus", ANCHOR_LABEL):
        cells.obs[col] = cells.obs[col].astype(object).where(cells.obs[col].notna(), None).astype("category")
    return cells


def feature_table(model: GlueModel, domains: Mapping[str, ad.AnnData]) -> ad.AnnData:
    """Every graph node with its embedding, species, feature id and kind (gene or element)."""
    emb = model.encode_features()
    nodes = emb.index.astype(str)
    species, feature = nodes.str.split(":", n=1).str[0], nodes.str.split(":", n=1).str[1]
    genes = {f"{n.split(':')[0]}:{g}" for n, a in domains.items() if n.endswith(":rna") for g in a.var_names}
    obs = pd.DataFrame(
        {"species": species, "feature": feature, "kind": np.where(nodes.isin(list(genes)), "gene", "element")},
        index=nodes,
    )
    selected = set()
    for name, adata in domains.items():
        sp = name.split(":")[0]
        selected |= set(sp + ":" + adata.var_names[adata.var["selected"].to_numpy(bool)].astype(str))
    obs["decoded"] = obs.index.isin(list(selected))
    return ad.AnnData(obs=obs, obsm={"X_glue": emb.to_numpy(dtype=np.float32)})


def log_warmup(train: TrainConfig, checkpoints: Path) -> None:
    """Say, before it starts, that the graph warm-up runs (it logs nothing until it ends)."""
    if (checkpoints / CHECKPOINT).exists():
        log.info("checkpoint %s found: training resumes from it (a stale one restarts with the warm-up)", checkpoints)
    elif train.graph_warmup:
        log.info(
            "graph warm-up: the graph encoder trains alone for %d epoch(s) first (model.train.graph_warmup); "
            "one line when it ends, then one line per epoch",
            train.graph_warmup,
        )


def run_model_stage(
    rna: Mapping[str, str | Path],
    atac: Mapping[str, str | Path],
    edges_path: str | Path,
    out: Mapping[str, str | Path],
    settings: ModelSettings,
    element_edges: bool = True,
    threads: int = 1,
    orthologs_path: str | Path | None = None,
) -> None:
    """Train on every domain and write cells, features, model, training log and counts.

    ``out`` names: cells, mudata (optional), features, model, log, selection, checkpoints (a folder kept out of
    the rule's outputs so that a killed training resumes from it on rerun; a checkpoint
    left by other settings or inputs is replaced).
    """
    edges = read_edges(edges_path, element_edges)
    log.info("guidance graph: %d edges (element-element edges %s)", len(edges), "kept" if element_edges else "dropped")
    domains, specs = prepare_domains(rna, atac, settings)
    if settings.anchors.enabled and orthologs_path is not None:
        orthologs = read_ortholog_links(orthologs_path)
        add_anchors(domains, specs, orthologs, settings, source=str(orthologs_path))
    selected = select_features(domains, specs, edges)
    selection = pd.DataFrame(
        [
            {"domain": n, "features": domains[n].n_vars, "selected": k, "cells": domains[n].n_obs}
            for n, k in selected.items()
        ]
    )
    for row in selection.itertuples():
        log.info("domain %s: %d cells, %d of %d features decoded", row.domain, row.cells, row.selected, row.features)
    model = GlueModel.from_anndata(
        domains,
        edges,
        specs,
        latent_dim=settings.latent_dim,
        seed=settings.seed,
        device=settings.device,
        val_fraction=settings.val_fraction,
        config=settings.train,
        edges_source=str(edges_path),
    )
    log_warmup(settings.train, Path(out["checkpoints"]))
    model.fit(checkpoint_dir=out["checkpoints"], log_path=out["log"], threads=threads, restart_stale=True)
    with atomic_path(out["selection"]) as tmp:
        selection.to_csv(tmp, sep="\t", index=False)
    cells = with_expression(cell_table(domains, model), domains, edges)
    features = feature_table(model, domains)
    write_h5ad(cells, out["cells"], compression=None)
    log.info("wrote %s: %d rows x %d genes (X log-normalised, layer counts)", out["cells"], cells.n_obs, cells.n_vars)
    if out.get("mudata"):
        cells = ad.AnnData(obs=cells.obs, obsm=cells.obsm)  # the modalities rebuild their own matrices
        write_h5mu(cells_mudata(domains, cells, features), out["mudata"], compression=None)
        log.info("wrote %s: one modality per domain (%s)", out["mudata"], ", ".join(domains))
    write_h5ad(features, out["features"], compression=None)
    model.save(out["model"])
