"""4-bit NormalFloat (NF4) from scratch: QLoRA's data type (Dettmers et al., 2023), step by step.

1. `nf4_levels()`: 16 values from quantiles of N(0, 1), rescaled to [-1, 1], with an exact 0.
2. `quantize_nf4(w)`: per block of 64 weights, divide by the block's absmax and store the index
   of the nearest level (4 bits; two indices per byte).
3. Double quantisation: the fp32 absmax constants themselves are stored in 8 bits, per block
   of 256 constants, after subtracting their mean (QLoRA Section 3).
4. `dequantize_4bit(q)`: levels[index] * absmax, reshaped back; `dequantize_4bit_fast(q)` gives the same
   numbers from one lookup per byte (two codes at once), which is what `NF4Linear` runs.

`tests/test_quant.py` checks the levels, the codes and the dequantised weights against
bitsandbytes on the same tensor, and the storage cost against the paper's 4.127 bits.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .arch import LINEAR_KINDS, weight_out_in

NF4_OFFSET = 0.9677083  # QLoRA's choice: the outermost quantile, (1 - 1/(2*15) + 1 - 1/(2*16)) / 2


def nf4_levels(offset: float = NF4_OFFSET) -> torch.Tensor:
    """The 16 NF4 values, ascending: 7 negative and 8 positive normal quantiles, and 0, scaled to [-1, 1].

    An asymmetric split gives an exact zero (padding and zero weights stay zero) with all 16 codes used.
    """
    normal = torch.distributions.Normal(0.0, 1.0)
    positive = normal.icdf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])  # 8 values above 0
    negative = -normal.icdf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])  # 7 values below 0
    levels = torch.cat([negative, torch.zeros(1, dtype=torch.float64), positive]).sort().values
    return (levels / levels.abs().max()).float()


def int4_levels() -> torch.Tensor:
    """Symmetric integer 4-bit absmax quantisation: -7..7 over 7 (one of the 16 codes unused)."""
    return torch.arange(-7, 8, dtype=torch.float32) / 7


def fp4_levels() -> torch.Tensor:
    """A 4-bit float (1 sign, 2 exponent, 1 mantissa bit; bitsandbytes' FP4), scaled to [-1, 1]."""
    magnitudes = torch.tensor([0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0]) / 12.0
    return torch.cat([magnitudes, -magnitudes]).unique().sort().values


@dataclass
class Quantized4bit:
    """A tensor in 4 bits: packed level indices, per-block scales (plain or double-quantised)."""

    packed: torch.Tensor  # uint8, two 4-bit indices per byte (first index in the high nibble)
    shape: tuple[int, ...]
    levels: torch.Tensor  # the 16 values an index points at
    blocksize: int
    absmax: torch.Tensor | None = None  # fp32 per block, without double quantisation
    absmax_codes: torch.Tensor | None = None  # uint8 per block, with double quantisation
    absmax_scale: torch.Tensor | None = None  # fp32 per block of `blocksize2` constants
    absmax_mean: float = 0.0
    blocksize2: int = 256

    def storage_bits(self) -> int:
        """Bits this representation stores (indices + scales; the 16-value table is shared, not counted)."""
        bits = self.packed.numel() * 8
        if self.absmax is not None:
            bits += self.absmax.numel() * 32
        else:
            bits += self.absmax_codes.numel() * 8 + self.absmax_scale.numel() * 32 + 32  # + the mean
        return bits

    def bits_per_parameter(self) -> float:
        return self.storage_bits() / torch.Size(self.shape).numel()


def _blocks(x: torch.Tensor, blocksize: int) -> torch.Tensor:
    flat = x.reshape(-1).float()
    pad = (-flat.numel()) % blocksize
    return F.pad(flat, (0, pad)).view(-1, blocksize)


def quantize_absmax_8bit(values: torch.Tensor, blocksize: int = 256) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Double quantisation of the scales: subtract the mean, then symmetric 8-bit absmax per block.
    Returns (uint8 codes, fp32 scale per block, mean). (bitsandbytes uses an 8-bit float map here.)"""
    mean = values.float().mean().item()
    blocks = _blocks(values - mean, blocksize)
    scale = blocks.abs().amax(dim=1).clamp(min=1e-12)
    codes = torch.round(blocks / scale[:, None] * 127).clamp(-127, 127).to(torch.int16) + 128
    return codes.reshape(-1)[: values.numel()].to(torch.uint8), scale, mean


def dequantize_absmax_8bit(codes: torch.Tensor, scale: torch.Tensor, mean: float, blocksize: int = 256) -> torch.Tensor:
    """Undo `quantize_absmax_8bit`: codes back to floats, block by block, plus the mean taken out before."""
    per_code = scale.repeat_interleave(blocksize)[: codes.numel()]  # each code's block scale
    return (codes.float() - 128).mul_(per_code).div_(127).add_(mean)


def quantize_4bit(w: torch.Tensor, levels: torch.Tensor | None = None, blocksize: int = 64,
                  double_quant: bool = False, blocksize2: int = 256) -> Quantized4bit:
    """Block-wise absmax quantisation of `w` to 4-bit indices into `levels` (default NF4)."""
    levels = nf4_levels() if levels is None else levels.float()
    if levels.numel() > 16:
        raise ValueError(f"4 bits index at most 16 levels, got {levels.numel()}")
    if blocksize < 2 or blocksize % 2:
        raise ValueError(f"blocksize must be an even number >= 2, got {blocksize}")
    blocks = _blocks(w, blocksize)
    absmax = blocks.abs().amax(dim=1)
    normed = blocks / absmax.clamp(min=1e-12)[:, None]
    index = (normed[..., None] - levels).abs().argmin(dim=-1).reshape(-1).to(torch.uint8)  # nearest level
    if index.numel() % 2:
        index = torch.cat([index, index.new_zeros(1)])
    packed = (index[0::2] << 4) | index[1::2]
    q = Quantized4bit(packed, tuple(w.shape), levels, blocksize, blocksize2=blocksize2)
    if double_quant:
        q.absmax_codes, q.absmax_scale, q.absmax_mean = quantize_absmax_8bit(absmax, blocksize2)
    else:
        q.absmax = absmax
    return q


def unpack(q: Quantized4bit) -> torch.Tensor:
    """The level indices, one per weight (padding included)."""
    return torch.stack([q.packed >> 4, q.packed & 15], dim=1).reshape(-1).long()


def block_scales(q: Quantized4bit) -> torch.Tensor:
    """The fp32 absmax of every block: stored as is, or decoded from its 8-bit double quantisation."""
    if q.absmax is not None:
        return q.absmax
    return dequantize_absmax_8bit(q.absmax_codes, q.absmax_scale, q.absmax_mean, q.blocksize2)


def dequantize_4bit(q: Quantized4bit, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    absmax = block_scales(q)
    n = torch.Size(q.shape).numel()
    values = q.levels[unpack(q)][: absmax.numel() * q.blocksize].view(-1, q.blocksize) * absmax[:, None]
    return values.reshape(-1)[:n].view(q.shape).to(dtype)


BYTE_CODES = torch.stack([torch.arange(256) >> 4, torch.arange(256) & 15], dim=1).view(-1)  # b >> 4, b & 15 for each b


def byte_table(levels: torch.Tensor) -> torch.Tensor:
    """The two levels of each of the 256 byte values side by side, each pair read as one 8-byte number: one
    `index_select` of a byte then copies both of its weights (the first code is the high nibble)."""
    levels = F.pad(levels.float(), (0, 16 - levels.numel()))  # fewer than 16 levels: the unused codes read 0
    return levels.index_select(0, BYTE_CODES.to(levels.device)).view(torch.float64)


def dequantize_4bit_fast(q: Quantized4bit, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`dequantize_4bit` with one lookup per byte instead of unpacking each code: the same numbers, several times
    faster on a CPU (NF4Linear calls it twice a layer per training step, and once per generated token)."""
    absmax = block_scales(q)
    values = byte_table(q.levels).index_select(0, q.packed.int()).view(torch.float32)  # two weights a byte
    values = values[: absmax.numel() * q.blocksize].view(-1, q.blocksize).mul_(absmax[:, None])
    return values.view(-1)[: torch.Size(q.shape).numel()].view(q.shape).to(dtype)


def quantize_nf4(w: torch.Tensor, blocksize: int = 64, double_quant: bool = True) -> Quantized4bit:
    """QLoRA's storage: NF4 indices per block of 64, scales double-quantised (8 bits per block of 256)."""
    return quantize_4bit(w, nf4_levels(), blocksize, double_quant)


class DequantizedMatmul(torch.autograd.Function):
    """x W^T with W dequantised from 4 bits, once in the forward and once again in the backward.

    Plain `F.linear(x, layer.weight)` would make autograd keep the dequantised fp32 weight of every
    layer until the backward pass: the full-precision model, back in memory, for the whole step.
    Here the backward dequantises again (the gradient w.r.t. x needs W; W itself gets none), so
    between the passes only the 4-bit codes stay, as in bitsandbytes' 4-bit matmul."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, layer: "NF4Linear") -> torch.Tensor:
        ctx.layer = layer
        return F.linear(x, layer.weight)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        return grad_out @ ctx.layer.weight.to(grad_out.dtype), None


class NF4Linear(nn.Module):
    """A frozen linear layer stored in NF4: the weight is dequantised for each forward (QLoRA's recipe:
    4-bit storage, compute in `compute_dtype`). Gradients flow to the input, never to the weight.
    `levels` stores it in another 4-bit format instead (e.g. `int4_levels()`), for comparison."""

    def __init__(self, linear: nn.Module, blocksize: int = 64, double_quant: bool = True,
                 compute_dtype: torch.dtype = torch.float32, levels: torch.Tensor | None = None):
        super().__init__()
        if not isinstance(linear, LINEAR_KINDS):
            raise TypeError(f"NF4Linear replaces an nn.Linear or GPT-2 Conv1D, got {type(linear).__name__}")
        weight = weight_out_in(linear).detach()  # GPT-2's Conv1D keeps its weight transposed, (in, out)
        self.out_features, self.in_features = weight.shape
        self.compute_dtype = compute_dtype
        self.q = quantize_4bit(weight.contiguous(), levels, blocksize, double_quant)  # levels: NF4 by default
        for name in ("packed", "absmax", "absmax_codes", "absmax_scale"):
            value = getattr(self.q, name)
            self.register_buffer(name, value if value is None else value.clone())
        self.register_buffer("levels", self.q.levels.clone())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantised weight (what the forward multiplies with)."""
        q = Quantized4bit(self.packed, self.q.shape, self.levels, self.q.blocksize, self.absmax, self.absmax_codes,
                          self.absmax_scale, self.q.absmax_mean, self.q.blocksize2)
        return dequantize_4bit_fast(q, self.compute_dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(self.compute_dtype)
        if torch.is_grad_enabled() and h.requires_grad:
            out = DequantizedMatmul.apply(h, self)  # only the codes are kept for the backward pass
        else:  # no gradient will ask for the weight again (generation, evaluation): multiply directly
            out = F.linear(h, self.weight)
        if self.bias is not None:
            out = out + self.bias.to(self.compute_dtype)
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"{self.q.bits_per_parameter():.2f} bits/weight")


def bnb_cpu_safe(model: nn.Module) -> int:
    """Work around a bitsandbytes 0.50 CPU bug; returns how many 4-bit layers were changed.

    On CPUs with AVX512-BF16, a no-grad forward of `bnb.nn.Linear4bit` repacks its weight in place
    for a faster kernel, and the next training step then fails ("a view of a leaf Variable ... is
    being used in an in-place operation"). Turning that path off on every layer keeps training and
    evaluation alternating safely; on other CPUs and on GPUs it changes nothing."""
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)
