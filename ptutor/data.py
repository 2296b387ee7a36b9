"""Data in and out: CoNLL tagging files, JSON-lines logs, the book's two real data sets, batches.

A CoNLL file has one `token TAG` per line (extra middle columns, as in CoNLL-2003's
`token POS CHUNK TAG`, are allowed and ignored) and a blank line between sentences.
`read_conll(path)` checks tags against CoNLL-2003's BIO set (PER/ORG/LOC/MISC);
`read_conll(path, labels=None)` takes any BIO tag, and `ner_labels(sentences)` gives the label
set a file uses (WNUT-17's six types go through the same code).

The real data sets (see data/e2e/README.md and data/wnut17/README.md): `read_e2e_csv` and
`split_by_input` cut E2E's development set into train/dev/test by input; `load_e2e_hub` and
`load_wnut17_hub` fetch the full sets from the Hugging Face hub (GPU cells; needs a network).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
IGNORE_INDEX = -100  # label id that cross-entropy skips (special tokens, later sub-words, pads)


def text_lines(path: str | os.PathLike):
    """Yield (line number, line) of a UTF-8 text file; a line that is not UTF-8 is an error naming file and line."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: not UTF-8 text ({e.reason} at byte {e.start} of the line): is this "
                                 "the right file? Save it as UTF-8.") from None


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


def read_conll(path: str | os.PathLike, labels: list[str] | None = NER_LABELS) -> list[Sentence]:
    """Read sentences from a CoNLL file; errors say which line is wrong and why.

    Tags must be in `labels` (default: CoNLL-2003's nine); `labels=None` accepts any BIO tag."""
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
                "Pass labels=[...] (or labels=None for any BIO tag) to read_conll if your file uses another "
                "tag set.")
        tokens.append(fields[0])
        tags.append(tag)
    if tokens:
        sentences.append(Sentence(tokens, tags))
    if not sentences:
        raise ConllFormatError(f"{path}: no sentences found (empty file?)")
    return sentences


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


def load_conll2003_hub(hub_id: str = "eriktks/conll2003", revision: str | None = "refs/convert/parquet"):
    """CoNLL-2003 from the Hugging Face hub (needs a network) as {split: list[Sentence]}.

    `eriktks/conll2003` is a script dataset, which `datasets` 4+ refuses to run; the hub's
    automatic parquet export of it (revision "refs/convert/parquet") loads with no script.
    Tag ids follow NER_LABELS' order there; we check the names when the files carry them.
    """
    from datasets import load_dataset

    ds = load_dataset(hub_id, revision=revision) if revision else load_dataset(hub_id)
    feature = ds["train"].features["ner_tags"].feature
    names = getattr(feature, "names", None) or NER_LABELS  # plain ints: the dataset card's order, NER_LABELS
    if sorted(names) != sorted(NER_LABELS):
        raise ValueError(f"{hub_id} uses tags {names}, expected {NER_LABELS}")
    return {split: [Sentence(list(r["tokens"]), [names[i] for i in r["ner_tags"]]) for r in ds[split]]
            for split in ds}


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


PAD_VALUES = {"attention_mask": 0, "labels": IGNORE_INDEX, "token_type_ids": 0}


def collate(rows: list[dict], pad_id: int = 0) -> dict:
    """Right-pad a list of encoded rows into tensors (labels padded with IGNORE_INDEX).

    Every key of the rows is kept: per-token lists are padded (input_ids with pad_id, other
    keys with PAD_VALUES or 0), per-row numbers become a 1-d tensor, anything else (e.g. an
    adapter name per row, for methods that route rows) stays a list.
    """
    batch = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if isinstance(values[0], list):  # each key to its own longest row (an encoder-decoder's labels differ)
            width = max(len(v) for v in values)
            fill = pad_id if key == "input_ids" else PAD_VALUES.get(key, 0)
            batch[key] = torch.tensor([v + [fill] * (width - len(v)) for v in values])
        elif isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch


def batches(rows: list[dict], batch_size: int, *, pad_id: int = 0, shuffle: bool = False, seed: int = 0):
    """Yield collated batches; with shuffle, a new seeded order each epoch (endless).

    Shuffled batches are all full (the last partial batch of an epoch is dropped), except
    when there are fewer rows than `batch_size`: then every batch is all the rows.
    """
    if not rows:
        raise ValueError("no rows to batch: the data set is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not shuffle:
        for i in range(0, len(rows), batch_size):
            yield collate(rows[i:i + batch_size], pad_id)
        return
    g = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(rows))
    while True:
        order = torch.randperm(len(rows), generator=g).tolist()
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield collate([rows[j] for j in order[i:i + batch_size]], pad_id)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """One dict per non-blank line; a broken line is an error that names the file and line."""
    rows = []
    for n, line in text_lines(path):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not a JSON line ({e})") from None
    return rows


def write_jsonl(rows: list[dict], path: str | os.PathLike) -> None:
    """Write rows as JSON lines (keys sorted, UTF-8), replacing the file; `append_jsonl` adds to a log."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


def append_jsonl(row: dict, path: str | os.PathLike) -> None:
    """Add one line to a JSON-lines log (e.g. a results log), creating its folder if needed. The line is
    written under an exclusive lock where the OS has one, so parallel runs sharing a log never interleave."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        try:
            import fcntl
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        except ImportError:  # Windows: no flock; a single short write is still one append
            pass
        f.write(json.dumps(row) + "\n")


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


# --- the book's real data sets -----------------------------------------------------------------------

def e2e_input(mr: str) -> str:
    """An E2E meaning representation as the book's record line: `name[X], food[Y]` -> `name[X] | food[Y]`."""
    pairs = re.findall(r"\s*([^,\[\]]+?)\s*\[([^\]]*)\]", mr)
    if not pairs:
        raise ValueError(f"not an E2E meaning representation (attribute[value], ...): {mr!r}")
    return " | ".join(f"{k}[{v}]" for k, v in pairs)


def e2e_values(mr: str) -> dict[str, str]:
    """The attribute -> value pairs of an E2E meaning representation (either separator, `, ` or ` | `)."""
    return dict(re.findall(r"\s*([^,|\[\]]+?)\s*\[([^\]]*)\]", mr))


def read_e2e_csv(path: str | os.PathLike) -> list[dict]:
    """Rows {"mr", "ref"} of an E2E CSV file (trainset.csv, devset.csv, testset_w_refs.csv)."""
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"mr", "ref"} <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: an E2E CSV has the columns mr and ref; found {reader.fieldnames}")
        return [{"mr": r["mr"], "ref": r["ref"]} for r in reader]


def split_by_input(rows: list[dict], key: str, sizes: dict[str, int], seed: int = 0) -> dict[str, list[dict]]:
    """Cut rows into splits by input (`row[key]`), never by row: every reference of one input lands in one
    split, so no input is both trained on and scored. `sizes` gives the number of inputs of every split but
    one, whose size is None (it takes the rest), e.g. {"test": 100, "dev": 50, "train": None}."""
    inputs = list(dict.fromkeys(r[key] for r in rows))
    rest = [name for name, n in sizes.items() if n is None]
    if len(rest) != 1:
        raise ValueError(f"exactly one split takes the remaining inputs (size None); got {sizes}")
    if sum(n for n in sizes.values() if n) >= len(inputs):
        raise ValueError(f"{len(inputs)} distinct inputs cannot fill {sizes} and leave some for {rest[0]!r}")
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed)).tolist()
    assigned, start = {}, 0
    for name, n in sizes.items():
        if n is not None:
            assigned.update({inputs[i]: name for i in order[start:start + n]})
            start += n
    return {name: [r for r in rows if assigned.get(r[key], rest[0]) == name] for name in sizes}


def load_e2e_hub(hub_id: str = "tuetschek/e2e_nlg", revision: str | None = "refs/convert/parquet") -> dict:
    """The full E2E data (42k training pairs) from the Hugging Face hub (needs a network), as
    {split: [{"input", "target"}]}: the rows the `gen` task reads. The hub's parquet export loads with no script."""
    from datasets import load_dataset

    ds = load_dataset(hub_id, revision=revision) if revision else load_dataset(hub_id)
    return {split: [{"input": e2e_input(r["meaning_representation"]), "target": r["human_reference"]}
                    for r in ds[split]] for split in ds}


WNUT17_LABELS = ["O"] + [f"{p}-{t}" for t in ("corporation", "creative-work", "group", "location", "person",
                                             "product") for p in ("B", "I")]


def load_wnut17_hub(hub_id: str = "leondz/wnut_17", revision: str | None = "refs/convert/parquet") -> dict:
    """WNUT-17 from the Hugging Face hub (needs a network) as {split: list[Sentence]}; the same sentences as
    data/wnut17. Tag ids follow the hub's order, which is WNUT17_LABELS; names are checked where present."""
    from datasets import load_dataset

    ds = load_dataset(hub_id, revision=revision) if revision else load_dataset(hub_id)
    names = getattr(ds["train"].features["ner_tags"].feature, "names", None) or WNUT17_LABELS
    if list(names) != WNUT17_LABELS:
        raise ValueError(f"{hub_id} uses tags {names}, expected {WNUT17_LABELS}")
    return {split: [Sentence(list(r["tokens"]), [names[i] for i in r["ner_tags"]]) for r in ds[split]]
            for split in ds}
