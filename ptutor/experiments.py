"""One runner for every method on every task: a run is one configuration (`RunConfig`), trained and scored by `run`.

From Python (what the chapters and scripts call):

    config = RunConfig.of("ner", "pt2", "minilm", "data/wnut17/train.conll", "data/wnut17/test.conll",
                          dev="data/wnut17/dev.conll", steps=297, seed=0, num_virtual_tokens=16)
    result = run(config)          # result["f1"], result.history; run(config, return_model=True).model

`RunConfig.of` sorts its keyword arguments by name: the data's fields (`DataConfig`), the training fields
(`ptutor.train.TrainConfig`), the run's own (`RunConfig`), and the rest are the method's options (its config's
fields, e.g. num_virtual_tokens). A learning rate or head rate left out is the method's (the task's) pick from the
book's protocol, resolved before training and stored in the record.

From a shell, the same fields as flags (generated from those dataclasses: one place per knob):

    python -m ptutor.experiments ner --method pt2 --model minilm \\
        --train data/wnut17/train.conll --test data/wnut17/test.conll --steps 297 --seed 0 --num-virtual-tokens 16
    python -m ptutor.experiments rerun data/results/wnut17_steps.jsonl --line 3     # a logged run, again
    python -m ptutor.runs sweep ner --method lora --lrs 1e-3,3e-3 --seeds 0,1 --dev FILE ...    (many runs: ptutor.runs)
    python -m ptutor.runs shootout ner --seeds 0,1,2 --train FILE --dev FILE --test FILE

Every record holds its configuration (`record["run"]`, the rates resolved), so any logged run can be re-run.
Method options are scoped to their method: `--method M --help` lists M's; another method's option is an error.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import checkpoint
from .backbones import PRESETS, load_backbone
from .batches import IGNORE_INDEX, batches
from .jsonl import append_jsonl, read_jsonl
from .measure import count_parameters, hardware, versions
from .methods import METHODS, Method, inject
from .tasks import TASKS, Task, get_task, load_items
from .train import History, TrainConfig, fit, pick_device, seed_everything


def _knob(default=None, help: str = "", **kw):
    """A dataclass field with the help text of its generated command-line flag."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class DataConfig:
    """Where a run's examples come from: file paths (or, from Python, lists of already-read items)."""
    train: str | list | None = _knob(None, "training file (CoNLL for ner, JSON lines {input, target} for gen)",
                                     required=True)
    test: str | list | None = _knob(None, "test file, scored once after training", required=True)
    dev: str | list | None = _knob(None, "dev file: scored at --eval-every steps and at the end (picks use it)")
    also_test: dict = _knob({}, "more test sets scored with the same model, NAME=FILE (repeatable), e.g. "
                                "unseen=data/e2e_unseen/test_unseen.jsonl", metavar="NAME=FILE")
    train_limit: int | None = _knob(None, "train on a fixed random sample of this many training items")
    curve_test: bool = _knob(False, "also score the test set at every --eval-every point: a budget curve, the test "
                                    "score after each number of steps (each point costs a test evaluation)")


def _run_train_defaults() -> TrainConfig:
    return TrainConfig(lr=None)  # a run's rate defaults to the method's pick for its task


@dataclass
class RunConfig:
    """One run, whole: the task, the method and its options, the backbone, the data and how to train. A record
    stores it (`record["run"]`, rates resolved) and `RunConfig.from_dict` rebuilds it, so a logged run re-runs."""
    task: str
    method: str
    data: DataConfig
    model: str | None = _knob(None, "backbone preset (python -m ptutor.backbones list; default: the task's, minilm "
                                    "for ner and smollm2-135m for gen)")
    options: dict = _knob({}, "the method's own options (its config's fields)", cli=False)
    train: TrainConfig = field(default_factory=_run_train_defaults)
    batch_size: int | None = _knob(None, "examples per step (default: the task's, 16 for ner and 8 for gen)")
    max_length: int | None = _knob(None, "tokens per example (default: the task's, 128)")
    device: str | None = _knob(None, "cuda, mps or cpu (default: the first there is)")
    dtype: str = _knob("float32", "the backbone's weights: float32, bfloat16 or float16",
                       choices=("float32", "bfloat16", "float16"))
    start_from: str | None = _knob(None, "a checkpoint folder (from --save) of the same method to start from instead "
                                         "of the method's own initialisation")

    def __post_init__(self):
        if self.device is not None:
            self.device = str(self.device)  # a torch.device, from a notebook, is stored by its name
        if isinstance(self.dtype, torch.dtype):
            self.dtype = str(self.dtype).removeprefix("torch.")
        get_task(self.task)  # an unknown task is an error that lists the known ones
        method_config(self.method, self.options)  # an unknown method or a foreign option is an error now
        if self.model is not None and not self.model.startswith("hub:") and self.model not in PRESETS:
            raise ValueError(f"unknown backbone preset {self.model!r}; known: {', '.join(PRESETS)} (python -m "
                             "ptutor.backbones list), or hub:<owner/name> for any model on the Hugging Face hub")

    @classmethod
    def of(cls, task: str, method: str, model: str | None = None, train=None, test=None, dev=None,
           **knobs) -> RunConfig:
        """A RunConfig from flat keyword arguments, each sent to the dataclass that has a field of its name
        (DataConfig, TrainConfig, RunConfig); the rest are the method's options."""
        parts: dict[type, dict] = {DataConfig: {"train": train, "test": test, "dev": dev}, TrainConfig: {}, cls: {}}
        options = {}
        for name, value in knobs.items():
            owner = next((c for c in parts if name in _field_names(c) and name not in ("data", "train")), None)
            if owner is None:
                options[name] = value
            else:
                parts[owner][name] = value
        if parts[TrainConfig].get("minutes") is not None and "steps" not in parts[TrainConfig]:
            parts[TrainConfig]["steps"] = None  # a time budget alone: no step cap (the 100-step default is for neither)
        train_fields = {**dataclasses.asdict(_run_train_defaults()), **parts[TrainConfig]}
        return cls(task, method, DataConfig(**parts[DataConfig]), model=model, options=options,
                   train=TrainConfig(**train_fields), **parts[cls])

    def to_dict(self) -> dict:
        """JSON-ready; data given as item lists (not files) is stored as a note, and such a run cannot re-run."""
        d = dataclasses.asdict(self)
        for key in ("train", "test", "dev"):
            if isinstance(d["data"][key], list):
                d["data"][key] = f"<{len(d['data'][key])} items given from Python>"
        d["data"]["also_test"] = {k: v if isinstance(v, str) else f"<{len(v)} items given from Python>"
                                  for k, v in d["data"]["also_test"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        d = dict(d)
        return cls(**{**d, "data": DataConfig(**d["data"]), "train": TrainConfig(**d["train"])})


def resolve(config: RunConfig) -> RunConfig:
    """`config` with what it leaves to defaults filled in as `run` fills them: the task's backbone, the method's rate
    for the task, and the task's head rate (`Task.head_lr`) for a method that trains a new task head beside other
    weights, fine-tuning included (a linear probe trains the head alone: its rate is the head's)."""
    task, cfg = get_task(config.task), method_config(config.method, config.options)
    head = config.train.head_lr
    if head is None and task.head_lr and cfg.trains_new_head():
        head = task.head_lr
    return dataclasses.replace(config, model=config.model or task.default_model,
                               train=dataclasses.replace(config.train, lr=config.train.lr or cfg.lr_for(task.name),
                                                         head_lr=head))


def run_key(run: dict) -> str:
    """What makes two logged runs the same run, the one rule every resume and pooling uses: the whole resolved
    configuration (`record["run"]`) except the device (a step-budgeted run does the same training anywhere) and
    the progress bar; a method option at its default counts as given, numbers compare as numbers (16 == 16.0), and
    derived fields (what an initialisation drew) are outcomes, not settings; a data knob the record lacks (one added
    after it was logged) is at its default."""
    d = _canonical({**run, "data": {**dataclasses.asdict(DataConfig()), **run["data"]}})
    d.pop("device", None)
    d["train"].pop("progress", None)
    cls = METHODS[d["method"]].config_class
    d["options"] = cls.options(_canonical(method_config(d["method"], d["options"]).to_dict()))
    return json.dumps(d, sort_keys=True)


def _canonical(value):
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def method_config(method: str, options: dict):
    """The method's config from option names (underscores); an option of another method is an error."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(sorted(METHODS))}")
    cls = METHODS[method].config_class
    fields = _field_names(cls)
    foreign = sorted(set(options) - fields)
    if foreign:
        owners = {name: sorted(m for m, c in METHODS.items() if name in _field_names(c.config_class))
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


def run(config: RunConfig, *, model: tuple | None = None, out: str | None = None, save: str | None = None,
        progress: bool = False, return_model: bool = False) -> RunResult:
    """Train and score the run `config` describes. `model` is a (model, tokenizer) pair already loaded (else the
    backbone preset `config.model` is loaded); `out` appends the stamped record to a JSON-lines results log;
    `save` writes the trained method as a checkpoint folder; `return_model` keeps the trained model in the result.

    The training stops at `config.train.steps` or `.minutes`, whichever first; `data.train_limit` trains on a
    seeded sample (the same for every seed); `start_from` starts from a checkpoint of the same method (transfer)."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    check_writable(out=out, save=save)  # before any work: a 10-minute run must not end in "cannot write"
    task = get_task(config.task)
    method_cfg = method_config(config.method, config.options)
    data = config.data
    train_items = load_items(task, data.train, "training")
    task.learn(train_items)  # e.g. the NER label set, before dev and test are read (their tags are checked)
    if data.train_limit is not None:
        if data.train_limit < 1:
            raise ValueError(f"train_limit must be at least 1, got {data.train_limit}")
        order = torch.randperm(len(train_items), generator=torch.Generator().manual_seed(1234)).tolist()
        train_items = [train_items[i] for i in sorted(order[:data.train_limit])]  # the same sample for every seed
    if data.curve_test and not config.train.eval_every:
        raise ValueError("curve_test scores the test set at every --eval-every point: give --eval-every N too")
    test_items = load_items(task, data.test, "test")
    also_items = {name: load_items(task, source, f"{name} test") for name, source in data.also_test.items()}
    dev_items = load_items(task, data.dev, "dev") if data.dev is not None else None
    seed = config.train.seed or 0
    seed_everything(seed)
    device = pick_device(config.device)
    base, tok = _backbone(task, model or resolve(config).model, seed, getattr(torch, config.dtype))
    wrapped = warm_start(base, method_cfg, config.start_from) if config.start_from else \
        inject(base, method_cfg, tokenizer=tok)
    resolved = resolve(config)
    resolved = dataclasses.replace(resolved, train=dataclasses.replace(resolved.train, progress=progress))
    batch_size = config.batch_size or task.batch_size
    rows = task.encode(train_items, tok, config.max_length, model=base)
    if not any(label != IGNORE_INDEX for r in rows for label in r["labels"]):
        raise ValueError(f"no training example keeps a labelled token within max_length="
                         f"{config.max_length or task.max_length} (for generation: the prompt alone fills it): the loss "
                         "would be empty. Raise --max-length.")
    stream = TokenCounter(batches(rows, batch_size, pad_id=tok.pad_token_id, shuffle=True, seed=seed))

    def curve_point(m):  # dev scores, and with curve_test the test's too, at an --eval-every point
        named = {"dev": dev_items, "test": test_items if data.curve_test else None}
        return {f"{name}_{k}": v for name, items in named.items() if items is not None
                for k, v in task.evaluate(m, items, tok, max_length=config.max_length).items() if k != "examples"}
    hist = fit(wrapped, stream, resolved.train, device=device,
               eval_fn=curve_point if dev_items is not None or data.curve_test else None)
    t0 = time.perf_counter()
    if data.dev is not None and data.dev == data.test:  # a sweep scored on dev only: the final dev scores are the test's
        scores = {k[len("dev_"):]: v for k, v in hist.evals[-1].items() if k.startswith("dev_")}
    else:
        scores = task.evaluate(wrapped, test_items, tok, max_length=config.max_length)
    test_sets = {name: _rounded(task.evaluate(wrapped, items, tok, max_length=config.max_length))
                 for name, items in also_items.items()}
    eval_seconds = time.perf_counter() - t0
    trainable, total = count_parameters(wrapped)
    t = resolved.train
    record = {"task": task.name, "method": config.method, "model": resolved.model or
              getattr(base.config, "ptutor_preset", type(base).__name__),
              "metric": task.metric, "primary": round(scores[task.metric], 4), **_rounded(scores),
              "trainable_params": trainable, "total_params": total, "steps": hist.steps,
              "step_seconds": round(hist.median_step_seconds, 4),
              "tokens_per_second": round(stream.tokens / hist.train_seconds, 1) if hist.train_seconds else None,
              "train_seconds": round(hist.train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
              "peak_mb": round(hist.peak_mb, 1), "lr": t.lr, "batch_size": batch_size,
              "train_items": len(train_items),
              "budget": {"minutes": t.minutes, "steps": t.steps}, "seed": seed, "device": str(device),
              "config": wrapped.config.to_dict(), "run": {**resolved.to_dict(), "device": config.device},
              "versions": versions(), "hardware": hardware(),
              "started_at": started_at, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if config.start_from:
        record["start_from"] = str(config.start_from)
    if t.head_lr is not None:
        record["head_lr"] = t.head_lr
    if test_sets:
        record["test_sets"] = test_sets
    if hist.evals:
        record.update({k: round(v, 4) for k, v in hist.evals[-1].items() if k.startswith("dev_")})
        if len(hist.evals) > 1:  # a learning curve: dev (and test) scores and loss against steps and seconds
            keep = ("step", "seconds", "loss", f"dev_{task.metric}", f"test_{task.metric}")
            record["curve"] = [{k: round(v, 4) if isinstance(v, float) else v for k, v in e.items() if k in keep}
                               for e in hist.evals]
    if save:
        record["checkpoint_bytes"] = checkpoint.save(wrapped, save)["bytes"]
    if out:
        try:
            append_jsonl(record, out)
        except OSError as e:  # the result is not lost: it is in the message
            raise OSError(f"could not append the result to {out} ({e}); the result: {json.dumps(record)}") from None
    return RunResult(record, hist, wrapped if return_model else None)


def _rounded(scores: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}


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


def logged_run(log: str, line: int) -> RunConfig:
    """The configuration of the run on line `line` (1-based) of a results log, to run it again."""
    rows = read_jsonl(log)
    if not 1 <= line <= len(rows):
        raise ValueError(f"{log} has {len(rows)} lines; --line must be between 1 and {len(rows)}")
    record = rows[line - 1]
    if "run" not in record:
        raise ValueError(f"{log}:{line} has no 'run' field (a line written before runs stored their configuration): "
                         "it cannot be re-run from the log")
    data = record["run"]["data"]
    given = [k for k in ("train", "test", "dev") if isinstance(data.get(k), str) and data[k].startswith("<")]
    if given:
        raise ValueError(f"{log}:{line} was trained on items given from Python ({', '.join(given)}), not on files: "
                         "it cannot be re-run from the log")
    return RunConfig.from_dict(record["run"])


# --- the command line, generated from the dataclasses' fields ---------------------------------------------------

PLUMBING = {  # flags that are not part of what a run is: where its outputs go and how it talks
    "out": dict(default=None, help="also append the JSON line to this results log"),
    "save": dict(default=None, help="folder to save the trained method in (a checkpoint)"),
    "quiet": dict(action="store_true", help="no progress bar"),
    "debug": dict(action="store_true", help="on an error, show the Python traceback too"),
}


def field_parser(cls, name: str, default):
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
    kind = kind if kind in (int, float, str) else str
    if kind in (int, float) and not (name.endswith("seed") or name == "warmup" or default == 0):
        return _positive(kind)  # a count, a rate, a time or a size: zero or less is a mistake
    return kind


def _positive(kind):
    def parse(s):
        if "," in s:
            raise argparse.ArgumentTypeError(f"one value, got {s!r} (several rates are a sweep: python -m ptutor.runs "
                                             "sweep TASK --method M --lrs 1e-3,3e-3 --dev FILE ...)")
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {s!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {s}")
        return v
    return parse


def _pairs(s: str) -> tuple[str, str]:
    name, sep, path = s.partition("=")
    if not (sep and name and path):
        raise argparse.ArgumentTypeError(f"write it as NAME=FILE, e.g. unseen=data/test.jsonl; got {s!r}")
    return name, path


def run_fields() -> list[tuple[type, dataclasses.Field, object]]:
    """(dataclass, field, default) of every command-line knob of a run, in flag order: the run's own fields, its
    data's, its training's (TrainConfig fields marked cli=False and the nested parts excluded)."""
    defaults = {RunConfig: {}, DataConfig: {}, TrainConfig: dataclasses.asdict(_run_train_defaults())}
    out = []
    for cls in (RunConfig, DataConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            if (cls is RunConfig and f.name in ("task", "method", "data", "train")) or f.metadata.get("cli") is False:
                continue
            default = defaults[cls].get(f.name, f.default if f.default is not dataclasses.MISSING else
                                        f.default_factory())
            out.append((cls, f, default))
    return out


def add_run_flags(p: argparse.ArgumentParser, method: str | None) -> None:
    """The flags of one run: --method, every RunConfig/DataConfig/TrainConfig knob, the method's options, plumbing."""
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    for cls, f, default in run_fields():
        flag, meta = "--" + f.name.replace("_", "-"), f.metadata
        if f.name == "also_test":
            p.add_argument(flag, dest=f.name, action="append", type=_pairs, default=None, metavar="NAME=FILE",
                           help=meta["help"])
            continue
        note = f" (default {default}" + (", unless --minutes is given" if f.name == "steps" else "") + ")"
        kwargs = dict(dest=f.name, default=None if f.name == "steps" else default,
                      help=meta.get("help", "") + (note if default not in (None, {}) else ""),
                      required=meta.get("required", False))
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        p.add_argument(flag, type=field_parser(cls, f.name, default), **kwargs)
    if method is not None:
        cls = METHODS[method].config_class
        group = p.add_argument_group(f"options of --method {method} ({cls.title or method})")
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            group.add_argument("--" + f.name.replace("_", "-"), dest=f"opt_{f.name}", default=None,
                               metavar=f.name.upper(), type=field_parser(cls, f.name, default), help=f"(default {default})")
    for name, kwargs in PLUMBING.items():
        p.add_argument("--" + name, dest=f"plumb_{name}", **kwargs)


def config_from_args(task: str, args: argparse.Namespace) -> RunConfig:
    """The RunConfig a parsed command line describes."""
    values = {f.name: getattr(args, f.name) for _, f, _ in run_fields()}
    values["also_test"] = dict(values["also_test"] or [])
    if values["steps"] is None:
        del values["steps"]  # RunConfig.of: the default step budget, or none under a time budget
    options = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}
    return RunConfig.of(task, args.method, **values, **options)


TASK_HELP = {"ner": "token tagging on CoNLL files, entity F1", "gen": "data-to-text on JSON lines {input, target}, "
             "corpus BLEU"}


def build_parser(method: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ptutor.experiments", description=__doc__.split("\n\n")[0],
                                     epilog="Many runs (a sweep, a shoot-out): python -m ptutor.runs sweep|shootout --help")
    sub = parser.add_subparsers(dest="task", required=True)
    for name in TASKS:
        p = sub.add_parser(name, help=TASK_HELP.get(name, name),
                           epilog=None if method else "Add --method M --help to list the options of method M.")
        add_run_flags(p, method)
    p = sub.add_parser("rerun", help="run a logged run again, from its line of a results log")
    p.add_argument("log")
    p.add_argument("--line", type=_positive(int), required=True, help="the line's number (1 is the first)")
    for name, kwargs in PLUMBING.items():
        p.add_argument("--" + name, dest=f"plumb_{name}", **kwargs)
    return parser


def _method_of(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--method" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--method="):
            return a.split("=", 1)[1]
    return None


def parse_args(argv=None) -> argparse.Namespace:
    """Two passes: find --method, then parse again with that method's options only. Adds `.config` (a RunConfig)
    for a run, and `.options` (the method's options given)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    method = _method_of(argv)
    if method is not None and method not in METHODS:
        build_parser().parse_args(argv)  # argparse reports the invalid choice and exits
    parser = build_parser(method)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flags = [u.split("=", 1)[0] for u in unknown if u.startswith("--")]
        owners = {f: sorted(m for m, c in METHODS.items() if f[2:].replace("-", "_") in _field_names(c.config_class))
                  for f in flags}
        known_elsewhere = {f: o for f, o in owners.items() if o}
        if known_elsewhere:
            parser.error("; ".join(f"{f} is an option of method {', '.join(o)}, not of {method}"
                                   for f, o in known_elsewhere.items()))
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.options = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        config = logged_run(args.log, args.line) if args.task == "rerun" else config_from_args(args.task, args)
        result = run(config, out=args.plumb_out, save=args.plumb_save, progress=not args.plumb_quiet)
    except (ValueError, OSError, FloatingPointError, RuntimeError) as e:  # a user error: one line, exit status 2
        if args.plumb_debug:
            raise
        print(f"error: {e} (--debug shows the traceback)", file=sys.stderr)
        return 2
    print(json.dumps(result.record), flush=True)
    return 0


def command(config: RunConfig, out: str | None = None, save: str | None = None, python: str = sys.executable) -> list[str]:
    """The command line that makes the run `config` describes (what the orchestrator starts in a child process)."""
    cmd = [python, "-m", "ptutor.experiments", config.task, "--method", config.method]
    for cls, f, default in run_fields():
        value = getattr(config.train if cls is TrainConfig else config.data if cls is DataConfig else config, f.name)
        if value == default or value is None:
            continue
        if f.name == "also_test":
            cmd += [x for name, path in value.items() for x in ("--also-test", f"{name}={path}")]
        else:
            cmd += ["--" + f.name.replace("_", "-"), _text(value)]
    for name, value in config.options.items():
        cmd += ["--" + name.replace("_", "-"), _text(value)]
    cmd += ["--quiet"] + (["--out", out] if out else []) + (["--save", save] if save else [])
    return cmd


def _text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
