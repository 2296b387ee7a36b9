"""DoRA {cite}`liu2024dora`: LoRA on a weight split into a direction and a learned magnitude.

A weight W is a magnitude per output channel times a direction: `m * V / ||V||` (row norms). DoRA trains the
magnitude `m` directly and updates the direction with LoRA: the layer computes `m * (W + s B A) / ||W + s B A||`,
with `m` starting at `||W||`, so with `B = 0` it starts as the base layer. As the paper advises (its section 4.3),
the norm is held constant in the backward pass: gradients reach `m`, `A` and `B` through the scale and the
direction, not through the norm. Targets, rank and alpha are LoRA's; the change the layer merges into W
(`delta_weight`) and the adapter it copies (`copy_adapter`) include the magnitude.

    model = inject(base, DoraConfig(r=8))
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..arch import LINEAR_KINDS, weight_out_in
from .base import register
from .lora import Lora, LoraConfig, LoraLinear


class DoraLinear(LoraLinear):
    """LoRA's layer with a trained magnitude per output channel: `m * (W + s B A) x / ||W + s B A||` plus the bias."""

    def __init__(self, base_layer: nn.Module, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False,
                 num_adapters: int = 1):
        if num_adapters != 1:
            raise ValueError("DoRA keeps one magnitude vector per layer, so one adapter per base: num_adapters=1")
        if not isinstance(base_layer, LINEAR_KINDS):
            raise TypeError(f"DoRA needs the layer's weight to split it: an nn.Linear or GPT-2 Conv1D, not "
                            f"{type(base_layer).__name__} (a 4-bit layer would have to be dequantised first)")
        super().__init__(base_layer, r, alpha, dropout, rslora)
        with torch.no_grad():
            self.magnitude = nn.Parameter(weight_out_in(base_layer).norm(dim=1))  # ||W||: the start is the base layer

    def scale(self) -> torch.Tensor:
        """m / ||W + s B A|| per output channel, the norm detached (DoRA, section 4.3)."""
        direction = weight_out_in(self.base_layer) + super().delta_weight().detach()
        return self.magnitude / direction.norm(dim=1).detach()

    def forward_with_adapter(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        x = self.dropout(x)
        scale = self.scale().to(out.dtype)
        plain = F.linear(x, weight_out_in(self.base_layer).to(x.dtype))  # W x without the bias (dropped-out input)
        lora = self.scaling * self.lora_B(self.lora_A(x.to(self.lora_A.weight.dtype)))
        return out + ((scale - 1) * plain + scale * lora.to(out.dtype))

    def delta_weight(self, adapter: int = 0) -> torch.Tensor:
        """The change to W, magnitude included: `m * (W + s B A) / ||W + s B A|| - W` (the bias is not scaled)."""
        weight = weight_out_in(self.base_layer)
        return self.scale()[:, None] * (weight + super().delta_weight(adapter)) - weight

    @torch.no_grad()
    def copy_adapter(self, slot: int, other: "DoraLinear") -> None:
        """LoRA's A and B, and the magnitude: without it the direction would be copied at the wrong length."""
        super().copy_adapter(slot, other)
        self.magnitude.copy_(other.magnitude)


@dataclass
class DoraConfig(LoraConfig):
    method = "dora"
    title = "DoRA"
    default_lr = 1e-3
    task_lrs = {"ner": 3e-3, "gen": 1e-2}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}

    def __post_init__(self):
        super().__post_init__()
        if self.num_adapters != 1:
            raise ValueError("DoRA keeps one magnitude vector per layer: use num_adapters=1 (route several tasks "
                             "with LoRA's num_adapters instead)")


@register
class Dora(Lora):
    """LoRA whose layers are DoraLinear: owns their A, B and magnitude (and the head)."""

    config_class = DoraConfig
    layer_class = DoraLinear
