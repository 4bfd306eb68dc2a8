"""The model's pieces on their own: graph propagation and sampling, losses, balancing."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy import stats

from crossglue.errors import CrossglueError
from crossglue.model.balancing import balancing_weights
from crossglue.model.data import row_log_factorial
from crossglue.model.graph import EdgeSampler, GuidanceGraph
from crossglue.model.losses import graph_nll, kl_standard_normal, nb_nll
from crossglue.model.nets import GraphEncoder

torch.set_num_threads(1)


def _edges(rows):
    """Symmetric edge table with self-loops from (source, target, weight, sign) rows."""
    df = pd.DataFrame(rows, columns=["source", "target", "weight", "sign"])
    back = df.rename(columns={"source": "target", "target": "source"})
    nodes = pd.unique(pd.concat([df["source"], df["target"]]))
    loops = pd.DataFrame({"source": nodes, "target": nodes, "weight": 1.0, "sign": 1})
    return pd.concat([df, back, loops], ignore_index=True)


EDGES = _edges(
    [("h:g1", "h:p1", 1.0, 1), ("h:g1", "m:g1", 0.5, 1), ("h:p1", "m:p1", 1.0, -1), ("m:g1", "m:p1", 0.25, 1)]
)


def test_propagation_is_symmetric_gcn_normalisation():
    graph = GuidanceGraph.from_edges(EDGES)
    dense = graph.propagation_matrix().to_dense().numpy()
    adjacency = np.zeros((4, 4))
    adjacency[graph.dst, graph.src] = graph.sign * graph.weight
    degree = np.abs(adjacency).sum(axis=1)
    assert np.allclose(dense, adjacency / np.sqrt(np.outer(degree, degree)), atol=1e-7)
    i, j = graph.nodes.get_loc("h:p1"), graph.nodes.get_loc("m:p1")
    assert dense[i, j] < 0  # the sign of an edge survives normalisation


def test_graph_encoder_gradient_matches_dense_autograd():
    graph = GuidanceGraph.from_edges(EDGES)
    enc = GraphEncoder(graph.n_nodes, 3)
    torch.nn.init.normal_(enc.embedding)
    sparse = graph.propagation_matrix()
    mean, _ = enc(sparse)
    mean.square().sum().backward()
    fast = enc.embedding.grad.clone()
    enc.embedding.grad = None
    mean, _ = enc.head(sparse.to_dense() @ enc.embedding)
    mean.square().sum().backward()
    assert torch.allclose(fast, enc.embedding.grad, atol=1e-6)


def test_edges_are_drawn_by_weight_and_negatives_by_degree():
    graph = GuidanceGraph.from_edges(EDGES)
    src, dst, sign, label = EdgeSampler(graph, negatives=10).sample(20000, np.random.default_rng(0))
    assert (label == 1).sum() == 20000 and (label == 0).sum() == 200000
    n = graph.n_nodes
    positive_counts = np.bincount(src[label == 1] * n + dst[label == 1], minlength=n * n)
    expected = np.zeros(n * n)
    np.add.at(expected, graph.src * n + graph.dst, graph.weight / graph.weight.sum() * 20000)
    assert stats.chisquare(positive_counts[expected > 0], expected[expected > 0]).pvalue > 1e-3
    degree = graph.weighted_degree()
    negative_counts = np.bincount(dst[label == 0], minlength=n)
    assert stats.chisquare(negative_counts, degree / degree.sum() * 200000).pvalue > 1e-3
    # Negatives keep their positive's source and sign.
    assert np.array_equal(src[20000:], np.repeat(src[:20000], 10))
    assert np.array_equal(sign[20000:], np.repeat(sign[:20000], 10))


@pytest.mark.parametrize(
    "edges, message",
    [
        (EDGES.drop(columns="sign"), r"guidance.tsv: missing column\(s\) sign;"),
        (EDGES.iloc[1:], r"edge h:p1 -> h:g1 \(type edge\) has no reverse edge"),
        (EDGES[EDGES["source"] != EDGES["target"]], r"4 node\(s\) without a self-loop"),
        (
            EDGES.assign(weight=EDGES["weight"].where(EDGES.index != 2, 1.5)),
            r"edge h:p1 -> m:p1 .* has weight .*1.5.*; expected a number in \(0, 1\]",
        ),
        (
            EDGES.assign(sign=EDGES["sign"].where(EDGES.index != 3, 0)),
            r"edge m:g1 -> m:p1 .* has sign .*0.*; expected \+1 or -1",
        ),
        # the checks the model's own validator used to lack: they are the pipeline's now
        (EDGES.assign(weight=EDGES["weight"].where(EDGES.index != 0, 0.5)), "its reverse has weight 1.0"),
        (pd.concat([EDGES, EDGES.iloc[:1]]), "is listed more than once"),
    ],
)
def test_bad_graphs_are_explained(edges, message):
    with pytest.raises(CrossglueError, match=message):
        GuidanceGraph.from_edges(edges, source="guidance.tsv")


def test_negative_binomial_nll_matches_scipy():
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.1, 20, (7, 9))
    theta = rng.uniform(0.5, 5, (7, 9))
    x = rng.poisson(mu).astype(np.float32)
    rows, cols = np.nonzero(x)
    values = torch.tensor(x[rows, cols], dtype=torch.float64)
    nll = nb_nll(torch.tensor(np.log(mu)), torch.tensor(np.log(theta)), torch.tensor(rows * 9 + cols), values)
    reference = -stats.nbinom.logpmf(x, theta, theta / (theta + mu)).mean()
    assert float(nll) == pytest.approx(reference, rel=1e-9)
    # the trainer's per-cell log x! sums give the same likelihood
    log_factorial = torch.from_numpy(row_log_factorial(sp.csr_matrix(x)).astype(np.float64)).sum()
    given = nb_nll(
        torch.tensor(np.log(mu)), torch.tensor(np.log(theta)), torch.tensor(rows * 9 + cols), values, log_factorial
    )
    assert float(given) == pytest.approx(reference, rel=1e-6)


def test_kl_matches_torch_distributions():
    mean, std = torch.randn(5, 4), torch.rand(5, 4) + 0.1
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, std), torch.distributions.Normal(0.0, 1.0)
    ).sum(1)
    assert torch.allclose(kl_standard_normal(mean, std), expected, atol=1e-6)


def test_graph_nll_averages_positives_and_negatives_separately():
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # one positive edge 0 -> 1 with two negatives 0 -> 2
    loss = graph_nll(v, torch.tensor([0]), torch.tensor([1]), torch.tensor([[2, 2]]), torch.ones(1))
    expected = 0.5 * (np.log1p(np.exp(-1.0)) + np.log(2.0))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def _blobs(centres, n, rng):
    return np.concatenate([c + 0.05 * rng.normal(size=(n, len(c))) for c in centres])


def test_balancing_upweights_shared_types_and_drops_a_private_one():
    rng = np.random.default_rng(0)
    e = np.eye(4) * 3
    a = _blobs([e[0], e[1], e[2]], 60, rng)  # types 0, 1, 2
    b = _blobs([e[0], e[1], e[3]], 60, rng)  # types 0, 1 and a private type 3
    w = balancing_weights({"a": a, "b": b})
    assert all(np.isfinite(x).all() and x.mean() == pytest.approx(1.0, rel=1e-5) for x in w.values())
    assert (w["a"][120:] == 0).all() and (w["b"][120:] == 0).all()
    assert w["a"][:120].min() > 0


def test_balancing_a_domain_above_the_cap_clusters_a_sample_and_keeps_the_weights(monkeypatch):
    """Above max_cells a domain is clustered on a sample, the rest join the nearest centroid:
    Leiden never sees more than the cap, and the weights keep what clustering every cell
    gives (a type with no counterpart at zero, every shared cell weighted, mean 1)."""
    from crossglue.model import balancing

    rng = np.random.default_rng(1)
    e = np.eye(4) * 3
    a = _blobs([e[0], e[1], e[2]], 400, rng)  # types 0, 1, 2 (1,200 cells)
    b = _blobs([e[0], e[1], e[3]], 60, rng)  # types 0, 1 and a private type 3
    whole = balancing_weights({"a": a, "b": b})
    sizes = []
    leiden = balancing.knn_leiden
    monkeypatch.setattr(balancing, "knn_leiden", lambda x, *args: sizes.append(len(x)) or leiden(x, *args))
    capped = balancing_weights({"a": a, "b": b}, max_cells=300)
    assert sizes == [300, 180]
    for k in whole:
        assert np.array_equal(capped[k] == 0, whole[k] == 0)
        assert capped[k].mean() == pytest.approx(1.0, rel=1e-5)
    assert (capped["a"][800:] == 0).all() and capped["a"][:800].min() > 0
    # each type's share of domain a's weight is what its best match says, sampled or not
    shares = [capped["a"][i * 400 : (i + 1) * 400].sum() / 1200 for i in range(2)]
    assert shares == pytest.approx([whole["a"][i * 400 : (i + 1) * 400].sum() / 1200 for i in range(2)], abs=0.01)


def test_balancing_without_any_shared_cluster_falls_back_to_uniform(caplog):
    rng = np.random.default_rng(0)
    e = np.eye(4) * 3
    a = _blobs([e[0], e[1]], 50, rng)
    b = _blobs([-e[0], e[2]], 50, rng)  # nothing within cosine 0.5 of domain a
    with caplog.at_level(logging.WARNING, logger="crossglue.model"):
        w = balancing_weights({"a": a, "b": b})
    for x in w.values():
        assert np.array_equal(x, np.ones(100, np.float32))
    assert "no cluster of domain a matches any other domain" in caplog.text
