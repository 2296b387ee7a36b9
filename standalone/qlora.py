"""QLoRA in one file: chapter 6's NF4 `mini_quantize` / `mini_dequantize`, a frozen linear layer stored in them,
and chapter 5's `MiniLoRA` on top.

QLoRA (Dettmers et al., 2023) stores the frozen base in 4 bits with NormalFloat4 (NF4): 16 levels at quantiles of a
normal distribution, one absmax scale per block of 64 weights; LoRA's A and B train in full precision beside it, and
the weights are turned back into floats for each forward. The ptutor book builds NF4 in chapter 6 ("2. Block-wise
absmax, and double quantisation") and LoRA in chapter 5; this file holds those very functions and class (checked
letter for letter against the chapters) and is checked against ptutor's `QLoraConfig(double_quant=False)` on the
same inputs: the same 4-bit codes, the same outputs, the same trained parameters (tests/test_copyable.py). It needs
torch only. Copy it into your project:

    from qlora import add_qlora
    add_qlora(model, ["q_proj", "v_proj"], quantize=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                     "up_proj", "down_proj"], r=8, alpha=16)   # Llama, Qwen2, GLM
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

Left out, for a short file: double quantisation (the scales in 8 bits: 0.37 bits a weight less), the compute dtype
(here the model's own), and a backward pass that dequantises again instead of keeping the float weight for it (so
during a training step each layer's float weight is held until its backward: the memory saving is for storage and
inference; ptutor's `NF4Linear` keeps only the codes between the passes). The codes are packed two to a byte.
"""
import re

import torch
import torch.nn.functional as F
from torch import nn

NF4_OFFSET = 0.9677083  # QLoRA's outermost quantile: (1 - 1/(2*15) + 1 - 1/(2*16)) / 2


def nf4_levels() -> torch.Tensor:
    """The 16 NF4 values, ascending: 7 negative and 8 positive normal quantiles, and an exact 0, scaled to [-1, 1]."""
    normal = torch.distributions.Normal(0.0, 1.0)
    positive = normal.icdf(torch.linspace(NF4_OFFSET, 0.5, 9, dtype=torch.float64)[:-1])
    negative = -normal.icdf(torch.linspace(NF4_OFFSET, 0.5, 8, dtype=torch.float64)[:-1])
    levels = torch.cat([negative, torch.zeros(1, dtype=torch.float64), positive]).sort().values
    return (levels / levels.abs().max()).float()


def mini_quantize(w, levels, block=64):
    """Block-wise absmax 4-bit codes: each block divided by its largest magnitude, each weight the nearest level."""
    blocks = w.reshape(-1, block)
    absmax = blocks.abs().amax(dim=1, keepdim=True)
    codes = (blocks / absmax).unsqueeze(-1).sub(levels).abs().argmin(dim=-1)  # index of the nearest level
    return codes, absmax


def mini_dequantize(codes, absmax, levels, shape):
    return (levels[codes] * absmax).reshape(shape)


class NF4Linear(nn.Module):
    """A frozen nn.Linear stored as NF4 codes (two a byte) and one absmax per block; the weight is dequantised for
    each forward. Its size must be a multiple of the block (64 for every layer of common models)."""

    def __init__(self, layer: nn.Linear, block: int = 64):
        super().__init__()
        if layer.weight.numel() % block:
            raise ValueError(f"{layer} has {layer.weight.numel()} weights, not a multiple of the block ({block})")
        self.in_features, self.out_features, self.shape = layer.in_features, layer.out_features, layer.weight.shape
        self.register_buffer("levels", nf4_levels().to(layer.weight.device))
        codes, absmax = mini_quantize(layer.weight.detach().float(), self.levels, block)
        codes = codes.reshape(-1).to(torch.uint8)
        self.register_buffer("packed", codes[0::2] << 4 | codes[1::2])  # 4 bits a weight
        self.register_buffer("absmax", absmax)
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone(), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        codes = torch.stack([self.packed >> 4, self.packed & 15], dim=1).reshape(self.absmax.shape[0], -1).long()
        return mini_dequantize(codes, self.absmax, self.levels, self.shape)

    def forward(self, x):
        return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))


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
    """Names of the nn.Linear modules whose dotted name ends with a target ("q_proj") or fully matches it as a
    regular expression. No match is an error that lists what there is."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    hits = [n for n in names if any(n == t or n.endswith("." + t) or re.fullmatch(t, n) for t in targets)]
    if not hits:
        raise ValueError(f"{list(targets)} match no nn.Linear of {type(model).__name__}; its linear layers end in: "
                         f"{', '.join(sorted({n.rsplit('.', 1)[-1] for n in names}))}")
    return hits


def replace(model: nn.Module, name: str, make) -> None:
    parent, _, child = name.rpartition(".")
    owner = model.get_submodule(parent)
    setattr(owner, child, make(getattr(owner, child)))


def add_qlora(model: nn.Module, targets, quantize, r: int = 8, alpha: float = 16, train_also=()) -> list[str]:
    """Freeze `model`, store the `quantize` layers in NF4, put a MiniLoRA around each `targets` layer (quantised or
    not), and let the modules in `train_also` (a new task head) train too. Returns the LoRA layers' names."""
    model.requires_grad_(False)
    names = find_linears(model, targets)
    for name in find_linears(model, quantize):
        replace(model, name, NF4Linear)
    for name in names:
        replace(model, name, lambda layer: MiniLoRA(layer, r, alpha))
    for name in train_also:
        model.get_submodule(name).requires_grad_(True)
    return names
