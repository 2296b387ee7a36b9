"""The project's own data sets (data/ner, data/d2t): reproducible, well-formed, and hard enough.

Everything here reads the committed files; the regeneration tests rebuild both sets in a
temporary folder and compare bytes.
"""
from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import pytest

from ptutor.data import read_conll, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
NER_DIR, D2T_DIR = ROOT / "data" / "ner", ROOT / "data" / "d2t"
NER_FILES = ["train.conll", "dev.conll", "test.conll", "README.md"]
D2T_FILES = ["train.jsonl", "dev.jsonl", "test.jsonl", "README.md"]
SPLITS = ["train", "dev", "test"]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "data" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ner():
    return {split: read_conll(NER_DIR / f"{split}.conll") for split in SPLITS}


@pytest.fixture(scope="module")
def d2t():
    return {split: read_jsonl(D2T_DIR / f"{split}.jsonl") for split in SPLITS}


def entities(sentence):
    """(type, text) of each entity in a BIO-tagged sentence."""
    out, current = [], None
    for tok, tag in zip(sentence.tokens, sentence.tags):
        if tag.startswith("I-") and current:
            current[1].append(tok)
            continue
        if current:
            out.append((current[0], " ".join(current[1])))
            current = None
        if tag.startswith("B-"):
            current = (tag[2:], [tok])
    if current:
        out.append((current[0], " ".join(current[1])))
    return out


def card_rows(path: Path) -> dict[str, list[str]]:
    """The cells of the card's per-split count table, keyed by split."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in SPLITS and cells[0] not in rows:
            rows[cells[0]] = cells[1:]
    return rows


# ---------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("script,folder,files", [("make_ner", NER_DIR, NER_FILES), ("make_d2t", D2T_DIR, D2T_FILES)])
def test_regenerates_byte_identically(script, folder, files, tmp_path, capsys):
    load_script(script).main(["--out", str(tmp_path)])
    print(capsys.readouterr().out)
    for name in files:
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), \
            f"{folder / name} differs from a fresh `python data/{script}.py`; rerun it and commit the result"


# ---------------------------------------------------------------- NER
def test_ner_sizes_and_card(ner):
    assert {s: len(v) for s, v in ner.items()} == {"train": 3000, "dev": 500, "test": 1000}
    card = card_rows(NER_DIR / "README.md")
    for split, sents in ner.items():
        ents = [e for s in sents for e in entities(s)]
        types = Counter(t for t, _ in ents)
        expected = [len(sents), sum(len(s.tokens) for s in sents), len(ents),
                    types["PER"], types["ORG"], types["LOC"], types["MISC"]]
        assert [int(c) for c in card[split][:7]] == expected, f"card counts for {split} are stale"
        assert all(types[t] > 0.1 * len(ents) for t in ("PER", "ORG", "LOC", "MISC"))


def test_ner_tokens_and_bio(ner):
    for split, sents in ner.items():
        lengths = [len(s.tokens) for s in sents]
        assert sum(8 <= n <= 35 for n in lengths) / len(lengths) > 0.85, split
        assert sum(not entities(s) for s in sents) > 0, "some sentences should have no entity"
        assert sum(len(entities(s)) >= 2 for s in sents) > 0.5 * len(sents), "most sentences: several entities"
        for s in sents:
            assert all(t and not any(c.isspace() for c in t) for t in s.tokens)
            previous = "O"
            for tag in s.tags:
                if tag.startswith("I-"):
                    assert previous != "O" and previous[2:] == tag[2:], f"bad BIO {s.tags} in {s.tokens}"
                previous = tag
        assert any(t.startswith("I-") for s in sents for t in s.tags), "multi-token entities expected"


def test_ner_ambiguous_strings_have_several_types_in_train(ner):
    ambiguous = load_script("make_ner").AMBIGUOUS
    assert {"Jordan", "Washington", "Paris", "Ford", "Apple", "Amazon", "Chelsea", "Lincoln", "Georgia"} <= set(ambiguous)
    types = {w: Counter() for w in ambiguous}
    for s in ner["train"]:
        for tok, tag in zip(s.tokens, s.tags):
            if tok in types:
                types[tok][tag[2:] if tag != "O" else "O"] += 1
    for w, c in types.items():
        assert len(c) >= 2 and sorted(c.values())[-2] >= 2, f"{w} only as {dict(c)} in train"
    # capitalised non-entities at the start of sentences
    assert any(s.tokens[0] in ("Apple", "Orange", "Shell") and s.tags[0] == "O" for s in ner["train"])


def test_ner_test_entities_mostly_unseen(ner):
    train = {text for s in ner["train"] for _, text in entities(s)}
    test = [text for s in ner["test"] for _, text in entities(s)]
    unseen = sum(text not in train for text in test) / len(test)
    print(f"test entity mentions unseen in train: {unseen:.1%}")
    assert unseen >= 0.5


def test_ner_train_lookup_baseline_is_far_from_solving_it(ner):
    from seqeval.metrics import f1_score

    counts: dict[str, Counter] = {}
    for s in ner["train"]:
        for tok, tag in zip(s.tokens, s.tags):
            counts.setdefault(tok, Counter())[tag] += 1
    pred = [[counts[t].most_common(1)[0][0] if t in counts else "O" for t in s.tokens] for s in ner["test"]]
    f1 = f1_score([s.tags for s in ner["test"]], pred)
    print(f"train-lookup baseline entity F1 on test: {f1:.3f}")
    assert f1 < 0.7


# ---------------------------------------------------------------- data-to-text
def test_d2t_rows(d2t):
    assert {s: len(v) for s, v in d2t.items()} == {"train": 2000, "dev": 200, "test": 200}
    card = card_rows(D2T_DIR / "README.md")
    for split, rows in d2t.items():
        assert int(card[split][0]) == len(rows)
        assert len({r["id"] for r in rows}) == len(rows)
        for r in rows:
            assert set(r) == {"id", "type", "fields", "record", "text", "input", "target"}
            assert (r["input"], r["target"]) == (r["record"], r["text"])  # what the runner's gen task reads
            assert 3 <= len(r["fields"]) <= 4
            assert dict(kv.split(": ", 1) for kv in r["record"].split(" | ")) == r["fields"]
            for value in r["fields"].values():
                assert value in r["text"], f"{r['id']}: {value!r} missing from {r['text']!r}"


def test_d2t_templates_vary_per_type(d2t):
    for kind in {r["type"] for r in d2t["train"]}:
        shapes = {r["text"].replace(r["fields"]["name"], "#")[:12] for r in d2t["train"] if r["type"] == kind}
        assert len(shapes) >= 2, f"{kind}: only one sentence pattern"


def test_d2t_test_names_unseen_in_train(d2t):
    train_names = {r["fields"]["name"] for r in d2t["train"]}
    train_words = set()  # every run of 1-3 words in train records and texts
    for r in d2t["train"]:
        for line in (r["record"], r["text"]):
            words = re.findall(r"\w+", line)
            train_words |= {" ".join(words[i:i + n]) for n in (1, 2, 3) for i in range(len(words) - n + 1)}
    for split in ("dev", "test"):
        for r in d2t[split]:
            name = r["fields"]["name"]
            assert name not in train_names
            assert " ".join(re.findall(r"\w+", name)) not in train_words, f"{split} name {name} occurs in train"
