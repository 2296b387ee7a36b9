"""`ft`: full fine-tuning, every weight trains: the baseline every chapter measures against (with `probe`)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Method, MethodConfig, register


@dataclass
class FineTuneConfig(MethodConfig):
    method = "ft"
    title = "full fine-tuning"
    default_lr = 1e-4
    task_lrs = {"ner": 2e-4, "gen": 3e-4}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}

    def trains_new_head(self) -> bool:
        return True  # every weight trains, the new head among them


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
