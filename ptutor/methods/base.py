"""What every method shares: a config dataclass, a wrapper module, a registry.

A method is a pair, as in peft: `XConfig` (plain, JSON-serialisable settings) and
`X(base_model, config)`, an `nn.Module` that freezes what the method keeps frozen,
adds what it trains, and whose `forward(**batch)` returns the base model's output
type with `.loss` and `.logits` lined up with the caller's `input_ids`.

    model = ptutor.methods.inject(base, PromptTuningConfig(num_virtual_tokens=20))
    ptutor.checkpoint.save(model, "runs/pt")           # only what was trained
    model = ptutor.checkpoint.load(base, "runs/pt")    # rebuilds the method
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

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
    default_lr: ClassVar[float] = 5e-5  # a good starting LR for this method, used by the experiment command

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


class Method(nn.Module):
    """Base class: holds `self.base` (the transformers model) and `self.config`."""

    config_class: ClassVar[type[MethodConfig]] = MethodConfig

    def __init__(self, base: nn.Module, config: MethodConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.base = base
        self.config = config

    def forward(self, **batch):
        return self.base(**batch)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint must hold: by default, every parameter that trains."""
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    def generate(self, *args, **kwargs):
        return self.base.generate(*args, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def freeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module


HEAD_NAMES = ("classifier", "score", "qa_outputs")


def task_head(model: nn.Module) -> nn.Module | None:
    """The task head a classification model puts on top of its backbone (None for a bare LM)."""
    for name in HEAD_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    return None


def inject(base: nn.Module, config: MethodConfig) -> Method:
    """Wrap `base` with the method that `config` describes."""
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; known: {sorted(METHODS)}")
    return METHODS[config.method](base, config)


def config_from_dict(d: dict) -> MethodConfig:
    name = d.get("method")
    if name not in METHODS:
        raise ValueError(f"checkpoint names method {name!r}, which this ptutor does not know; known: {sorted(METHODS)}")
    return METHODS[name].config_class.from_dict(d)
