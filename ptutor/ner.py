"""Token tagging (NER): predictions at word level and seqeval entity F1."""
from __future__ import annotations

import torch
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from .data import IGNORE_INDEX, NER_LABELS, batches


@torch.no_grad()
def predict_word_tags(model, rows: list[dict], labels: list[str] = NER_LABELS, *, batch_size: int = 64,
                      pad_id: int = 0, device=None) -> tuple[list[list[str]], list[list[str]]]:
    """Return (gold, predicted) tag sequences, one tag per word (read at each word's first sub-word)."""
    model.eval()
    device = device or next(model.parameters()).device
    gold, pred = [], []
    for batch in batches(rows, batch_size, pad_id=pad_id):
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
    return gold, pred


def entity_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Entity-level precision/recall/F1 (seqeval, CoNLL rules: an entity counts only if its span and type match)."""
    return {"f1": f1_score(gold, pred), "precision": precision_score(gold, pred), "recall": recall_score(gold, pred)}


def evaluate_ner(model, rows, labels: list[str] = NER_LABELS, **kwargs) -> dict:
    gold, pred = predict_word_tags(model, rows, labels, **kwargs)
    return entity_scores(gold, pred)


def report(model, rows, labels: list[str] = NER_LABELS, **kwargs) -> str:
    gold, pred = predict_word_tags(model, rows, labels, **kwargs)
    return classification_report(gold, pred, digits=3)


@torch.no_grad()
def tag_sentence(model, tokenizer, words: list[str], labels: list[str] = NER_LABELS) -> list[tuple[str, str]]:
    """Tag one pre-split sentence: [(word, tag), ...]."""
    enc = tokenizer(words, is_split_into_words=True, return_tensors="pt", truncation=True)
    device = next(model.parameters()).device
    model.eval()
    logits = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)).logits[0]
    tags, seen = [], set()
    for pos, wid in enumerate(enc.word_ids(0)):
        if wid is not None and wid not in seen:
            seen.add(wid)
            tags.append(labels[logits[pos].argmax().item()])
    return list(zip(words, tags))
