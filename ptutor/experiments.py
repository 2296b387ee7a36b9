"""One runner for every method on every task: load, inject, train, evaluate, stamp.

From Python (what the chapters and scripts call):

    result = ptutor.experiments.run("ner", "pt2", "minilm", "data/ner/train.conll", "data/ner/test.conll",
                                    dev="data/ner/dev.conll", minutes=3, seed=0, num_virtual_tokens=16)

It returns a `RunResult`: `result["f1"]` reads the logged record (`result.record`), `result.history` is the
training History, and with `return_model=True` `result.model` is the trained model.

From a shell (prints the same dict as one JSON line):

    python -m ptutor.experiments ner --method pt2 --model minilm \
        --train data/ner/train.conll --test data/ner/test.conll --minutes 3 --seed 0 --num-virtual-tokens 16

Method options are the fields of the method's config, scoped to that method: `--help`
after `--method M` lists M's options with their defaults, and an option of another
method is an error. `--lr 1e-3,3e-3,1e-2` (several values) runs a learning-rate sweep
and needs `--dev`; `ptutor.results.pick_lr(rows, method)` picks the winner on dev from a results log.

Every method at once (ptutor.shootout): `python -m ptutor.experiments shootout --task ner --seeds 0,1,2`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import typing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import checkpoint
from .backbones import load_backbone
from .cli import positive
from .data import IGNORE_INDEX, append_jsonl, batches
from .measure import count_parameters, hardware, versions
from .methods import METHODS, Method, inject
from .tasks import TASKS, Task, get_task, load_items
from .train import History, TrainConfig, fit, pick_device, seed_everything

DEFAULT_MINUTES = 3.0


def method_config(method: str, options: dict):
    """The method's config from option names (underscores); an option of another method is an error."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(sorted(METHODS))}")
    cls = METHODS[method].config_class
    fields = {f.name for f in dataclasses.fields(cls)}
    foreign = sorted(set(options) - fields)
    if foreign:
        owners = {name: sorted(m for m, c in METHODS.items() if name in {f.name for f in
                                                                          dataclasses.fields(c.config_class)})
                  for name in foreign}
        detail = "; ".join(f"{name} belongs to {', '.join(o) or 'no method'}" for name, o in owners.items())
        raise ValueError(f"method {method!r} has no option {', '.join(foreign)} ({detail}). "
                         f"Its options: {', '.join(sorted(fields)) or 'none'}")
    return cls(**options)


class TokenCounter:
    """Wraps a batch stream and counts the real (unpadded) tokens of the batches taken from it."""

    def __init__(self, stream):
        self.stream, self.tokens = iter(stream), 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.stream)
        self.tokens += int(batch["attention_mask"].sum())
        return batch


def _backbone(task: Task, model, seed: int, dtype):
    """(model, tokenizer) from a preset name, or a pair the caller already loaded."""
    if isinstance(model, tuple):
        base, tok = model
    else:
        try:
            base, tok = load_backbone(model, task.backbone_task_for(model), seed=seed, dtype=dtype,
                                      **task.load_kwargs())
        except ValueError as e:
            raise ValueError(f"task {task.name!r} cannot use backbone {model!r}: {e}") from None
    task.check_backbone(base)
    return base, tok


@dataclass
class RunResult:
    """What `run` gives back, one type whatever is asked: the record it logs (a JSON-ready dict), the training
    History, and the trained model when `return_model=True` (else None, so a loop of runs keeps no models alive).
    `result["f1"]` reads the record; `record, model, history = result` unpacks it."""

    record: dict
    history: History
    model: Method | None = None

    def __getitem__(self, key: str):
        return self.record[key]

    def __iter__(self):
        return iter((self.record, self.model, self.history))


def run(task: str | Task, method: str, model, train, test, dev=None, minutes: float | None = None,
        steps: int | None = None, seed: int = 0, *, lr: float | None = None, batch_size: int | None = None,
        max_length: int | None = None, train_limit: int | None = None, warmup: float = 0.06,
        schedule: str = "linear", eval_every: int | None = None, head_lr: float | None = None,
        also_test: dict | None = None, device: str | None = None,
        dtype: torch.dtype = torch.float32, save: str | None = None, out: str | None = None,
        start_from: str | None = None, progress: bool = False, return_model: bool = False, **options):
    """Train `method` on `task` with backbone `model` (a preset name or a loaded (model, tokenizer)) and
    score it on `test` (and `dev`, if given). `train`/`test`/`dev` are file paths or lists of items.

    Budget: `minutes` and/or `steps` (neither: 3 minutes). `train_limit` trains on a seeded
    random sample of that many training items (a low-resource setting, or a learning curve).
    `start_from` is a checkpoint folder of the same method (from `save`) whose weights replace the method's own
    initialisation: a prefix trained on other tasks as the start of this one (transfer). `head_lr` gives a trained
    task head a peak rate of its own (ptutor.train.with_head_rate). `also_test` ({name: file or items}) scores
    more test sets with the same trained model (the record's `test_sets`), e.g. inputs with names training never saw.
    Other keyword arguments are the method's options (e.g. num_virtual_tokens=16). Returns a RunResult: the stamped
    record (`out` appends it to a JSON-lines results log), the training History and, with return_model=True, the
    trained model.
    """
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    check_writable(out=out, save=save)  # before any work: a 10-minute run must not end in "cannot write"
    task = get_task(task) if isinstance(task, str) else task
    config = method_config(method, options)
    if minutes is None and steps is None:
        minutes = DEFAULT_MINUTES
    train_config = TrainConfig(lr=lr or config.lr_for(task.name), steps=steps, minutes=minutes, warmup=warmup,
                               schedule=schedule, seed=seed, progress=progress, eval_every=eval_every,
                               head_lr=head_lr)
    train_items = load_items(task, train, "training")
    task.learn(train_items)  # e.g. the NER label set, before dev and test are read (their tags are checked)
    if train_limit is not None:
        if train_limit < 1:
            raise ValueError(f"train_limit must be at least 1, got {train_limit}")
        order = torch.randperm(len(train_items), generator=torch.Generator().manual_seed(1234)).tolist()
        train_items = [train_items[i] for i in sorted(order[:train_limit])]  # the same sample for every seed
    test_items = load_items(task, test, "test")
    also_items = {name: load_items(task, source, f"{name} test") for name, source in (also_test or {}).items()}
    dev_items = load_items(task, dev, "dev") if dev is not None else None
    seed_everything(seed)
    device = pick_device(device)
    base, tok = _backbone(task, model, seed, dtype)
    wrapped = warm_start(base, config, start_from) if start_from else inject(base, config, tokenizer=tok)
    batch_size = batch_size or task.batch_size
    rows = task.encode(train_items, tok, max_length, model=base)
    if not any(label != IGNORE_INDEX for r in rows for label in r["labels"]):
        raise ValueError(f"no training example keeps a labelled token within max_length={max_length or task.max_length} "
                         "(for generation: the prompt alone fills it): the loss would be empty. Raise --max-length.")
    stream = TokenCounter(batches(rows, batch_size, pad_id=tok.pad_token_id, shuffle=True, seed=seed))

    def dev_scores(m):
        return {f"dev_{k}": v for k, v in task.evaluate(m, dev_items, tok, max_length=max_length).items()
                if k != "examples"}
    hist = fit(wrapped, stream, train_config, device=device,
               eval_fn=dev_scores if dev_items is not None else None)
    t0 = time.perf_counter()
    if dev is not None and dev == test:  # a sweep scored on dev only: the final dev scores are the test scores
        scores = {k[len("dev_"):]: v for k, v in hist.evals[-1].items() if k.startswith("dev_")}
    else:
        scores = task.evaluate(wrapped, test_items, tok, max_length=max_length)
    test_sets = {name: {k: round(v, 4) if isinstance(v, float) else v
                        for k, v in task.evaluate(wrapped, items, tok, max_length=max_length).items()}
                 for name, items in also_items.items()}
    eval_seconds = time.perf_counter() - t0
    trainable, total = count_parameters(wrapped)
    record = {"task": task.name, "method": method, "model": model if isinstance(model, str) else
              getattr(base.config, "ptutor_preset", type(base).__name__),
              "metric": task.metric, "primary": round(scores[task.metric], 4),
              **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
              "trainable_params": trainable, "total_params": total, "steps": hist.steps,
              "step_seconds": round(hist.median_step_seconds, 4),
              "tokens_per_second": round(stream.tokens / hist.train_seconds, 1) if hist.train_seconds else None,
              "train_seconds": round(hist.train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
              "peak_mb": round(hist.peak_mb, 1), "lr": train_config.lr, "batch_size": batch_size,
              "train_items": len(train_items),
              "budget": {"minutes": minutes, "steps": steps}, "seed": seed, "device": str(device),
              "config": wrapped.config.to_dict(), "versions": versions(), "hardware": hardware(),
              "started_at": started_at, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if test_sets:
        record["test_sets"] = test_sets
    if start_from:
        record["start_from"] = str(start_from)
    if head_lr is not None:
        record["head_lr"] = head_lr
    if hist.evals:
        record.update({k: round(v, 4) for k, v in hist.evals[-1].items() if k.startswith("dev_")})
        if len(hist.evals) > 1:  # a learning curve: dev scores and loss against steps and training seconds
            record["curve"] = [{k: round(v, 4) if isinstance(v, float) else v for k, v in e.items()
                                if k in ("step", "seconds", "loss") or k == f"dev_{task.metric}"} for e in hist.evals]
    if save:
        record["checkpoint_bytes"] = checkpoint.save(wrapped, save)["bytes"]
    if out:
        try:
            append_jsonl(record, out)
        except OSError as e:  # the result is not lost: it is in the message
            raise OSError(f"could not append the result to {out} ({e}); the result: {json.dumps(record)}") from None
    return RunResult(record, hist, wrapped if return_model else None)


def check_writable(out: str | None = None, save: str | None = None) -> None:
    """Raise now, before training, if the results log `out` cannot be appended to or the checkpoint folder
    `save` cannot be written."""
    for path, what, folder in ((out, "results log (--out)", False), (save, "checkpoint folder (--save)", True)):
        if path is None:
            continue
        target = Path(path) if folder else Path(path).parent
        try:
            target.mkdir(parents=True, exist_ok=True)
            if folder:
                tempfile.TemporaryFile(dir=target).close()
            else:
                open(path, "a").close()
        except OSError as e:
            raise ValueError(f"the {what} {path} cannot be written ({e.strerror or e}): pick another path; "
                             "nothing was trained") from None


def warm_start(base, config, folder):
    """The method `config` describes, with the trained weights of checkpoint `folder` as its starting point.

    The checkpoint must hold the same method with the same settings (its initialisation options aside):
    a prefix of another length or a LoRA of another rank cannot be a starting point."""
    model = checkpoint.load(base, folder, trainable=True)
    saved, asked = model.config.without_init().to_dict(), config.without_init().to_dict()
    if saved["method"] != asked["method"]:
        raise ValueError(f"{folder} holds a {saved['method']!r} checkpoint; this run trains {asked['method']!r}. "
                         "Start from a checkpoint of the same method.")
    differ = {k: (saved.get(k), asked.get(k)) for k in sorted(set(saved) | set(asked)) if saved.get(k) != asked.get(k)}
    if differ:
        detail = ", ".join(f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in differ.items())
        raise ValueError(f"{folder} was trained with other settings ({detail}): pass the checkpoint's settings")
    return model


def sweep(task, method: str, model, train, test, dev, lrs: list[float], **kwargs) -> list[dict]:
    """One run per learning rate (each with the same seed and budget); pick with results.pick_lr on dev."""
    if dev is None:
        raise ValueError("a learning-rate sweep picks on the dev set: pass dev=... (--dev FILE)")
    return [run(task, method, model, train, test, dev, lr=lr, **kwargs).record for lr in lrs]


def _field_parser(cls, name: str, default):
    """Parse a config field from text: its type from the annotation (`int | None` -> int, list[str] -> a
    comma-separated list, bool -> true/false)."""
    hint = typing.get_type_hints(cls)[name]
    kinds = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    kind = kinds[0]
    if typing.get_origin(kind) in (list, tuple):
        item = (typing.get_args(kind) or (str,))[0]
        return lambda s: [item(x.strip()) for x in s.split(",") if x.strip()]
    if kind is bool or isinstance(default, bool):
        def parse_bool(s):
            if s.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")
            return s.lower() in ("true", "1", "yes")
        return parse_bool
    return kind if kind in (int, float, str) else str


def _add_method_flags(parser: argparse.ArgumentParser, method: str) -> None:
    cls = METHODS[method].config_class
    group = parser.add_argument_group(f"options of --method {method} ({cls.title or method})")
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        group.add_argument("--" + f.name.replace("_", "-"), dest=f"opt_{f.name}", default=None, metavar=f.name.upper(),
                           type=_field_parser(cls, f.name, default), help=f"(default {default})")


def _lr_list(s: str) -> list[float]:
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr takes a number or comma-separated numbers, got {s!r}") from None


def build_parser(method: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ptutor.experiments", description=__doc__.split("\n\n")[0],
                                     epilog="Every method at once: python -m ptutor.experiments shootout --help")
    sub = parser.add_subparsers(dest="task", required=True)
    for name, help_text in (("ner", "token tagging on CoNLL files, entity F1"),
                            ("gen", "data-to-text on JSON lines {input, target}, corpus BLEU")):
        p = sub.add_parser(name, help=help_text,
                           epilog=None if method else "Add --method M --help to list the options of method M.")
        p.add_argument("--method", required=True, choices=sorted(METHODS))
        p.add_argument("--model", default="minilm" if name == "ner" else "smollm2-135m",
                       help="backbone preset (python -m ptutor.backbones list)")
        p.add_argument("--train", required=True)
        p.add_argument("--test", required=True)
        p.add_argument("--dev")
        p.add_argument("--also-test", action="append", default=[], metavar="NAME=FILE",
                       help="score one more test set with the trained model (repeatable), e.g. unseen=data/x.jsonl")
        p.add_argument("--minutes", type=positive(float), default=None,
                       help=f"time budget (default {DEFAULT_MINUTES} when --steps is not given either)")
        p.add_argument("--steps", type=positive(int), default=None, help="step budget (with --minutes: whichever "
                       "ends first)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--lr", type=_lr_list, default=None,
                       help="learning rate; several comma-separated values run a sweep (needs --dev). Default: the "
                            "method's LR for this task (picked by the committed sweeps)")
        p.add_argument("--batch-size", type=positive(int), default=None,
                       help=f"default {TASKS[name].batch_size}")
        p.add_argument("--max-length", type=positive(int), default=None, help=f"default {TASKS[name].max_length}")
        p.add_argument("--train-limit", type=positive(int), default=None,
                       help="train on a fixed random sample of this many training items")
        p.add_argument("--warmup", type=float, default=0.06)
        p.add_argument("--schedule", default="linear", choices=["linear", "constant"])
        p.add_argument("--eval-every", type=positive(int), default=None, help="also score dev every N steps")
        p.add_argument("--head-lr", type=positive(float), default=None,
                       help="a peak learning rate of its own for the trained task head (default: --lr)")
        p.add_argument("--device", default=None)
        p.add_argument("--save", default=None, help="folder to save the trained method in")
        p.add_argument("--start-from", default=None, help="a checkpoint folder (from --save) of the same method to "
                       "start from instead of the method's initialisation")
        p.add_argument("--out", default=None, help="also append each JSON line to this results log (read it with "
                       "ptutor.data.read_jsonl)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--debug", action="store_true", help="on an error, show the Python traceback too")
        if method is not None:
            _add_method_flags(p, method)
    return parser


def _method_of(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--method" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--method="):
            return a.split("=", 1)[1]
    return None


def parse_args(argv=None) -> argparse.Namespace:
    """Two passes: find --method, then parse again with that method's options only."""
    argv = list(sys.argv[1:] if argv is None else argv)
    method = _method_of(argv)
    if method is not None and method not in METHODS:
        build_parser().parse_args(argv)  # argparse reports the invalid choice and exits
    parser = build_parser(method)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flags = [u.split("=", 1)[0] for u in unknown if u.startswith("--")]
        owners = {f: sorted(m for m, c in METHODS.items() if f[2:].replace("-", "_") in
                            {x.name for x in dataclasses.fields(c.config_class)}) for f in flags}
        known_elsewhere = {f: o for f, o in owners.items() if o}
        if known_elsewhere:
            parser.error("; ".join(f"{f} is an option of method {', '.join(o)}, not of {method}"
                                   for f, o in known_elsewhere.items()))
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.options = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["shootout"]:  # every method at once: the shoot-out's own command line (ptutor.shootout)
        from .shootout import main as shootout_main

        return shootout_main(argv[1:])
    args = parse_args(argv)
    lrs = args.lr or [None]
    if len(lrs) > 1 and not args.dev:
        raise SystemExit("error: a learning-rate sweep (several --lr values) picks on dev: add --dev FILE")
    try:
        for lr in lrs:
            run_and_print(args, lr)
    except (ValueError, OSError, FloatingPointError, RuntimeError) as e:  # a user error: one line, exit status 2
        if args.debug:
            raise
        print(f"error: {e} (--debug shows the traceback)", file=sys.stderr)
        return 2
    return 0


def also_tests(pairs: list[str]) -> dict[str, str]:
    """`["unseen=FILE"]` -> `{"unseen": "FILE"}`; a pair without `=` is a user error."""
    out = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not (sep and name and path):
            raise ValueError(f"--also-test {pair!r}: write it as NAME=FILE, e.g. --also-test unseen=data/test.jsonl")
        out[name] = path
    return out


def run_and_print(args: argparse.Namespace, lr: float | None) -> None:
    """One run of the command line at rate `lr`; its JSON line goes to stdout (and to --out)."""
    result = run(args.task, args.method, args.model, args.train, args.test, args.dev, minutes=args.minutes,
                 steps=args.steps, seed=args.seed, lr=lr, batch_size=args.batch_size, max_length=args.max_length,
                 train_limit=args.train_limit, warmup=args.warmup, schedule=args.schedule, eval_every=args.eval_every,
                 head_lr=args.head_lr, also_test=also_tests(args.also_test), device=args.device, save=args.save,
                 out=args.out, start_from=args.start_from,
                 progress=not args.quiet, **args.options)
    print(json.dumps(result.record), flush=True)


if __name__ == "__main__":
    sys.exit(main())
