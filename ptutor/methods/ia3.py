"""(IA)³ {cite}`liu2022ia3`: learned vectors that rescale the keys, the values and the feed-forward block's inner
activations, and nothing else.

A key or value projection's output is multiplied by a trained vector (`l * W x`); the feed-forward block's inner
activations are scaled by entering its output projection multiplied by one (`W (l * x)`). Every vector starts at
1, so training starts from the base model exactly, and a model trains one number per channel: for MiniLM,
(384 + 384 + 1536) per layer. Both products fold into the weight (`merge`), so a merged model runs at the base
model's speed. Which layers are keys, values and feed-forward outputs is each family's fact in `ptutor.arch`.

    model = inject(base, IA3Config())
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from ..arch import ia3_modules
from .base import InjectedLayer, Method, MethodConfig, find_modules, register, replace_modules


class IA3Linear(InjectedLayer):
    """A frozen nn.Linear or GPT-2 Conv1D with a trained scaling vector: of its output (`feedforward=False`:
    keys, values) or of its input (`feedforward=True`: the inner activations a feed-forward output layer reads)."""

    def __init__(self, base_layer: nn.Module, feedforward: bool):
        super().__init__()
        if isinstance(base_layer, Conv1D):
            in_features, out_features = base_layer.weight.shape  # Conv1D keeps W transposed: (in, out)
        elif isinstance(base_layer, nn.Linear):
            in_features, out_features = base_layer.in_features, base_layer.out_features
        else:
            raise TypeError(f"(IA)3 scales an nn.Linear or GPT-2 Conv1D layer, not {type(base_layer).__name__}")
        self.base_layer, self.feedforward, self.merged = base_layer, feedforward, False
        self.ia3_l = nn.Parameter(torch.ones(in_features if feedforward else out_features,
                                             device=base_layer.weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged and not self.enabled:
            raise RuntimeError("this (IA)3 layer is merged into its weight, so the base alone cannot run: "
                               "call unmerge() first")
        if not self.enabled or self.merged:
            return self.base_layer(x)
        if self.feedforward:
            return self.base_layer(x * self.ia3_l.to(x.dtype))
        out = self.base_layer(x)
        return out * self.ia3_l.to(out.dtype)

    def _scale_weight(self, factor: torch.Tensor) -> None:
        """Multiply the wrapped weight by `factor` along the axis the vector scales (input or output channels)."""
        weight = self.base_layer.weight
        out_axis = 1 if isinstance(self.base_layer, Conv1D) else 0
        axis = 1 - out_axis if self.feedforward else out_axis
        weight.mul_(factor.to(weight.dtype).unsqueeze(1 - axis))
        if not self.feedforward and self.base_layer.bias is not None:
            self.base_layer.bias.mul_(factor.to(self.base_layer.bias.dtype))

    @torch.no_grad()
    def merge(self) -> None:
        if self.merged:
            raise RuntimeError("this (IA)3 layer is already merged; merging twice would scale the weight twice")
        self._scale_weight(self.ia3_l)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if not self.merged:
            raise RuntimeError("this (IA)3 layer is not merged: there is nothing to take out")
        if bool((self.ia3_l == 0).any()):
            raise RuntimeError("a scaling entry is exactly 0, so the merged weight lost that channel: it cannot be "
                               "divided back out. Keep such a model unmerged.")
        self._scale_weight(1 / self.ia3_l)
        self.merged = False


@dataclass
class IA3Config(MethodConfig):
    method = "ia3"
    title = "(IA)³"
    default_lr = 3e-3  # Liu et al. 2022 train (IA)³ at 3e-3
    task_lrs = {"ner": 3e-2, "gen": 1e-1}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_sweep_steps.jsonl", "gen": "data/results/e2e_sweep_steps.jsonl"}
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
        kinds = (nn.Linear, Conv1D)
        self.feedforward_names = find_modules(base, config.feedforward_modules or list(ff), kinds=kinds)
        scaled = find_modules(base, config.target_modules or list(kv), kinds=kinds)
        self.target_names = [n for n in scaled if n not in self.feedforward_names] + self.feedforward_names
        for name in self.target_names:
            replace_modules(base, [name], lambda layer, ff=name in self.feedforward_names: IA3Linear(layer, ff))
        self.set_trainable()

    def ia3_layers(self) -> dict[str, IA3Linear]:
        return {name: self.base.get_submodule(name) for name in self.target_names}

    def merge(self) -> None:
        """Fold every vector into its weight: the model then runs at the base model's speed."""
        for layer in self.ia3_layers().values():
            layer.merge()

    def unmerge(self) -> None:
        for layer in self.ia3_layers().values():
            layer.unmerge()
