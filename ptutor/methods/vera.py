"""VeRA {cite}`kopiczko2024vera`: LoRA's `B A` frozen at random and shared by every layer; two vectors per layer train.

LoRA trains its own `A` (r x in) and `B` (out x r) in every targeted layer. VeRA draws one random pair once, from
a seed, for the whole model (sized for its largest target; each layer reads the top-left block it needs), freezes
it, and trains per layer only a vector `d` (r numbers) and a vector `b` (out numbers) that scale it:

    h = W x + b * (B (d * (A x)))          (* multiplies element by element)

`b` starts at zero, so training starts from the base model exactly; `d` starts at `d_initial`. A layer trains
`r + out` numbers where LoRA trains `r (in + out)`, so VeRA affords a large rank (256 by default, as in peft). The
pair is not trained, but the model needs it: it is the method's frozen state (`Method.frozen_state_dict`), saved
with a checkpoint, or with `save_projection=False` drawn again from the seed and checked against the fingerprint the
checkpoint recorded. The draw (Kaiming-uniform, `A` then `B`, from a CPU generator seeded with `projection_seed`)
is peft's `VeraConfig`'s, so the same seed gives both the same pair.

    model = inject(base, VeraConfig(r=256))
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..arch import LINEAR_KINDS, default_target_modules, linear_features
from .base import MergeableLayer, Method, MethodConfig, find_modules, register, replace_modules


def kaiming_uniform(shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """U(-bound, bound) with bound = sqrt(3) * std and std = sqrt(2) / sqrt(fan_in), fan_in = shape[1]: He et al.'s
    initialisation for ReLU layers, drawn from `generator` so that a seed fixes it."""
    bound = math.sqrt(3.0) * (math.sqrt(2) / math.sqrt(shape[1]))
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)


class VeraBasis(nn.Module):
    """The frozen random pair every VeRA layer shares: `A` (r x largest in) and `B` (largest out x r), from `seed`."""

    def __init__(self, r: int, in_features: int, out_features: int, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("A", kaiming_uniform((r, in_features), generator))  # A first, then B: peft's order
        self.register_buffer("B", kaiming_uniform((out_features, r), generator))


class VeraLinear(MergeableLayer):
    """`base_layer(x) + b * (B (d * (A dropout(x))))` around a frozen nn.Linear or GPT-2 Conv1D, where A and B are
    this layer's blocks of the shared `basis` and only the vectors `lambda_d` (r) and `lambda_b` (out) train."""

    def __init__(self, base_layer: nn.Module, basis: VeraBasis, d_initial: float = 0.1, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base_layer, LINEAR_KINDS):
            raise TypeError(f"VeRA wraps nn.Linear or GPT-2 Conv1D layers, not {type(base_layer).__name__}")
        self.in_features, self.out_features = linear_features(base_layer)
        if basis.A.shape[1] < self.in_features or basis.B.shape[0] < self.out_features:
            raise ValueError(f"the shared basis ({tuple(basis.B.shape)} B, {tuple(basis.A.shape)} A) is smaller than "
                             f"this {self.in_features} -> {self.out_features} layer: size it for the largest target")
        self.base_layer = base_layer
        self.shared = (basis,)  # a tuple, so nn.Module does not register it here: the method holds (and saves) it once
        device = base_layer.weight.device
        self.lambda_d = nn.Parameter(torch.full((basis.A.shape[0],), float(d_initial), device=device))
        self.lambda_b = nn.Parameter(torch.zeros(self.out_features, device=device))  # b = 0: starts as the base
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def basis_blocks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This layer's blocks of the shared pair: A[:, :in] (r x in) and B[:out] (out x r)."""
        basis = self.shared[0]
        return basis.A[:, : self.in_features], basis.B[: self.out_features]

    def forward_with_adapter(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        A, B = self.basis_blocks()
        h = self.lambda_d * F.linear(self.dropout(x.to(A.dtype)), A)
        return out + (self.lambda_b * F.linear(h, B)).to(out.dtype)

    def delta_weight(self) -> torch.Tensor:
        """diag(b) B diag(d) A, (out, in)."""
        A, B = self.basis_blocks()
        return (self.lambda_b[:, None] * B) @ (self.lambda_d[:, None] * A)


@dataclass
class VeraConfig(MethodConfig):
    method = "vera"
    title = "VeRA"
    default_lr = 1e-2  # a few scaling vectors, like (IA)³'s, take large steps; a sweep on dev sets task_lrs
    task_lrs = {"ner": 3e-2, "gen": 1e-1}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}
    r: int = 256  # rows of the shared A (and columns of B); cheap: each layer trains r + out numbers
    target_modules: list[str] | None = None  # module-name patterns; None: the family's LoRA default (ptutor.arch)
    projection_seed: int = 0  # the seed the shared pair is drawn from (peft's projection_prng_key)
    save_projection: bool = True  # keep the pair in checkpoints; False: draw it again from the seed (and check it)
    d_initial: float = 0.1  # every entry of d at the start (b starts at 0)
    dropout: float = 0.0  # dropout on the VeRA branch's input
    train_head: bool = True  # train the task head too (a new head is random)

    def __post_init__(self):
        if self.r < 1:
            raise ValueError(f"VeRA rank r must be at least 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@register
class Vera(Method):
    """Draws the shared pair for the targets' largest sizes, wraps every target in a VeraLinear; owns the vectors
    (and the head); the pair is its frozen state."""

    config_class = VeraConfig

    def __init__(self, base, config: VeraConfig, *, tokenizer=None):
        super().__init__(base, config)
        names = find_modules(base, config.target_modules or list(default_target_modules(base.config)),
                             kinds=LINEAR_KINDS)
        sizes = [linear_features(base.get_submodule(name)) for name in names]
        self.basis = VeraBasis(config.r, max(i for i, _ in sizes), max(o for _, o in sizes), config.projection_seed)
        self.basis.to(next(base.parameters()).device)
        replace_modules(base, names, lambda layer: VeraLinear(layer, self.basis, config.d_initial, config.dropout))
        self.target_names = names
        self.set_trainable()

    @property
    def saves_frozen_state(self) -> bool:
        return self.config.save_projection

    def vera_layers(self) -> dict[str, VeraLinear]:
        return {name: self.base.get_submodule(name) for name in self.target_names}
