"""Token tagging (NER): predictions at word level and seqeval entity F1."""
from __future__ import annotations

import torch

from .batches import IGNORE_INDEX, batches
from .conll import NER_LABELS, model_words


@torch.no_grad()
def predict_word_tags(model, rows: list[dict], labels: list[str] = NER_LABELS, *, batch_size: int = 64,
                      pad_id: int = 0, device=None, word_tags: list[list[str]] | None = None
                      ) -> tuple[list[list[str]], list[list[str]]]:
    """Return (gold, predicted) tag sequences, one tag per word (read at each word's first sub-word).

    Pass `word_tags` (every sentence's full gold tags) so that words cut off by truncation stay in
    the gold set, predicted "O": an entity the model never saw counts as missed, not as absent.
    """
    model.eval()
    device = device or next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))  # similar lengths: little padding
    gold, pred = [], []
    for batch in batches([rows[i] for i in order], batch_size, pad_id=pad_id):
        lab = batch.pop("labels")
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
        if logits.shape[:2] != lab.shape:
            raise ValueError(f"logits {tuple(logits.shape[:2])} do not line up with labels {tuple(lab.shape)}: "
                             "a prompt method must return logits for the real tokens only")
        best = logits.argmax(-1).cpu()
        for row_lab, row_best in zip(lab, best):
            keep = row_lab != IGNORE_INDEX
            gold.append([labels[i] for i in row_lab[keep].tolist()])
            pred.append([labels[i] for i in row_best[keep].tolist()])
    back = {j: k for k, j in enumerate(order)}  # the rows' own order again
    gold, pred = [gold[back[i]] for i in range(len(rows))], [pred[back[i]] for i in range(len(rows))]
    if word_tags is not None:
        if len(word_tags) != len(gold):
            raise ValueError(f"word_tags has {len(word_tags)} sentences but rows has {len(gold)}")
        for i, (full, seen) in enumerate(zip(word_tags, gold)):
            if list(full[:len(seen)]) != seen:
                raise ValueError(f"sentence {i}: word_tags do not start with the tags encoded in rows")
            pred[i] += ["O"] * (len(full) - len(seen))
        gold = [list(t) for t in word_tags]
    return gold, pred


def entity_scores(gold: list[list[str]], pred: list[list[str]], *, strict: bool = False) -> dict:
    """Entity-level precision/recall/F1 with seqeval: an entity counts only if its span and type match.

    Default: the conlleval rules (a predicted span may start with I-). strict=True: IOB2 only, so a
    span that starts with I- is no entity at all (seqeval's mode="strict").
    """
    from seqeval.metrics import f1_score, precision_score, recall_score  # here: seqeval loads scikit-learn (~1.5 s)
    from seqeval.scheme import IOB2

    kw = {"mode": "strict", "scheme": IOB2} if strict else {}
    return {"f1": f1_score(gold, pred, **kw), "precision": precision_score(gold, pred, **kw),
            "recall": recall_score(gold, pred, **kw)}


def evaluate_ner(model, rows, labels: list[str] = NER_LABELS, *, strict: bool = False, **kwargs) -> dict:
    """Entity-level precision, recall and F1 (seqeval) of a tagger on encoded rows, word by word."""
    gold, pred = predict_word_tags(model, rows, labels, **kwargs)
    return entity_scores(gold, pred, strict=strict)


def report(model, rows, labels: list[str] = NER_LABELS, **kwargs) -> str:
    """seqeval's per-entity-type report of a tagger on encoded rows."""
    from seqeval.metrics import classification_report

    gold, pred = predict_word_tags(model, rows, labels, **kwargs)
    return classification_report(gold, pred, digits=3)


@torch.no_grad()
def tag_sentence(model, tokenizer, words: list[str], labels: list[str] = NER_LABELS) -> list[tuple[str, str]]:
    """Tag one pre-split sentence: [(word, tag), ...]."""
    enc = tokenizer(model_words([words], tokenizer)[0], is_split_into_words=True, return_tensors="pt", truncation=True)
    device = next(model.parameters()).device
    model.eval()
    logits = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)).logits[0]
    tags, seen = [], set()
    for pos, wid in enumerate(enc.word_ids(0)):
        if wid is not None and wid not in seen:
            seen.add(wid)
            tags.append(labels[logits[pos].argmax().item()])
    return list(zip(words, tags))
