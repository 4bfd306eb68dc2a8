"""Loss terms of the model, written to exploit count sparsity.

The negative binomial log-likelihood splits into a dense part that every (cell, feature)
pays and a part that only non-zero counts pay; the expensive ``lgamma`` calls run on the
non-zeros alone, which for ATAC is a few percent of the matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nb_nll(
    log_mu: torch.Tensor,
    log_theta: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    values: torch.Tensor,
) -> torch.Tensor:
    """Mean negative binomial NLL per matrix element (exact, ``log x!`` included).

    ``log p(x) = lgamma(x+θ) − lgamma(θ) − lgamma(x+1) + θ log θ/(θ+μ) + x log μ/(θ+μ)``;
    with ``θ log θ/(θ+μ) = −θ·softplus(log μ − log θ)`` (all elements) and
    ``x log μ/(θ+μ) = −x·softplus(log θ − log μ)`` (non-zeros only).
    """
    theta = log_theta.exp()
    dense = -(theta * F.softplus(log_mu - log_theta)).sum()
    lt = log_theta[rows, cols]
    th = theta[rows, cols]
    sparse = (
        torch.lgamma(values + th)
        - torch.lgamma(th)
        - torch.lgamma(values + 1)
        - values * F.softplus(lt - log_mu[rows, cols])
    ).sum()
    return -(dense + sparse) / log_mu.numel()


def kl_standard_normal(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, std²) ‖ N(0, 1)) summed over latent dimensions, one value per row."""
    return 0.5 * (mean.square() + std.square() - 1.0 - 2.0 * std.log()).sum(dim=1)


def graph_nll(
    v: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, sign: torch.Tensor, label: torch.Tensor
) -> torch.Tensor:
    """Bernoulli NLL of edges with logit ``sign · ⟨v_i, v_j⟩``; positives and negatives
    are averaged separately, then together, so the 1:10 ratio does not swamp positives."""
    logits = sign * (v[src] * v[dst]).sum(dim=1)
    per_edge = F.binary_cross_entropy_with_logits(logits, label, reduction="none")
    positive = label > 0.5
    return 0.5 * (per_edge[positive].mean() + per_edge[~positive].mean())


def weighted_domain_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Discriminator cross-entropy with per-cell balancing weights (mean over all cells)."""
    return (F.cross_entropy(logits, target, reduction="none") * weight).sum() / target.numel()


def pairing_loss(mean_a: torch.Tensor, mean_b: torch.Tensor) -> torch.Tensor:
    """Squared distance between the two modalities' u of the same nuclei, relative to the
    mean squared norm of those u (detached), so the term cannot be met by shrinking u."""
    scale = 0.5 * (mean_a.square().sum(1).mean() + mean_b.square().sum(1).mean()).detach() + 1e-6
    return (mean_a - mean_b).square().sum(dim=1).mean() / scale
