"""The networks of the model (pure torch, no AnnData): encoders, decoders, discriminator.

Shapes: cells enter as a (n, n_input) representation; u is (n, latent); feature embeddings
v are (n_nodes, latent); a domain's decoder reads the rows of v for its own features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-7
HIDDEN = 256
DROPOUT = 0.2
SLOPE = 0.2


class Gaussian(nn.Module):
    """Mean and standard deviation heads: ``std = softplus(·) + eps``."""

    def __init__(self, n_in: int, latent: int) -> None:
        super().__init__()
        self.loc = nn.Linear(n_in, latent)
        self.scale = nn.Linear(n_in, latent)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.loc(h), F.softplus(self.scale(h)) + EPS


class CellEncoder(nn.Module):
    """Two ``Linear → LeakyReLU → BatchNorm → Dropout`` blocks, then Gaussian heads for u."""

    def __init__(self, n_input: int, latent: int, hidden: int = HIDDEN, dropout: float = DROPOUT) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_input, hidden),
            nn.LeakyReLU(SLOPE),
            nn.BatchNorm1d(hidden),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(SLOPE),
            nn.BatchNorm1d(hidden),
            nn.Dropout(dropout),
        )
        self.head = Gaussian(hidden, latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.body(x))


class _SymmetricSpMM(torch.autograd.Function):
    """``Â @ e`` for a symmetric sparse ``Â``: the gradient is ``Â @ g`` too, which avoids
    the sparse transpose autograd would otherwise build on every step (5x slower on CPU)."""

    @staticmethod
    def forward(ctx, matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.matrix = matrix
        return matrix @ dense

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, ctx.matrix @ grad


def propagate(matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """One weight-free propagation step over the (symmetric) guidance graph."""
    return _SymmetricSpMM.apply(matrix, dense)


class GraphEncoder(nn.Module):
    """Free node embeddings (zeros at start), one fixed propagation ``Â e``, Gaussian heads.

    ``Â`` is passed in per call (a sparse constant that lives on the data's device), so the
    module holds only learnable parameters and moves or saves like any other.
    """

    def __init__(self, n_nodes: int, latent: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(n_nodes, latent))
        self.head = Gaussian(latent, latent)

    def forward(self, propagation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(propagate(propagation, self.embedding))


class NBDecoder(nn.Module):
    """Negative binomial decoder: ``log μ = log_softmax(α_b ⊙ u vᵀ + β_b) + log library``.

    α = softplus(per-batch, per-feature scale), β per-batch bias, θ = exp(per-batch log θ);
    all three start at zero, as published.
    """

    def __init__(self, n_features: int, n_batches: int) -> None:
        super().__init__()
        self.scale_lin = nn.Parameter(torch.zeros(n_batches, n_features))
        self.bias = nn.Parameter(torch.zeros(n_batches, n_features))
        self.log_theta = nn.Parameter(torch.zeros(n_batches, n_features))

    def forward(
        self, u: torch.Tensor, v: torch.Tensor, batch: torch.Tensor, log_library: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (log μ, log θ), each (n_cells, n_features)."""
        # Transform per batch first (few rows), then gather per cell: cheaper than the reverse.
        alpha = F.softplus(self.scale_lin)[batch]
        logits = alpha * (u @ v.T) + self.bias[batch]
        log_mu = torch.log_softmax(logits, dim=1) + log_library[:, None]
        return log_mu, self.log_theta[batch]


class Discriminator(nn.Module):
    """``[Linear → LeakyReLU → Dropout] × 2 → Linear(n_domains)`` on posterior means."""

    def __init__(self, latent: int, n_domains: int, hidden: int = HIDDEN, dropout: float = DROPOUT) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.LeakyReLU(SLOPE),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(SLOPE),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_domains),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.net(u)


class GlueNetworks(nn.Module):
    """Every learnable part, keyed by domain name; the discriminator is kept apart.

    ``generator_parameters()`` is everything the VAE optimiser moves (encoders, graph
    encoder, decoders, classifier); the discriminator has its own optimiser.
    """

    def __init__(
        self,
        n_nodes: int,
        latent: int,
        domain_inputs: dict[str, int],
        domain_features: dict[str, int],
        domain_batches: dict[str, int],
        n_classes: int,
    ) -> None:
        super().__init__()
        self.domains = list(domain_inputs)
        self.graph_encoder = GraphEncoder(n_nodes, latent)
        self.cell_encoders = nn.ModuleDict({k: CellEncoder(n, latent) for k, n in domain_inputs.items()})
        self.decoders = nn.ModuleDict({k: NBDecoder(domain_features[k], domain_batches[k]) for k in self.domains})
        self.classifier = nn.Linear(latent, n_classes) if n_classes > 0 else None
        self.discriminator = Discriminator(latent, len(self.domains))

    def generator_parameters(self) -> list[nn.Parameter]:
        skip = {id(p) for p in self.discriminator.parameters()}
        return [p for p in self.parameters() if id(p) not in skip]
