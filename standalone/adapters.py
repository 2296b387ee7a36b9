r"""Bottleneck adapters in one file: chapter 5's `MiniAdapter`, and the few lines that put it after a model's
output projections.

An adapter (Houlsby et al., 2019) is a small MLP after a frozen projection: h + up(GELU(down(h))), with `up`
starting at zero so that training starts from the base model exactly. Houlsby placement puts one after each
layer's attention output projection and one after its feed-forward output projection. The ptutor book builds it in
chapter 5 (next to BitFit, (IA)³ and DoRA); this file holds that very class (checked letter for letter against the
chapter) and is checked against ptutor's `AdapterConfig` on the same inputs: the same outputs and the same trained
parameters (tests/test_copyable.py). It needs torch only. Copy it into your project:

    from adapters import add_adapters
    add_adapters(model, ["o_proj", "down_proj"], bottleneck=64)                           # Llama, Qwen2, GLM
    add_adapters(model, ["attention.output.dense", r"(.*\.)?layer\.\d+\.output\.dense"],  # BERT
                 train_also=["classifier"])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

An adapter sits in series with its layer, so unlike LoRA it cannot be merged into the weights. nn.Linear layers
only (GPT-2's Conv1D projections are not wrapped).
"""
import re

import torch.nn.functional as F
from torch import nn


class MiniAdapter(nn.Module):
    """Houlsby's bottleneck after a frozen projection: h + up(GELU(down(h))), with up starting at zero."""

    def __init__(self, layer: nn.Linear, bottleneck: int = 64):
        super().__init__()
        self.layer, width = layer.requires_grad_(False), layer.out_features
        self.down, self.up = nn.Linear(width, bottleneck), nn.Linear(bottleneck, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        h = self.layer(x)
        return h + self.up(F.gelu(self.down(h)))


def find_linears(model: nn.Module, targets) -> list[str]:
    """Names of the nn.Linear modules whose dotted name ends with a target ("o_proj") or fully matches it as a
    regular expression. No match is an error that lists what there is."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    hits = [n for n in names if any(n == t or n.endswith("." + t) or re.fullmatch(t, n) for t in targets)]
    if not hits:
        raise ValueError(f"{list(targets)} match no nn.Linear of {type(model).__name__}; its linear layers end in: "
                         f"{', '.join(sorted({n.rsplit('.', 1)[-1] for n in names}))}")
    return hits


def add_adapters(model: nn.Module, targets, bottleneck: int = 64, train_also=()) -> list[str]:
    """Freeze `model`, put a MiniAdapter after each targeted nn.Linear, and let the modules named in `train_also`
    (a new task head) train too. Returns the wrapped layers' names. The model changes in place."""
    model.requires_grad_(False)
    names = find_linears(model, targets)
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, MiniAdapter(getattr(owner, child), bottleneck))
    for name in train_also:
        model.get_submodule(name).requires_grad_(True)
    return names
