"""Multi-task prefixes (the P-Tuning v2 paper's multi-task idea): does a prefix trained on two tasks give a
third task a better start than the method's own initialisation?

On ptutor's d2t set (data/d2t), each record type is a task. Steps, all with P-Tuning v2 on SmolLM2-135M:
  1. source: one prefix trained on `town` and `person` records together, saved;
  2. the three starts scored on `product` before any training (step 0);
  3. a learning-rate sweep per start on the product dev rows (seed 0), 32 training records, 30 steps;
  4. each start at its own picked rate, seeds 0-2, scored on the product test rows;
  5. the same after 5 and 10 steps (role "curve": separate runs, each with its own warm-up and decay over
     its budget), to see how many steps a start is worth.
The starts: `default` (the method's own: the keys/values of vocabulary tokens), `random` (N(0, 1)) and
`two-task` (the source prefix, through `ptutor.experiments.run(..., start_from=...)`). Every run is one
`python -m ptutor.experiments gen ...` child process with one torch thread; rows are tagged with their role
and start and appended to the log; rows already in the log are skipped (resume). About 45 minutes on a 2-core CPU.

    python data/results/multitask_prefix.py [--workers 2] [--out data/results/multitask_prefix.jsonl]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ptutor.data import append_jsonl, read_jsonl, write_jsonl  # noqa: E402

SOURCE_TYPES, TARGET_TYPE = ("town", "person"), "product"
MODEL, SOURCE_STEPS, TARGET_STEPS, TARGET_ITEMS = "smollm2-135m", 200, 30, 32
CURVE_STEPS = (5, 10)
LRS, SEEDS = (3e-2, 1e-1, 3e-1), (0, 1, 2)
STARTS = ("default", "random", "two-task")


def split_files(work: Path) -> dict[str, Path]:
    """The d2t splits cut by record type into files the command line reads (made once, in `work`)."""
    work.mkdir(parents=True, exist_ok=True)
    files = {}
    for split in ("train", "dev", "test"):
        rows = read_jsonl(ROOT / "data" / "d2t" / f"{split}.jsonl")
        for name, types in (("source", SOURCE_TYPES), ("target", (TARGET_TYPE,))):
            files[f"{name}_{split}"] = path = work / f"{name}_{split}.jsonl"
            write_jsonl([r for r in rows if r["type"] in types], path)
    return files


def start_options(start: str, source: Path) -> list[str]:
    return {"default": [], "random": ["--init", "random"], "two-task": ["--start-from", str(source)]}[start]


def run_cli(args: list[str], threads: int = 1) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-m", "ptutor.experiments", "gen", "--method", "pt2", "--model", MODEL,
                           "--quiet", *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"run failed ({' '.join(args)}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def step0_scores(files: dict, source: Path) -> list[dict]:
    """Each start's BLEU on the target test rows before any training on the target."""
    import torch

    from ptutor.backbones import load_backbone
    from ptutor.experiments import warm_start
    from ptutor.methods import PrefixConfig, inject
    from ptutor.tasks import get_task

    torch.manual_seed(0)
    task, rows = get_task("gen"), read_jsonl(files["target_test"])
    out = []
    for start in STARTS:
        base, tok = load_backbone(MODEL, "causal-lm")
        model = (warm_start(base, PrefixConfig(), source) if start == "two-task" else
                 inject(base, PrefixConfig(init="random" if start == "random" else "auto")))
        scores = task.evaluate(model.eval(), rows, tok)
        out.append({"role": "step0", "start": start, "bleu": round(scores["bleu"], 4),
                    "rouge_l": round(scores["rouge_l"], 4), "mentions_all": round(scores["mentions_all"], 4)})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "data" / "results" / "multitask_prefix.jsonl"))
    parser.add_argument("--work", default=str(ROOT / "runs" / "multitask"), help="split files and the source prefix")
    args = parser.parse_args(argv)
    log, work = Path(args.out), Path(args.work)
    files, source = split_files(work), work / "source_prefix"
    have = read_jsonl(log) if log.exists() else []
    done = {(r["role"], r.get("start"), r.get("lr"), r.get("seed"), r.get("steps")) for r in have}

    def record(row: dict, role: str, start: str | None = None) -> dict:
        row = {"role": role, "start": start, **row}
        append_jsonl(row, log)
        print(f"{role:6} {start or '':9} lr {row.get('lr', ''):<6} seed {row.get('seed', '')}: "
              f"bleu {row.get('bleu')}", flush=True)
        return row

    if not (source / "ptutor_method.json").exists():
        row = run_cli(["--train", str(files["source_train"]), "--test", str(files["source_test"]),
                       "--steps", str(SOURCE_STEPS), "--batch-size", "8", "--seed", "0", "--save", str(source)],
                      threads=args.workers)
        record(row, "source")
    if not any(r["role"] == "step0" for r in have):
        for row in step0_scores(files, source):
            append_jsonl(row, log)
            print(row, flush=True)

    target = ["--train", str(files["target_train"]), "--train-limit", str(TARGET_ITEMS), "--batch-size", "8"]

    def job(role, start, lr, seed, steps=TARGET_STEPS):
        test = files["target_dev"] if role == "sweep" else files["target_test"]
        dev = ["--dev", str(files["target_dev"])] if role == "sweep" else []
        row = run_cli([*target, "--steps", str(steps), "--test", str(test), *dev, "--lr", str(lr), "--seed", str(seed),
                       *start_options(start, source)])
        return record(row, role, start)

    with ThreadPoolExecutor(args.workers) as pool:
        sweep = [(s, lr) for s in STARTS for lr in LRS if ("sweep", s, lr, 0, TARGET_STEPS) not in done]
        list(pool.map(lambda a: job("sweep", a[0], a[1], 0), sweep))
        rows = read_jsonl(log)
        picked = {s: max((r for r in rows if r["role"] == "sweep" and r["start"] == s), key=lambda r: r["dev_bleu"])["lr"]
                  for s in STARTS}
        print("picked on dev:", picked, flush=True)
        final = [(s, picked[s], seed) for s in STARTS for seed in SEEDS
                 if ("final", s, picked[s], seed, TARGET_STEPS) not in done]
        list(pool.map(lambda a: job("final", *a), final))
        curve = [(s, picked[s], seed, n) for n in CURVE_STEPS for s in STARTS for seed in SEEDS
                 if ("curve", s, picked[s], seed, n) not in done]
        list(pool.map(lambda a: job("curve", *a), curve))
    print(f"wrote {log}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
