"""DoRA in one file: chapter 5's `MiniDoRA` (on its `MiniLoRA`), and the few lines that put it around a model's
linear layers.

DoRA (Liu et al., 2024) splits a frozen weight W into a magnitude per output channel and a direction, trains the
magnitude m directly and the direction with LoRA: W' = m * (W + (alpha / r) B A) / ||W + (alpha / r) B A|| (row norms,
held constant in the backward pass as the paper advises). The ptutor book builds it in chapter 5 (next to Adapters,
BitFit and (IA)³); this file holds those very classes (checked letter for letter against the chapter) and is
checked against ptutor's `DoraConfig` on the same inputs: the same outputs and the same trained parameters
(tests/test_copyable.py). It needs torch only. Copy it into your project:

    from dora import add_dora
    add_dora(model, ["q_proj", "v_proj"], r=8, alpha=16)   # a transformers model; before model.to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

Target names end a module's dotted name: "query", "value" (BERT), "q_proj", "v_proj" (Llama, Qwen2, GLM). Train a
new classification head too with `train_also=["classifier"]` (BERT) or `["score"]` (Llama). nn.Linear layers only
(GPT-2's Conv1D projections are not wrapped).
"""
import re

import torch
import torch.nn.functional as F
from torch import nn


class MiniLoRA(nn.Module):
    """W0 x + (alpha / r) B A x around a frozen nn.Linear: the whole idea, nothing else."""

    def __init__(self, layer: nn.Linear, r: int = 8, alpha: float = 16):
        super().__init__()
        self.layer, self.scale = layer.requires_grad_(False), alpha / r
        self.A = nn.Parameter(torch.randn(r, layer.in_features) / layer.in_features ** 0.5)
        self.B = nn.Parameter(torch.zeros(layer.out_features, r))  # B = 0: it starts as the frozen layer

    def forward(self, x):
        return self.layer(x) + self.scale * (x @ self.A.T) @ self.B.T


class MiniDoRA(MiniLoRA):
    """DoRA: LoRA's update on the direction of W, a trained magnitude m per output channel."""

    def __init__(self, layer: nn.Linear, r: int = 8, alpha: float = 16):
        super().__init__(layer, r, alpha)
        self.m = nn.Parameter(layer.weight.norm(dim=1).detach().clone())  # m = ||W||: it starts as the layer

    def forward(self, x):
        v = self.layer.weight + self.scale * self.B @ self.A
        return F.linear(x, self.m[:, None] * v / v.norm(dim=1, keepdim=True).detach(), self.layer.bias)


def find_linears(model: nn.Module, targets) -> list[str]:
    """Names of the nn.Linear modules whose dotted name ends with a target ("q_proj") or fully matches it as a
    regular expression. No match is an error that lists what there is."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    hits = [n for n in names if any(n == t or n.endswith("." + t) or re.fullmatch(t, n) for t in targets)]
    if not hits:
        raise ValueError(f"{list(targets)} match no nn.Linear of {type(model).__name__}; its linear layers end in: "
                         f"{', '.join(sorted({n.rsplit('.', 1)[-1] for n in names}))}")
    return hits


def add_dora(model: nn.Module, targets, r: int = 8, alpha: float = 16, train_also=()) -> list[str]:
    """Freeze `model`, put a MiniDoRA around each targeted nn.Linear, and let the modules named in `train_also`
    (a new task head) train too. Returns the wrapped layers' names. The model changes in place."""
    model.requires_grad_(False)
    names = find_linears(model, targets)
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, MiniDoRA(getattr(owner, child), r, alpha))
    for name in train_also:
        model.get_submodule(name).requires_grad_(True)
    return names
