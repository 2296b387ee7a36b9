"""What every method shares: a config dataclass, a wrapper module, a registry, one contract.

A method is a pair, as in peft: `XConfig` (plain, JSON-serialisable settings) and
`X(base_model, config)`, an `nn.Module` whose `forward(**batch)` returns the base
model's output type with `.loss` and `.logits` lined up with the caller's `input_ids`.

The contract every method keeps (tests/test_contract.py checks it for each one):
  * it declares what it owns (`owns(name)`): its own new modules, layers it injected
    into the base (`InjectedLayer`), and the task head when `train_head` says so.
    Ownership, not the `requires_grad` flags of the moment, decides what trains
    (`set_trainable`) and what a checkpoint holds (`trainable_state_dict`);
  * what it needs but never trains (a frozen random basis, 4-bit codes) is its `frozen_state_dict()`: a
    checkpoint fingerprints it, keeps it unless the method draws it again from its config, and checks it on load;
  * everything it does not own stays bit-identical through training;
  * `disable_adapter()` runs the base model alone (where the method keeps a base);
  * a method whose layers only change the weights they wrap (`MergeableLayer`: each supplies its
    `delta_weight()`) merges and unmerges through `merge()`/`unmerge()`, written once here;
  * extra batch keys (e.g. per-row routing ids) reach `forward` untouched.

    model = ptutor.methods.inject(base, PromptTuningConfig(num_virtual_tokens=20))
    ptutor.checkpoint.save(model, "runs/pt")           # only what the method owns
    model = ptutor.checkpoint.load(base, "runs/pt")    # rebuilds the method
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..arch import HEAD_NAMES, LINEAR_KINDS, task_head, task_head_name, weight_out_in  # noqa: F401  (task_head re-exported for chapters)

METHODS: dict[str, type["Method"]] = {}


def register(cls):
    """Class decorator: make a Method findable by its config's `method` name."""
    name = cls.config_class.method
    if name in METHODS and METHODS[name] is not cls:
        raise ValueError(f"method name {name!r} registered twice")
    METHODS[name] = cls
    return cls


@dataclass
class MethodConfig:
    method: ClassVar[str] = ""
    title: ClassVar[str] = ""  # a readable name for tables and plots
    default_lr: ClassVar[float] = 5e-5  # the learning rate used when none is given ...
    task_lrs: ClassVar[dict[str, float]] = {}  # ... unless the task has its own, picked on dev by a sweep
    lr_source: ClassVar[dict[str, str]] = {}  # per task, the committed sweep log its rate was picked from

    @classmethod
    def lr_for(cls, task: str | None = None) -> float:
        """The learning rate to use for `task` (e.g. "ner", "gen") when the caller gives none."""
        return cls.task_lrs.get(task, cls.default_lr)

    def trains_new_head(self) -> bool:
        """Does the method train a classification model's new task head beside weights of its own? Then a run gives
        the head the task's head rate (ptutor.experiments.resolve). The `train_head` flag says so by default."""
        return bool(getattr(self, "train_head", False))

    def to_dict(self) -> dict:
        return {"method": self.method, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict):
        d = dict(d)
        name = d.pop("method", cls.method)
        if name != cls.method:
            raise ValueError(f"config is for method {name!r}, not {cls.method!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def options(cls, config: dict) -> dict:
        """The options of a logged config (`to_dict()`): every field but the method's name and the fields a
        method fills in itself when it is built (marked `field(metadata={"derived": True})`, e.g. the token ids
        an initialisation drew), which are a run's outcome, not its setting."""
        derived = {f.name for f in dataclasses.fields(cls) if f.metadata.get("derived")}
        return {k: v for k, v in config.items() if k != "method" and k not in derived}

    def without_init(self) -> "MethodConfig":
        """The config to rebuild an empty method with before loading saved weights into it: no
        data-dependent initialisation (a forward pass, a tokenizer lookup) runs again."""
        return self


class InjectedLayer(nn.Module):
    """A module a method puts *inside* the base (e.g. a LoRA linear around `base_layer`).

    Its own parameters belong to the method; those of `base_layer` (the wrapped original)
    stay frozen. `enabled = False` makes it behave exactly like `base_layer`.
    """

    enabled: bool = True


class MergeableLayer(InjectedLayer):
    """An injected layer whose whole effect is a change of the weight (and bias) it wraps: LoRA, DoRA, (IA)³, VeRA.

    A subclass supplies `forward_with_adapter(x)` and `delta_weight()`, the change as an (out, in) matrix computed from
    the unmerged layer (and `delta_bias()` if the bias changes too). Merging, written once here, adds the change
    into the wrapped weight and keeps it, so that unmerging subtracts exactly what was added, whatever it was computed
    from: DoRA's change depends on W itself, (IA)³'s may hold a zero, so recomputing it afterwards from the merged
    weight would not give it back. The cost is one weight-sized tensor per merged layer, freed on unmerge.
    """

    def __init__(self):
        super().__init__()
        self.merged = False
        self.register_buffer("merged_delta_weight", None, persistent=False)  # what set_merged(True) added, kept
        self.register_buffer("merged_delta_bias", None, persistent=False)  # until set_merged(False) takes it out

    def forward_with_adapter(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def delta_weight(self) -> torch.Tensor:
        """What merging adds to the wrapped weight, as an (out, in) matrix."""
        raise NotImplementedError

    def delta_bias(self) -> torch.Tensor | None:
        """What merging adds to the wrapped bias; None: the bias stays as it is."""
        return None

    def merge_refusal(self) -> str | None:
        """Why this layer cannot be merged (None: it can): its wrapped layer must hold a plain weight matrix."""
        if not isinstance(self.base_layer, LINEAR_KINDS):
            return (f"cannot merge into a {type(self.base_layer).__name__} layer: it holds no plain weight matrix to "
                    "add the change to. Keep the layer unmerged.")
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged and not self.enabled:
            raise RuntimeError(f"this {type(self).__name__} is merged into its weight, so the base alone cannot run: "
                               "call unmerge() first")
        if self.merged or not self.enabled:
            return self.base_layer(x)
        return self.forward_with_adapter(x)

    @torch.no_grad()
    def set_merged(self, merged: bool) -> None:
        """Add the change into the wrapped weight (`merged=True`) or subtract what was added (`merged=False`).
        `Method.merge()`/`unmerge()` call it for every layer, after checking them all."""
        if merged == self.merged:
            raise RuntimeError(f"this {type(self).__name__} is {'already' if merged else 'not'} merged")
        if merged and self.merge_refusal():
            raise RuntimeError(self.merge_refusal())
        weight, bias = weight_out_in(self.base_layer), self.base_layer.bias
        if merged:
            delta_bias = self.delta_bias()
            self.merged_delta_weight = self.delta_weight().to(weight.dtype)
            self.merged_delta_bias = None if delta_bias is None else delta_bias.to(bias.dtype)
            weight.add_(self.merged_delta_weight)
            if self.merged_delta_bias is not None:
                bias.add_(self.merged_delta_bias)
        else:
            weight.sub_(self.merged_delta_weight)
            if self.merged_delta_bias is not None:
                bias.sub_(self.merged_delta_bias)
            self.merged_delta_weight = self.merged_delta_bias = None
        self.merged = merged


class Method(nn.Module):
    """Base class: holds `self.base` (the transformers model) and `self.config`.

    Subclasses build their modules in `__init__(base, config, *, tokenizer=None)` and end it with
    `self.set_trainable()`. Every method takes the base's tokenizer, so `inject` and the runner can pass the one
    they hold; a method that turns text into ids (an initialisation or anchor text) uses it, the others ignore it.
    """

    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    keeps_base: ClassVar[bool] = True  # False: the method changes base weights (no base to go back to)

    def __init__(self, base: nn.Module, config: MethodConfig, *, tokenizer=None):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.base = base
        self.config = config
        self.active = True  # False inside disable_adapter(): forward runs the base alone

    # --- what the method owns -------------------------------------------------------------
    @property
    def trains_head(self) -> bool:
        """The one train_head rule: a method trains the task head when its config says so."""
        return bool(getattr(self.config, "train_head", False)) and task_head_name(self.base) is not None

    def owns(self, name: str) -> bool:
        """Is parameter `name` (as in `self.named_parameters()`) the method's to train and save?"""
        if not name.startswith("base."):
            return True  # the method's own modules: prompt, prefix encoder, ...
        head = task_head_name(self.base)
        if head and self.trains_head and name.startswith(f"base.{head}."):
            return True
        return self._in_injected_layer(name[len("base."):])

    def _in_injected_layer(self, name: str) -> bool:
        module, parts = self.base, name.split(".")
        for i, part in enumerate(parts[:-1]):
            module = getattr(module, part, None)
            if isinstance(module, InjectedLayer):
                return parts[i + 1] != "base_layer"
        return False

    def is_injected(self, name: str) -> bool:
        """Is parameter `name` (as `named_parameters` gives it) one of a layer the method put inside the base (an
        InjectedLayer's own, not its wrapped `base_layer`'s)? Diagrams draw those apart from trained base weights."""
        return name.startswith("base.") and self._in_injected_layer(name[len("base."):])

    def owned_parameters(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if self.owns(n)}

    def set_trainable(self, trainable: bool = True) -> "Method":
        """requires_grad = owned (and `trainable`); everything else frozen."""
        for name, p in self.named_parameters():
            p.requires_grad_(trainable and self.owns(name))
        return self

    def param_groups(self, lr: float) -> list[dict]:
        """The optimizer's parameter groups: every trainable parameter at `lr`. A method whose parts want
        different rates (e.g. P-Tuning v2 + LoRA) returns more groups."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint holds: every owned parameter, whatever its requires_grad flag now."""
        return {n: p.detach() for n, p in self.owned_parameters().items()}

    def frozen_state_dict(self) -> dict[str, torch.Tensor]:
        """What the method needs but never trains (VeRA's shared random basis): the persistent buffers of its own
        modules and of the layers it injected (not of the layers they wrap). A checkpoint records a fingerprint of
        each and checks it on load, and holds the tensors too when `saves_frozen_state` says so."""
        parameters = dict(self.named_parameters())
        return {n: t.detach() for n, t in self.state_dict(keep_vars=True).items() if n not in parameters
                and (not n.startswith("base.") or self._in_injected_layer(n[len("base."):]))}

    @property
    def saves_frozen_state(self) -> bool:
        """Does a checkpoint hold the frozen tensors themselves? False: the method builds them again (from a seed in
        its config, or from the base) and the checkpoint only checks that it built the same ones."""
        return True

    def inference_form(self) -> "Method":
        """The smallest method that computes the same outputs (P-Tuning: its prompt table). Default: self."""
        return self

    def on_same_base(self, cls: type["Method"], config: MethodConfig, **kwargs) -> "Method":
        """Another method built around this one's base (e.g. an inference form), leaving the base's requires_grad
        flags as they are: building a method sets them for itself, which would change this method's."""
        flags = {n: p.requires_grad for n, p in self.base.named_parameters()}
        other = cls(self.base, config, **kwargs)
        for n, p in self.base.named_parameters():
            p.requires_grad_(flags[n])
        return other

    # --- merging ---------------------------------------------------------------------------
    def mergeable_layers(self) -> list[MergeableLayer]:
        return [m for m in self.base.modules() if isinstance(m, MergeableLayer)]

    def _layers_to_switch(self, to_merged: bool) -> list[MergeableLayer]:
        """Every mergeable layer, checked before any weight changes: each must be in the other state, and able to
        merge."""
        layers, name = self.mergeable_layers(), type(self).__name__
        if not layers:
            raise RuntimeError(f"{name} has no layer to merge: a prompt or prefix is an input, an adapter sits in "
                               "series, trained biases are already in the weights")
        if any(layer.merged == to_merged for layer in layers):
            raise RuntimeError(f"this {name} is already merged; merging twice would apply it twice" if to_merged
                               else f"this {name} is not merged: there is nothing to take out")
        refusals = sorted({layer.merge_refusal() for layer in layers} - {None}) if to_merged else []
        if refusals:
            raise RuntimeError("; ".join(refusals))
        return layers

    def merge(self) -> None:
        """Write every layer's change into the weight it wraps: the model then runs at the base model's speed."""
        for layer in self._layers_to_switch(to_merged=True):
            layer.set_merged(True)

    def unmerge(self) -> None:
        """Take out of every weight exactly what `merge()` added."""
        for layer in self._layers_to_switch(to_merged=False):
            layer.set_merged(False)

    # --- running ---------------------------------------------------------------------------
    def forward(self, **batch):
        return self.base(**batch)

    def generate(self, *args, **kwargs):
        return self.base.generate(*args, **kwargs)

    @contextmanager
    def disable_adapter(self):
        """Run the base model alone inside this block (the method's parameters are kept). A task head
        that the method trains is part of the base model, so it stays as trained."""
        if not self.keeps_base:
            raise ValueError(f"{type(self).__name__} changes the base model's own weights: there is no unchanged base "
                             "to run. Keep a copy of the base model before training if you need it.")
        layers = [m for m in self.base.modules() if isinstance(m, InjectedLayer)]
        self.active = False
        for m in layers:
            m.enabled = False
        try:
            yield self
        finally:
            self.active = True
            for m in layers:
                m.enabled = True

    def reference_base(self, pristine: nn.Module) -> nn.Module:
        """The model `disable_adapter()` runs, built from an untouched copy of the base: the base itself
        for most methods; QLoRA's 4-bit version of it (tests compare the two)."""
        return pristine

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def freeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def find_modules(base: nn.Module, patterns, kinds: tuple[type, ...] = (nn.Linear,)) -> list[str]:
    """Dotted names of modules of the given kinds whose name ends with one of `patterns`
    (a plain name such as "q_proj") or fully matches one (a regular expression such as
    r".*\\.layer\\.[0-3]\\..*query"). No match is an error that lists what there is."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    names = [n for n, m in base.named_modules() if isinstance(m, kinds) and n]
    hits = [n for n in names if any(n == p or n.endswith("." + p) or re.fullmatch(p, n) for p in patterns)]
    if not hits:
        leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
        raise ValueError(f"target modules {patterns} match no {'/'.join(k.__name__ for k in kinds)} module of "
                         f"{type(base).__name__}. Its module names end in: {', '.join(leaves)}")
    return hits


def replace_modules(base: nn.Module, names: list[str], make: Callable[[nn.Module], nn.Module]) -> None:
    """Swap each named submodule for `make(old_module)` (e.g. a LoRA layer wrapping it)."""
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = base.get_submodule(parent_name) if parent_name else base
        setattr(parent, child, make(getattr(parent, child)))


def inject(base: nn.Module, config: MethodConfig, *, tokenizer=None, **kwargs) -> Method:
    """Wrap `base` with the method that `config` describes. Pass the base's `tokenizer` when you hold it: methods
    that start from text (init="text", anchor_text) need it, the others ignore it."""
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; known: {sorted(METHODS)}")
    return METHODS[config.method](base, config, tokenizer=tokenizer, **kwargs)


def config_from_dict(d: dict) -> MethodConfig:
    name = d.get("method")
    if name not in METHODS:
        raise ValueError(f"checkpoint names method {name!r}, which this ptutor does not know; known: {sorted(METHODS)}")
    return METHODS[name].config_class.from_dict(d)
