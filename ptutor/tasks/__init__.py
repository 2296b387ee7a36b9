"""Tasks: what a backbone must be, how files are read and encoded, how a model is scored.

Two tasks share one interface (ptutor.tasks.base.Task), so one runner (ptutor.experiments.run) trains any method on
either: `ner` (tagging.py: CoNLL files, a token-classification head, seqeval entity F1) and `gen` (generation.py:
JSON lines of input and target, a causal LM or an encoder-decoder, corpus BLEU against every reference).
"""
from .base import TASKS, Task, TaskDataError, get_task, load_items, register_task  # noqa: F401
from .tagging import NerTask, base_config, model_labels  # noqa: F401  (registered first: `ner` leads every list)
from .generation import GenTask  # noqa: F401
