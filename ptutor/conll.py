"""CoNLL tagging files and their encoding for a token-classification model.

A CoNLL file has one `token TAG` per line (extra middle columns, as in CoNLL-2003's `token POS CHUNK TAG`, are
allowed and ignored) and a blank line between sentences. `read_conll(path)` checks tags against CoNLL-2003's BIO set
(PER/ORG/LOC/MISC); `read_conll(path, labels=None)` takes any BIO tag, and `ner_labels(sentences)` gives the label
set a file uses (WNUT-17's six types go through the same code). `encode_ner` tokenises pre-split words and puts
each word's tag on its first sub-word.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .batches import IGNORE_INDEX
from .jsonl import text_lines

NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


class ConllFormatError(ValueError):
    """A CoNLL file that cannot be read; the message names the file and line."""


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]

    def __post_init__(self):
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.tags)} tags: {self.tokens}")


def is_bio_tag(tag: str) -> bool:
    """`O`, or `B-TYPE` / `I-TYPE` with a non-empty type."""
    return tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-"))


def ner_labels(sentences: list[Sentence]) -> list[str]:
    """The label list of tagged sentences: "O", then B-/I- for each entity type, types sorted by name.

    CoNLL-2003's tag set keeps its conventional order (NER_LABELS), so label ids match its files and models."""
    types = sorted({t[2:] for s in sentences for t in s.tags if t != "O"})
    if set(types) <= {l[2:] for l in NER_LABELS if l != "O"}:
        return list(NER_LABELS)
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def read_conll(path: str | os.PathLike, labels: list[str] | None = NER_LABELS, *, unknown_tag_fix: str | None = None
               ) -> list[Sentence]:
    """Read sentences from a CoNLL file; errors say which line is wrong and why.

    Tags must be in `labels` (default: CoNLL-2003's nine); `labels=None` accepts any BIO tag. `unknown_tag_fix` is
    what the error for a tag outside `labels` tells the reader to do (default: how to call this function)."""
    known = set(labels) if labels is not None else None
    sentences, tokens, tags = [], [], []
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CoNLL file not found: {path}")
    for lineno, raw in text_lines(path):
        line = raw.strip()
        if not line or line.startswith("-DOCSTART-"):
            if tokens:
                sentences.append(Sentence(tokens, tags))
                tokens, tags = [], []
            continue
        fields = line.split()
        if len(fields) < 2:
            raise ConllFormatError(
                f"{path}:{lineno}: expected 'token TAG' (whitespace-separated), got {line!r}. "
                "Every non-blank line needs a token and a tag; sentences are separated by blank lines.")
        tag = fields[-1]
        if known is None and not is_bio_tag(tag):
            raise ConllFormatError(
                f"{path}:{lineno}: tag {tag!r} for token {fields[0]!r} is not a BIO tag (O, B-TYPE or I-TYPE). "
                "Convert the file to BIO tags.")
        if known is not None and tag not in known:
            raise ConllFormatError(
                f"{path}:{lineno}: unknown tag {tag!r} for token {fields[0]!r}. Known tags: {', '.join(labels)}. "
                + (unknown_tag_fix or "Pass labels=[...] (or labels=None for any BIO tag) to read_conll if your file "
                   "uses another tag set."))
        tokens.append(fields[0])
        tags.append(tag)
    if tokens:
        sentences.append(Sentence(tokens, tags))
    if not sentences:
        raise ConllFormatError(f"{path}: no sentences found (empty file?)")
    return sentences


def entity_spans(sentence: Sentence) -> list[tuple[int, int, str]]:
    """(first word, one past the last word, type) of every B-/I- span of a sentence: what seqeval counts as one
    entity."""
    spans, i, tags = [], 0, sentence.tags
    while i < len(tags):
        if tags[i].startswith("B-"):
            kind, j = tags[i][2:], i + 1
            while j < len(tags) and tags[j] == "I-" + kind:
                j += 1
            spans.append((i, j, kind))
            i = j
        else:
            i += 1
    return spans


def entity_mentions(sentences: list[Sentence]) -> list[tuple[str, str]]:
    """(words joined by spaces, type) of every entity span of the sentences, in order."""
    return [(" ".join(s.tokens[i:j]), kind) for s in sentences for i, j, kind in entity_spans(s)]


def write_conll(sentences: list[Sentence], path: str | os.PathLike) -> None:
    """Write `token TAG` lines with a blank line after each sentence."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for s in sentences:
            for token, tag in zip(s.tokens, s.tags):
                if not token or any(c.isspace() for c in token):
                    raise ValueError(f"token {token!r} is empty or has white space: CoNLL cannot store it")
                f.write(f"{token} {tag}\n")
            f.write("\n")


def to_dataset(sentences: list[Sentence], labels: list[str] = NER_LABELS):
    """A `datasets.Dataset` with columns tokens (list[str]) and ner_tags (list[int])."""
    from datasets import Dataset

    index = {l: i for i, l in enumerate(labels)}
    return Dataset.from_dict({"tokens": [s.tokens for s in sentences],
                              "ner_tags": [[index[t] for t in s.tags] for s in sentences]})


def align_labels(word_ids: list[int | None], word_tags: list[int], *, all_subwords: bool = False) -> list[int]:
    """Give each sub-word the label of its word.

    Only the first sub-word of a word carries the label (the rest get IGNORE_INDEX)
    unless `all_subwords`; special tokens ([CLS], [SEP], pads) always get IGNORE_INDEX.
    `word_ids` comes from a fast tokenizer: `encoding.word_ids(i)`.
    """
    out, previous = [], None
    for wid in word_ids:
        if wid is None:
            out.append(IGNORE_INDEX)
        elif wid != previous or all_subwords:
            out.append(word_tags[wid])
        else:
            out.append(IGNORE_INDEX)
        previous = wid
    return out


def visible_words(sentences: list[list[str]], tokenizer) -> list[list[str]]:
    """The sentences' words, with each word that the tokenizer turns into no sub-word at all (e.g. a lone emoji
    variation selector U+FE0F, common in social-media text) replaced by the unknown token, so every word keeps a
    position and its tag: otherwise the tags after it would shift onto the wrong words."""
    unique = list(dict.fromkeys(w for words in sentences for w in words))
    pieces = tokenizer(unique, add_special_tokens=False)["input_ids"] if unique else []
    empty = {w for w, p in zip(unique, pieces) if not p}
    return [[tokenizer.unk_token if w in empty else w for w in words] for words in sentences]


def spaces_start_words(tokenizer) -> bool:
    """Does the tokenizer read a word's leading space as part of the word (byte-level BPE: GPT-2, Llama 3,
    SmolLM2)? Then pre-split words must get their spaces back, or the model sees `R` `overs` where pretraining
    showed it ` Rovers` (chapter 0, common mistakes). WordPiece (BERT) splits on spaces and needs none."""
    split = tokenizer(["a", "b"], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    return split != tokenizer("a b", add_special_tokens=False)["input_ids"]


def model_words(sentences: list[list[str]], tokenizer) -> list[list[str]]:
    """The words as the tokenizer should see them: `visible_words`, and every word but the first with its
    leading space where the tokenizer needs one (`spaces_start_words`). `word_ids()` still maps pieces to words."""
    sentences = visible_words(sentences, tokenizer)
    if not spaces_start_words(tokenizer):
        return sentences
    return [[w if k == 0 else " " + w for k, w in enumerate(words)] for words in sentences]


def encode_ner(sentences: list[Sentence], tokenizer, labels: list[str] = NER_LABELS, max_length: int = 128) -> list[dict]:
    """Tokenise pre-split words (`model_words`) and align tags; one dict of python lists per sentence."""
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("encode_ner needs a fast tokenizer (word_ids() comes from the Rust tokenizers library)")
    index = {l: i for i, l in enumerate(labels)}
    enc = tokenizer(model_words([s.tokens for s in sentences], tokenizer), is_split_into_words=True, truncation=True,
                    max_length=max_length)
    rows = []
    for i, s in enumerate(sentences):
        tags = [index[t] for t in s.tags]
        rows.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                     "labels": align_labels(enc.word_ids(i), tags)})
    return rows


def alignment_table(sentence: Sentence, tokenizer, labels: list[str] = NER_LABELS) -> str:
    """A text table of sub-words, the word each came from, and the label the model is trained on."""
    row = encode_ner([sentence], tokenizer, labels)[0]
    enc = tokenizer(model_words([sentence.tokens], tokenizer)[0], is_split_into_words=True, truncation=True)
    pieces = tokenizer.convert_ids_to_tokens(row["input_ids"])
    lines = [f"{'sub-word':<16}{'word':<16}label"]
    for piece, wid, lab in zip(pieces, enc.word_ids(), row["labels"]):
        word = sentence.tokens[wid] if wid is not None else "-"
        lines.append(f"{piece:<16}{word:<16}{labels[lab] if lab != IGNORE_INDEX else '(ignored: -100)'}")
    return "\n".join(lines)
