"""A small generative fixture for the model alone: species × modality domains with known
cell types, paired multiome nuclei, feature links and cross-species edges.

It is not the pipeline's simulator (``crossglue.simulate`` writes genomes and fragments);
it draws count matrices and a guidance graph directly, in seconds, so tests and the model
benchmark can score embeddings against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossglue.model.data import DomainSpec


@dataclass
class ToyData:
    """Domains (raw counts), their specs and the guidance edge table."""

    domains: dict[str, ad.AnnData]
    specs: dict[str, DomainSpec]
    edges: pd.DataFrame


def _symmetric(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, kind: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": np.concatenate([src, dst]),
            "target": np.concatenate([dst, src]),
            "weight": np.concatenate([weight, weight]),
            "sign": 1,
            "type": kind,
        }
    )


def make_toy(
    n_cells: int = 300,
    n_genes: int = 120,
    elements_per_gene: int = 2,
    n_types: int = 5,
    species: tuple[str, ...] = ("human", "macaque"),
    paired_fraction: float = 0.5,
    n_batches: int = 2,
    conserved_fraction: float = 0.7,
    rna_library: float = 1500.0,
    atac_library: float = 600.0,
    seed: int = 0,
) -> ToyData:
    """Draw the fixture. Cell types act on marker genes and on the elements linked to them;
    a 2-d continuous state per nucleus makes paired cells distinguishable inside a type."""
    rng = np.random.default_rng(seed)
    n_el = n_genes * elements_per_gene
    gene_type = rng.integers(0, n_types, n_genes)
    marker = rng.random(n_genes) < 0.7
    type_effect = np.zeros((n_types, n_genes))
    type_effect[gene_type[marker], np.flatnonzero(marker)] = rng.uniform(1.5, 3.0, marker.sum())
    state_effect = rng.normal(0, 0.6, (2, n_genes)) * (rng.random(n_genes) < 0.5)
    gene_base = rng.normal(0, 1, n_genes)
    el_gene = np.repeat(np.arange(n_genes), elements_per_gene)
    el_gain = rng.uniform(0.6, 1.2, n_el)
    el_base = rng.normal(0, 0.5, n_el)
    el_class = rng.choice(
        ["conserved", "accessible", "sequence"],
        n_el,
        p=[conserved_fraction, (1 - conserved_fraction) / 2, (1 - conserved_fraction) / 2],
    )
    lost_in = rng.integers(0, len(species), n_el)  # where an "accessible" element is closed

    domains, specs, edge_parts = {}, {}, []
    for s_i, sp_name in enumerate(species):
        genes = np.array([f"{sp_name}_g{i:04d}" for i in range(n_genes)])
        elements = np.array([f"{sp_name}_p{i}" for i in range(n_el)])
        base_s = gene_base + rng.normal(0, 0.3, n_genes)
        effect_s = type_effect.copy()
        shuffle = rng.random(n_genes) < 0.1  # species-specific regulation of a few genes
        effect_s[:, shuffle] = effect_s[rng.permutation(n_types)][:, shuffle]
        el_effect = effect_s[:, el_gene] * el_gain
        el_effect[:, (el_class == "accessible") & (lost_in == s_i)] = 0.0
        proportions = rng.dirichlet(np.full(n_types, 4.0))
        n_paired = int(round(paired_fraction * n_cells))
        cell_types = {m: rng.choice(n_types, n_cells, p=proportions) for m in ("rna", "atac")}
        states = {m: rng.normal(0, 1, (n_cells, 2)) for m in ("rna", "atac")}
        cell_types["atac"][:n_paired] = cell_types["rna"][:n_paired]
        states["atac"][:n_paired] = states["rna"][:n_paired]
        for modality in ("rna", "atac"):
            types, state = cell_types[modality], states[modality]
            batch = rng.integers(0, n_batches, n_cells)
            if modality == "rna":
                logits = (
                    base_s + effect_s[types] + state @ state_effect + rng.normal(0, 0.1, (n_batches, n_genes))[batch]
                )
                library = rna_library * np.exp(rng.normal(0, 0.4, n_cells)) * (1 + 0.3 * batch)
            else:
                logits = el_base + el_effect[types] + (state @ state_effect)[:, el_gene]
                library = atac_library * np.exp(rng.normal(0, 0.4, n_cells)) * (1 + 0.3 * batch)
            prob = np.exp(logits - logits.max(axis=1, keepdims=True))
            prob /= prob.sum(axis=1, keepdims=True)
            rate = library[:, None] * prob
            if modality == "rna":
                rate = rate * rng.gamma(5.0, 1 / 5.0, rate.shape)
            counts = sp.csr_matrix(rng.poisson(rate).astype(np.float32))
            samples = np.array([f"{sp_name}_{modality}{b}" for b in batch])
            nucleus = np.array([f"{sp_name}_n{i}" if i < n_paired else None for i in range(n_cells)], dtype=object)
            barcodes = np.array([f"{sp_name}_{modality}_c{i}" for i in range(n_cells)])
            barcodes[:n_paired] = nucleus[:n_paired].astype(str)
            obs = pd.DataFrame(
                {
                    "cell_type": pd.Categorical(np.array([f"type{t}" for t in types])),
                    "sample": samples,
                    "species": sp_name,
                    "nucleus": nucleus,
                },
                index=pd.Index(barcodes),
            )
            var = pd.DataFrame(index=pd.Index(genes if modality == "rna" else elements))
            name = f"{sp_name}:{modality}"
            domains[name] = ad.AnnData(X=counts, obs=obs, var=var)
            specs[name] = DomainSpec(
                species=sp_name, modality=modality, batch_key="sample", label_key=None, nucleus_key="nucleus"
            )
        gene_nodes = sp_name + ":" + genes
        el_nodes = sp_name + ":" + elements
        extra = np.array([f"{sp_name}:{sp_name}_unexpressed{i}" for i in range(3)])
        edge_parts.append(_symmetric(el_nodes, gene_nodes[el_gene], np.ones(n_el), "peak_gene"))
        decoy = (el_gene + 1) % n_genes
        edge_parts.append(_symmetric(el_nodes, gene_nodes[decoy], np.full(n_el, 0.3), "peak_gene"))
        edge_parts.append(_symmetric(extra, gene_nodes[:3], np.full(3, 0.5), "peak_gene"))
        nodes = np.concatenate([gene_nodes, el_nodes, extra])
        edge_parts.append(pd.DataFrame({"source": nodes, "target": nodes, "weight": 1.0, "sign": 1, "type": "self"}))
    for a, b in zip(species[:-1], species[1:], strict=True):
        ids = np.arange(n_genes)
        edge_parts.append(
            _symmetric(
                f"{a}:{a}_g" + pd.Series(ids).map("{:04d}".format).to_numpy(),
                f"{b}:{b}_g" + pd.Series(ids).map("{:04d}".format).to_numpy(),
                np.ones(n_genes),
                "ortholog",
            )
        )
        lifted = el_class != "sequence"
        e_ids = np.flatnonzero(lifted).astype(str)
        edge_parts.append(
            _symmetric(
                np.char.add(f"{a}:{a}_p", e_ids),
                np.char.add(f"{b}:{b}_p", e_ids),
                np.where(el_class[lifted] == "conserved", 1.0, 0.5),
                "peak_peak",
            )
        )
    edges = pd.concat(edge_parts, ignore_index=True)
    return ToyData(domains=domains, specs=specs, edges=edges)


def add_representations(toy: ToyData, n_comps: int = 30, n_top_genes: int = 2000, seed: int = 0) -> ToyData:
    """PCA for RNA and LSI for ATAC domains (as the pipeline does), specs updated to use them."""
    from crossglue.model.inputs import atac_lsi, rna_pca

    specs = {}
    for name, adata in toy.domains.items():
        spec = toy.specs[name]
        if spec.modality == "rna":
            rna_pca(adata, n_comps=n_comps, n_top_genes=n_top_genes, batch_key=spec.batch_key, seed=seed, name=name)
            specs[name] = replace(spec, use_rep="X_pca")
        else:
            atac_lsi(adata, n_comps=n_comps, seed=seed, name=name)
            specs[name] = replace(spec, use_rep="X_lsi")
    return ToyData(domains=toy.domains, specs=specs, edges=toy.edges)
