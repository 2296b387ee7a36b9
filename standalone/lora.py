"""LoRA in one file: chapter 5's `MiniLoRA` layer, and the few lines that put it around a model's linear layers.

LoRA (Hu et al., 2022) leaves a weight W0 frozen and trains a low-rank change beside it: h = W0 x + (alpha / r) B A x.
The ptutor book builds it in chapter 5 ("1. The layer"); this file holds that very class (checked letter for letter
against the chapter) and is checked against ptutor's `LoraConfig` on the same inputs: the same outputs and the
same trained parameters (tests/test_copyable.py). It needs torch only. Copy it into your project:

    from transformers import AutoModelForCausalLM
    from lora import add_lora, merge_lora

    model = AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M")  # any model with nn.Linear layers
    add_lora(model, ["q_proj", "v_proj"], r=8, alpha=16)                        # before model.to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    ...                                                                         # train as usual
    lora_only = {k: v for k, v in model.state_dict().items() if k.endswith((".A", ".B"))}  # what to save
    merge_lora(model)  # W0 + (alpha / r) B A written into each weight: a plain model again

Target names end a module's dotted name: "query", "value" (BERT), "q_proj", "v_proj" (Llama, Qwen2, GLM). A
classification model's head is new and random: train it too with `train_also=["classifier"]` (BERT) or
`["score"]` (Llama). GPT-2 stores its projections as `Conv1D`, not nn.Linear: this file does not wrap those.
"""
import re

import torch
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


def find_linears(model: nn.Module, targets) -> list[str]:
    r"""Names of the nn.Linear modules whose dotted name ends with a target ("q_proj") or fully matches it as a
    regular expression (r".*layer\.[0-3]\..*query"). No match is an error that lists what there is."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    hits = [n for n in names if any(n == t or n.endswith("." + t) or re.fullmatch(t, n) for t in targets)]
    if not hits:
        raise ValueError(f"{list(targets)} match no nn.Linear of {type(model).__name__}; its linear layers end in: "
                         f"{', '.join(sorted({n.rsplit('.', 1)[-1] for n in names}))}")
    return hits


def add_lora(model: nn.Module, targets, r: int = 8, alpha: float = 16, train_also=()) -> list[str]:
    """Freeze `model`, put a MiniLoRA around each targeted nn.Linear, and let the modules named in `train_also`
    (a new task head) train too. Returns the wrapped layers' names. The model changes in place."""
    model.requires_grad_(False)
    names = find_linears(model, targets)
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, MiniLoRA(getattr(owner, child), r, alpha))
    for name in train_also:
        model.get_submodule(name).requires_grad_(True)
    return names


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Write (alpha / r) B A into each wrapped weight and put the plain nn.Linear back, in place: the model then runs
    at the base model's speed and saves as an ordinary transformers model."""
    for name, module in [(n, m) for n, m in model.named_modules() if isinstance(m, MiniLoRA)]:
        module.layer.weight += module.scale * module.B @ module.A
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, module.layer)
    return model
