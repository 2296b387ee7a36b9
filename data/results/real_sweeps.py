"""Learning-rate sweeps on the real data sets' dev splits, several seeds per rate, learning curves in every run.

    python data/results/real_sweeps.py ner              # WNUT-17, minilm, 3 minutes a run
    python data/results/real_sweeps.py ner --methods ft,pt2,lora --seeds 0,1

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


def logged(log: Path) -> set:
    if not log.exists():
        return set()
    return {(r["method"], r["lr"], r["seed"]) for r in map(json.loads, log.read_text().splitlines()) if r}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=sorted(SETTINGS))
    p.add_argument("--methods", default="ft,pt2,lora")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--lrs", default=None, help="override the grid (comma-separated), e.g. to extend it")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    s = SETTINGS[args.task]
    log = ROOT / s["log"]
    done = logged(log)
    jobs = []
    for seed in [int(x) for x in args.seeds.split(",")]:
        for method in args.methods.split(","):
            grid = [float(x) for x in args.lrs.split(",")] if args.lrs else s["grids"][method]
            jobs += [(method, lr, seed) for lr in grid if (method, lr, seed) not in done]
    print(f"{len(jobs)} runs to go ({len(done)} in {log.name})", flush=True)
    data = ROOT / s["data"]

    def one(job):
        method, lr, seed = job
        cmd = [sys.executable, "-m", "ptutor.experiments", args.task, "--method", method, "--model", s["model"],
               "--train", f"{data}/train.{s['ext']}", "--dev", f"{data}/dev.{s['ext']}",
               "--test", f"{data}/test.{s['ext']}", "--minutes", str(s["minutes"]), "--seed", str(seed),
               "--lr", f"{lr:g}", "--eval-every", str(s["eval_every"]), "--quiet", "--out", str(log),
               *s.get("options", {}).get(method, [])]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode:
            print(f"{method} lr {lr:g} seed {seed} FAILED:\n{proc.stderr[-1500:]}", flush=True)
            return False
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{method} lr {lr:g} seed {seed}: dev {r.get('dev_' + r['metric'])} test {r['primary']} "
              f"steps {r['steps']}", flush=True)
        return True

    with ThreadPoolExecutor(args.workers) as pool:
        ok = list(pool.map(one, jobs))
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
