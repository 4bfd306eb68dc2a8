"""Ortholog anchors: cell-type labels for unlabelled species, read from ortholog expression.

The joint embedding alone can match two similar types the wrong way round across species:
the discriminator only asks that species mix, and the labelled species' classifier head does
not constrain the others. On the realistic preset (three seeds) every macaque SST interneuron
sat beside human PVALB cells and half the protoplasmic astrocytes beside fibrous ones
(transfer 0.85-0.93), while a classifier trained on the labelled human nuclei over
standardised one2one-ortholog expression put 94 % of macaque SST nuclei on SST, and at a
confidence of 0.9 or more labelled 75-80 % of macaque RNA nuclei at 97.6-98.6 % accuracy.

So before training, each species without given labels gets *anchors*: its RNA nuclei whose
ortholog-space prediction reaches ``min_confidence`` carry that label into the model's
semi-supervised classifier term (with their multiome ATAC partners), exactly like given
labels. Nuclei of a type the labelled species lacks rarely reach the confidence (1-4 % of the
realistic macaque-only type did), so they stay free, to come out ``unassigned`` later.

Confidence alone anchors similar types unevenly: on realistic seed 0 every macaque fibrous
astrocyte reached 0.9 but only 27 % of the protoplasmic ones (and 24 % of PVALB), although
the classifier's best guess was right for 88 %. The free remainder is what the discriminator
then moved: the unanchored protoplasmic astrocytes landed beside human fibrous ones
(transfer 0.46 against 0.92 for the anchored), to give macaque the human astrocyte mix. So
the query's nuclei are also clustered in their own expression (Leiden, ``cluster_resolution``,
on the first PCs), and a nucleus whose best guess is a label that at least ``cluster_support``
of its cluster carries confidently is anchored too: there, 88 % of protoplasmic astrocytes
(100 % correct) and 82 % of PVALB (98 %), while the macaque-only type formed its own cluster
with 1 % confident nuclei and stayed free. The rule trusts the query's own clustering to
tell types apart, and fails where it cannot: on realistic seed 1 macaque lost the SST
interneurons' own markers, the classifier's best guess for 72 of 88 macaque SST nuclei was
PVALB and one Leiden cluster held both types, so the rule anchored them to PVALB (SST on
PVALB 0.70 against 0.43 by confidence alone). It is the better default on two of three seeds
(largest shared off-diagonal 0.17 / 0.70 / 0.06 against 0.47 / 0.43 / 0.15).

Expression is log1p(counts per 10,000) over one2one pairs of genes that are highly variable
in either species, standardised per gene within each sample (so species, chemistry and
sample offsets cancel), and the classifier is a multinomial logistic regression on at most
``max_reference_cells`` labelled nuclei. Prediction stays sparse: the standardisation is
folded into the linear map, so no dense cells x genes matrix of the query is built.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.config import schema_defaults, settings_from
from crossglue.model.balancing import domain_clusters
from crossglue.model.inputs import rna_pca
from crossglue.model.outputs import log_normalise

log = logging.getLogger("crossglue.model.anchors")

_DEFAULTS = schema_defaults("model.anchors")
# Inverse regularisation strength of the logistic regression (scikit-learn's default).
CLASSIFIER_C = 1.0
# The query's own expression the anchors are clustered in: this many leading PCs of
# obsm[QUERY_REP] (the model's RNA input, computed here when absent), 15 neighbours.
QUERY_REP = "X_pca"
CLUSTER_PCS = 30
CLUSTER_NEIGHBOURS = 15


@dataclass(frozen=True)
class AnchorSettings:
    """``config["model"]["anchors"]`` (defaults from the schema)."""

    enabled: bool = _DEFAULTS["enabled"]
    min_confidence: float = _DEFAULTS["min_confidence"]
    max_reference_cells: int = _DEFAULTS["max_reference_cells"]
    cluster_support: float = _DEFAULTS["cluster_support"]
    cluster_resolution: float = _DEFAULTS["cluster_resolution"]

    @classmethod
    def from_config(cls, values: Mapping | None) -> AnchorSettings:
        return settings_from(cls, "model.anchors", values)


@dataclass
class Standardiser:
    """Per-sample gene means and standard deviations of log-normalised expression."""

    batches: np.ndarray  # sample names, rows of mean/sd
    mean: np.ndarray  # batches x genes
    sd: np.ndarray

    @classmethod
    def fit(cls, x: sp.csr_matrix, batch: np.ndarray) -> Standardiser:
        names, codes = np.unique(np.asarray(batch, dtype=str), return_inverse=True)
        member = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(names), x.shape[0]))
        n = np.asarray(member.sum(axis=1)).ravel()[:, None]
        mean = np.asarray((member @ x).todense()) / n
        square = np.asarray((member @ x.multiply(x)).todense()) / n
        sd = np.sqrt(np.maximum(square - mean**2, 0.0))
        # a gene constant within a sample carries nothing there: unit sd keeps it at 0
        return cls(names, mean, np.where(sd > 1e-6, sd, 1.0))

    def codes(self, batch: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.batches, np.asarray(batch, dtype=str))

    def dense(self, x: sp.csr_matrix, batch: np.ndarray) -> np.ndarray:
        c = self.codes(batch)
        return (x.toarray() - self.mean[c]) / self.sd[c]

    def logits(self, x: sp.csr_matrix, batch: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        """``dense(x) @ coef.T + intercept`` without densifying x: per sample,
        x (coef / sd).T - (mean / sd) coef.T."""
        c = self.codes(batch)
        out = np.empty((x.shape[0], coef.shape[0]))
        for code in np.unique(c):  # one product per sample, not per cell
            rows = np.flatnonzero(c == code)
            w = coef / self.sd[code]
            out[rows] = x[rows] @ w.T - self.mean[code] @ w.T + intercept
        return out


def log_expression(adata, genes: np.ndarray) -> sp.csr_matrix:
    """log1p(counts per 10,000) of ``genes`` (library over all genes), sparse float64."""
    x = log_normalise(adata.X)
    return sp.csr_matrix(x[:, adata.var_names.get_indexer(genes)], dtype=np.float64)


def shared_genes(pairs: pd.DataFrame, ref, query) -> pd.DataFrame:
    """The one2one pairs (``gene_a`` of the reference, ``gene_b`` of the query) both AnnData
    hold, restricted to genes highly variable in either species when ``var`` says which."""
    keep = pairs["gene_a"].isin(ref.var_names) & pairs["gene_b"].isin(query.var_names)
    pairs = pairs[keep]
    if "highly_variable" in ref.var and "highly_variable" in query.var:
        hv_a = ref.var["highly_variable"].reindex(pairs["gene_a"]).to_numpy(bool)
        hv_b = query.var["highly_variable"].reindex(pairs["gene_b"]).to_numpy(bool)
        pairs = pairs[hv_a | hv_b]
    return pairs.reset_index(drop=True)


def predict_types(
    ref, ref_labels: np.ndarray, query, pairs: pd.DataFrame, settings: AnchorSettings, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(label, probability) per query nucleus from a classifier fitted on the labelled
    reference nuclei over the shared one2one genes (both AnnData hold raw counts and
    ``obs['sample']``)."""
    from sklearn.linear_model import LogisticRegression

    labelled = np.flatnonzero(pd.notna(ref_labels))
    rng = np.random.default_rng(seed)
    if len(labelled) > settings.max_reference_cells:
        labelled = np.sort(rng.choice(labelled, settings.max_reference_cells, replace=False))
    x_ref = log_expression(ref, pairs["gene_a"].to_numpy())
    ref_scale = Standardiser.fit(x_ref, ref.obs["sample"].to_numpy())
    batch = ref.obs["sample"].to_numpy()[labelled]
    train = ref_scale.dense(x_ref[labelled], batch)
    y = np.asarray(ref_labels, dtype=object)[labelled].astype(str)
    clf = LogisticRegression(C=CLASSIFIER_C, max_iter=2000, random_state=seed).fit(train, y)
    x_q = log_expression(query, pairs["gene_b"].to_numpy())
    batch_q = query.obs["sample"].to_numpy()
    logits = Standardiser.fit(x_q, batch_q).logits(x_q, batch_q, clf.coef_, clf.intercept_)
    logits -= logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    return clf.classes_[prob.argmax(axis=1)].astype(object), prob.max(axis=1)


def query_clusters(query, settings: AnchorSettings, seed: int = 0) -> np.ndarray:
    """Leiden cluster of each query nucleus in its own expression (PCA of scaled log data)."""
    if QUERY_REP in query.obsm:
        x = np.asarray(query.obsm[QUERY_REP])[:, :CLUSTER_PCS]
    else:
        tmp = ad.AnnData(query.X, obs=query.obs[["sample"]])
        rna_pca(tmp, n_comps=CLUSTER_PCS, batch_key="sample", seed=seed, name="anchors: query RNA")
        x = tmp.obsm["X_pca"]
    return domain_clusters(x, CLUSTER_NEIGHBOURS, settings.cluster_resolution, seed)


def supported_labels(
    label: np.ndarray, confidence: np.ndarray, clusters: np.ndarray, min_confidence: float, support: float
) -> np.ndarray:
    """Anchor label of each nucleus (None where free): its best guess where the confidence
    reaches ``min_confidence``, or where at least ``support`` of its cluster's nuclei
    carry that label confidently."""
    confident = confidence >= min_confidence
    names, codes = np.unique(label.astype(str), return_inverse=True)
    n_clusters = int(clusters.max()) + 1 if len(clusters) else 0
    pair = clusters * len(names) + codes
    held = np.bincount(pair[confident], minlength=n_clusters * len(names))
    sizes = np.bincount(clusters, minlength=n_clusters)
    supported = held[pair] >= support * sizes[clusters]
    return np.where(confident | supported, label, None)


def anchor_labels(
    rna: Mapping[str, object],
    pairs: Mapping[tuple[str, str], pd.DataFrame],
    settings: AnchorSettings,
    label_key: str = "cell_type",
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Per species without given labels: ``anchor_label`` (None below ``min_confidence``) and
    ``anchor_confidence`` of each RNA nucleus, indexed like its AnnData.

    ``rna`` maps species to RNA AnnData; ``pairs[(ref, query)]`` holds the one2one pairs
    (``gene_a`` of ref, ``gene_b`` of query). With several labelled species, each nucleus
    takes the most confident prediction.
    """
    out: dict[str, pd.DataFrame] = {}
    if not settings.enabled:
        return out
    labelled = [s for s, a in rna.items() if a.obs[label_key].notna().any()]
    for query, q in rna.items():
        if query in labelled or not labelled:
            continue
        best_label = np.full(q.n_obs, None, dtype=object)
        best_conf = np.zeros(q.n_obs)
        for ref in labelled:
            shared = shared_genes(pairs.get((ref, query), pd.DataFrame(columns=["gene_a", "gene_b"])), rna[ref], q)
            if len(shared) < 10:
                log.warning(
                    "anchors: %d one2one genes shared by %s and %s (fewer than 10); no %s anchors from %s",
                    len(shared),
                    ref,
                    query,
                    query,
                    ref,
                )
                continue
            label, conf = predict_types(rna[ref], rna[ref].obs[label_key].to_numpy(), q, shared, settings, seed)
            better = conf > best_conf
            best_label[better], best_conf[better] = label[better], conf[better]
            log.info("anchors: %s RNA nuclei classified from %s over %d one2one genes", query, ref, len(shared))
        anchored = np.where(best_conf >= settings.min_confidence, best_label, None)
        confident = int(pd.notna(anchored).sum())
        if confident:
            clusters = query_clusters(q, settings, seed)
            anchored = supported_labels(
                best_label, best_conf, clusters, settings.min_confidence, settings.cluster_support
            )
        frame = pd.DataFrame({"anchor_label": anchored, "anchor_confidence": best_conf}, index=q.obs_names)
        counts = frame["anchor_label"].value_counts()
        log.info(
            "anchors: %d of %d %s RNA nuclei anchored (%d at confidence >= %.2f, the rest by their cluster): %s",
            int(frame["anchor_label"].notna().sum()),
            q.n_obs,
            query,
            confident,
            settings.min_confidence,
            ", ".join(f"{k} {v}" for k, v in counts.items()) or "none",
        )
        out[query] = frame
    return out


def with_paired(anchors: pd.DataFrame, rna_obs: pd.DataFrame, atac_obs: pd.DataFrame) -> pd.Series:
    """The anchor label of each ATAC nucleus whose multiome RNA partner (same ``nucleus``) has one."""
    by_nucleus = pd.Series(anchors["anchor_label"].to_numpy(), index=rna_obs["nucleus"].astype(object).to_numpy())
    by_nucleus = by_nucleus[pd.notna(by_nucleus.index) & by_nucleus.notna()]
    by_nucleus = by_nucleus[~by_nucleus.index.duplicated()]
    if atac_obs["nucleus"].isna().all():
        return pd.Series(None, index=atac_obs.index, dtype=object)
    found = pd.Series(by_nucleus.reindex(atac_obs["nucleus"].astype(object)).to_numpy(), index=atac_obs.index)
    return found.astype(object).where(found.notna(), None)
