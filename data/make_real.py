"""Make the book's cuts of its two real data sets from the authors' files (run once; the outputs are committed).

    python data/make_real.py E2E_DIR WNUT17_DIR

E2E_DIR holds `devset.csv` of the E2E NLG Challenge (github.com/tuetschek/e2e-dataset); WNUT17_DIR holds
`wnut17train.conll`, `emerging.dev.conll` and `emerging.test.annotated` (github.com/leondz/emerging_entities_17).

- data/e2e/{train,dev,test}.jsonl: E2E's development set cut by meaning representation (never by row) into
  100 test inputs, 50 dev inputs and the rest for training, seed 0; one line per (input, reference) pair.
- data/e2e_unseen/{train,dev,test_seen,test_unseen}.jsonl: the same cut with whole restaurant names and `near`
  values held out (`held_out_values`): every input that carries a held-out value goes to test_unseen, whatever
  split it was in, and the rest keep their split. A model trained on this train.jsonl never saw a held-out name.
- data/wnut17/{train,dev,test}.conll: WNUT-17's own three splits, copied byte for byte.
Prints the SHA-256 of every source and output file (the data cards list them).
"""
import hashlib
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from ptutor.conll import entity_mentions, read_conll  # noqa: E402
from ptutor.jsonl import read_jsonl, write_jsonl  # noqa: E402
from ptutor.realdata import e2e_input, e2e_values, read_e2e_csv, split_by_input  # noqa: E402

HERE = Path(__file__).resolve().parent
E2E_SIZES = {"test": 100, "dev": 50, "train": None}  # distinct inputs per split
WNUT17_FILES = {"train": "wnut17train.conll", "dev": "emerging.dev.conll", "test": "emerging.test.annotated"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_e2e(source: Path) -> None:
    csv_path = source / "devset.csv"
    rows = read_e2e_csv(csv_path)
    print(f"{csv_path}: {len(rows)} rows, sha256 {sha256(csv_path)}")
    splits = split_by_input(rows, "mr", E2E_SIZES, seed=0)
    for name, part in splits.items():
        out = HERE / "e2e" / f"{name}.jsonl"
        write_jsonl([{"id": f"{name}-{i:04d}", "mr": r["mr"], "input": e2e_input(r["mr"]), "target": r["ref"]}
                     for i, r in enumerate(part)], out)
        print(f"{out.relative_to(HERE.parent)}: {len({r['mr'] for r in part})} inputs, {len(part)} references, "
              f"sha256 {sha256(out)}")


def held_out_values(mrs: list[str], attribute: str, want: int, limit: int, held: set[str], seed: int) -> list[str]:
    """Draw `want` values of `attribute` in a seeded random order, skipping a value whose inputs would bring the
    held-out inputs (`held`, grown in place) above `limit`: whole names are held out, never single rows."""
    values = sorted({e2e_values(m)[attribute] for m in mrs if attribute in e2e_values(m)})
    order = torch.randperm(len(values), generator=torch.Generator().manual_seed(seed)).tolist()
    picked = []
    for i in order:
        inputs = {m for m in mrs if e2e_values(m).get(attribute) == values[i]}
        if len(held | inputs) <= limit and len(picked) < want:
            picked.append(values[i])
            held |= inputs
    return picked


def make_e2e_unseen() -> None:
    """Hold out 5 restaurant names (inputs at most 20 % of all) and 4 `near` values (at most 25 % with the names),
    as E2E's own test set has 5 of its 9 names unseen in training; see data/e2e_unseen/README.md."""
    splits = {name: read_jsonl(HERE / "e2e" / f"{name}.jsonl") for name in ("train", "dev", "test")}
    mrs = list(dict.fromkeys(r["mr"] for rows in splits.values() for r in rows))
    held: set[str] = set()
    names = held_out_values(mrs, "name", 5, int(0.20 * len(mrs)), held, seed=0)
    near = held_out_values(mrs, "near", 4, int(0.25 * len(mrs)), held, seed=1)
    print(f"held out: names {names}, near {near}: {len(held)} of {len(mrs)} inputs")
    out = {"train": [], "dev": [], "test_seen": [], "test_unseen": []}
    for name, rows in splits.items():
        for r in rows:
            out["test_unseen" if r["mr"] in held else "test_seen" if name == "test" else name].append(r)
    for name, rows in out.items():
        path = HERE / "e2e_unseen" / f"{name}.jsonl"
        write_jsonl(rows, path)
        print(f"{path.relative_to(HERE.parent)}: {len({r['mr'] for r in rows})} inputs, {len(rows)} references, "
              f"sha256 {sha256(path)}")


def make_wnut17(source: Path) -> None:
    for name, file in WNUT17_FILES.items():
        out = HERE / "wnut17" / f"{name}.conll"
        shutil.copyfile(source / file, out)
        sentences = read_conll(out, labels=None)
        print(f"{out.relative_to(HERE.parent)} <- {file}: {len(sentences)} sentences, "
              f"{sum(t.startswith('B-') for s in sentences for t in s.tags)} entities, sha256 {sha256(out)}")
    seen = {text.lower() for text, _ in entity_mentions(read_conll(HERE / "wnut17" / "train.conll", labels=None))}
    for name in ("dev", "test"):
        mentions = entity_mentions(read_conll(HERE / "wnut17" / f"{name}.conll", labels=None))
        known = sum(text.lower() in seen for text, _ in mentions)
        print(f"wnut17 {name}: {known} of {len(mentions)} entity mentions ({known / len(mentions):.1%}) have a "
              "surface form (lower-cased) that is an entity in training")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    make_e2e(Path(sys.argv[1]))
    make_e2e_unseen()
    make_wnut17(Path(sys.argv[2]))
