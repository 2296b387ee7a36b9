"""LoRA (Hu et al., 2021): a trained low-rank change B A next to chosen frozen weight matrices.

Each targeted linear layer W (out x in) becomes W x + (alpha / r) B A x, with A (r x in)
and B (out x r). B starts at zero, so training starts from the base model exactly; only
A and B train. After training, B A can be merged into W (no extra latency) and taken out
again. GPT-2 stores its projections as `Conv1D` with the weight transposed (in x out);
the layer handles both.

Several adapters on one frozen base (`num_adapters` = k > 1, e.g. one per task): A stacks the
k adapters' rows (k*r x in) and B their columns (out x k*r). A batch's `adapter_ids` (one
integer per row) keeps, for each row, only its adapter's r entries of A x before B, so one
forward serves rows of different tasks, each exactly as its own adapter alone would.

    model = inject(base, LoraConfig(r=8, alpha=16))        # default targets: query/value
    model = inject(base, LoraConfig(target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from ..arch import LINEAR_KINDS, default_target_modules, linear_features
from ..quant import NF4Linear
from .base import MergeableLayer, Method, MethodConfig, find_modules, register, replace_modules


class LoraLinear(MergeableLayer):
    """`base_layer(x) + scaling * B(A(dropout(x)))` around a frozen nn.Linear or GPT-2 Conv1D."""

    def __init__(self, base_layer: nn.Module, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False,
                 num_adapters: int = 1):
        super().__init__()
        if not isinstance(base_layer, (*LINEAR_KINDS, NF4Linear)):
            raise TypeError(f"LoRA wraps nn.Linear, GPT-2 Conv1D or NF4Linear layers, not {type(base_layer).__name__}")
        in_features, out_features = linear_features(base_layer)
        if not 0 < r <= min(in_features, out_features):
            raise ValueError(f"LoRA rank r={r} must be between 1 and min(in, out) = {min(in_features, out_features)} "
                             f"for a {in_features} -> {out_features} layer")
        self.base_layer = base_layer
        self.r, self.num_adapters = r, num_adapters
        self.lora_A = nn.Linear(in_features, r * num_adapters, bias=False)  # adapter j: rows j*r .. j*r+r-1
        self.lora_B = nn.Linear(r * num_adapters, out_features, bias=False)  # adapter j: the same columns
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))  # as nn.Linear and peft
        nn.init.zeros_(self.lora_B.weight)  # B = 0: the wrapped model starts as the base model
        self.scaling = alpha / (math.sqrt(r) if rslora else r)  # rsLoRA (Kalajdzievski 2023): alpha / sqrt(r)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.adapter_ids: torch.Tensor | None = None  # set by Lora.forward for one call: each row's adapter
        device = (base_layer.packed if isinstance(base_layer, NF4Linear) else base_layer.weight).device
        self.lora_A.to(device)
        self.lora_B.to(device)

    def forward_with_adapter(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        h = self.lora_A(self.dropout(x.to(self.lora_A.weight.dtype)))  # (..., k*r)
        if self.num_adapters > 1:
            h = h * self.row_mask(x.shape[0]).view(x.shape[0], *[1] * (h.dim() - 2), -1)
        return out + (self.scaling * self.lora_B(h)).to(out.dtype)

    def row_mask(self, batch_size: int) -> torch.Tensor:
        """(batch, k*r): 1 on the r entries of each row's adapter, 0 elsewhere."""
        ids = self.adapter_ids
        if ids is None or ids.shape != (batch_size,):
            raise ValueError(f"this LoRA layer holds {self.num_adapters} adapters: pass adapter_ids, one integer per "
                             f"row (shape ({batch_size},)), to say which adapter each row uses"
                             + (f"; got shape {tuple(ids.shape)}" if ids is not None else ""))
        slot = torch.arange(self.num_adapters * self.r, device=ids.device) // self.r  # adapter of each A row
        return (slot[None, :] == ids[:, None]).to(self.lora_A.weight.dtype)

    def delta_weight(self, adapter: int = 0) -> torch.Tensor:
        """scaling * B A of one adapter, (out, in) as the paper writes W (merging lays it out like the weight)."""
        rows = slice(adapter * self.r, (adapter + 1) * self.r)
        return self.scaling * (self.lora_B.weight[:, rows] @ self.lora_A.weight[rows])

    def merge_refusal(self) -> str | None:
        if self.num_adapters > 1:
            return (f"this layer holds {self.num_adapters} adapters; merging one into the shared weight would change "
                    "the base for every other adapter. Keep them apart (route rows with adapter_ids), or build a "
                    "single-adapter model to merge.")
        if isinstance(self.base_layer, NF4Linear):
            return ("cannot merge into a 4-bit NF4 layer: its weight is computed from 4-bit codes, so B A would be "
                    "lost (or rounded away). Keep the adapter apart, or dequantise first: replace the layer by an "
                    "nn.Linear holding base_layer.weight, then merge.")
        return super().merge_refusal()

    @torch.no_grad()
    def copy_adapter(self, slot: int, other: "LoraLinear") -> None:
        """Copy the one adapter of `other` (a layer of the same shape and rank) into adapter `slot` of this layer."""
        rows = slice(slot * self.r, (slot + 1) * self.r)
        self.lora_A.weight[rows] = other.lora_A.weight
        self.lora_B.weight[:, rows] = other.lora_B.weight


def add_lora_layers(base: nn.Module, patterns, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False,
                    num_adapters: int = 1, layer_class: type[LoraLinear] | None = None) -> list[str]:
    """Wrap the linear layers of `base` that match `patterns` (None: the family's default) in `layer_class`
    (LoraLinear, or a variant of it such as DoRA's), in place; returns their names. Shared by LoRA, DoRA, QLoRA
    and P-Tuning v2 + LoRA."""
    layer_class = layer_class or LoraLinear
    names = find_modules(base, patterns or list(default_target_modules(base.config)),
                         kinds=(*LINEAR_KINDS, NF4Linear))
    replace_modules(base, names, lambda layer: layer_class(layer, r, alpha, dropout, rslora, num_adapters))
    return names


@dataclass
class LoraConfig(MethodConfig):
    method = "lora"
    title = "LoRA"
    default_lr = 1e-3
    task_lrs = {"ner": 3e-3, "gen": 3e-3}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}
    r: int = 8  # rank of B A
    alpha: float = 16.0  # the update is scaled by alpha / r (alpha / sqrt(r) with rslora)
    dropout: float = 0.0  # dropout on the LoRA branch's input
    target_modules: list[str] | None = None  # module-name patterns; None: the family's default (ptutor.arch)
    rslora: bool = False
    train_head: bool = True  # train the task head too (a new head is random)
    num_adapters: int = 1  # adapters on one base; a batch's `adapter_ids` (one per row) picks each row's

    def __post_init__(self):
        if self.r < 1:
            raise ValueError(f"LoRA rank r must be at least 1, got {self.r}")
        if self.num_adapters < 1:
            raise ValueError(f"num_adapters must be at least 1, got {self.num_adapters}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@register
class Lora(Method):
    """Wraps every targeted linear layer of the base in a LoraLinear; owns their A and B (and the head)."""

    config_class = LoraConfig
    layer_class: ClassVar[type[LoraLinear]] = LoraLinear  # the layer put around each target (a variant's own, e.g. DoRA's)

    def __init__(self, base, config: LoraConfig, *, tokenizer=None):
        super().__init__(base, config)
        self.target_names = add_lora_layers(base, config.target_modules, config.r, config.alpha, config.dropout,
                                            config.rslora, config.num_adapters, self.layer_class)
        self.set_trainable()

    def lora_layers(self) -> dict[str, LoraLinear]:
        return {name: self.base.get_submodule(name) for name in self.target_names}

    @contextmanager
    def routed(self, adapter_ids):
        """Inside this block every LoRA layer sends row i through adapter adapter_ids[i]."""
        ids = None if adapter_ids is None else torch.as_tensor(adapter_ids, device=self.device).long()
        k = self.config.num_adapters
        if ids is not None and bool(((ids < 0) | (ids >= k)).any()):
            raise ValueError(f"adapter_ids must be in 0..{k - 1} (num_adapters={k}); got {ids.tolist()}")
        if ids is not None and k == 1:
            raise ValueError("adapter_ids given, but this model holds one adapter: build it with "
                             "LoraConfig(num_adapters=k) to route rows")
        layers = self.lora_layers().values()
        for layer in layers:
            layer.adapter_ids = ids
        try:
            yield self
        finally:
            for layer in layers:
                layer.adapter_ids = None

    def forward(self, adapter_ids=None, **batch):
        with self.routed(adapter_ids):
            return self.base(**batch)

    def generate(self, *args, adapter_ids=None, **kwargs):
        with self.routed(adapter_ids):
            return self.base.generate(*args, **kwargs)

    def load_adapter(self, slot: int, other: "Lora") -> None:
        """Copy the single adapter of `other` (a trained one-adapter model of the same method, on the same base and
        targets) into adapter `slot` of this model, so separately trained task adapters can share one base."""
        if type(other) is not type(self) or other.config.num_adapters != 1 or (
                other.config.r, sorted(other.target_names)) != (self.config.r, sorted(self.target_names)):
            raise ValueError(f"load_adapter needs a one-adapter {type(self).__name__} with r={self.config.r} on the same "
                             f"layers ({len(self.target_names)} targets); got a {type(other).__name__} with "
                             f"r={other.config.r}, {other.config.num_adapters} adapters, {len(other.target_names)} "
                             "targets")
        if not 0 <= slot < self.config.num_adapters:
            raise ValueError(f"slot must be in 0..{self.config.num_adapters - 1}, got {slot}")
        theirs = other.lora_layers()
        for name, layer in self.lora_layers().items():
            layer.copy_adapter(slot, theirs[name])

    def unload(self) -> nn.Module:
        """Put the original layers back (merged weights stay merged) and return the base model."""
        replace_modules(self.base, self.target_names, lambda layer: layer.base_layer)
        return self.base
