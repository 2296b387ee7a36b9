"""Build ptutor's small data-to-text set (data/d2t/) and its dataset card.

    python data/make_d2t.py                 # rewrites data/d2t/ byte-identically
    python data/make_d2t.py --seed 7 --out /tmp/d2t

Each row turns a short record about an invented town, person, product or restaurant
into one English sentence, e.g.

    name: Varnholm | country: Norway | population: 42,000 | river: Lysa
    -> Varnholm is a town in Norway on the river Lysa, home to 42,000 people.

Every field value appears verbatim in the sentence, so "did the model mention each
value?" (slot coverage) is a simple, exact metric. Each record type has a few sentence
templates, picked at random, so the target is learnable but not one fixed string.
Names in dev and test come from pools train never uses.
"""
from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ptutor.data import write_jsonl  # noqa: E402

SEED = 2604
SIZES = {"train": 2000, "dev": 200, "test": 200}
TYPES = ["town", "person", "product", "restaurant"]

# ---------------------------------------------------------------- word lists
TOWN_HEADS = """Varn Ask Bjel Dor Ebb Fal Grim Hov Isel Jar Kvel Lom Mork Nes Olm Pryd Rask Skel
Tov Ulf Vik Yst Brom Dal Fjel Gund Hald Kors Lyng Mos Rond Sand Trev Aur Bryn Elv Haug Kil Ors Tjor""".split()
TOWN_TAILS = "holm by stad vik dal heim berg nes sund fjord mark lund rud sted vang torp hamn stein voll eng".split()
COUNTRIES = ["Norway", "Sweden", "Denmark", "Finland", "Iceland", "Estonia", "Latvia", "Poland",
             "Scotland", "Ireland", "Canada", "Chile", "Austria", "Slovenia", "Portugal", "Greece"]
RIVERS = """Lysa Orva Tamsel Karro Ulme Druna Vessa Brenn Ystra Mirel Solvy Aune Pella Riska Ganne
Toska Varne Lumme Idra Nolle""".split()

FIRST_NAMES = """Ilse Tomas Ada Rune Mira Henrik Sofia Jonas Lea Emil Nora Aksel Iris Oskar Maja Felix
Vera Leon Alva Hugo Elin Milo Freja Anton Saga Linus Ella Viggo Tuva Otto""".split()
SURNAMES = """Marrow Lindgren Falk Ostberg Halden Vinter Sundqvist Brekke Aas Moberg Dahl Kvist
Ekland Torvik Nyland Rask Holmen Bergvall Strand Lidell Soltun Hagen Vassbotn Eide Fossum Krogh
Lunde Nesheim Rye Tveit Berger Almquist Fagerlund Grahn Hedlund Ivarsson Jernberg Kallberg Lofgren
Malmsten Norell Ohlin Palmqvist Ringdahl Sjoberg Thoren Uddholm Wahlin Akerlund Borg""".split()
OCCUPATIONS = ["painter", "architect", "novelist", "composer", "chemist", "engineer", "photographer",
               "cellist", "historian", "sculptor", "astronomer", "economist", "poet", "film director",
               "marine biologist", "stage designer"]
BIRTHPLACES = ["Bergen", "Uppsala", "Aarhus", "Tampere", "Tartu", "Gdansk", "Cork", "Galway",
               "Graz", "Porto", "Valparaiso", "Halifax", "Reykjavik", "Ljubljana", "Malmo", "Turku"]

BRANDS = """Velto Orvik Nimbra Qalo Zentra Lumio Corvex Braxa Tessly Kinno Vantor Pyxa Drello Solin
Fennix Haldor Ixora Jorvo Kestra Mavra Nordo Oxley Rivo Tolvi Ulix Vexa Wyra Zirco Altra Borea
Cirra Dyna Elvo Frisk Glimt Hexa Inko Jura Kvarts Lykt""".split()
MODELS = "T3 X9 S7 Aero Mini Pro Go Lite One Max Neo Air Flex K2 R5 Duo Nova Edge".split()
CATEGORIES = ["coffee grinder", "electric kettle", "bicycle lamp", "desk fan", "rice cooker",
              "smartwatch", "camping stove", "e-reader", "hair dryer", "toaster", "water filter",
              "label printer"]
MAKERS = ["Harwick", "Nordlys Appliances", "Brightwell", "Kalmar Works", "Fjordline Electric",
          "Osterlund", "Tindra Labs", "Greyhaven", "Selvik Design", "Aurora Home"]

REST_ADJ = """Copper Blue Golden Silver Green Red Old Little Wild Quiet Lucky Crooked Salty Rusty
Hidden Brave Sleepy Bright Velvet Iron Amber Crimson Humble Merry Misty Olive Pearl Scarlet""".split()
REST_NOUNS = """Kettle Heron Lantern Anchor Fox Spoon Harbour Otter Barrel Pepper Oak Garden Table
Compass Kitchen Lighthouse Fig Mill Raven Ladle Saffron Teapot Willow Cellar Orchard Wren""".split()
FOODS = ["Thai", "Italian", "Greek", "Japanese", "Mexican", "Indian", "Lebanese", "Ethiopian",
         "Korean", "Turkish", "Vietnamese", "Peruvian", "Nordic", "Georgian"]
AREAS = ["city centre", "old town", "harbour district", "riverside", "university quarter",
         "market square", "railway station area", "north end"]

# ---------------------------------------------------------------- record types
FIELDS = {
    "town": ["name", "country", "population", "river"],
    "person": ["name", "occupation", "birthplace", "born"],
    "product": ["name", "category", "maker", "price"],
    "restaurant": ["name", "food", "area"],
}
TEMPLATES = {
    "town": [
        "{name} is a town in {country} on the river {river}, home to {population} people.",
        "{name} lies on the river {river} in {country} and has a population of {population}.",
        "With {population} inhabitants, {name} sits on the river {river} in {country}.",
    ],
    "person": [
        "{name} is {a} {occupation} who was born in {birthplace} in {born}.",
        "Born in {birthplace} in {born}, {name} became {a} {occupation}.",
        "The {occupation} {name} was born in {born} in {birthplace}.",
    ],
    "product": [
        "The {name} is {a} {category} made by {maker} and sold for {price}.",
        "{maker} makes the {name}, {a} {category} that costs {price}.",
        "Priced at {price}, the {name} is {a} {category} from {maker}.",
    ],
    "restaurant": [
        "{name} is {a} {food} restaurant in the {area}.",
        "In the {area}, {name} serves {food} food.",
        "{name} serves {food} dishes in the {area}.",
    ],
}
ARTICLE_KEY = {"person": "occupation", "product": "category", "restaurant": "food"}


def article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


class Names:
    """Disjoint name pools for train, dev and test, one per record type."""

    def __init__(self, rng: random.Random):
        shares = {"train": 0.8, "dev": 0.1, "test": 0.1}

        def split(items):
            items = list(items)
            rng.shuffle(items)
            out, start = {}, 0
            for i, (name, share) in enumerate(shares.items()):
                end = len(items) if i == len(shares) - 1 else start + round(len(items) * share)
                out[name], start = items[start:end], end
            return out

        taken = set(FIRST_NAMES + SURNAMES + RIVERS + BIRTHPLACES + BRANDS + MAKERS)  # only for lookups
        self.towns = split(h + t for h in TOWN_HEADS for t in TOWN_TAILS if h + t not in taken)
        self.surnames = split(SURNAMES)
        self.brands = split(BRANDS)
        self.restaurants = split(f"{a} {n}" for a in REST_ADJ for n in REST_NOUNS)


def make_fields(kind: str, split: str, names: Names, rng: random.Random, used: set[str]) -> dict[str, str]:
    """A record of the given type whose name is new (not in `used`) and from the split's pool."""
    for _ in range(1000):
        if kind == "town":
            name = rng.choice(names.towns[split])
        elif kind == "person":
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(names.surnames[split])}"
        elif kind == "product":
            name = f"{rng.choice(names.brands[split])} {rng.choice(MODELS)}"
        else:
            name = rng.choice(names.restaurants[split])
        if name not in used:
            break
    else:
        raise RuntimeError(f"ran out of {kind} names for {split}; enlarge the word lists")
    used.add(name)
    if kind == "town":
        return {"name": name, "country": rng.choice(COUNTRIES),
                "population": f"{rng.randint(12, 4800) * 100:,}", "river": rng.choice(RIVERS)}
    if kind == "person":
        return {"name": name, "occupation": rng.choice(OCCUPATIONS), "birthplace": rng.choice(BIRTHPLACES),
                "born": str(rng.randint(1921, 1999))}
    if kind == "product":
        return {"name": name, "category": rng.choice(CATEGORIES), "maker": rng.choice(MAKERS),
                "price": f"{rng.randint(9, 399)} euros"}
    return {"name": name, "food": rng.choice(FOODS), "area": rng.choice(AREAS)}


def make_row(kind: str, fields: dict[str, str], rng: random.Random, row_id: str) -> dict:
    record = " | ".join(f"{k}: {fields[k]}" for k in FIELDS[kind])
    template = rng.choice(TEMPLATES[kind])
    extra = {"a": article(fields[ARTICLE_KEY[kind]])} if kind in ARTICLE_KEY else {}
    text = template.format(**fields, **extra)
    text = text[0].upper() + text[1:]
    # input/target repeat record/text under the names the runner's `gen` task reads
    return {"id": row_id, "type": kind, "fields": fields, "record": record, "text": text, "input": record,
            "target": text}


def build(seed: int = SEED) -> dict[str, list[dict]]:
    names = Names(random.Random(seed))
    splits = {}
    for k, split in enumerate(SIZES):
        rng = random.Random(seed * 100 + k + 1)
        kinds = [TYPES[i % len(TYPES)] for i in range(SIZES[split])]
        rng.shuffle(kinds)
        used: set[str] = set()
        splits[split] = [make_row(kind, make_fields(kind, split, names, rng, used), rng, f"{split}-{i:04d}")
                         for i, kind in enumerate(kinds)]
    check(splits)
    return splits


def slot_coverage(fields: dict[str, str], text: str) -> float:
    """Fraction of field values that occur verbatim in `text` (the metric the card suggests)."""
    return sum(v in text for v in fields.values()) / len(fields)


def word_ngrams(text: str, n_max: int = 3) -> set[str]:
    words = re.findall(r"\w+", text)
    return {" ".join(words[i:i + n]) for n in range(1, n_max + 1) for i in range(len(words) - n + 1)}


def names_leaking(rows: list[dict], train: list[dict]) -> list[str]:
    """Names of `rows` that occur as whole words anywhere in a train record or text."""
    seen = set().union(*(word_ngrams(r["record"] + " \n " + r["text"]) for r in train))
    return [r["fields"]["name"] for r in rows if " ".join(re.findall(r"\w+", r["fields"]["name"])) in seen]


def check(splits: dict[str, list[dict]]) -> None:
    for split, rows in splits.items():
        for r in rows:
            if slot_coverage(r["fields"], r["text"]) < 1:
                raise AssertionError(f"{r['id']}: a field value is missing from {r['text']!r}")
        if split != "train" and (leaks := names_leaking(rows, splits["train"])):
            raise AssertionError(f"{split} names found in train: {leaks[:5]}")


def card(splits: dict[str, list[dict]], seed: int) -> str:
    counts = {s: Counter(r["type"] for r in rows) for s, rows in splits.items()}
    rows = "\n".join(f"| {s} | {len(splits[s])} | " + " | ".join(str(counts[s][t]) for t in TYPES) + " |"
                     for s in splits)
    fields = "\n".join(f"| {t} | {', '.join(FIELDS[t])} | {len(TEMPLATES[t])} |" for t in TYPES)
    examples = "\n".join(
        f"    {next(r for r in splits['train'] if r['type'] == t)['record']}\n"
        f"    -> {next(r for r in splits['train'] if r['type'] == t)['text']}\n" for t in TYPES)
    words = [len(r["text"].split()) for rows_ in splits.values() for r in rows_]
    return f"""# ptutor-d2t: a small data-to-text set

**A demonstration set.** The book generated it so that demonstrations run in seconds and tests are exact; no reading, guide
row or verdict of the book rests on it (`book/protocol.md`): the comparisons stand on the real WNUT-17 and E2E data.

One short record in, one English sentence out. Written for the causal-LM chapters of the
ptutor book, where a 135M-parameter model (SmolLM2-135M) is prompt- or prefix-tuned on a
CPU: the task is small and regular enough to learn in a few hundred steps, yet each
record type has several sentence templates, so the model has to learn to express the
fields rather than copy one fixed pattern.

## Files and format

`train.jsonl`, `dev.jsonl`, `test.jsonl`: one JSON object per line (UTF-8, keys sorted),
read with `ptutor.data.read_jsonl(path)`:

- `id`: e.g. `train-0000`;
- `type`: one of {', '.join(TYPES)};
- `fields`: the record as a dict of strings;
- `record`: the same fields as one line, `key: value | key: value`, in a fixed order per type;
- `text`: the target sentence;
- `input`, `target`: the same as `record` and `text`, under the names that the experiment
  runner's `gen` task reads (`python -m ptutor.experiments gen ...`).

| split | rows | {' | '.join(TYPES)} |
|---|---|{'---|' * len(TYPES)}
{rows}

| type | fields (in `record` order) | templates |
|---|---|---|
{fields}

Sentences are {min(words)}-{max(words)} words long. Examples from train:

{examples}
All names (towns, people, products, restaurants) are invented. Countries, rivers, birth
places, occupations and so on are shared by all splits, but the `name` of every dev and
test record comes from a pool that train never uses, and no dev or test name occurs as a
word anywhere in train. A name is never reused within a split.

## Suggested metrics

- **Slot coverage**: the fraction of field values that occur verbatim (case-sensitive
  substring) in the generated sentence, averaged over records. Every reference sentence
  scores 1.0. `sum(v in text for v in fields.values()) / len(fields)`.
- **Exact match** with the reference sentence. Because the template is drawn at random
  from {len(TEMPLATES['town'])} per type, even a perfect model matches the reference only about a third
  of the time: read exact match as "fluent in the house style", slot coverage as "faithful".
- Hallucination check: values that appear in the output but belong to no field
  (e.g. a wrong country) are not caught by slot coverage; look at a sample by hand.

## Regenerate

    python data/make_d2t.py            # seed {seed}; rewrites data/d2t/ byte-identically
    python data/make_d2t.py --seed 7 --out /tmp/d2t

## Limitations

- Synthetic and templated: {sum(len(v) for v in TEMPLATES.values())} templates in all, no paraphrase beyond them, one
  sentence per record. Good scores here do not mean good data-to-text generation on
  real data (E2E, WebNLG, ToTTo).
- English only; names lean Scandinavian and Northern European.
- Facts are invented (a town's country, river and population are random), so the set
  teaches faithfulness to the record, not world knowledge.

## License

Generated by ptutor's own code (`data/make_d2t.py`) from word lists written for this
project. Data and generator: CC0 1.0 (public domain dedication); the rest of the
repository is Apache-2.0.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "d2t"))
    args = ap.parse_args(argv)
    splits = build(args.seed)
    out = Path(args.out)
    for split, rows in splits.items():
        write_jsonl(rows, out / f"{split}.jsonl")
        kinds = Counter(r["type"] for r in rows)
        print(f"{split:5s}: {len(rows)} rows ({', '.join(f'{t} {kinds[t]}' for t in TYPES)})")
    (out / "README.md").write_text(card(splits, args.seed), encoding="utf-8")
    print(f"seed {args.seed}; every field value appears verbatim in its text; dev/test names unseen in train")
    print(f"wrote {out}/train.jsonl, dev.jsonl, test.jsonl, README.md")


if __name__ == "__main__":
    main()
