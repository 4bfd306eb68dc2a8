"""Realistic cell identity: a class -> subclass -> type hierarchy, per-type open probabilities,
marker programs, a continuous within-type state, and the expression model built on them.

Real brain types are not equidistant: types of one class share most of their programme
(two astrocyte types differ in a minority of genes, PVALB and SST interneurons in a few), and
nuclei of one type vary continuously. Elements and genes therefore attach to a node of the
hierarchy (root, class, subclass or type) and are open / up in every type below it; a share
of them also loads on a per-nucleus latent state ``z``. Expression is a saturating (Hill)
function of the summed accessibility of linked distal elements times the type's marker
programme, and promoter accessibility follows expression (``promoter_open``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

# (cell_type, subclass, class); species-only types sit under an existing subclass.
HIERARCHY = (
    ("ExN_L2_3_IT", "ExN_IT", "Excitatory"),
    ("ExN_L4_5_IT", "ExN_IT", "Excitatory"),
    ("ExN_L5_6_NP", "ExN_deep", "Excitatory"),
    ("ExN_L6_CT", "ExN_deep", "Excitatory"),
    ("InN_PVALB", "InN_MGE", "Inhibitory"),
    ("InN_SST", "InN_MGE", "Inhibitory"),
    ("InN_VIP", "InN_CGE", "Inhibitory"),
    ("Astro_protoplasmic", "Astrocyte", "Glia"),
    ("Astro_fibrous", "Astrocyte", "Glia"),
    ("Oligodendrocyte", "Oligo", "Glia"),
    ("OPC", "Oligo", "Glia"),
    ("Microglia", "Immune", "Glia"),
)
# The labelled species (human) has a rare type of its own; the unlabelled one has a type
# the labels never name, so label transfer must be able to answer "unassigned".
SPECIES_ONLY_TYPES = {
    "human": ("InN_LAMP5_human", "InN_CGE", "Inhibitory"),
    "macaque": ("ExN_L4_macaque", "ExN_IT", "Excitatory"),
}
BASE_PROPORTIONS = np.array([0.14, 0.10, 0.05, 0.07, 0.05, 0.045, 0.04, 0.11, 0.04, 0.20, 0.06, 0.055])
SPECIES_ONLY_SHARE = {"human": 0.012, "macaque": 0.04}  # the human type is rare
# Attachment weight of an element / gene to a node of each kind; type nodes of the closest
# siblings get little, so they differ in a few features only.
NODE_WEIGHT = {"root": 0.06, "class": 0.10, "subclass": 0.05, "type": 0.025, "none": 0.15}
TYPE_WEIGHT = {"InN_PVALB": 0.005, "InN_SST": 0.005, "Astro_protoplasmic": 0.012, "Astro_fibrous": 0.012}
NEURON_CLASSES = ("Excitatory", "Inhibitory")
HILL_N = 2.0
BASAL_EXPRESSION = 0.08  # expression at zero linked accessibility, relative to saturation
MODULE_OPEN = 0.7  # open probability of a planted module element in its types
TF_BOOST = 6.0  # a module TF's expression in its module's types


def shared_types() -> list[str]:
    return [t for t, _, _ in HIERARCHY]


def hierarchy_table(species: str) -> pd.DataFrame:
    """cell_type, subclass, cell_class of every type of ``species`` (column order of activity)."""
    rows = list(HIERARCHY) + ([SPECIES_ONLY_TYPES[species]] if species in SPECIES_ONLY_TYPES else [])
    return pd.DataFrame(rows, columns=["cell_type", "subclass", "cell_class"])


def _nodes() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every node of the (all-species) hierarchy, its weight, and a nodes x types membership."""
    table = pd.DataFrame(
        list(HIERARCHY) + list(SPECIES_ONLY_TYPES.values()), columns=["cell_type", "subclass", "cell_class"]
    )
    names = ["root"] + list(pd.unique(table.cell_class)) + list(pd.unique(table.subclass)) + list(table.cell_type)
    kinds = ["root"] + ["class"] * table.cell_class.nunique() + ["subclass"] * table.subclass.nunique()
    kinds += ["type"] * len(table)
    weight = np.array([TYPE_WEIGHT.get(n, NODE_WEIGHT[k]) for n, k in zip(names, kinds, strict=True)])
    member = np.zeros((len(names), len(table)), bool)
    member[0] = True
    for i, n in enumerate(names[1:], start=1):
        member[i] = (table.cell_class == n) | (table.subclass == n) | (table.cell_type == n)
    return names, weight, member


def _attach(rng: np.random.Generator, n: int, none_weight: float) -> tuple[np.ndarray, list[str]]:
    """For ``n`` features: a boolean features x all-types matrix (attached below the node), node names.

    Species-only types are excluded from the draw (they get their own features elsewhere).
    """
    names, weight, member = _nodes()
    n_shared = len(HIERARCHY)
    weight = np.where(np.arange(len(names)) >= len(names) - len(SPECIES_ONLY_TYPES), 0.0, weight)
    p = np.append(weight, none_weight)
    node = rng.choice(len(p), size=n, p=p / p.sum())
    member = np.vstack([member, np.zeros(member.shape[1], bool)])
    attached = member[node]
    # A species-only type inherits what is attached above it (its subclass, class, root).
    for j, (t, sub, cls) in enumerate(SPECIES_ONLY_TYPES.values()):
        above = np.isin(np.array(names + ["none"])[node], ["root", cls, sub])
        attached[:, n_shared + j] = above
    return attached, list(np.array(names + ["none"])[node])


@dataclass
class StateModel:
    """Per-species quantities the nuclei are drawn from (features in annotation order)."""

    open_prob: dict[str, np.ndarray]  # species -> (n_cres, n_types), NaN where absent
    element_loading: np.ndarray  # (n_cres,) logit shift per unit of state
    gene_program: dict[str, np.ndarray]  # species -> (n_genes_of_species, n_types) multiplicative
    gene_loading: dict[str, np.ndarray]  # species -> (n_genes,) log-expression shift per unit of state
    hill_k: dict[str, np.ndarray]  # species -> (n_genes,) half-saturation accessibility
    distal_weights: dict[str, sp.csr_matrix]  # species -> genes x cres link effects (distal only)
    promoter_gene: dict[str, np.ndarray]  # species -> (n_cres,) gene row of a promoter, -1 otherwise
    level: dict[str, np.ndarray]  # species -> (n_genes,) baseline level
    tf_boost: dict[str, np.ndarray]  # species -> (n_genes, n_types) module TF programme


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def open_probabilities(
    rng: np.random.Generator, cres: pd.DataFrame, cell_types: dict[str, list[str]]
) -> tuple[dict[str, np.ndarray], pd.Series]:
    """Per-type open probability of every element, per species, and the branch event of each
    species-accessible element (``gain_<s>`` on the lineage of s, or ``loss_<o>`` on the other).

    Distal elements attach to a hierarchy node; promoters are filled in later from expression
    (``promoter_open``); species-accessible elements are background in the other species.
    """
    n = len(cres)
    species = list(cell_types)
    attached, _ = _attach(rng, n, NODE_WEIGHT["none"])
    n_all = attached.shape[1]
    high = 0.1 + 0.8 * rng.beta(5, 4, size=(n, 1)) * rng.lognormal(0.0, 0.15, size=(n, n_all))
    low = rng.beta(1, 40, size=(n, 1)) * np.ones((1, n_all))
    anc = np.clip(np.where(attached, high, low), 0.003, 0.95)
    klass = cres["class"].to_numpy()
    branch = pd.Series("", index=cres.index, dtype=object)
    out = {}
    for s in species:
        own = np.flatnonzero(klass == f"{s}_accessible")
        others = [o for o in species if o != s]
        gain = rng.random(len(own)) < 0.6
        branch.iloc[own] = np.where(gain, f"gain_{s}", f"loss_{others[0]}")
    for i, s in enumerate(species):
        cols = list(range(len(HIERARCHY)))
        if s in SPECIES_ONLY_TYPES:
            cols.append(len(HIERARCHY) + list(SPECIES_ONLY_TYPES).index(s))
        p = np.clip(anc[:, cols] * rng.lognormal(0.0, 0.1, size=(n, len(cols))), 0.003, 0.95)
        if s in SPECIES_ONLY_TYPES:  # the species-only type has elements of its own
            own = np.flatnonzero(klass == f"{s}_accessible")
            pick = own[rng.random(len(own)) < 0.3]
            p[pick] = low[pick][:, : len(cols)]
            p[pick, -1] = 0.6
        p[np.isin(klass, [f"{o}_accessible" for o in species if o != s])] = low[
            np.isin(klass, [f"{o}_accessible" for o in species if o != s])
        ][:, : len(cols)]
        p[cres[f"{s}_chrom"].to_numpy() == ""] = np.nan
        out[s] = p
    return out, branch


def gene_programs(rng: np.random.Generator, genes: pd.DataFrame, cell_types: dict[str, list[str]]) -> dict:
    """Marker programme (genes x types, multiplicative) shared by orthologues through the
    ancestral gene, with a mild species drift; lineage-specific genes get their own."""
    anc = np.sort(genes.anc_gene.unique())
    up, _ = _attach(rng, len(anc), 1.2)
    down, _ = _attach(rng, len(anc), 4.0)
    fold_up = rng.lognormal(np.log(3.0), 0.5, size=(len(anc), 1))
    fold_down = rng.lognormal(np.log(0.35), 0.3, size=(len(anc), 1))
    prog = np.where(up, fold_up, 1.0) * np.where(down & ~up, fold_down, 1.0)
    row = pd.Series(np.arange(len(anc)), index=anc)
    out = {}
    for s, types in cell_types.items():
        g = genes[genes.species == s]
        cols = list(range(len(HIERARCHY)))
        if s in SPECIES_ONLY_TYPES:
            cols.append(len(HIERARCHY) + list(SPECIES_ONLY_TYPES).index(s))
        p = prog[row.loc[g.anc_gene].to_numpy()][:, cols] * rng.lognormal(0.0, 0.1, size=(len(g), len(cols)))
        p[(g.kind == "mito").to_numpy()] = 1.0
        out[s] = p
    return out


def type_accessibility(open_prob: np.ndarray, type_index: np.ndarray, state: np.ndarray, loading: np.ndarray):
    """Per-nucleus open probability: the type's, shifted on the logit scale by the state."""
    p = np.nan_to_num(open_prob)[:, type_index].T  # nuclei x cres
    shift = state[:, None] * loading[None, :]
    return np.where(p > 0, _sigmoid(_logit(np.clip(p, 1e-4, 1 - 1e-4)) + shift), 0.0)


def expression(model: StateModel, species: str, access: np.ndarray, type_index: np.ndarray, state: np.ndarray):
    """Mean expression (nuclei x genes, unnormalised): level x programme x TF boost x
    Hill(summed linked distal accessibility) x exp(state loading)."""
    a = np.asarray((model.distal_weights[species] @ access.T).T)
    k = model.hill_k[species]
    hill = a**HILL_N / (k**HILL_N + a**HILL_N)
    prog = (model.gene_program[species] * model.tf_boost[species])[:, type_index].T
    shift = np.exp(state[:, None] * model.gene_loading[species][None, :])
    return model.level[species][None, :] * prog * (BASAL_EXPRESSION + hill) * shift


def promoter_open(model: StateModel, species: str, mean: np.ndarray) -> np.ndarray:
    """Promoter open probability from its gene's expression (nuclei x cres; 0 for non-promoters)."""
    pg = model.promoter_gene[species]
    is_prom = pg >= 0
    ref = np.median(mean[:, pg[is_prom]]) + 1e-9
    x = np.log((mean[:, pg[is_prom]] + 1e-9) / ref)
    out = np.zeros((mean.shape[0], len(pg)))
    out[:, is_prom] = 0.02 + 0.83 * _sigmoid(1.4 * x + 0.3)
    return out


def build_state_model(rng: np.random.Generator, ann, open_prob: dict[str, np.ndarray]) -> StateModel:
    """Gene programmes, state loadings, link weights and Hill constants for every species;
    fills the promoter rows of ``open_prob`` from type-level expression (state 0)."""
    n_cres = len(ann.cres)
    element_loading = np.where(rng.random(n_cres) < 0.2, rng.normal(0.0, 1.0, n_cres), 0.0)
    programs = gene_programs(rng, ann.genes, ann.cell_types)
    model = StateModel(open_prob, element_loading, programs, {}, {}, {}, {}, {}, {})
    is_distal = ann.cres.kind.to_numpy() == "distal"
    for s, types in ann.cell_types.items():
        genes = ann.genes[ann.genes.species == s].reset_index(drop=True)
        gi = pd.Series(np.arange(len(genes)), index=genes.gene_id)
        links = ann.links[ann.links.species == s]
        d = links[is_distal[links.cre.to_numpy()]]
        model.distal_weights[s] = sp.csr_matrix(
            (d.effect.to_numpy(), (gi.loc[d.gene_id].to_numpy(), d.cre.to_numpy())), shape=(len(genes), n_cres)
        )
        prom = links[~is_distal[links.cre.to_numpy()]]
        pg = np.full(n_cres, -1)
        pg[prom.cre.to_numpy()] = gi.loc[prom.gene_id].to_numpy()
        model.promoter_gene[s] = pg
        model.gene_loading[s] = np.where(rng.random(len(genes)) < 0.15, rng.normal(0.0, 0.4, len(genes)), 0.0)
        mito = (genes.kind == "mito").to_numpy()
        model.level[s] = np.where(mito, 0.0, genes.expr_level.to_numpy())
        boost = np.ones((len(genes), len(types)))
        for m in ann.modules[ann.modules.species == s].itertuples():
            cols = [types.index(t) for t in m.cell_types.split(",")]
            boost[np.ix_(np.flatnonzero((genes.gene_id == m.tf_gene_id).to_numpy()), cols)] = TF_BOOST
        model.tf_boost[s] = boost
        type_acc = np.nan_to_num(open_prob[s]).T  # types x cres
        a = np.asarray((model.distal_weights[s] @ type_acc.T).T)
        model.hill_k[s] = np.maximum(np.median(a, axis=0), 0.1)
        zero = np.zeros(len(types))
        mean = expression(model, s, type_acc, np.arange(len(types)), zero)
        prom_rows = pg >= 0
        open_prob[s][prom_rows] = promoter_open(model, s, mean)[:, prom_rows].T
        open_prob[s][ann.cres[f"{s}_chrom"].to_numpy() == ""] = np.nan
    return model
