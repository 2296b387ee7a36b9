"""BitFit {cite}`benzaken2022bitfit`: train only the bias terms of the base (and the task head).

Every parameter named `bias` in the base trains (linear layers and LayerNorms, as in the paper);
every weight matrix stays frozen. A BERT-size model trains about 0.1 % of its parameters. Llama-family
models have no biases at all, so there BitFit would train nothing: it refuses, and
`add_biases=True` gives the chosen linear layers new zero biases (the model still starts as the
base exactly). The biases are trained in place, so no unchanged base is left to run
(`keeps_base = False`, like full fine-tuning): keep a copy of the base if you need one.

    model = inject(base, BitFitConfig())                 # BERT, GPT-2, Qwen2, GLM
    model = inject(base, BitFitConfig(add_biases=True))  # Llama: add zero biases first
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..arch import task_head, task_head_name
from .base import InjectedLayer, Method, MethodConfig, find_modules, register, replace_modules


class BiasLinear(InjectedLayer):
    """`base_layer(x) + bias` around a frozen nn.Linear that has no bias; the bias starts at zero."""

    def __init__(self, base_layer: nn.Linear):
        super().__init__()
        if not isinstance(base_layer, nn.Linear) or base_layer.bias is not None:
            raise TypeError(f"BiasLinear adds a bias to an nn.Linear without one, not to {base_layer}")
        self.base_layer = base_layer
        self.bias = nn.Parameter(torch.zeros(base_layer.out_features, device=base_layer.weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        return out + self.bias.to(out.dtype) if self.enabled else out


@dataclass
class BitFitConfig(MethodConfig):
    method = "bitfit"
    title = "BitFit"
    default_lr = 1e-3  # the paper's learning rates are around 1e-4 to 1e-3
    task_lrs = {"ner": 3e-3, "gen": 1e-2}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}
    add_biases: bool = False  # give bias-free linear layers (Llama) a zero bias to train
    target_modules: list[str] | None = None  # with add_biases: which linears; None: every bias-free one but the heads
    train_head: bool = True  # train the task head too (a new head is random)

    def __post_init__(self):
        if self.target_modules is not None and not self.add_biases:
            raise ValueError("target_modules says where add_biases=True adds biases; BitFit alone trains every "
                             "bias there is. Set add_biases=True, or drop target_modules.")


@register
class BitFit(Method):
    """Owns every `bias` parameter of the base (and the head when train_head); the weights stay frozen."""

    config_class = BitFitConfig
    keeps_base = False  # the biases change in place: there is no unchanged base to run

    def __init__(self, base, config: BitFitConfig, *, tokenizer=None):
        super().__init__(base, config)
        self.added = self._bias_free_linears(base, config.target_modules) if config.add_biases else []
        replace_modules(base, self.added, BiasLinear)
        if not self.bias_names():
            raise ValueError(
                f"BitFit trains bias terms, and {type(base).__name__} has none outside its task head: Llama-family "
                "linear layers and RMSNorms have no biases, so BitFit would train nothing. Use "
                "BitFitConfig(add_biases=True) to add zero-initialised biases to its linear layers (the model "
                "still starts as the base exactly).")
        self.set_trainable()

    @staticmethod
    def _bias_free_linears(base: nn.Module, patterns) -> list[str]:
        """The linear layers that add_biases gives a bias: matching `patterns` (None: all but the heads)."""
        heads = {id(task_head(base)), id(base.get_output_embeddings())}
        names = find_modules(base, patterns, kinds=(nn.Linear,)) if patterns else \
            [n for n, m in base.named_modules() if isinstance(m, nn.Linear) and id(m) not in heads]
        bias_free = [n for n in names if base.get_submodule(n).bias is None]
        if patterns and not bias_free:
            raise ValueError(f"add_biases: every layer that {patterns} matches already has a bias: nothing to add")
        return bias_free

    def owns(self, name: str) -> bool:
        head = task_head_name(self.base)
        if head and name.startswith(f"base.{head}."):
            return self.trains_head
        return name.endswith(".bias")

    def bias_names(self) -> list[str]:
        """The trained bias parameters, the head's left out."""
        head = task_head_name(self.base)
        return [n for n, _ in self.named_parameters()
                if n.endswith(".bias") and not (head and n.startswith(f"base.{head}."))]
