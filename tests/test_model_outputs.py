"""cells.h5ad and cells.h5mu as a user opens them: genes by symbol in scanpy, one modality per
domain in MuData, counts that are the ones ingested, ATAC rows as gene activity."""

from __future__ import annotations

import logging

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from crossglue.errors import CrossglueError
from crossglue.io_utils import write_h5ad, write_h5mu
from crossglue.model.outputs import cells_mudata, log_normalise, unique_gene_symbols, with_expression
from crossglue.model.stage import cell_table, log_warmup
from crossglue.model.trainer import CHECKPOINT, TrainConfig

matplotlib.use("Agg")

OBS = {"modality": None, "sample": "s", "donor": "d", "cell_type": "A", "nucleus": None}


def _obs(species: str, modality: str, ids: list[str], nucleus: bool = False) -> pd.DataFrame:
    obs = pd.DataFrame({**OBS, "species": species, "modality": modality, "sample": f"{species}_s"}, index=ids)
    obs["nucleus"] = ids if nucleus else None
    return obs


@pytest.fixture
def domains() -> dict[str, ad.AnnData]:
    """Human: 2 RNA cells, 2 multiome ATAC cells (one shared with RNA); macaque: 1 RNA, 1 ATAC.
    Human genes GAD1, SST, SST (a repeated symbol) and one unnamed; macaque GAD1 and PVALB."""
    h_rna = ad.AnnData(
        X=sp.csr_matrix(np.array([[3, 0, 1, 0], [0, 2, 0, 4]], np.float32)),
        obs=_obs("human", "multiome", ["h#1", "h#2"], nucleus=True),
        var=pd.DataFrame({"gene_name": ["GAD1", "SST", "SST", None]}, index=["ENSG1", "ENSG2", "ENSG3", "ENSG4"]),
    )
    h_atac = ad.AnnData(
        X=sp.csr_matrix(np.array([[1, 2, 0], [0, 0, 5]], np.float32)),
        obs=_obs("human", "multiome", ["h#1", "h#3"], nucleus=True),
        var=pd.DataFrame(index=["el1", "el2", "el3"]),
    )
    m_rna = ad.AnnData(
        X=sp.csr_matrix(np.array([[5, 7]], np.float32)),
        obs=_obs("macaque", "rna", ["m#1"]),
        var=pd.DataFrame({"gene_name": ["GAD1", "PVALB"]}, index=["ENSMMUG1", "ENSMMUG2"]),
    )
    m_atac = ad.AnnData(
        X=sp.csr_matrix(np.array([[4, 1]], np.float32)),
        obs=_obs("macaque", "atac", ["m#2"]),
        var=pd.DataFrame(index=["el1", "el3"]),
    )
    return {"human:rna": h_rna, "macaque:rna": m_rna, "human:atac": h_atac, "macaque:atac": m_atac}


@pytest.fixture
def edges() -> pd.DataFrame:
    """Peak-gene edges both ways; only distance 0 (body + promoter) counts toward gene activity."""
    rows = [
        ("human:el1", "human:ENSG1", 0),  # GAD1 <- el1 + el2
        ("human:el2", "human:ENSG1", 0),
        ("human:el3", "human:ENSG2", 0),  # SST <- el3
        ("human:el3", "human:ENSG1", 5000),  # beyond the body: not gene activity
        ("macaque:el3", "macaque:ENSMMUG2", 0),  # PVALB <- el3
        ("human:el1", "macaque:el1", np.nan),
    ]
    table = pd.DataFrame(rows, columns=["source", "target", "distance"])
    table["type"] = np.where(table["distance"].isna(), "element", "peak_gene")
    back = table.rename(columns={"source": "target", "target": "source"})
    return pd.concat([table, back], ignore_index=True)


class FixedEmbeddings:
    """Stands in for a trained GlueModel: row i of domain d embeds as (d, i)."""

    def __init__(self, domains):
        self.domains = domains

    def encode_cells(self, name):
        code = list(self.domains).index(name)
        return np.column_stack([np.full(self.domains[name].n_obs, code), np.arange(self.domains[name].n_obs)]).astype(
            np.float32
        )


def feature_embeddings(domains) -> ad.AnnData:
    nodes = [f"{n.split(':')[0]}:{f}" for n, a in domains.items() for f in a.var_names]
    nodes = list(dict.fromkeys(nodes))
    emb = np.arange(len(nodes) * 2, dtype=np.float32).reshape(-1, 2)
    return ad.AnnData(obs=pd.DataFrame(index=nodes), obsm={"X_glue": emb})


@pytest.fixture
def cells(domains, edges) -> ad.AnnData:
    return with_expression(cell_table(domains, FixedEmbeddings(domains)), domains, edges)


def test_genes_are_columns_by_symbol_joined_across_species(cells):
    assert list(cells.var_names) == ["GAD1", "SST", "SST-1", "ENSG4", "PVALB"]
    assert cells.var.loc["GAD1", "gene_id_human"] == "ENSG1"
    assert cells.var.loc["GAD1", "gene_id_macaque"] == "ENSMMUG1"
    pvalb = cells.var.loc["PVALB"]
    assert pd.isna(pvalb["gene_id_human"]) and not pvalb["in_human"]
    assert pvalb["gene_id_macaque"] == "ENSMMUG2" and pvalb["in_macaque"]


def test_rna_rows_hold_their_counts_and_log_normalised_values(cells):
    counts = pd.DataFrame(cells.layers["counts"].toarray(), index=cells.obs_names, columns=cells.var_names)
    assert counts.loc["rna:h#2"].tolist() == [0, 2, 0, 4, 0]
    assert counts.loc["rna:m#1"].tolist() == [5, 0, 0, 0, 7]  # macaque GAD1 in the shared GAD1 column
    x = pd.DataFrame(cells.X.toarray(), index=cells.obs_names, columns=cells.var_names)
    np.testing.assert_allclose(x.loc["rna:h#1", "GAD1"], np.log1p(1e4 * 3 / 4), rtol=1e-6)
    assert sp.issparse(cells.X) and sp.issparse(cells.layers["counts"])


def test_atac_rows_hold_gene_activity_of_overlapping_elements(cells):
    counts = pd.DataFrame(cells.layers["counts"].toarray(), index=cells.obs_names, columns=cells.var_names)
    assert counts.loc["atac:h#1"].tolist() == [3, 0, 0, 0, 0]  # el1 + el2 on GAD1; el3's distal link ignored
    assert counts.loc["atac:h#3"].tolist() == [0, 5, 0, 0, 0]
    assert counts.loc["atac:m#2"].tolist() == [0, 0, 0, 0, 1]
    kinds = cells.obs["expression"].astype(str)
    assert kinds.groupby(cells.obs["modality"].astype(str)).unique().to_dict() == {
        "atac": ["gene_activity"],
        "rna": ["rna"],
    }


def test_gene_symbol_colours_a_umap_in_scanpy(cells, tmp_path):
    sc = pytest.importorskip("scanpy")
    write_h5ad(cells, tmp_path / "cells.h5ad")
    adata = ad.read_h5ad(tmp_path / "cells.h5ad")
    adata.obsm["X_umap"] = adata.obsm["X_glue"]
    sc.pl.umap(adata, color="GAD1", show=False)
    assert adata[:, "GAD1"].X.sum() > 0


def test_symbols_fall_back_to_ids_and_repeat_as_suffixed_names():
    var = pd.DataFrame({"gene_name": ["A", "", "A", np.nan, "NA"]}, index=["g1", "g2", "g3", "g4", "g5"])
    assert list(unique_gene_symbols(var)) == ["A", "g2", "A-1", "g4", "g5"]


def test_log_normalise_keeps_empty_rows_zero():
    x = log_normalise(sp.csr_matrix(np.array([[0, 0], [1, 3]], np.float32)))
    np.testing.assert_allclose(x.toarray(), [[0, 0], [np.log1p(2500), np.log1p(7500)]], rtol=1e-6)


def test_mudata_has_one_modality_per_domain_with_feature_embeddings(domains, cells, tmp_path):
    md = pytest.importorskip("mudata")
    features = feature_embeddings(domains)
    write_h5mu(cells_mudata(domains, cells, features), tmp_path / "cells.h5mu")
    mdata = md.read_h5mu(tmp_path / "cells.h5mu")
    assert list(mdata.mod) == list(domains)
    rna = mdata.mod["human:rna"]
    assert list(rna.var_names) == ["human:ENSG1", "human:ENSG2", "human:ENSG3", "human:ENSG4"]
    assert list(rna.var["gene_symbol"]) == ["GAD1", "SST", "SST-1", "ENSG4"]
    np.testing.assert_array_equal(rna.varm["X_glue"], features[rna.var_names].obsm["X_glue"])
    np.testing.assert_array_equal(rna.layers["counts"].toarray(), domains["human:rna"].X.toarray())
    atac = mdata.mod["macaque:atac"]
    assert list(atac.var["feature"]) == ["el1", "el3"]
    np.testing.assert_array_equal(atac.obsm["X_glue"], [[3, 0]])
    # the multiome nucleus h#1 is one MuData row, present in both human modalities
    assert mdata.n_obs == 5
    assert mdata.obsm["human:rna"][mdata.obs_names.get_loc("h#1")]
    assert mdata.obsm["human:atac"][mdata.obs_names.get_loc("h#1")]
    assert mdata.obs.loc["m#2", "species"] == "macaque"


def test_a_feature_without_embedding_is_an_error(domains, cells):
    pytest.importorskip("mudata")
    features = feature_embeddings(domains)
    features = features[features.obs_names != "macaque:el3"].copy()
    with pytest.raises(CrossglueError) as err:
        cells_mudata(domains, cells, features)
    assert str(err.value) == "features.h5ad: no embedding for 1 macaque:atac feature(s), e.g. ['macaque:el3']"


def test_cells_out_of_domain_order_are_refused(domains, edges):
    cells = cell_table(domains, FixedEmbeddings(domains))
    with pytest.raises(CrossglueError) as err:
        with_expression(cells[::-1].copy(), domains, edges)
    assert str(err.value) == ("cells.h5ad: rows are not in domain order; build them with cell_table(domains, model)")


def test_warmup_is_announced_before_it_starts_unless_training_resumes(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="crossglue.model.stage")
    log_warmup(TrainConfig(graph_warmup=30), tmp_path)
    assert caplog.messages == [
        "graph warm-up: the graph encoder trains alone for 30 epoch(s) first (model.train.graph_warmup); "
        "one line when it ends, then one line per epoch"
    ]
    caplog.clear()
    (tmp_path / CHECKPOINT).touch()
    log_warmup(TrainConfig(graph_warmup=30), tmp_path)
    assert caplog.messages == [
        f"checkpoint {tmp_path} found: training resumes from it (a stale one restarts with the warm-up)"
    ]


def test_gene_activity_needs_the_graph_stage_distances(domains, edges):
    cells = cell_table(domains, FixedEmbeddings(domains))
    with pytest.raises(CrossglueError) as err:
        with_expression(cells, domains, edges.drop(columns="distance"))
    assert str(err.value) == (
        "guidance edges: columns 'type' and 'distance' are needed for ATAC gene activity "
        "(the edge table the graph stage writes, results/graph/guidance_edges.tsv.gz, has them)"
    )
