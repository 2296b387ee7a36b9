"""Learning-rate sweeps on the real data sets' dev splits, several seeds per rate, learning curves in every run.

    python data/results/real_sweeps.py ner              # WNUT-17, minilm, 3 minutes a run
    python data/results/real_sweeps.py ner --methods ft,pt2,lora --seeds 0,1
    python data/results/real_sweeps.py ner --methods lora --seeds 2 --lrs 0.001        # a third seed at the pick
    python data/results/real_sweeps.py ner --methods lora --lrs 1e-3,3e-3 --head-lr 0.03 \
        --log data/results/wnut17_recipes_3min.jsonl                                     # a recipe, in its own log

Each (method, rate, seed) is one `python -m ptutor.experiments TASK ...` child process with one torch thread,
two at a time, scored on dev (every EVAL_EVERY steps: the learning curve) and on test, appended to the task's
log. The rate is picked on the mean dev score over seeds (ptutor.results.pick_lr); the test scores of the runs at
the picked rate are the benchmark. Runs already in the log are skipped, so an interrupted sweep goes on.
"""
import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from ptutor.data import read_jsonl  # noqa: E402
from ptutor.methods import METHODS  # noqa: E402
SETTINGS = {
    "ner": {"model": "minilm", "data": "data/wnut17", "ext": "conll", "minutes": 3.0, "eval_every": 75,
            "log": "data/results/wnut17_sweep_3min.jsonl",
            "grids": {"ft": [5e-5, 1e-4, 2e-4, 5e-4], "pt2": [1e-2, 3e-2, 1e-1, 3e-1],
                      "lora": [5e-4, 1e-3, 3e-3, 1e-2], "pt": [1e-2, 3e-2, 1e-1, 3e-1],
                      "ptv1": [3e-3, 1e-2, 3e-2, 1e-1], "probe": [3e-3, 1e-2, 3e-2, 1e-1],
                      "bitfit": [3e-3, 1e-2, 3e-2, 1e-1], "adapter": [3e-4, 1e-3, 3e-3, 1e-2],
                      "qlora": [1e-3, 3e-3, 1e-2, 3e-2], "pt2lora": [1e-2, 3e-2, 1e-1, 3e-1]}},
    "gen": {"model": "smollm2-135m", "data": "data/e2e", "ext": "jsonl", "minutes": 10.0, "eval_every": 40,
            "log": "data/results/e2e_sweep_10min.jsonl",
            "grids": {"ft": [3e-5, 1e-4, 3e-4], "pt2": [3e-2, 1e-1, 3e-1], "lora": [1e-3, 3e-3, 1e-2]},
            "options": {"bitfit": ["--add-biases", "true"]}},
}


def logged(log: Path, extra: list[str]) -> set:
    """(method, lr, seed) of the runs in `log` made with exactly this setting: the same head rate, and every
    option at the value `extra` gives it (`--option value`) or else at the method's default. A run of another
    setting at the same rate and seed does not count as done."""
    if not log.exists():
        return set()
    flags = dict(zip(extra[::2], extra[1::2]))
    head = float(flags.pop("--head-lr")) if "--head-lr" in flags else None
    given = {k[2:].replace("-", "_"): v.lower() for k, v in flags.items()}

    def same(r):
        expected = {k: str(v).lower() for k, v in METHODS[r["method"]].config_class().to_dict().items()}
        expected.update(given)
        return r.get("head_lr") == head and all(str(v).lower() == expected.get(k) for k, v in r["config"].items()
                                                if k not in ("method", "anchor_ids"))
    return {(r["method"], r["lr"], r["seed"]) for r in read_jsonl(log) if same(r)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=sorted(SETTINGS))
    p.add_argument("--methods", default="ft,pt2,lora")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--lrs", default=None, help="override the grid (comma-separated), e.g. to extend it")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--log", default=None, help="another log (e.g. for recipe runs, so they do not enter the pick)")
    p.add_argument("--head-lr", default=None, help="passed on to the runner")
    args = p.parse_args(argv)
    s = SETTINGS[args.task]
    log = ROOT / (args.log or s["log"])
    extra = ["--head-lr", args.head_lr] if args.head_lr else []
    done = logged(log, extra)
    jobs = []
    for seed in [int(x) for x in args.seeds.split(",")]:
        for method in args.methods.split(","):
            grid = [float(x) for x in args.lrs.split(",")] if args.lrs else s["grids"][method]
            jobs += [(method, lr, seed) for lr in grid if (method, lr, seed) not in done]
    print(f"{len(jobs)} runs to go ({len(done)} of this setting in {log.name})", flush=True)
    return 0 if run_jobs(args.task, [(m, lr, seed, log, extra) for m, lr, seed in jobs], args.workers) else 1


def run_one(task: str, method: str, lr: float, seed: int, log: Path, extra: list[str]) -> bool:
    """One child run appended to `log`; prints its dev and test score."""
    s, data = SETTINGS[task], ROOT / SETTINGS[task]["data"]
    cmd = [sys.executable, "-m", "ptutor.experiments", task, "--method", method, "--model", s["model"],
           "--train", f"{data}/train.{s['ext']}", "--dev", f"{data}/dev.{s['ext']}",
           "--test", f"{data}/test.{s['ext']}", "--minutes", str(s["minutes"]), "--seed", str(seed),
           "--lr", f"{lr:g}", "--eval-every", str(s["eval_every"]), "--quiet", "--out", str(log),
           *s.get("options", {}).get(method, []), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        print(f"{method} lr {lr:g} seed {seed} FAILED:\n{proc.stderr[-1500:]}", flush=True)
        return False
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{method} lr {lr:g} seed {seed} {' '.join(extra)}: dev {r.get('dev_' + r['metric'])} test {r['primary']} "
          f"steps {r['steps']}", flush=True)
    return True


def run_jobs(task: str, jobs: list[tuple], workers: int = 2) -> bool:
    """Run (method, lr, seed, log, extra) jobs, `workers` at a time, one torch thread each."""
    with ThreadPoolExecutor(workers) as pool:
        return all(pool.map(lambda job: run_one(task, *job), jobs))


if __name__ == "__main__":
    sys.exit(main())
