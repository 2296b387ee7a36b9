"""Entity types as a cloze, a task for the runner: given a sentence and one of its entities, a causal LM completes
"Answer:" with a verbaliser word (" person", " place", ...). Scored on the next-token logits of those words only,
so nothing is parsed. Chapter 2 builds it by hand on the book's NER set; this Task runs it on any BIO-tagged CoNLL
file (WNUT-17 in the full-scale cell) through `ptutor.experiments.run`, which logs it like any other run: importing
this module registers it as the runner's task "cloze".
"""
from __future__ import annotations

import torch

from ..conll import entity_spans, read_conll
from ..tasks import Task, register_task
from ..textgen import encode_causal

# an entity type -> the answer word; types without an entry answer with their own name
WORDS = {"PER": "person", "ORG": "organization", "LOC": "place", "MISC": "other", "person": "person",
         "location": "place", "corporation": "company", "product": "product", "creative-work": "work",
         "group": "group"}


def entities(sentences) -> list[tuple[str, str, str]]:
    """(sentence, entity text, type) for every B-/I- span of every sentence."""
    return [(" ".join(s.tokens), " ".join(s.tokens[i:j]), kind) for s in sentences for i, j, kind in entity_spans(s)]


@register_task  # run(RunConfig.of("cloze", ...)) finds it once this module is imported
class EntityCloze(Task):
    """The entity-type cloze as a runner task: items are (sentence, entity, type); the metric is accuracy."""
    name, backbone_task, metric = "cloze", "causal-lm", "accuracy"
    batch_size, max_length = 16, 96

    def __init__(self, types: list[str] | None = None):
        self.types = types  # the answer classes; None: learned from the training items

    def learn(self, train_items: list) -> None:
        if self.types is None:
            self.types = sorted({kind for _, _, kind in train_items})

    def words(self) -> list[str]:
        return [WORDS.get(t, t) for t in self.types]

    def prompt(self, item) -> str:
        sentence, entity, _ = item
        words = self.words()
        return f'{sentence}\nQuestion: is "{entity}" a {", ".join(words[:-1])} or {words[-1]}?\nAnswer:'

    def read(self, path) -> list:
        return entities(read_conll(path, labels=None))

    def encode(self, items, tokenizer, max_length=None, model=None):
        answers = [WORDS.get(kind, kind) for _, _, kind in items]
        return encode_causal([self.prompt(i) for i in items], answers, tokenizer, max_length or self.max_length)

    @torch.no_grad()
    def evaluate(self, model, items, tokenizer, *, batch_size=24, **_):
        """Share of items whose most likely answer word (the first token of each, after a space) is the right one."""
        answer_ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in self.words()]
        device = next(model.parameters()).device
        model.eval()
        correct = 0
        for i in range(0, len(items), batch_size):
            chunk = items[i:i + batch_size]
            enc = tokenizer([self.prompt(e) for e in chunk], return_tensors="pt", padding=True,
                            padding_side="right", add_special_tokens=False).to(device)
            logits = model(**enc).logits
            last = enc["attention_mask"].sum(1) - 1
            guess = logits[torch.arange(len(chunk)), last][:, answer_ids].argmax(-1)
            correct += sum(self.types[g] == kind for g, (_, _, kind) in zip(guess.tolist(), chunk))
        return {"accuracy": correct / len(items), "examples": len(items)}

