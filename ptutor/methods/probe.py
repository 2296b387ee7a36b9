"""`probe`: a linear probe, the other baseline: the backbone is frozen and only the task head (e.g. BERT's token
classifier) trains, so it measures what the frozen features already hold."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Method, MethodConfig, register, task_head


@dataclass
class ProbeConfig(MethodConfig):
    method = "probe"
    title = "linear probe"
    default_lr = 5e-3
    task_lrs = {"ner": 3e-2}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl"}


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
