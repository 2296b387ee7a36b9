"""The E2E-style restaurant benchmark (data/restaurants/): reproducible, well-formed, multi-reference,
faithful by construction, with unseen names in dev/test, and described truthfully by its card.

Reads the committed files; the regeneration test rebuilds the set in a temporary folder.
Needs only the standard library and pytest (no torch), like the generator.
"""
from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "restaurants"
SPLITS = ["train", "dev", "test"]


def load_generator():
    spec = importlib.util.spec_from_file_location("make_restaurants", ROOT / "data" / "make_restaurants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mr():
    return load_generator()


@pytest.fixture(scope="module")
def data():
    return {s: [json.loads(line) for line in (DATA / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
            for s in SPLITS}


def grouped(rows):
    """input -> its references, in file order."""
    out = defaultdict(list)
    for r in rows:
        out[r["input"]].append(r["target"])
    return out


def delex(mr, row):
    rec = mr.parse_input(row["input"])
    text = row["target"]
    for k in ("name", "near", "food"):
        if k in rec:
            text = text.replace(rec[k], f"<{k}>")
    return text


# ---------------------------------------------------------------- reproducibility
def test_regenerates_byte_identically(mr, tmp_path, capsys):
    assert mr.main(["--out", str(tmp_path)]) == 0
    capsys.readouterr()
    for s in SPLITS:
        assert (tmp_path / f"{s}.jsonl").read_bytes() == (DATA / f"{s}.jsonl").read_bytes(), \
            f"data/restaurants/{s}.jsonl differs from a fresh `python data/make_restaurants.py`; rerun and commit"


def test_files_are_commit_sized():
    assert sum((DATA / f"{s}.jsonl").stat().st_size for s in SPLITS) < 2_000_000


# ---------------------------------------------------------------- format
def test_every_row_is_well_formed(mr, data):
    for split, rows in data.items():
        ids = [r["id"] for r in rows]
        assert len(set(ids)) == len(ids), f"{split}: duplicate ids"
        for r in rows:
            assert set(r) == {"id", "input", "target"}, r
            assert all(isinstance(r[k], str) and r[k] for k in r), r
            assert re.fullmatch(rf"{split}-\d{{4}}-\d", r["id"]), r["id"]
            for k in ("input", "target"):
                assert r[k] == r[k].strip() and "  " not in r[k] and not re.search(r"[\n\r\t]", r[k]), r
            assert "[" not in r["target"] and "|" not in r["target"] and r["target"].endswith("."), r
            assert 8 <= len(r["target"].split()) <= 40, r["target"]
            rec = mr.parse_input(r["input"])           # canonical key order, key[value] syntax
            assert list(rec)[0] == "name" and 3 <= len(rec) <= 8, r["input"]
            for k, v in rec.items():
                assert k == "name" or v in mr.VALUES[k], (k, v)


def test_parse_input_rejects_broken_syntax(mr):
    good = "name[Golden Fig] | eatType[pub] | area[riverside]"
    assert mr.parse_input(good) == {"name": "Golden Fig", "eatType": "pub", "area": "riverside"}
    for bad in ["name[Golden Fig] | area[riverside] | eatType[pub]",      # keys out of order
                "name[Golden Fig]|eatType[pub]", "name[Golden Fig] | colour[red]", "name Golden Fig"]:
        with pytest.raises(ValueError):
            mr.parse_input(bad)


# ---------------------------------------------------------------- references
def test_dev_and_test_inputs_have_three_to_five_distinct_adjacent_references(data):
    for split in ("dev", "test"):
        groups = grouped(data[split])
        for inp, refs in groups.items():
            assert 3 <= len(refs) <= 5, (split, inp, len(refs))
            assert len(set(refs)) == len(refs), (split, inp)
        order = [r["input"] for r in data[split]]
        starts = [i for i in range(len(order)) if i == 0 or order[i] != order[i - 1]]
        assert len(starts) == len(groups), f"{split}: references of one input are not adjacent"


def test_train_inputs_have_one_or_two_references(data):
    groups = grouped(data["train"])
    assert Counter(len(v) for v in groups.values()) == {1: 1000, 2: 1500}
    assert all(len(set(v)) == len(v) for v in groups.values())


def test_references_of_one_test_input_differ_in_wording_and_order(mr, data):
    for inp, refs in grouped(data["test"]).items():
        openings = {" ".join(delex(mr, {"input": inp, "target": t}).split()[:3]) for t in refs}
        assert len(openings) >= 2, (inp, refs)
        rec = mr.parse_input(inp)
        if len(rec) >= 4:   # order in which name, food and near are first mentioned, where present
            keys = [k for k in ("name", "food", "near", "eatType") if k in rec]
            orders = {tuple(sorted(keys, key=lambda k: t.find(rec[k]))) for t in refs}
            words = {frozenset(t.lower().split()) for t in refs}
            assert len(orders) >= 2 or len(words) == len(refs), (inp, refs)


def test_many_realisation_patterns_not_one_template_per_attribute_set(mr, data):
    train = data["train"]
    openings = Counter(" ".join(delex(mr, r).split()[:3]) for r in train)
    assert len(openings) >= 20
    by_keys = defaultdict(list)
    for r in train:
        by_keys[tuple(mr.parse_input(r["input"]))].append(delex(mr, r))
    big = {k: v for k, v in by_keys.items() if len(v) >= 15}
    assert len(big) >= 50
    for keys, texts in big.items():
        top = Counter(texts).most_common(1)[0][1]
        assert top / len(texts) <= 0.25, (keys, Counter(texts).most_common(1))


def test_every_reference_mentions_every_input_value_and_no_other(mr, data):
    for _split, rows in data.items():
        for r in rows:
            rec = mr.parse_input(r["input"])
            assert mr.missing(rec, r["target"]) == [], (r, mr.missing(rec, r["target"]))
            assert mr.extra(rec, r["target"]) == [], (r, mr.extra(rec, r["target"]))
            for k in ("name", "eatType", "food", "near"):   # these are copied verbatim, case and all
                assert k not in rec or rec[k] in r["target"], (k, r)


def test_mention_checker_flags_omissions_and_wrong_values(mr):
    inp = "name[Golden Fig] | food[Thai] | priceRange[cheap] | familyFriendly[yes] | near[Clock Tower]"
    ok = "Golden Fig is an inexpensive, kid-friendly Thai place near the Clock Tower."
    assert mr.missing(inp, ok) == [] and mr.extra(inp, ok) == []
    assert mr.missing(inp, "Golden Fig is a Thai place near the Clock Tower.") == ["priceRange", "familyFriendly"]
    negated = "Golden Fig is a cheap Thai place near the Clock Tower that is not family-friendly."
    assert mr.missing(inp, negated) == ["familyFriendly"] and mr.extra(inp, negated) == ["familyFriendly[no]"]
    assert mr.extra(inp, ok.replace("inexpensive", "expensive")) == ["priceRange[high]"]
    assert mr.missing(inp, ok.lower()) == []            # case-insensitive, for model outputs


# ---------------------------------------------------------------- split separation
def test_dev_and_test_names_never_appear_in_train(mr, data):
    names = {s: {mr.parse_input(r["input"])["name"] for r in rows} for s, rows in data.items()}
    assert not names["train"] & names["dev"] and not names["train"] & names["test"]
    assert not names["dev"] & names["test"]
    train_text = "\n".join(r["input"] + " " + r["target"] for r in data["train"])
    leaked = [n for n in sorted(names["dev"] | names["test"]) if n in train_text]
    assert leaked == []


def test_inputs_are_unique_within_each_split(data):
    for split, rows in data.items():
        groups = grouped(rows)
        assert len(groups) == {"train": 2500, "dev": 150, "test": 300}[split]


# ---------------------------------------------------------------- the card
def test_sizes_match_the_card(data):
    card = (DATA / "README.md").read_text(encoding="utf-8")
    table = {}
    for line in card.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] in SPLITS and cells[0] not in table:
            table[cells[0]] = cells
    assert set(table) == set(SPLITS), "card has no per-split size table"
    for split, rows in data.items():
        assert int(table[split][1]) == len(rows), (split, "rows")
        assert int(table[split][2]) == len(grouped(rows)), (split, "inputs")
        mean_words = sum(len(r["target"].split()) for r in rows) / len(rows)
        assert float(table[split][4]) == pytest.approx(mean_words, abs=0.05), (split, "words")
        assert int(table[split][5]) == len({r["input"].split("]")[0] for r in rows}), (split, "names")
    assert "Novikova" in card and "Apache-2.0" in card and "invented" in card
