"""(IA)³ {cite}`liu2022ia3`: learned vectors that rescale the keys, the values and the feed-forward block's inner
activations, and nothing else.

A key or value projection's output is multiplied by a trained vector (`l * W x`); the feed-forward block's inner
activations are scaled by entering its output projection multiplied by one (`W (l * x)`). Every vector starts at
1, so training starts from the base model exactly, and a model trains one number per channel: for MiniLM,
(384 + 384 + 1536) per layer. Both products fold into the weight (`merge()`; each layer's `delta_weight` says what
it adds), so a merged model runs at the base model's speed. Which layers are keys, values and feed-forward outputs
is each family's fact in `ptutor.arch`.

    model = inject(base, IA3Config())
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..arch import LINEAR_KINDS, ia3_modules, linear_features, weight_out_in
from .base import MergeableLayer, Method, MethodConfig, find_modules, register, replace_modules


class IA3Linear(MergeableLayer):
    """A frozen nn.Linear or GPT-2 Conv1D with a trained scaling vector: of its output (`feedforward=False`:
    keys, values) or of its input (`feedforward=True`: the inner activations a feed-forward output layer reads)."""

    def __init__(self, base_layer: nn.Module, feedforward: bool):
        super().__init__()
        if not isinstance(base_layer, LINEAR_KINDS):
            raise TypeError(f"(IA)3 scales an nn.Linear or GPT-2 Conv1D layer, not {type(base_layer).__name__}")
        in_features, out_features = linear_features(base_layer)
        self.base_layer, self.feedforward = base_layer, feedforward
        self.ia3_l = nn.Parameter(torch.ones(in_features if feedforward else out_features,
                                             device=base_layer.weight.device))

    def forward_with_adapter(self, x: torch.Tensor) -> torch.Tensor:
        if self.feedforward:
            return self.base_layer(x * self.ia3_l.to(x.dtype))
        out = self.base_layer(x)
        return out * self.ia3_l.to(out.dtype)

    def delta_weight(self) -> torch.Tensor:
        """W scaled by the vector, minus W: along the output channels (rows), or the input channels (columns)."""
        weight, minus_one = weight_out_in(self.base_layer), self.ia3_l - 1
        return weight * (minus_one[None, :] if self.feedforward else minus_one[:, None])

    def delta_bias(self) -> torch.Tensor | None:
        """A scaled output scales the bias too; a scaled input leaves it."""
        bias = self.base_layer.bias
        return None if self.feedforward or bias is None else bias * (self.ia3_l - 1)


@dataclass
class IA3Config(MethodConfig):
    method = "ia3"
    title = "(IA)³"
    default_lr = 3e-3  # Liu et al. 2022 train (IA)³ at 3e-3
    task_lrs = {"ner": 3e-2, "gen": 1e-1}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}
    target_modules: list[str] | None = None  # key/value layers; None: the family's (ptutor.arch.ia3_modules)
    feedforward_modules: list[str] | None = None  # feed-forward output layers, scaled at their input; None: the family's
    train_head: bool = True  # train the task head too (a new head is random)


@register
class IA3(Method):
    """Wraps the key, value and feed-forward output layers in IA3Linear; owns their vectors (and the head)."""

    config_class = IA3Config

    def __init__(self, base, config: IA3Config, *, tokenizer=None):
        super().__init__(base, config)
        kv, ff = ia3_modules(base.config)
        self.feedforward_names = find_modules(base, config.feedforward_modules or list(ff), kinds=LINEAR_KINDS)
        scaled = find_modules(base, config.target_modules or list(kv), kinds=LINEAR_KINDS)
        self.target_names = [n for n in scaled if n not in self.feedforward_names] + self.feedforward_names
        for name in self.target_names:
            replace_modules(base, [name], lambda layer, ff=name in self.feedforward_names: IA3Linear(layer, ff))
        self.set_trainable()

    def ia3_layers(self) -> dict[str, IA3Linear]:
        return {name: self.base.get_submodule(name) for name in self.target_names}
