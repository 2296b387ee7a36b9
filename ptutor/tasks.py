"""Tasks: what a backbone must be, how files are read and encoded, how a model is scored.

Two tasks share one interface, so one runner (ptutor.experiments.run) trains any method
on either:
  ner  CoNLL files (`token TAG`, any BIO tag set: the labels come from the training file), a
       token-classification head, seqeval entity F1;
  gen  JSON lines `{"input": ..., "target": ...}`, a causal LM trained on prompt+target
       with the loss on the target; scored by greedy generation, once per distinct input,
       against every reference of that input: corpus BLEU (sacrebleu), ROUGE-L, and the
       share of outputs that state every input value the references state.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

from .arch import is_causal_lm, is_encoder_decoder, is_seq2seq_lm
from .data import encode_ner, ner_labels, read_conll, text_lines
from .ner import evaluate_ner
from .textgen import PROMPT, encode_causal, encode_seq2seq, generate_texts, generation_scores


class TaskDataError(ValueError):
    """A task's data file cannot be used; the message names the file (and line) and the fix."""


class Task:
    """The interface: `read` a file into items, `encode` items for training, `evaluate` a model on items."""

    name: ClassVar[str] = ""
    backbone_task: ClassVar[str] = ""  # the head to load: ptutor.backbones.load_backbone(preset, backbone_task)
    metric: ClassVar[str] = ""  # the primary metric (higher is better)
    batch_size: ClassVar[int] = 16
    max_length: ClassVar[int] = 128
    # What the book measured this task with (the shoot-out's defaults): the backbone and time budget its
    # methods' rates were swept at, its real data (train and test files, relative to the book's root), and
    # options a method needs on that backbone.
    default_model: ClassVar[str] = ""
    default_data: ClassVar[tuple[str, str]] = ("", "")
    default_minutes: ClassVar[float] = 3.0
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


class NerTask(Task):
    """Tagging with a BIO tag set. `labels=None` (the default): the set is read from the training file
    (`learn`), so CoNLL-2003's PER/ORG/LOC/MISC and WNUT-17's six types go through the same command;
    a dev or test tag the training file lacks is then an error that names the file and line."""
    name, backbone_task, metric = "ner", "token-classification", "f1"
    # A new tagging head starts random and wants a far larger rate than the backbone's weights: every method that
    # trains one beside other weights gives it this rate, the linear probe's pick on WNUT-17 dev (it trains the
    # head alone; data/results/wnut17_steps.jsonl, head_lr_source)
    head_lr, head_lr_source = 3e-2, "data/results/wnut17_steps.jsonl"
    default_model, default_data, default_minutes = "minilm", ("data/wnut17/train.conll", "data/wnut17/test.conll"), 3.0

    def __init__(self, labels: list[str] | None = None):
        self.labels = labels

    def learn(self, train_items: list) -> None:
        if self.labels is None:
            self.labels = ner_labels(train_items)

    def labels_for(self, items: list) -> list[str]:
        """The task's label set, or (before `learn`) the set these items use."""
        return self.labels if self.labels is not None else ner_labels(items)

    def load_kwargs(self) -> dict:
        if self.labels is None:
            raise ValueError("the NER label set is not known yet: call task.learn(train_items) or pass labels=[...]")
        return {"labels": self.labels}

    def read(self, path) -> list:
        return read_conll(path, self.labels)

    def encode(self, items, tokenizer, max_length=None, model=None):
        return encode_ner(items, tokenizer, self.labels_for(items), max_length=max_length or self.max_length)

    def evaluate(self, model, items, tokenizer, *, max_length=None, batch_size=64, **_):
        labels = self.labels or model_labels(model) or self.labels_for(items)  # the last: the items' own set
        count = getattr(base_config(model), "num_labels", None)
        if count is not None and count != len(labels):
            raise ValueError(f"the model has {count} outputs but the label set has {len(labels)} ({labels}): pass "
                             "NerTask(labels=[...]) with the model's labels, or call task.learn(train_items) first")
        rows = encode_ner(items, tokenizer, labels, max_length=max_length or self.max_length)
        # truncated words stay in the gold set (word_tags)
        return evaluate_ner(model, rows, labels, pad_id=tokenizer.pad_token_id, batch_size=batch_size,
                            word_tags=[s.tags for s in items])


def base_config(model):
    """The transformers config of a model, or of the base inside a method wrapper (None for a bare module)."""
    return getattr(getattr(model, "base", model), "config", None)


def model_labels(model) -> list[str] | None:
    """The tag names of a token-classification model's outputs (config.id2label), if it was given real ones."""
    config = base_config(model)
    names = [getattr(config, "id2label", {}).get(i) for i in range(getattr(config, "num_labels", 0))]
    return names if names and all(n and not n.startswith("LABEL_") for n in names) else None


class GenTask(Task):
    """Generation: JSON lines of input and target, a causal LM or an encoder-decoder, scored by corpus BLEU."""
    name, backbone_task, metric = "gen", "causal-lm", "bleu"
    batch_size = 8
    default_model, default_data, default_minutes = "smollm2-135m", ("data/e2e/train.jsonl", "data/e2e/test.jsonl"), 10.0
    method_options = {"bitfit": {"add_biases": True}}  # SmolLM2 (Llama) has no biases: BitFit adds zero ones to train

    def __init__(self, prompt: str = PROMPT, max_new_tokens: int = 64):
        self.prompt, self.max_new_tokens = prompt, max_new_tokens

    def check_backbone(self, model) -> None:
        base = getattr(model, "base", model)
        if not (is_causal_lm(base) or is_seq2seq_lm(base)):
            raise ValueError(f"task 'gen' generates text and needs a causal LM or an encoder-decoder, but "
                             f"{type(base).__name__} is neither (an encoder such as BERT cannot generate). Use --model "
                             "smollm2-135m, tiny-gpt2, tiny-llama, tiny-bart or another generating preset.")

    def backbone_task_for(self, model_name: str) -> str:
        from .backbones import PRESETS, generation_task

        return generation_task(model_name) if model_name in PRESETS or model_name.startswith("hub:") \
            else self.backbone_task

    def read(self, path) -> list[dict]:
        """Rows {"input": str, "target": str}; any other key is kept. Errors name the file and line."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"gen data file not found: {path}")
        rows = []
        for n, line in text_lines(path):  # a line that is not UTF-8 is an error naming the file and line
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TaskDataError(f"{path}:{n}: not a JSON line ({e})") from None
            bad = [k for k in ("input", "target") if not isinstance(row, dict) or not isinstance(row.get(k), str)
                   or not row[k].strip()]
            if bad:
                raise TaskDataError(f"{path}:{n}: a gen row needs non-empty string fields \"input\" and \"target\"; "
                                    f"{' and '.join(repr(k) for k in bad)} missing or empty in {line.strip()[:120]}")
            rows.append(row)
        if not rows:
            raise TaskDataError(f"{path}: no rows (empty file?)")
        return rows

    @staticmethod
    def examples(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
        """Group rows by input, in first-seen order: the distinct inputs and each one's references."""
        refs: dict[str, list[str]] = {}
        for r in rows:
            refs.setdefault(r["input"], []).append(r["target"])
        return list(refs), list(refs.values())

    def encode(self, items, tokenizer, max_length=None, model=None):
        """Causal LM: prompt + target in one sequence. Encoder-decoder (pass `model`): prompt in, target out."""
        encode = encode_seq2seq if model is not None and is_encoder_decoder(model) else encode_causal
        return encode([self.prompt.format(record=r["input"]) for r in items], [r["target"] for r in items],
                      tokenizer, max_length or self.max_length)

    def evaluate(self, model, items, tokenizer, *, batch_size=16, max_new_tokens=None, **_):
        self.check_backbone(model)
        inputs, references = self.examples(items)
        outputs = generate_texts(model, tokenizer, [self.prompt.format(record=i) for i in inputs],
                                 max_new_tokens=max_new_tokens or self.max_new_tokens, batch_size=batch_size)
        return {**generation_scores(inputs, references, outputs), "examples": len(inputs)}


TASKS: dict[str, type[Task]] = {"ner": NerTask, "gen": GenTask}


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
