"""The two baselines every chapter measures against.

`ft`: full fine-tuning, every weight trains. `probe`: a linear probe, the backbone is
frozen and only the task head (e.g. BERT's token classifier) trains.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Method, MethodConfig, register, task_head


@dataclass
class FineTuneConfig(MethodConfig):
    method = "ft"
    title = "full fine-tuning"
    default_lr = 1e-4
    task_lrs = {"ner": 2e-4, "gen": 3e-4}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_sweep_3min.jsonl", "gen": "data/results/e2e_sweep_steps.jsonl"}


@register
class FullFineTune(Method):
    """Owns every parameter of the base; a checkpoint holds the whole model."""

    config_class = FineTuneConfig
    keeps_base = False

    def __init__(self, base, config, *, tokenizer=None):
        super().__init__(base, config)
        self.set_trainable()

    def owns(self, name: str) -> bool:
        return True


@dataclass
class ProbeConfig(MethodConfig):
    method = "probe"
    title = "linear probe"
    default_lr = 5e-3
    task_lrs = {"ner": 3e-2}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_sweep_steps.jsonl"}


@register
class LinearProbe(Method):
    """Owns the task head only: the backbone's features are read, never changed."""

    config_class = ProbeConfig
    keeps_base = False  # the head is part of the base model: there is no head-less base to run

    def __init__(self, base, config, *, tokenizer=None):
        super().__init__(base, config)
        if task_head(base) is None:
            raise ValueError(f"{type(base).__name__} has no task head (classifier/score) to probe; "
                             "load the backbone with a classification task")
        self.set_trainable()

    @property
    def trains_head(self) -> bool:
        return True
