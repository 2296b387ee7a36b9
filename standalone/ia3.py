r"""(IA)³ in one file: chapter 5's `MiniIA3` layer, and the few lines that put it around a model's linear layers.

(IA)³ (Liu et al., 2022) trains one vector per scaled layer and nothing else: it rescales the keys and the values
(the output of their projections) and the feed-forward block's inner activations (the input of its output
projection). Every vector starts at 1, so training starts from the base model exactly. The ptutor book builds it in
chapter 5 (next to Adapters, BitFit and DoRA); this file holds that very class (checked letter for letter against
the chapter) and is checked against ptutor's `IA3Config` on the same inputs: the same outputs and the same trained
parameters (tests/test_copyable.py). It needs torch only. Copy it into your project:

    from ia3 import add_ia3
    add_ia3(model, ["k_proj", "v_proj"], feedforward=["down_proj"])                      # Llama, Qwen2, GLM
    add_ia3(model, ["key", "value"], feedforward=[r"(.*\.)?layer\.\d+\.output\.dense"],  # BERT: the feed-forward
            train_also=["classifier"])                                                   # output, not attention's
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)

nn.Linear layers only (GPT-2's Conv1D projections are not wrapped).
"""
import re

import torch
from torch import nn


class MiniIA3(nn.Module):
    """(IA)³ on one frozen layer: a trained vector scales its output (keys, values) or, in the feed-forward
    block's output layer, its input (the inner activations)."""

    def __init__(self, layer: nn.Linear, feedforward: bool = False):
        super().__init__()
        self.layer, self.feedforward = layer.requires_grad_(False), feedforward
        self.l = nn.Parameter(torch.ones(layer.in_features if feedforward else layer.out_features))

    def forward(self, x):
        return self.layer(x * self.l) if self.feedforward else self.layer(x) * self.l


def find_linears(model: nn.Module, targets) -> list[str]:
    """Names of the nn.Linear modules whose dotted name ends with a target ("k_proj") or fully matches it as a
    regular expression. No match is an error that lists what there is."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    hits = [n for n in names if any(n == t or n.endswith("." + t) or re.fullmatch(t, n) for t in targets)]
    if not hits:
        raise ValueError(f"{list(targets)} match no nn.Linear of {type(model).__name__}; its linear layers end in: "
                         f"{', '.join(sorted({n.rsplit('.', 1)[-1] for n in names}))}")
    return hits


def add_ia3(model: nn.Module, targets, feedforward=(), train_also=()) -> list[str]:
    """Freeze `model`; scale the output of each `targets` layer (keys, values) and the input of each `feedforward`
    layer (the feed-forward output projection) with a MiniIA3; let the modules in `train_also` (a new task head)
    train too. Returns the wrapped layers' names. The model changes in place."""
    model.requires_grad_(False)
    inputs = find_linears(model, feedforward) if feedforward else []
    outputs = [n for n in find_linears(model, targets) if n not in inputs]
    for name in outputs + inputs:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, MiniIA3(getattr(owner, child), feedforward=name in inputs))
    for name in train_also:
        model.get_submodule(name).requires_grad_(True)
    return outputs + inputs
