"""Make the book's cuts of its two real data sets from the authors' files (run once; the outputs are committed).

    python data/make_real.py E2E_DIR WNUT17_DIR

E2E_DIR holds `devset.csv` of the E2E NLG Challenge (github.com/tuetschek/e2e-dataset); WNUT17_DIR holds
`wnut17train.conll`, `emerging.dev.conll` and `emerging.test.annotated` (github.com/leondz/emerging_entities_17).

- data/e2e/{train,dev,test}.jsonl: E2E's development set cut by meaning representation (never by row) into
  100 test inputs, 50 dev inputs and the rest for training, seed 0; one line per (input, reference) pair.
- data/wnut17/{train,dev,test}.conll: WNUT-17's own three splits, copied byte for byte.
Prints the SHA-256 of every source and output file (the data cards list them).
"""
import hashlib
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ptutor.data import e2e_input, read_conll, read_e2e_csv, split_by_input, write_jsonl  # noqa: E402

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


def make_wnut17(source: Path) -> None:
    for name, file in WNUT17_FILES.items():
        out = HERE / "wnut17" / f"{name}.conll"
        shutil.copyfile(source / file, out)
        sentences = read_conll(out, labels=None)
        print(f"{out.relative_to(HERE.parent)} <- {file}: {len(sentences)} sentences, "
              f"{sum(t.startswith('B-') for s in sentences for t in s.tags)} entities, sha256 {sha256(out)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    make_e2e(Path(sys.argv[1]))
    make_wnut17(Path(sys.argv[2]))
