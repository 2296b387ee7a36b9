"""The two baselines every chapter measures against.

`ft`: full fine-tuning, every weight trains. `probe`: a linear probe, the backbone is
frozen and only the task head (e.g. BERT's token classifier) trains.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Method, MethodConfig, freeze, register, task_head


@dataclass
class FineTuneConfig(MethodConfig):
    method = "ft"
    default_lr = 1e-4


@register
class FullFineTune(Method):
    config_class = FineTuneConfig

    def __init__(self, base, config):
        super().__init__(base, config)
        for p in base.parameters():
            p.requires_grad_(True)


@dataclass
class ProbeConfig(MethodConfig):
    method = "probe"
    default_lr = 5e-3


@register
class LinearProbe(Method):
    config_class = ProbeConfig

    def __init__(self, base, config):
        super().__init__(base, config)
        head = task_head(base)
        if head is None:
            raise ValueError(f"{type(base).__name__} has no task head (classifier/score) to probe; "
                             "load the backbone with a classification task")
        freeze(base)
        for p in head.parameters():
            p.requires_grad_(True)
