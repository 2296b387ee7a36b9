"""What a trained method learned, measured, one diagnostic per family.

- LoRA: Hu et al. (2021, Section 7) ask of a trained update dW = (alpha/r) B A how much of its rank r
  it uses (its singular values), and whether it amplifies directions that W already has or directions
  W barely uses (the "amplification factor").
- Prefixes: how much attention the real tokens pay to the virtual ones, layer by layer.
- Any method: what it costs the base model elsewhere (forgetting), as perplexity on general text with
  the method on and off. (Soft prompts' nearest vocabulary tokens: `SoftPromptMethod.nearest_tokens`.)
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


def prefix_attention_mass(model, batch: dict) -> dict:
    """Per layer, the share of attention that real tokens pay to the prefix's virtual tokens (mean over heads
    and real query tokens), and `uniform`: the share a uniform attention over prefix + real tokens would give.

    Attention weights need the eager attention code (fused kernels never form them), so the base is switched
    to it for this one forward and switched back."""
    p, base = model.config.num_virtual_tokens, model.base
    before = base.config._attn_implementation
    base.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(**batch, output_attentions=True)
    finally:
        base.set_attn_implementation(before)
    real = batch["attention_mask"].bool()  # (batch, tokens): queries that are real tokens
    mass = [float(a[..., :p].sum(-1).mean(1)[real].mean()) for a in out.attentions]  # a: (batch, heads, q, P + k)
    lengths = batch["attention_mask"].sum(-1).float()
    return {"mass": mass, "uniform": float((p / (p + lengths)).mean())}


def perplexity(model, tokenizer, texts: list[str]) -> float:
    """exp(mean next-token loss) of a causal LM (or a method wrapping one) over `texts`, one text at a time
    (no padding to get wrong); the tokens of all texts weigh equally."""
    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")["input_ids"].to(next(model.parameters()).device)
            if ids.shape[1] < 2:
                raise ValueError(f"text {text!r} has fewer than 2 tokens: nothing to predict")
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
            total, count = total + float(loss) * (ids.shape[1] - 1), count + ids.shape[1] - 1
    return float(torch.exp(torch.tensor(total / count)))
