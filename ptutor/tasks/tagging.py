"""Tagging (`ner`): CoNLL files in, a token-classification head on the backbone, seqeval entity F1 out."""
from __future__ import annotations

from ..conll import encode_ner, ner_labels, read_conll
from ..ner import evaluate_ner
from .base import Task, register_task


@register_task
class NerTask(Task):
    """Tagging with a BIO tag set. `labels=None` (the default): the set is read from the training file
    (`learn`), so CoNLL-2003's PER/ORG/LOC/MISC and WNUT-17's six types go through the same command;
    a dev or test tag the training file lacks is then an error that names the file and line."""
    name, backbone_task, metric = "ner", "token-classification", "f1"
    # A new tagging head starts random and wants a far larger rate than the backbone's weights: every method that
    # trains one beside other weights gives it this rate, the linear probe's pick on WNUT-17 dev (it trains the
    # head alone; data/results/wnut17_steps.jsonl, head_lr_source)
    head_lr, head_lr_source = 3e-2, "data/results/wnut17_steps.jsonl"
    default_model = "minilm"

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
        return read_conll(path, self.labels, unknown_tag_fix=(
            "These are the tags of the training file: a model trained on it cannot predict another. Use dev and test "
            "files with the training file's entity types, or add sentences with this tag to the training file."))

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
