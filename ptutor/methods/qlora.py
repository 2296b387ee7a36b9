"""QLoRA (Dettmers et al., 2023): LoRA adapters on a base whose linear layers are stored in 4 bits.

Every frozen linear layer inside the transformer blocks becomes a `ptutor.quant.NF4Linear`
(NF4 codes per block of 64 weights, double-quantised scales: about 4.13 bits a weight, turned
back into floats in each forward). LoRA then wraps the target layers exactly as in `lora.py`;
A and B train in full precision, and gradients pass through the dequantised weights to them.
The 4-bit codes never change. `disable_adapter()` runs the 4-bit base (the one this model holds).

    model = inject(base, QLoraConfig(r=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from ..arch import LINEAR_KINDS, block_linear_patterns
from ..quant import NF4Linear
from .base import find_modules, register, replace_modules
from .lora import Lora, LoraConfig


@dataclass
class QLoraConfig(LoraConfig):
    method = "qlora"
    title = "QLoRA"
    default_lr = 1e-3
    task_lrs = {"ner": 3e-3, "gen": 1e-2}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}
    blocksize: int = 64  # weights per NF4 block (one absmax scale each)
    double_quant: bool = True  # store the scales in 8 bits per block of 256 (QLoRA's double quantisation)
    quantize_modules: list[str] | None = None  # layers stored in NF4; None: every nn.Linear in the blocks


def quantize(base: nn.Module, names: list[str], config: QLoraConfig) -> nn.Module:
    """Store the named linear layers of `base` in NF4, in place; returns `base`."""
    replace_modules(base, names, lambda layer: NF4Linear(layer, config.blocksize, config.double_quant))
    return base


@register
class QLora(Lora):
    """Quantise the blocks' linear layers to NF4, then add LoRA to the targets (they wrap NF4 layers)."""

    config_class = QLoraConfig

    def __init__(self, base, config: QLoraConfig, *, tokenizer=None):
        names = find_modules(base, config.quantize_modules or list(block_linear_patterns(base.config)),
                             kinds=LINEAR_KINDS)
        quantize(base, names, config)
        super().__init__(base, config)
        self.quantized_names = names

    def reference_base(self, pristine: nn.Module) -> nn.Module:
        """What disable_adapter() runs, built from an untouched base: the same layers in NF4."""
        return quantize(copy.deepcopy(pristine), self.quantized_names, self.config)

    @torch.no_grad()
    def merged_copy(self, requantize: bool = False) -> nn.Module:
        """A copy of the base with the adapters merged (this model is left as it is). Each target's 4-bit weight is
        dequantised and B A added; the sum is kept in float (`requantize=False`: the same outputs as the unmerged
        model, but those layers take 8x the memory in fp32) or stored in NF4 again (`requantize=True`: 4 bits,
        but the sum is rounded to 16 levels per block, and with it much of a small update)."""
        if self.config.num_adapters > 1:
            raise ValueError("merged_copy merges one adapter; this model holds several (num_adapters > 1)")
        model = copy.deepcopy(self.base)
        for name in self.target_names:
            lora = model.get_submodule(name)
            nf4 = lora.base_layer
            dense = nn.Linear(nf4.in_features, nf4.out_features, bias=nf4.bias is not None, device=nf4.packed.device)
            dense.weight.copy_(nf4.weight + lora.delta_weight().to(nf4.compute_dtype))
            if nf4.bias is not None:
                dense.bias.copy_(nf4.bias)
            dense.requires_grad_(False)
            new = NF4Linear(dense, self.config.blocksize, self.config.double_quant) if requantize else dense
            replace_modules(model, [name], lambda _, new=new: new)
        return model
