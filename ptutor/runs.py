"""The one orchestrator: a grid of runs over one task, each in its own process, resumable from its log.

A grid is every (method, rate, head rate, seed) over one base `RunConfig` (task, backbone, data, training
settings). `plan` lists its runs with every rate resolved (a method's pick, the task's head rate), `pending` drops
the runs a log already holds by one rule (`same_setting`: the whole resolved configuration but the device), and
`execute` runs the rest `workers` at a time (or one per GPU; or a share of them in each process that
`accelerate launch` started), each as `python -m ptutor.experiments ...` so its peak memory is its own, every
finished run appending its line to the log. The shoot-out (every method at its pick), a learning-rate sweep and the
book's recipes in data/results/ are calls of it:

    python -m ptutor.runs sweep ner --method lora --lrs 5e-4,1e-3,3e-3 --seeds 0,1 \\
        --train T --dev D --test E --steps 283 --out sweep.jsonl
    python -m ptutor.runs shootout ner --seeds 0,1,2 --train T --dev D --test E \\
        --rates data/results/cpu_step_rates.jsonl --minutes 3 --out shoot.jsonl
    accelerate launch --multi_gpu --num_processes 4 -m ptutor.runs shootout ner ...   # one process per GPU

A budget is either the same for every method (`--steps`, or `--minutes` of wall time, which depends on the
machine) or **time-equivalent** (`--rates LOG --minutes M`): each method trains for the steps it makes in M minutes
on the machine whose step times LOG records (`time_equivalent_steps`), so a run does the same training wherever it
runs, and methods get what equal time on that machine would give them.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .jsonl import read_jsonl
from .experiments import (RunConfig, _method_of, add_run_flags, command, config_from_args, resolve, run_key)
from .methods import METHODS
from .tasks import TASKS, get_task


def same_setting(record: dict, config: RunConfig) -> bool:
    """Is logged run `record` the run `config` (resolved) describes, seed included? Lines without a stored
    configuration are never the same."""
    return "run" in record and run_key(record["run"]) == run_key(resolve(config).to_dict())


def plan(base: RunConfig, methods: list[str], seeds: list[int], *, lrs: dict[str, list[float]] | None = None,
         head_lrs: list[float | None] | None = None, options: dict[str, dict] | None = None,
         steps: dict[str, int] | None = None) -> list[RunConfig]:
    """Every run of a grid, resolved, seed by seed (so a stopped grid has whole seeds done): for each method its
    rates (`lrs[method]`, default its pick), head rates (default the task's), options (`options[method]`, on top of
    the task's `method_options`) and step budget (`steps[method]`, default the base's)."""
    task = get_task(base.task)
    out = []
    for seed in seeds:
        for m in methods:
            opts = {**task.method_options.get(m, {}), **base.options, **(options or {}).get(m, {})}
            for lr in (lrs or {}).get(m) or [None]:
                for head in head_lrs or [None]:
                    train = dataclasses.replace(base.train, lr=lr, head_lr=head, seed=seed,
                                                **({"steps": steps[m], "minutes": None} if steps else {}))
                    out.append(resolve(dataclasses.replace(base, method=m, options=opts, train=train)))
    return out


def pending(configs: list[RunConfig], rows: list[dict]) -> list[RunConfig]:
    """The planned runs the log's rows do not hold yet."""
    done = {run_key(r["run"]) for r in rows if "run" in r}
    return [c for c in configs if run_key(c.to_dict()) not in done]


def time_equivalent_steps(rows: list[dict], task: str, method: str, model: str, minutes: float) -> int:
    """The steps `method` makes in `minutes` on the machine of the logged CPU runs `rows` with one torch thread:
    their median speed (steps per second) x the time. A run's median step leaves out the first, slow one and the
    batching between steps, so this comes out about 5 % above what that CPU makes in the time."""
    speeds = [1 / r["step_seconds"] for r in rows if r["task"] == task and r["method"] == method
              and r["model"] == model and r["device"] == "cpu" and r.get("hardware", {}).get("torch_threads") == 1]
    if not speeds:
        raise ValueError(f"no logged one-thread CPU run of {method} on {task} ({model}) to time its steps: run it once "
                         "on the CPU (e.g. --minutes 1 --out RATES_LOG) and pass that log with --rates")
    return round(statistics.median(speeds) * minutes * 60)


def execute(configs: list[RunConfig], out: str, *, workers: int = 1, threads: int = 1, gpus: list[str] | None = None,
            share: tuple[int, int] = (0, 1), heartbeat: float = 60.0, save_checkpoints: bool = False,
            log=print) -> list[dict]:
    """Run every config that `out` does not hold yet, each in a child process, `workers` at a time with `threads`
    torch threads each (with `gpus`: one run per GPU, each process seeing its own GPU only). `share=(i, n)`: this is
    process i of n launched together and runs every n-th pending run from the i-th. Prints a line per finished run
    and, every `heartbeat` seconds, the runs going. Returns the log's rows that are runs of `configs`."""
    rows = read_jsonl(out) if Path(out).exists() else []
    todo = pending(configs, rows)
    missing, (index, count) = len(todo), share
    if count > 1:
        wait_for_everyone()  # every process has read the log before any run appends to it
    todo = todo[index::count]
    workers = len(gpus) if gpus else max(1, workers)
    log(f"{len(configs) - missing} of {len(configs)} runs already in {out}, {missing} to go"
        + (f", {len(todo)} of them in process {index} of {count}" if count > 1 else "")
        + f" ({workers} at a time, {threads} torch thread(s) each)")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started, counter, running = time.perf_counter(), iter(range(1, len(todo) + 1)), {}
    free_gpus: queue.Queue = queue.Queue()
    for g in gpus or []:
        free_gpus.put(g)
    finished = threading.Event()

    def name(c: RunConfig) -> str:
        return f"{c.method} lr {c.train.lr:g}" + (f" head {c.train.head_lr:g}" if c.train.head_lr else "") + \
            f" seed {c.train.seed}"

    def beat():
        while heartbeat > 0 and not finished.wait(heartbeat):  # heartbeat=0: no such lines
            now, going = time.perf_counter(), sorted(running.items())
            if going:
                log("running: " + ", ".join(f"{n} for {(now - t) / 60:.1f} min" for n, t in going)
                    + f" (elapsed {(now - started) / 60:.1f} min)")

    def one(config: RunConfig) -> bool:
        with tempfile.TemporaryDirectory() as folder:  # a checkpoint is saved only to measure its size
            cmd = command(config, out=out, save=f"{folder}/ckpt" if save_checkpoints else None)
            gpu = free_gpus.get() if gpus else None  # never waits: there are as many workers as GPUs
            t0 = running[name(config)] = time.perf_counter()
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True,
                                      env=env if gpu is None else {**env, "CUDA_VISIBLE_DEVICES": gpu})
            finally:
                running.pop(name(config), None)
                if gpu is not None:
                    free_gpus.put(gpu)
        k = next(counter)
        if proc.returncode != 0:
            log(f"[{k}/{len(todo)}] {name(config)} FAILED (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
            return False
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        dev = r.get(f"dev_{r['metric']}")
        log(f"[{k}/{len(todo)}] {name(config)}: {r['metric']} {r['primary']:.4f}"
            + (f" (dev {dev:.4f})" if dev is not None else "") + f", {r['steps']} steps, "
            f"{time.perf_counter() - t0:.0f} s (elapsed {time.perf_counter() - started:.0f} s)")
        return True

    threading.Thread(target=beat, daemon=True).start()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            ok = list(pool.map(one, todo))  # list first: a failed run (e.g. a rate that diverges) stops no other
    finally:
        finished.set()
    if count > 1:
        wait_for_everyone()  # processes launched together: the log is complete only when all are done
    if not all(ok):
        raise RuntimeError(f"{ok.count(False)} of {len(todo)} runs failed (their errors are above); the others are "
                           f"in {out}: run the same command again to retry only the failed ones")
    keys = {run_key(c.to_dict()) for c in configs}
    return [r for r in read_jsonl(out) if "run" in r and run_key(r["run"]) in keys]


def launched_share() -> tuple[int, int, int]:
    """(process index, number of processes, local index on this machine) when this process was started by
    `accelerate launch` (or torchrun) with several processes; (0, 1, 0) otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, 0
    state = _state()
    return state.process_index, state.num_processes, state.local_process_index


def _state():
    import torch
    from accelerate import PartialState

    # without a GPU, accelerate treats the launched processes as one unless told they are CPU processes (gloo)
    return PartialState(cpu=not torch.cuda.is_available())


def wait_for_everyone() -> None:
    """Block until every launched process gets here (nothing to wait for in a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _state().wait_for_everyone()


def swept_methods(task: str) -> list[str]:
    """The methods with a learning rate picked on dev for `task`: only those take part in a shoot-out."""
    return [m for m in METHODS if task in METHODS[m].config_class.task_lrs]  # in the registry's order


def check_methods(task: str, methods: list[str]) -> None:
    """Refuse unknown methods, and methods without a swept rate for the task, before any run starts."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(sorted(METHODS))}")
    unswept = [m for m in methods if task not in METHODS[m].config_class.task_lrs]
    if unswept:
        raise ValueError(f"no learning rate was picked on dev for {', '.join(unswept)} on task {task!r}, and a "
                         "shoot-out gives every method its own swept rate. Sweep first (python -m ptutor.runs "
                         f"sweep {task} --method M --lrs 1e-3,3e-3,1e-2 --dev FILE ...), then set the pick in the "
                         "method's task_lrs.")


# --- command lines: sweep and shootout ----------------------------------------------------------------------------

def _numbers(kind):
    def parse(s: str):
        try:
            return [kind(x) for x in s.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None
    return parse


def _add_grid_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=_numbers(int), default=[0], help="comma-separated seeds (default 0)")
    p.add_argument("--head-lrs", type=_numbers(float), default=None,
                   help="head rates to try (default: the task's head rate, for methods that train a new head)")
    p.add_argument("--rates", default=None, type=lambda s: [x for x in s.split(",") if x.strip()],
                   help="results logs (comma-separated) of one-thread CPU runs: with --minutes M, each method trains "
                   "for the steps it makes in M minutes there (a time-equivalent budget)")
    p.add_argument("--workers", type=int, default=1, help="runs at a time (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: CPUs / workers)")
    p.add_argument("--gpus", default=None, type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   help="GPU ids to spread runs over, one run per GPU at a time (sets --workers)")
    p.add_argument("--table", default=None, help="shootout: table files prefix (default: the log's path without .jsonl)")


def build_parser(kind: str, method: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m ptutor.runs {kind}", description=(
        "A learning-rate sweep: one method, every rate and seed, picked on dev." if kind == "sweep" else
        "Every method with a swept learning rate on one task, each at its pick, then a table (CSV, JSON, markdown)."))
    p.add_argument("task", choices=sorted(TASKS))
    add_run_flags(p, method)  # the base run: the same flags, defaults and help as a single run's
    if kind == "sweep":
        p.add_argument("--lrs", type=_numbers(float), required=True, help="comma-separated rates to try")
    else:
        p.add_argument("--methods", default=None, type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                       help="comma-separated (default: every method with a learning rate picked on dev for the task)")
    _add_grid_flags(p)
    return p


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[RunConfig]]:
    """A `sweep` or `shootout` command line (without `python -m ptutor.runs`) and the runs it plans."""
    kind, rest = argv[0], argv[1:]
    if kind not in ("sweep", "shootout"):
        raise SystemExit(f"usage: python -m ptutor.runs {{sweep,shootout}} TASK ... (got {kind!r})")
    if kind == "shootout" and "--method" not in rest:
        rest = [*rest, "--method", "ft"]  # the base run's method: each planned run replaces it
    method = _method_of(rest) if kind == "sweep" else None
    if method is not None and method not in METHODS:
        build_parser(kind, None).parse_args(rest)  # argparse names the invalid choice
    args = build_parser(kind, method).parse_args(rest)
    args.kind = kind
    if kind == "sweep" and args.dev is None:
        raise ValueError("a learning-rate sweep picks on the dev set: add --dev FILE")
    base = config_from_args(args.task, args)
    methods = [args.method] if kind == "sweep" else (args.methods or swept_methods(args.task))
    if kind == "shootout":
        check_methods(args.task, methods)
    steps = None
    if args.rates:
        if args.minutes is None:
            raise ValueError("--rates gives each method the steps it makes in --minutes: add --minutes M")
        rates = [r for log in args.rates for r in read_jsonl(log)]
        steps = {m: time_equivalent_steps(rates, args.task, m, base.model or get_task(args.task).default_model,
                                          args.minutes) for m in methods}
    configs = plan(base, methods, args.seeds, lrs={m: args.lrs for m in methods} if kind == "sweep" else None,
                   head_lrs=args.head_lrs, steps=steps)
    return args, configs


def main(argv: list[str]) -> int:
    debug = "--debug" in argv
    try:
        args, configs = parse(argv)
        out = args.plumb_out
        if out is None:
            raise ValueError(f"a {args.kind} appends every run to a results log: pass --out FILE")
        index, count, local = launched_share()
        gpus = args.gpus
        if count > 1:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            gpus = ([visible.split(",")[local]] if visible else [str(local)]) if _cuda() else None
        threads = args.threads or max(1, (os.cpu_count() or 1) // (count if count > 1 else len(gpus) if gpus else
                                                                    args.workers))
        say = (lambda m: print(f"[process {index}] {m}", flush=True)) if count > 1 else (lambda m: print(m, flush=True))
        rows = execute(configs, out, workers=args.workers if count == 1 else 1, threads=threads, gpus=gpus,
                       share=(index, count), save_checkpoints=args.kind == "shootout", log=say)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    if index == 0:  # execute waited for every process, so the rows are all of them
        from .results import pick_lr, sweep_table, write_tables

        if args.kind == "sweep":
            print(sweep_table(rows))
            print(f"picked on dev: {pick_lr(rows, args.method):g}")
        else:
            paths = write_tables(rows, args.table or out.removesuffix(".jsonl"))
            print(open(paths["md"]).read())
            print("wrote " + ", ".join(paths.values()))
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
