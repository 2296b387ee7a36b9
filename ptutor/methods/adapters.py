"""Bottleneck adapters {cite}`houlsby2019adapters`: a small trained MLP after chosen frozen output projections.

Each adapter maps the projection's output h (width D) to h + W_up GELU(W_down h + b_down) + b_up,
with W_down (bottleneck x D) and W_up (D x bottleneck). W_up and b_up start at zero, so training
starts from the base model exactly. Houlsby placement puts one adapter after the attention output
projection and one after the feed-forward output projection of every layer; Pfeiffer placement
(Pfeiffer et al., 2021) keeps only the feed-forward one, half as many. Unlike LoRA, an adapter sits
in series with the layer, so it cannot be merged into the weights: it costs a little at inference.
Each adapter has 2 D bottleneck + D + bottleneck parameters.

    model = inject(base, AdapterConfig(bottleneck=64))                        # Houlsby: 2 per layer
    model = inject(base, AdapterConfig(bottleneck=64, placement="pfeiffer"))  # 1 per layer
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from ..arch import ADAPTER_PLACEMENTS, LINEAR_KINDS, adapter_modules, linear_features
from .base import InjectedLayer, Method, MethodConfig, find_modules, register, replace_modules


class AdapterLayer(InjectedLayer):
    """`h + up(GELU(down(h)))` with `h = base_layer(x)`, around a frozen nn.Linear or GPT-2 Conv1D."""

    def __init__(self, base_layer: nn.Module, bottleneck: int):
        super().__init__()
        if not isinstance(base_layer, LINEAR_KINDS):
            raise TypeError(f"an adapter follows an nn.Linear or GPT-2 Conv1D layer, not {type(base_layer).__name__}")
        width = linear_features(base_layer)[1]
        self.base_layer = base_layer
        self.down = nn.Linear(width, bottleneck)
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, width)
        nn.init.zeros_(self.up.weight)  # up = 0: the wrapped model starts as the base model
        nn.init.zeros_(self.up.bias)
        self.down.to(base_layer.weight.device)
        self.up.to(base_layer.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base_layer(x)
        if not self.enabled:
            return h
        return h + self.up(self.act(self.down(h.to(self.down.weight.dtype)))).to(h.dtype)


@dataclass
class AdapterConfig(MethodConfig):
    method = "adapter"
    title = "Adapters"
    default_lr = 1e-3
    task_lrs = {"ner": 3e-3, "gen": 3e-3}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}
    bottleneck: int = 64  # width of each adapter's middle layer (the "reduction factor" is D / bottleneck)
    placement: str = "houlsby"  # "houlsby": after attention and feed-forward; "pfeiffer": after feed-forward only
    target_modules: list[str] | None = None  # module-name patterns; None: the family's output projections (ptutor.arch)
    train_head: bool = True  # train the task head too (a new head is random)

    def __post_init__(self):
        if self.bottleneck < 1:
            raise ValueError(f"adapter bottleneck must be at least 1, got {self.bottleneck}")
        if self.placement not in ADAPTER_PLACEMENTS:
            raise ValueError(f"unknown adapter placement {self.placement!r}; choose one of "
                             f"{', '.join(ADAPTER_PLACEMENTS)}")


@register
class Adapters(Method):
    """Wraps every targeted output projection of the base in an AdapterLayer; owns the adapters (and the head)."""

    config_class = AdapterConfig

    def __init__(self, base, config: AdapterConfig, *, tokenizer=None):
        super().__init__(base, config)
        patterns = config.target_modules or list(adapter_modules(base.config, config.placement))
        self.target_names = find_modules(base, patterns, kinds=LINEAR_KINDS)
        replace_modules(base, self.target_names, lambda layer: AdapterLayer(layer, config.bottleneck))
        self.set_trainable()

    def adapter_layers(self) -> dict[str, AdapterLayer]:
        return {name: self.base.get_submodule(name) for name in self.target_names}
