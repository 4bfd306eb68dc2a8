"""Rule species_differential: pseudobulks per species × donor × cell type (cell types from the
annotation), DESeq2 species contrasts inside each cell type for one-to-one orthologous genes
and for elements present in both species."""

import logging
from itertools import combinations

import anndata as ad
import pandas as pd

from crossglue.analysis.annotate import UNASSIGNED, labels_for
from crossglue.analysis.differential import RESULT_COLUMNS, one_to_one_orthologs, pseudobulk, species_differential
from crossglue.errors import CrossglueError
from crossglue.graph.files import read_edge_table
from crossglue.io_utils import atomic_path
from crossglue.snakemake_script import run

log = logging.getLogger("crossglue.species_differential")
KEYS = ["species", "donor", "cell_type"]


def species_pseudobulk(path: str, species: str, modality: str, cells: pd.DataFrame, min_cells: int):
    data = ad.read_h5ad(path)
    if "donor" not in data.obs:
        raise CrossglueError(f"{path}: obs lacks the donor column (donors are the replicates)")
    cell_type = labels_for(data.obs_names, cells, "cell_type_annotated", modality=modality)
    found = cell_type.notna().mean()
    log.info("%s %s: cell types for %.1f%% of %d cells", species, modality, 100 * found, data.n_obs)
    if found < 0.5:
        raise CrossglueError(f"{path}: only {100 * found:.1f}% of cells found in the annotated cells.h5ad (ids differ?)")
    obs = pd.DataFrame(
        {"species": species, "donor": data.obs["donor"].astype(str).to_numpy(), "cell_type": cell_type.to_numpy()},
        index=data.obs_names,
    )
    obs.loc[obs["cell_type"] == UNASSIGNED, "cell_type"] = None
    return pseudobulk(data.X, obs, KEYS, data.var_names.astype(str), min_cells=min_cells), data.var


def main(smk) -> None:
    cfg = smk.params.differential
    species = list(smk.params.species)
    cells = ad.read_h5ad(smk.input.cells, backed="r").obs.copy()
    edges = read_edge_table(smk.input.edges)
    rna = {s: species_pseudobulk(p, s, "rna", cells, cfg["min_cells"]) for s, p in zip(species, smk.input.rna, strict=True)}
    atac = {s: species_pseudobulk(p, s, "atac", cells, cfg["min_cells"]) for s, p in zip(species, smk.input.atac, strict=True)}
    genes, elements = [], []
    for a, b in combinations(species, 2):
        (pa, ga), var_a = rna[a]
        (pb, gb), var_b = rna[b]
        orth = one_to_one_orthologs(edges, a, b)
        orth = orth[orth["gene_a"].isin(pa.columns) & orth["gene_b"].isin(pb.columns)]
        shared = orth["gene_a"] + "|" + orth["gene_b"]
        profiles = pd.concat(
            [pa[orth["gene_a"]].set_axis(shared, axis=1), pb[orth["gene_b"]].set_axis(shared, axis=1)]
        )
        res = species_differential(profiles, pd.concat([ga, gb]), a, b, cfg["min_donors"], cfg["min_total_count"], smk.threads)
        pair = res["feature"].str.split("|", n=1, expand=True)
        res.insert(4, "gene_a", pair[0] if len(res) else [])
        res.insert(5, "gene_b", pair[1] if len(res) else [])
        name_a = var_a["gene_name"].astype(str) if "gene_name" in var_a else pd.Series(dtype=str)
        res.insert(6, "gene_name", res["gene_a"].map(name_a))
        genes.append(res.drop(columns="feature"))
        log.info("%s vs %s genes: %d one-to-one orthologues, %d tests", a, b, len(orth), len(res))

        (ea, eg_a), var_ea = atac[a]
        (eb, eg_b), _ = atac[b]
        common = ea.columns.intersection(eb.columns)
        res = species_differential(
            pd.concat([ea[common], eb[common]]), pd.concat([eg_a, eg_b]), a, b, cfg["min_donors"], cfg["min_total_count"], smk.threads
        )
        if "class" in var_ea:
            res.insert(4, "class", res["feature"].map(var_ea["class"].astype(str)))
        elements.append(res)
        log.info("%s vs %s elements: %d in both species, %d tests", a, b, len(common), len(res))
    with atomic_path(smk.output.genes) as tmp:
        gene_columns = [c for c in RESULT_COLUMNS if c != "feature"]
        out = pd.concat(genes, ignore_index=True) if genes else pd.DataFrame(columns=gene_columns)
        out.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6g")
    with atomic_path(smk.output.elements) as tmp:
        out = pd.concat(elements, ignore_index=True) if elements else pd.DataFrame(columns=RESULT_COLUMNS)
        out.rename(columns={"feature": "element"}).to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6g")


run(main, snakemake)  # noqa: F821 - injected by Snakemake
