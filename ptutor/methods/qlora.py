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

from torch import nn
from transformers.pytorch_utils import Conv1D

from ..quant import NF4Linear
from .base import find_modules, register, replace_modules
from .lora import Lora, LoraConfig

BLOCK_LINEARS = r".*\.(layer|layers|h|blocks)\.\d+\..*"  # the linear layers inside the transformer blocks


@dataclass
class QLoraConfig(LoraConfig):
    method = "qlora"
    title = "QLoRA"
    default_lr = 1e-3
    task_lrs = {}  # no sweep of its own yet: the runner uses default_lr unless --lr is given
    lr_source = ""
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

    def __init__(self, base, config: QLoraConfig):
        names = find_modules(base, config.quantize_modules or [BLOCK_LINEARS], kinds=(nn.Linear, Conv1D))
        quantize(base, names, config)
        super().__init__(base, config)
        self.quantized_names = names

    def reference_base(self, pristine: nn.Module) -> nn.Module:
        """What disable_adapter() runs, built from an untouched base: the same layers in NF4."""
        return quantize(copy.deepcopy(pristine), self.quantized_names, self.config)
