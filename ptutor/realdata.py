"""The real data sets the book measures on, and their full versions on the Hugging Face hub.

E2E (restaurant data-to-text, data/e2e/README.md): `read_e2e_csv` reads the authors' CSV, `e2e_input` writes a
meaning representation as the book's record line, `e2e_values` reads its attributes, and `split_by_input` cuts rows
into splits by input, never by row. WNUT-17 (noisy-text NER, data/wnut17/README.md) is plain CoNLL
(`ptutor.conll.read_conll`). The hub loaders (`load_e2e_hub`, `load_wnut17_hub`, `load_conll2003_hub`) fetch the full
sets for the full-scale cells; they need a network.
"""
from __future__ import annotations

import os
import re

import torch

from .conll import NER_LABELS, Sentence


def e2e_input(mr: str) -> str:
    """An E2E meaning representation as the book's record line: `name[X], food[Y]` -> `name[X] | food[Y]`."""
    pairs = re.findall(r"\s*([^,\[\]]+?)\s*\[([^\]]*)\]", mr)
    if not pairs:
        raise ValueError(f"not an E2E meaning representation (attribute[value], ...): {mr!r}")
    return " | ".join(f"{k}[{v}]" for k, v in pairs)


def e2e_values(mr: str) -> dict[str, str]:
    """The attribute -> value pairs of an E2E meaning representation (attributes separated by commas or by bars)."""
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
