"""P-Tuning v2 and LoRA on one frozen base: a trained prefix in every layer *and* B A next to the targets.

The P-Tuning v2 material suggests the two compose: the prefix steers attention from the
front, LoRA changes the projections themselves. Here the LoRA layers go into the base
first, then the prefix is built on that base, so ownership (prefix table, A and B, the head)
follows the shared contract with no extra code. The two parts like very different learning
rates (the dev sweeps: about 1e-1 for a prefix, 3e-3 for LoRA), so the LoRA part trains at
`lr * lora_lr_scale`, one optimizer with two parameter groups.

    model = inject(base, PrefixLoraConfig(num_virtual_tokens=16, r=8))
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import register
from .lora import add_lora_layers
from .prefix import PrefixConfig, PrefixTuning


@dataclass
class PrefixLoraConfig(PrefixConfig):
    method = "pt2lora"
    title = "P-Tuning v2 + LoRA"
    default_lr = 1e-1
    task_lrs = {"ner": 3e-2}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl"}
    r: int = 8
    alpha: float = 16.0
    lora_dropout: float = 0.0
    target_modules: list[str] | None = None  # None: the family's LoRA default (ptutor.arch)
    rslora: bool = False
    lora_lr_scale: float = 0.03  # LoRA's rate / the prefix's rate: the ratio of the two methods' picks on E2E

    def __post_init__(self):
        super().__post_init__()
        if self.r < 1:
            raise ValueError(f"LoRA rank r must be at least 1, got {self.r}")
        if self.lora_lr_scale <= 0:
            raise ValueError(f"lora_lr_scale must be positive, got {self.lora_lr_scale}")


@register
class PrefixLora(PrefixTuning):
    """LoRA layers injected into the base, then a P-Tuning v2 prefix on top of it."""

    config_class = PrefixLoraConfig

    def __init__(self, base, config: PrefixLoraConfig, **kwargs):
        names = add_lora_layers(base, config.target_modules, config.r, config.alpha, config.lora_dropout, config.rslora)
        super().__init__(base, config, **kwargs)  # B = 0, so the prefix's initial activations are the base's
        self.target_names = names

    def param_groups(self, lr: float) -> list[dict]:
        """Two groups: the LoRA matrices at lr * lora_lr_scale, the prefix (and head) at lr."""
        lora, rest = [], []
        for name, p in self.named_parameters():
            in_lora_layer = name.startswith("base.") and self._in_injected_layer(name[len("base."):])
            if p.requires_grad:
                (lora if in_lora_layer else rest).append(p)
        return [{"params": rest, "lr": lr}, {"params": lora, "lr": lr * self.config.lora_lr_scale}]
