"""The shoot-out: every method on one task under the same budget, each run in its own process.

    python -m ptutor.experiments shootout --task ner --model minilm --minutes 3 --seeds 0,1,2

Each (method, seed) is one `python -m ptutor.experiments TASK --method M ...` child process (so a
run's peak memory is its own), at the learning rate the method's dev sweep picked for the task.
Every finished run appends its stamped JSON line to the results log; runs already in the log are
skipped, so an interrupted shoot-out goes on where it stopped. At the end the log becomes a table:
CSV, JSON and markdown, one row per method, seeds pooled as mean ± sample standard deviation.

On several GPUs, either `--gpus 0,1,2,3` (one process hands runs to each GPU in turn) or
`accelerate launch --multi_gpu --num_processes 4 -m ptutor.experiments shootout ...`: each launched process
takes every 4th run of the same list onto its own GPU, all append to one log, and the first
process writes the table once every process is done.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .cli import positive
from .data import read_jsonl
from .methods import METHODS
from .results import COLUMN_TITLES, format_score, setting, summarize
from .tasks import TASKS, get_task, load_items


def swept_methods(task: str) -> list[str]:
    """The methods with a learning rate picked on dev for `task`: only those take part (a fair fight)."""
    return [m for m in METHODS if task in METHODS[m].config_class.task_lrs]  # in the registry's order


def check_methods(task: str, methods: list[str]) -> None:
    """Refuse unknown methods, and methods without a swept rate for the task, before any run starts."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(sorted(METHODS))}")
    unswept = [m for m in methods if task not in METHODS[m].config_class.task_lrs]
    if unswept:
        raise ValueError(f"no learning rate was picked on dev for {', '.join(unswept)} on task {task!r}, and a "
                         "shoot-out gives every method its own swept rate. Sweep first (python -m ptutor.experiments "
                         f"{task} --method M --lr 1e-3,3e-3,1e-2 --dev FILE), then set the pick in the method's task_lrs.")


def command(task: str, method: str, seed: int, model: str, train: str, test: str, minutes: float,
            train_limit: int | None, out: str, save: str | None = None) -> list[str]:
    """The child process's command line for one run."""
    cmd = [sys.executable, "-m", "ptutor.experiments", task, "--method", method, "--model", model, "--train", train,
           "--test", test, "--minutes", str(minutes), "--seed", str(seed), "--quiet", "--out", out]
    if train_limit:
        cmd += ["--train-limit", str(train_limit)]
    if save:
        cmd += ["--save", save]
    for name, value in get_task(task).method_options.get(method, {}).items():
        cmd += ["--" + name.replace("_", "-"), str(value).lower() if isinstance(value, bool) else str(value)]
    return cmd


def belongs(r: dict, task: str, method: str, model: str, minutes: float, train_limit: int | None) -> bool:
    """Was logged run `r` made with this shoot-out's settings (task, method, backbone, budget, data size) at the
    method's current swept learning rate, with the method's options as the shoot-out sets them and no head rate
    of its own? Runs of any other setting are neither reused nor pooled."""
    cls = METHODS[method].config_class
    config = {**cls().to_dict(), **get_task(task).method_options.get(method, {})}
    expected = {"method": method, "config": config, "lr": cls.lr_for(task)}
    return (r["task"] == task and r["method"] == method and r["model"] == model and r["budget"]["minutes"] == minutes
            and (train_limit is None or r["train_items"] == train_limit) and setting(r) == setting(expected))


def run_shootout(task: str, seeds: list[int], out: str, methods: list[str] | None = None, model: str | None = None,
                 train: str | None = None, test: str | None = None, minutes: float | None = None,
                 train_limit: int | None = None, workers: int = 1, threads: int = 1, gpus: list[str] | None = None,
                 share: tuple[int, int] = (0, 1), heartbeat: float = 60.0, log=print) -> list[dict]:
    """Run every (method, seed) not yet in `out`, `workers` at a time with `threads` torch threads each
    (with `gpus`: one run per GPU at a time, each process seeing only its own GPU); returns the log's rows
    for this task, backbone and budget. `share=(i, n)`: this is process i of n launched together, and runs
    only every n-th run from the i-th on. Every `heartbeat` seconds it says which runs are going and for how
    long (a generation run takes 10 minutes and more before its line appears)."""
    t = get_task(task)  # an unknown task is an error that lists the known ones
    model, train, test = model or t.default_model, train or t.default_data[0], test or t.default_data[1]
    minutes = minutes or t.default_minutes
    methods = methods or swept_methods(task)
    check_methods(task, methods)
    for path, what in ((train, "training"), (test, "test")):
        if not Path(path).exists():
            raise FileNotFoundError(f"{what} file {path} not found: run `python -m ptutor.backbones prepare` "
                                    "(it writes the book's data), or pass --train/--test")
    if train_limit is not None:  # a set smaller than the limit is used whole: the log says how many items ran
        train_limit = min(train_limit, len(load_items(get_task(task), train, "training")))
    rows = read_jsonl(out) if Path(out).exists() else []
    todo = [(m, s) for s in seeds for m in methods
            if not any(r["seed"] == s and belongs(r, task, m, model, minutes, train_limit) for r in rows)]
    missing, (index, count) = len(todo), share
    if count > 1:
        wait_for_everyone()  # every process has read the log before any run appends to it
    todo = todo[index::count]
    workers = len(gpus) if gpus else max(1, workers)
    log(f"shoot-out {task}: {len(methods)} methods x {len(seeds)} seeds, {minutes:g} min each, backbone {model}; "
        f"{len(methods) * len(seeds) - missing} runs already in {out}, {missing} to go"
        + (f", {len(todo)} of them in process {index} of {count}" if count > 1 else "")
        + f" ({workers} at a time, {threads} torch thread(s) each)")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    counter = iter(range(1, len(todo) + 1))
    free_gpus = queue.Queue()
    for g in gpus or []:
        free_gpus.put(g)
    running: dict[tuple[str, int], float] = {}  # (method, seed) -> start time, for the heartbeat
    finished = threading.Event()

    def beat():
        while heartbeat > 0 and not finished.wait(heartbeat):  # heartbeat=0: no such lines
            now, going = time.perf_counter(), sorted(running.items())
            if going:
                log("running: " + ", ".join(f"{m} seed {s} for {(now - t) / 60:.1f} min" for (m, s), t in going)
                    + f" (elapsed {(now - started) / 60:.1f} min)")

    def one(job):
        method, seed = job
        with tempfile.TemporaryDirectory() as folder:  # the checkpoint is saved only to measure its size
            cmd = command(task, method, seed, model, train, test, minutes, train_limit, out, save=f"{folder}/ckpt")
            gpu = free_gpus.get() if gpus else None  # never waits: there are as many workers as GPUs
            t0 = running[job] = time.perf_counter()
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True,
                                      env=env if gpu is None else {**env, "CUDA_VISIBLE_DEVICES": gpu})
            finally:
                running.pop(job, None)
                if gpu is not None:
                    free_gpus.put(gpu)
        k = next(counter)
        if proc.returncode != 0:
            log(f"[{k}/{len(todo)}] {method} seed {seed} FAILED (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
            return False
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        log(f"[{k}/{len(todo)}] {method:8s} seed {seed}: {result['metric']} {result['primary']:.4f}, "
            f"{result['steps']} steps, {time.perf_counter() - t0:.0f} s (elapsed {time.perf_counter() - started:.0f} s)")
        return True

    threading.Thread(target=beat, daemon=True).start()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            ok = list(pool.map(one, todo))
    finally:
        finished.set()
    if count > 1:
        wait_for_everyone()  # processes launched together: the log is complete only when all are done
    if not all(ok):
        raise RuntimeError(f"{ok.count(False)} of {len(todo)} runs failed (their errors are above); the others are "
                           f"in {out}: run the same command again to retry only the failed ones")
    log(f"shoot-out {task}: {len(todo)} runs in {(time.perf_counter() - started) / 60:.1f} min")
    return [r for r in read_jsonl(out) if any(belongs(r, task, m, model, minutes, train_limit) for m in methods)]


def launched_share() -> tuple[int, int, int]:
    """(process index, number of processes, local index on this machine) when this process was started by
    `accelerate launch` (or torchrun) with several processes; (0, 1, 0) otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, 0
    state = _state()
    return state.process_index, state.num_processes, state.local_process_index


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _state():
    import torch
    from accelerate import PartialState

    # without a GPU, accelerate treats the launched processes as one unless told they are CPU processes (gloo)
    return PartialState(cpu=not torch.cuda.is_available())


def wait_for_everyone() -> None:
    """Block until every launched process gets here (nothing to wait for in a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _state().wait_for_everyone()


def setting_rows(rows: list[dict]) -> list[dict]:
    """One record per setting of the log (`ptutor.results.summarize`: a method's runs pool over seeds only when
    their rate and options agree), the methods in the shoot-out's order: cost columns as means over seeds, the
    metric as mean and spread, None where a run did not record a value."""
    rank = {m: i for i, m in enumerate(METHODS)}  # the registry's order (ptutor/methods/__init__.py)
    out = []
    for g in sorted(summarize(rows), key=lambda g: rank.get(g["method"], len(rank))):
        out.append({"method": g["method"], "title": g["name"], "lr": g["lr"], "trainable_params": g["trainable_params"],
                    "trainable_pct": round(100 * g["trainable_params"] / g["total_params"], 4),
                    "seeds": sorted(g["seeds"]), "steps": round(g["steps"]),
                    "step_seconds": round(g["step_seconds"], 4),
                    "tokens_per_second": None if g["tokens_per_second"] is None else round(g["tokens_per_second"], 1),
                    "peak_mb": None if g["peak_mb"] is None else round(g["peak_mb"], 1),
                    "checkpoint_mb": None if g["checkpoint_mb"] is None else round(g["checkpoint_mb"], 3),
                    "metric": g["metric"], "mean": round(g["score"], 4), "spread": round(g["spread"], 4)})
    return out


def provenance(rows: list[dict]) -> dict:
    """What made the log: hardware, versions, seeds, budget, and when its time-stamped runs ran."""
    hw = sorted({json.dumps(r["hardware"], sort_keys=True) for r in rows})
    vs = sorted({json.dumps(r["versions"], sort_keys=True) for r in rows})
    return {"task": rows[0]["task"], "model": rows[0]["model"], "minutes": rows[0]["budget"]["minutes"],
            "train_items": rows[0]["train_items"], "runs": len(rows), "seeds": sorted({r["seed"] for r in rows}),
            "hardware": [json.loads(h) for h in hw], "versions": [json.loads(v) for v in vs],
            "stamped_runs": sum("started_at" in r for r in rows),  # runs made before the stamps existed have none
            "first_start": min((r["started_at"] for r in rows if "started_at" in r), default=None),
            "last_finish": max((r["finished_at"] for r in rows if "finished_at" in r), default=None)}


def score_text(record: dict) -> str:
    """A table cell for one method's metric: mean ± spread over its seeds, or its one score marked as such."""
    return format_score(record["mean"], record["spread"], len(record["seeds"]), record["metric"], count=False)


def markdown(records: list[dict]) -> str:
    """The shoot-out table (from `setting_rows`) as markdown, one row per method."""
    name = COLUMN_TITLES.get(records[0]["metric"], records[0]["metric"])
    lines = [f"| method | LR | trainable | share | seeds | steps | s/step | tokens/s | peak MB | checkpoint MB | {name} (test) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        cell = lambda key, spec: "-" if r[key] is None else format(r[key], spec)  # noqa: E731
        lines.append(f"| {r['title']} | {r['lr']:g} | {r['trainable_params']:,} | {r['trainable_pct']:.3f}% | "
                     f"{len(r['seeds'])} | {r['steps']} | {r['step_seconds']:.3f} | {cell('tokens_per_second', '.0f')} | "
                     f"{cell('peak_mb', ',.0f')} | {cell('checkpoint_mb', '.2f')} | {score_text(r)} |")
    return "\n".join(lines)


def write_tables(rows: list[dict], prefix: str) -> dict[str, str]:
    """PREFIX.csv, PREFIX.json (records + provenance) and PREFIX.md from a shoot-out's rows."""
    records, prov = setting_rows(rows), provenance(rows)
    paths = {ext: f"{prefix}.{ext}" for ext in ("csv", "json", "md")}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows({**r, "seeds": " ".join(map(str, r["seeds"]))} for r in records)
    Path(paths["json"]).write_text(json.dumps({"provenance": prov, "methods": records}, indent=1) + "\n")
    hw = "; ".join(f"{h['cpu']}, {h['torch_threads']} torch thread(s)" + (f", {h['gpu']}" if "gpu" in h else "")
                   for h in prov["hardware"])
    Path(paths["md"]).write_text(
        f"Shoot-out: task {prov['task']}, backbone {prov['model']}, {prov['minutes']:g} min of training per run, "
        f"{prov['train_items']} training items, seeds {prov['seeds']}; {hw}; "
        f"torch {', '.join(sorted({v['torch'] for v in prov['versions']}))}, transformers "
        f"{', '.join(sorted({v['transformers'] for v in prov['versions']}))}. Mean ± sample s.d. over seeds.\n\n"
        + markdown(records) + "\n")
    return paths


# --- command line: python -m ptutor.experiments shootout ... (or python -m ptutor.shootout ...) ---------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ptutor.experiments shootout",
                                description="Every method with a swept learning rate, on one task, under one budget, "
                                            "each run in its own process; then a table (CSV, JSON, markdown).")
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--model", default=None, help="backbone preset (default: minilm for ner, smollm2-135m for gen)")
    p.add_argument("--minutes", type=positive(float), default=None, help="training budget per run (default: 3 for "
                   "ner, 10 for gen)")
    p.add_argument("--seeds", default="0", type=lambda s: [int(x) for x in s.split(",") if x.strip()])
    p.add_argument("--methods", default=None, type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   help="comma-separated (default: every method with a learning rate picked on dev for the task)")
    p.add_argument("--train", default=None)
    p.add_argument("--test", default=None)
    p.add_argument("--train-limit", type=positive(int), default=None,
                   help="train on a fixed sample of this many training items (default: all)")
    p.add_argument("--workers", type=positive(int), default=1, help="runs at a time (default 1)")
    p.add_argument("--threads", type=positive(int), default=None,
                   help="torch threads per run (default: the CPU count divided by --workers)")
    p.add_argument("--gpus", default=None, type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   help="GPU ids to spread runs over, one run per GPU at a time (e.g. 0,1,2,3; sets --workers)")
    p.add_argument("--out", default=None, help="results log (default data/results/shootout_TASK.jsonl)")
    p.add_argument("--table", default=None, help="table files prefix (default: the log's path without .jsonl)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    out = args.out or f"data/results/shootout_{args.task}.jsonl"
    index, count, local = launched_share()  # several processes under `accelerate launch`: each takes a share
    gpus = args.gpus
    if count > 1:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        gpus = ([visible.split(",")[local]] if visible else [str(local)]) if _cuda() else None
    threads = args.threads or max(1, (os.cpu_count() or 1) // (count if count > 1 else len(gpus) if gpus
                                                                else args.workers))
    say = (lambda m: print(f"[process {index}] {m}", flush=True)) if count > 1 else (lambda m: print(m, flush=True))
    try:
        rows = run_shootout(args.task, args.seeds, out, methods=args.methods, model=args.model, train=args.train,
                            test=args.test, minutes=args.minutes, train_limit=args.train_limit,
                            workers=args.workers if count == 1 else 1, threads=threads, gpus=gpus,
                            share=(index, count), log=say)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if index == 0:  # run_shootout waited for every process, so the rows are all of them
        paths = write_tables(rows, args.table or out.removesuffix(".jsonl"))
        print(open(paths["md"]).read())
        print("wrote " + ", ".join(paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
