"""The objective, written once (scvi-tools' "module"): every loss term of the model.

The training step, validation and the graph warm-up all call :class:`GlueModule`, so the
three can never weigh a term differently. The module holds no optimiser, schedule or data
split (that is the training plan, :mod:`crossglue.model.trainer`) and no AnnData (that is
the user-facing model, :mod:`crossglue.model.api`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from crossglue.model.data import CellBatch, DomainData, cell_inputs
from crossglue.model.graph import GuidanceGraph
from crossglue.model.losses import graph_nll, kl_standard_normal, nb_nll, pairing_loss
from crossglue.model.nets import CellEncoder, GlueNetworks

# (source, target, sign, negative targets) arrays from EdgeSampler.sample_grouped
EdgeBatch = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
# Called with every domain's posterior means (in domain order) and the batches; returns the
# discriminator loss and the adversarial loss the generator is penalised with.
Adversary = Callable[[list[torch.Tensor], dict[str, CellBatch]], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class LossWeights:
    """The λs of ``vae = λ_data Σ_k (NLL_k + λ_kl KL_k) + λ_graph K (graph NLL + λ_kl KL_v)
    + λ_sup · classifier + λ_pair · pairing`` (docs/MODEL.md)."""

    data: float
    kl: float
    graph: float
    sup: float
    pair: float

    @classmethod
    def from_config(cls, cfg) -> LossWeights:
        return cls(data=cfg.lam_data, kl=cfg.lam_kl, graph=cfg.lam_graph, sup=cfg.lam_sup, pair=cfg.lam_pair)


@dataclass
class FeaturePosterior:
    """Feature embeddings: posterior mean and std per node, and the v the decoders read."""

    mean: torch.Tensor
    std: torch.Tensor
    v: torch.Tensor


@dataclass
class Loss:
    """Every term of one evaluation of the objective (tensors, so the step can backpropagate)."""

    x_nll: torch.Tensor
    x_kl: torch.Tensor
    g_nll: torch.Tensor
    g_kl: torch.Tensor
    sup: torch.Tensor
    pair: torch.Tensor
    vae: torch.Tensor
    dsc: torch.Tensor
    adversarial: torch.Tensor


class GlueModule:
    """The networks plus the guidance graph's constants: posteriors and the loss."""

    def __init__(
        self, nets: GlueNetworks, graph: GuidanceGraph, feature_nodes: dict[str, np.ndarray], device: torch.device
    ) -> None:
        self.nets = nets
        self.device = device
        self.n_nodes = graph.n_nodes
        self.names = list(nets.domains)
        self.propagation = graph.propagation_matrix(device)
        self.feature_nodes = {k: torch.from_numpy(f).to(device) for k, f in feature_nodes.items()}

    def zero(self) -> torch.Tensor:
        return torch.zeros((), device=self.device)

    def features(self, sample: bool) -> FeaturePosterior:
        """Graph encoder pass; ``sample`` draws v (training), else v is the posterior mean."""
        mean, std = self.nets.graph_encoder(self.propagation)
        v = mean + std * torch.randn_like(std) if sample else mean
        return FeaturePosterior(mean=mean, std=std, v=v)

    def graph_terms(self, features: FeaturePosterior, edges: EdgeBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(graph NLL of an edge batch, KL of v per node)."""
        src, dst, sign, negatives = (torch.from_numpy(a).to(self.device) for a in edges)
        g_nll = graph_nll(features.v, src, dst, negatives, sign)
        return g_nll, kl_standard_normal(features.mean, features.std).mean() / self.n_nodes

    @staticmethod
    def graph_elbo(g_nll: torch.Tensor, g_kl: torch.Tensor, weights: LossWeights) -> torch.Tensor:
        """The graph part of the objective (before λ_graph · K); the warm-up minimises it alone."""
        return g_nll + weights.kl * g_kl

    def loss(
        self,
        weights: LossWeights,
        batches: dict[str, CellBatch],
        features: FeaturePosterior,
        edges: EdgeBatch | None = None,
        pair_inputs: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] | None = None,
        sample: bool = True,
        adversary: Adversary | None = None,
    ) -> Loss:
        """The objective on cell batches of some domains (all of them in training, one chunk
        of held-out cells in validation), an optional edge batch and paired nuclei.

        ``sample`` False uses posterior means (validation draws no random numbers). Random
        draws happen in a fixed order (cells, then ``adversary``'s, then pairs) so that a
        seed gives the same fit as ever.
        """
        nets = self.nets
        x_nll = x_kl = self.zero()
        means, sup_means, sup_labels = [], [], []
        for k, b in batches.items():
            u_mean, u_std = nets.cell_encoders[k](b.x)
            u = u_mean + u_std * torch.randn_like(u_std) if sample else u_mean
            log_mu, log_theta = nets.decoders[k](u, features.v[self.feature_nodes[k]], b.batch, b.log_library)
            x_nll = x_nll + nb_nll(log_mu, log_theta, b.flat, b.values, b.log_factorial)
            x_kl = x_kl + kl_standard_normal(u_mean, u_std).mean() / len(self.feature_nodes[k])
            means.append(u_mean)
            if nets.classifier is not None:
                sup_means.append(u_mean)
                sup_labels.append(b.labels)
        g_nll, g_kl = self.graph_terms(features, edges) if edges is not None else (self.zero(), self.zero())
        dsc, adversarial = adversary(means, batches) if adversary is not None else (self.zero(), self.zero())
        sup = self.zero()
        if sup_labels:
            # mean over the labelled cells, written without a data-dependent branch or mask
            # (either would wait for the GPU on every step); 0 when none is labelled
            labels = torch.cat(sup_labels)
            known = labels >= 0
            per_cell = F.cross_entropy(nets.classifier(torch.cat(sup_means)), labels.clamp(min=0), reduction="none")
            sup = (per_cell * known).sum() / known.sum().clamp(min=1)
        pair = self.zero()
        for (a, b), (xa, xb) in (pair_inputs or {}).items():
            pair = pair + pairing_loss(nets.cell_encoders[a](xa)[0], nets.cell_encoders[b](xb)[0])
        vae = (
            weights.data * (x_nll + weights.kl * x_kl)
            + weights.graph * len(self.names) * self.graph_elbo(g_nll, g_kl, weights)
            + weights.sup * sup
            + weights.pair * pair
        )
        return Loss(
            x_nll=x_nll,
            x_kl=x_kl,
            g_nll=g_nll,
            g_kl=g_kl,
            sup=sup,
            pair=pair,
            vae=vae,
            dsc=dsc,
            adversarial=adversarial,
        )


@torch.no_grad()
def encode_cells(
    encoder: CellEncoder, domain: DomainData, device: torch.device, latent: int, chunk: int = 4096
) -> np.ndarray:
    """Posterior means u of every cell of ``domain`` (eval mode: no dropout, running BatchNorm)."""
    encoder.eval()
    out = [
        encoder(cell_inputs(domain, np.arange(start, min(start + chunk, domain.n_cells)), device))[0].cpu().numpy()
        for start in range(0, domain.n_cells, chunk)
    ]
    return np.concatenate(out) if out else np.zeros((0, latent), np.float32)
