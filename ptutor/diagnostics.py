"""What a trained method learned, measured: the spectrum of LoRA's updates and how they relate to W.

Hu et al. (2021, Section 7) ask two questions of a trained LoRA update dW = (alpha/r) B A:
how much of its rank r it uses (its singular values), and whether it amplifies directions
that W already has or directions W barely uses (the "amplification factor").
"""
from __future__ import annotations

import torch


def delta_spectra(model, adapter: int = 0) -> dict[str, torch.Tensor]:
    """Singular values (descending) of each LoRA layer's dW, keyed by layer name."""
    return {name: torch.linalg.svdvals(layer.delta_weight(adapter).detach().float().cpu())[: layer.r]
            for name, layer in model.lora_layers().items()}


def effective_rank(singular_values: torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) (Roy & Vetterli, 2007): r for a flat spectrum, 1 for one
    direction."""
    p = singular_values / singular_values.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def amplification(weight: torch.Tensor, delta: torch.Tensor, k: int | None = None) -> dict[str, float]:
    """How dW relates to W (Hu et al. 2021, Table 7), with U, V the top-k singular vectors of dW:
    `w_in_delta` = ||U^T W V||_F (how much of W lives in dW's directions), the same for k random
    directions (`w_in_random`), and the amplification factor ||dW||_F / ||U^T W V||_F."""
    weight, delta = weight.detach().float().cpu(), delta.detach().float().cpu()
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    k = k or int((s > s[0] * 1e-6).sum())
    projected = (u[:, :k].T @ weight @ vh[:k].T).norm()
    g = torch.Generator().manual_seed(0)
    qu, _ = torch.linalg.qr(torch.randn(weight.shape[0], k, generator=g))
    qv, _ = torch.linalg.qr(torch.randn(weight.shape[1], k, generator=g))
    return {"w_in_delta": float(projected), "w_in_random": float((qu.T @ weight @ qv).norm()),
            "delta_norm": float(delta.norm()), "amplification": float(delta.norm() / projected)}
