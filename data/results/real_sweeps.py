"""Learning-rate sweeps on the real data sets' dev splits, several seeds per rate, learning curves in every run.

    python data/results/real_sweeps.py ner              # WNUT-17, minilm, 3 minutes a run
    python data/results/real_sweeps.py ner --methods ft,pt2,lora --seeds 0,1
    python data/results/real_sweeps.py ner --methods lora --seeds 2 --lrs 0.001        # a third seed at the pick
    python data/results/real_sweeps.py ner --methods lora --lrs 1e-3,3e-3 --head-lr 0.03 \
        --log data/results/wnut17_recipes_3min.jsonl                                     # a recipe, in its own log
    python data/results/real_sweeps.py ner --match-steps --methods lora --lrs 1e-3 --option r=4 \
        --log data/results/wnut17_lora_rank_steps.jsonl                                  # another option value

Each (method, rate, seed) is one `python -m ptutor.experiments TASK ...` child process with one torch thread,
two at a time, scored on dev (every EVAL_EVERY steps: the learning curve) and on test, appended to the task's
log. The rate is picked on the mean dev score over seeds (ptutor.results.pick_lr); the test scores of the runs at
the picked rate are the benchmark. Runs already in the log are skipped, so an interrupted sweep goes on.

    python data/results/real_sweeps.py gen --match-steps --device cuda --workers 12 --deadline 6

--match-steps gives each run, instead of the time budget, the number of steps its method reaches in that budget
on the CPU (`cpu_steps`: its median speed in the logged CPU runs), so a GPU can run the CPU benchmark's training
in seconds: same data order, same schedule, fp32, same step count. Those runs go to the task's `steps_log`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from ptutor.data import read_jsonl  # noqa: E402
from ptutor.methods import METHODS  # noqa: E402
from ptutor.tasks import get_task  # noqa: E402
SETTINGS = {  # per task: logs, dev-curve spacing and rate grids; the backbone, data and budget are the Task's own
    "ner": {"eval_every": 75,
            "log": "data/results/wnut17_sweep_3min.jsonl", "steps_log": "data/results/wnut17_sweep_steps.jsonl",
            "grids": {"ft": [5e-5, 1e-4, 2e-4, 5e-4], "pt2": [1e-2, 3e-2, 1e-1, 3e-1],
                      "lora": [5e-4, 1e-3, 3e-3, 1e-2], "pt": [1e-2, 3e-2, 1e-1, 3e-1],
                      "ptv1": [3e-3, 1e-2, 3e-2, 1e-1], "probe": [3e-3, 1e-2, 3e-2, 1e-1],
                      "bitfit": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], "adapter": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                      "qlora": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2], "pt2lora": [1e-2, 3e-2, 1e-1, 3e-1],
                      "ia3": [3e-3, 1e-2, 3e-2, 1e-1], "dora": [5e-4, 1e-3, 3e-3, 1e-2]}},
    "gen": {"eval_every": 40,
            "log": "data/results/e2e_sweep_10min.jsonl", "steps_log": "data/results/e2e_sweep_steps.jsonl",
            "grids": {"ft": [3e-5, 1e-4, 3e-4, 1e-3], "pt2": [3e-2, 1e-1, 3e-1], "lora": [1e-3, 3e-3, 1e-2, 3e-2],
                      "pt": [1e-1, 3e-1, 1.0, 3.0, 10.0], "bitfit": [3e-3, 1e-2, 3e-2, 1e-1],
                      "adapter": [3e-4, 1e-3, 3e-3, 1e-2], "qlora": [3e-3, 1e-2, 3e-2],
                      "ia3": [3e-3, 1e-2, 3e-2, 1e-1, 3e-1], "dora": [1e-3, 3e-3, 1e-2, 3e-2]},
            "options": {"bitfit": ["--add-biases", "true"]}},
}
for _name, _s in SETTINGS.items():  # ptutor.tasks says what each task was measured with
    _t = get_task(_name)
    _s.update(model=_t.default_model, minutes=_t.default_minutes, train=_t.default_data[0], test=_t.default_data[1],
              dev=_t.default_data[0].replace("train.", "dev."))


RATES_LOG = ROOT / "data/results/cpu_step_rates.jsonl"  # short CPU runs that only measure each method's speed


def cpu_steps(task: str, method: str) -> int:
    """The steps `method` reaches in the task's CPU time budget: the budget over its median step time in the task's
    logged CPU runs with one torch thread. A run's median step leaves out the first, slow one, so a 30-second speed
    run predicts a long one; it leaves out the batching between steps too, so it predicts about 5 % more steps than
    the CPU makes (WNUT-17: fine-tuning 176 against a median of 168 in nine 3-minute runs; P-Tuning v2 297 / 283)."""
    s = SETTINGS[task]
    rows = [r for log in (ROOT / s["log"], RATES_LOG) if log.exists() for r in read_jsonl(log)]
    speeds = [1 / r["step_seconds"] for r in rows
              if r["task"] == task and r["method"] == method and r["model"] == s["model"] and r["device"] == "cpu"
              and r.get("hardware", {}).get("torch_threads") == 1]
    if not speeds:
        raise SystemExit(f"no logged CPU run of {method} on {task} to match its steps: run it once on the CPU "
                         f"(e.g. --minutes 1 --out {RATES_LOG.relative_to(ROOT)})")
    return round(statistics.median(speeds) * s["minutes"] * 60)


def as_options(flags: list[str]) -> dict[str, str]:
    """`["--add-biases", "true"]` -> `{"add_biases": "true"}`: command-line pairs as config fields, values lowercased."""
    return {k[2:].replace("-", "_"): v.lower() for k, v in zip(flags[::2], flags[1::2])}


def logged(log: Path, extra: list[str], options: dict | None = None) -> set:
    """(method, lr, seed) of the runs in `log` made with exactly this setting: the same head rate, and every
    option at the value `extra` (or the method's entry in `options`) gives it (`--option value`) or else at the
    method's default. A run of another setting at the same rate and seed does not count as done."""
    if not log.exists():
        return set()
    given = as_options(extra)
    head = float(given.pop("head_lr")) if "head_lr" in given else None

    def same(r):
        expected = {k: str(v).lower() for k, v in METHODS[r["method"]].config_class().to_dict().items()}
        expected.update(as_options((options or {}).get(r["method"], [])))
        expected.update(given)
        own = METHODS[r["method"]].config_class.options(r["config"])
        return r.get("head_lr") == head and all(same_value(v, expected.get(k)) for k, v in own.items())
    return {(r["method"], r["lr"], r["seed"]) for r in read_jsonl(log) if same(r)}


def same_value(logged_value, given: str | None) -> bool:
    """A logged option equals a command-line one: `16.0` is `"16"`, `False` is `"false"`."""
    if str(logged_value).lower() == given:
        return True
    try:
        return float(logged_value) == float(given)
    except (TypeError, ValueError):
        return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=sorted(SETTINGS))
    p.add_argument("--methods", default="ft,pt2,lora")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--lrs", default=None, help="override the grid (comma-separated), e.g. to extend it")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--log", default=None, help="another log (e.g. for recipe runs, so they do not enter the pick)")
    p.add_argument("--head-lr", default=None, help="passed on to the runner")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a method option passed on to the runner, e.g. --option r=4 (repeatable)")
    p.add_argument("--match-steps", action="store_true", help="train each run for the steps its method reaches in "
                   "the CPU time budget (cpu_steps) instead of for the time; logged in the task's steps_log")
    p.add_argument("--device", default=None, help="passed on to the runner (e.g. cuda, with --match-steps)")
    p.add_argument("--deadline", type=float, default=None, help="start no run after this many minutes")
    args = p.parse_args(argv)
    s = SETTINGS[args.task]
    log = ROOT / (args.log or s["steps_log" if args.match_steps else "log"])
    extra = ["--head-lr", args.head_lr] if args.head_lr else []
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep:
            p.error(f"--option {item!r}: write it as NAME=VALUE, e.g. --option r=4")
        extra += ["--" + name.replace("_", "-"), value]
    done = logged(log, extra, s.get("options"))
    jobs = []
    for seed in [int(x) for x in args.seeds.split(",")]:
        for method in args.methods.split(","):
            grid = [float(x) for x in args.lrs.split(",")] if args.lrs else s["grids"][method]
            jobs += [(method, lr, seed) for lr in grid if (method, lr, seed) not in done]
    print(f"{len(jobs)} runs to go ({len(done)} of this setting in {log.name})", flush=True)
    budgets = {}  # per method: the time budget, or with --match-steps the steps it makes in that time on the CPU
    for method in dict.fromkeys(m for m, _, _ in jobs):
        budgets[method] = ["--minutes", str(s["minutes"])]
        if args.match_steps:
            budgets[method] = ["--steps", str(cpu_steps(args.task, method))]
            print(f"{method}: {budgets[method][1]} steps (its speed in the CPU runs x {s['minutes']:g} min)")
    device = ["--device", args.device] if args.device else []
    jobs = [(m, lr, seed, log, budgets[m] + device + extra) for m, lr, seed in jobs]
    return 0 if run_jobs(args.task, jobs, args.workers, args.deadline) else 1


def run_one(task: str, method: str, lr: float, seed: int, log: Path, extra: list[str]) -> bool:
    """One child run appended to `log`; prints its dev and test score. `extra` holds the budget (`--minutes` or
    `--steps`) and any other runner flags."""
    s = SETTINGS[task]
    cmd = [sys.executable, "-m", "ptutor.experiments", task, "--method", method, "--model", s["model"],
           "--train", str(ROOT / s["train"]), "--dev", str(ROOT / s["dev"]), "--test", str(ROOT / s["test"]),
           "--seed", str(seed),
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


def run_jobs(task: str, jobs: list[tuple], workers: int = 2, deadline: float | None = None) -> bool:
    """Run (method, lr, seed, log, extra) jobs, `workers` at a time, one torch thread each; with a `deadline`
    (minutes), a job not started by then is skipped and reported (a rerun picks it up)."""
    start = time.monotonic()

    def one(job):
        if deadline is not None and time.monotonic() - start > deadline * 60:
            print(f"{job[0]} lr {job[1]:g} seed {job[2]}: not started (deadline)", flush=True)
            return True
        return run_one(task, *job)
    with ThreadPoolExecutor(workers) as pool:
        return all(list(pool.map(one, jobs)))  # list first: a failed run (e.g. a rate that diverges) stops no other


if __name__ == "__main__":
    sys.exit(main())
