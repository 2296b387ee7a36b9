"""The task interface: what backbone head a task needs, how its files are read and encoded, how a model is scored.

A task registers itself in TASKS by name (`@register_task`), so the runner and the command line find it: the book's
two, `ner` (ptutor.tasks.tagging) and `gen` (ptutor.tasks.generation), and any other (chapter 2's cloze task).
"""
from __future__ import annotations

import os
from typing import ClassVar


class TaskDataError(ValueError):
    """A task's data file cannot be used; the message names the file (and line) and the fix."""


class Task:
    """The interface: `read` a file into items, `encode` items for training, `evaluate` a model on items."""

    name: ClassVar[str] = ""
    backbone_task: ClassVar[str] = ""  # the head to load: ptutor.backbones.load_backbone(preset, backbone_task)
    metric: ClassVar[str] = ""  # the primary metric (higher is better)
    batch_size: ClassVar[int] = 16
    max_length: ClassVar[int] = 128
    # The backbone a run gets when it names none (an offline preset), and options a method needs on that backbone.
    default_model: ClassVar[str] = ""
    head_lr: ClassVar[float | None] = None  # the rate a new task head trains at, beside the method's own rate
    method_options: ClassVar[dict[str, dict]] = {}

    def load_kwargs(self) -> dict:
        """Extra arguments for load_backbone (e.g. the label set of a tagging head)."""
        return {}

    def backbone_task_for(self, model_name: str) -> str:
        """The head to load for backbone preset `model_name` (the same for every backbone, unless overridden)."""
        return self.backbone_task

    def check_backbone(self, model) -> None:
        """Raise if `model` cannot do this task."""

    def learn(self, train_items: list) -> None:
        """Take what the task needs from the training items before the backbone is loaded (e.g. a label set)."""

    def read(self, path) -> list:
        raise NotImplementedError

    def encode(self, items: list, tokenizer, max_length: int | None = None, model=None) -> list[dict]:
        """Training rows; `model` is the backbone, for tasks whose encoding depends on its kind."""
        raise NotImplementedError

    def evaluate(self, model, items: list, tokenizer, **kwargs) -> dict:
        raise NotImplementedError


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a Task findable by its `name` (the runner's `task`, the command line's subcommand)."""
    TASKS[cls.name] = cls
    return cls


def get_task(name: str) -> Task:
    """A fresh Task by name (`ner`, `gen`), or an error that lists the known tasks."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name]()


def load_items(task: Task, source, what: str) -> list:
    """A path is read with the task's reader; a list is taken as already-read items. Empty is an error."""
    items = task.read(source) if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise TaskDataError(f"the {what} set is empty: give it at least one example")
    return items
