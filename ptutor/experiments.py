"""One command runs any method on any CoNLL files and prints one JSON line.

    python -m ptutor.experiments ner --method ft --model minilm \
        --train data/ner/train.conll --test data/ner/test.conll --minutes 3 --seed 0

Method options come from the method's config dataclass: every field becomes a flag
(e.g. `--num-virtual-tokens 16`), so a new method needs no change here.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing

from . import checkpoint
from .backbones import load_backbone
from .data import NER_LABELS, append_jsonl, batches, encode_ner, read_conll
from .measure import hardware, versions
from .methods import METHODS, inject
from .ner import evaluate_ner
from .train import TrainConfig, fit, pick_device, seed_everything


def _method_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per config field of every registered method (shared names are added once)."""
    added = set()
    for name, cls in sorted(METHODS.items()):
        group = parser.add_argument_group(f"--method {name} options")
        for f in dataclasses.fields(cls.config_class):
            if f.name in added:
                continue
            added.add(f.name)
            flag = "--" + f.name.replace("_", "-")
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if isinstance(default, bool):
                group.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None,
                                   metavar="true|false", help=f"(default {default})")
            else:
                group.add_argument(flag, type=_flag_type(cls.config_class, f.name, default), default=None,
                                   help=f"(default {default})")


def _flag_type(cls, name: str, default):
    """The parser for a config field: the default's type, or the annotation's (`int | None` -> int)."""
    if default is not None:
        return type(default)
    hint = typing.get_type_hints(cls)[name]
    kinds = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    return kinds[0] if kinds[0] in (int, float, str) else str


def method_config(method: str, args: argparse.Namespace):
    cls = METHODS[method].config_class
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}
    return cls(**given)


def run_ner(args: argparse.Namespace) -> dict:
    seed_everything(args.seed)
    device = pick_device(args.device)
    train_sents, test_sents = read_conll(args.train), read_conll(args.test)
    model, tok = load_backbone(args.model, "token-classification", labels=NER_LABELS, seed=args.seed)
    config = method_config(args.method, args)
    model = inject(model, config)
    train_rows = encode_ner(train_sents, tok, max_length=args.max_length)
    test_rows = encode_ner(test_sents, tok, max_length=args.max_length)
    dev_rows = encode_ner(read_conll(args.dev), tok, max_length=args.max_length) if args.dev else None
    eval_fn = (lambda m: {"dev_f1": evaluate_ner(m, dev_rows, pad_id=tok.pad_token_id)["f1"]}) if dev_rows else None
    train = TrainConfig(lr=args.lr or config.default_lr, steps=args.steps, minutes=args.minutes,
                        warmup=args.warmup, schedule=args.schedule, seed=args.seed, progress=not args.quiet,
                        eval_every=args.eval_every if dev_rows else None)
    hist = fit(model, batches(train_rows, args.batch_size, pad_id=tok.pad_token_id, shuffle=True, seed=args.seed),
               train, device=device, eval_fn=eval_fn)
    scores = evaluate_ner(model, test_rows, pad_id=tok.pad_token_id)
    if args.save:
        checkpoint.save(model, args.save)
    out = {"task": "ner", "method": args.method, "model": args.model, "f1": round(scores["f1"], 4),
           "precision": round(scores["precision"], 4), "recall": round(scores["recall"], 4),
           "trainable_params": hist.trainable_params, "total_params": hist.total_params, "steps": hist.steps,
           "step_seconds": round(hist.median_step_seconds, 4), "train_seconds": round(hist.train_seconds, 1),
           "peak_mb": round(hist.peak_mb, 1), "lr": train.lr, "batch_size": args.batch_size, "seed": args.seed,
           "device": str(device), "config": config.to_dict(), "versions": versions(), "hardware": hardware()}
    if hist.evals and "dev_f1" in hist.evals[-1]:
        out["dev_f1"] = round(hist.evals[-1]["dev_f1"], 4)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ptutor.experiments", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="task", required=True)
    ner = sub.add_parser("ner", help="token tagging on CoNLL files, entity F1")
    ner.add_argument("--method", required=True, choices=sorted(METHODS))
    ner.add_argument("--model", default="minilm", help="backbone preset (python -m ptutor.backbones list)")
    ner.add_argument("--train", required=True)
    ner.add_argument("--test", required=True)
    ner.add_argument("--dev")
    ner.add_argument("--minutes", type=float, default=None, help="time budget")
    ner.add_argument("--steps", type=int, default=None, help="step budget (with --minutes: whichever ends first)")
    ner.add_argument("--seed", type=int, default=0)
    ner.add_argument("--lr", type=float, default=None, help="default: the method's default_lr")
    ner.add_argument("--batch-size", type=int, default=16)
    ner.add_argument("--max-length", type=int, default=128)
    ner.add_argument("--warmup", type=float, default=0.06)
    ner.add_argument("--schedule", default="linear", choices=["linear", "constant"])
    ner.add_argument("--eval-every", type=int, default=100)
    ner.add_argument("--device", default=None)
    ner.add_argument("--save", default=None, help="folder to save the trained method in")
    ner.add_argument("--out", default=None, help="also append the JSON line to this file (a results log; read it "
                     "with ptutor.data.read_jsonl)")
    ner.add_argument("--quiet", action="store_true")
    _method_flags(ner)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.minutes is None and args.steps is None:
        args.minutes = 3.0
    result = run_ner(args)
    print(json.dumps(result), flush=True)
    if args.out:
        append_jsonl(result, args.out)
    return 0


METHOD_TITLES = {"ft": "full fine-tuning", "probe": "linear probe", "pt": "prompt tuning", "ptv1": "P-Tuning v1",
                 "pt2": "P-Tuning v2"}


def run_name(row: dict) -> str:
    """A short readable name for one run: method plus the options that differ from its defaults."""
    cls = METHODS[row["method"]].config_class
    defaults = cls().to_dict()
    changed = [f"{k}={v}" for k, v in row["config"].items() if k != "method" and defaults.get(k) != v]
    title = METHOD_TITLES.get(row["method"], row["method"])
    return title + (f" ({', '.join(changed)})" if changed else "")


def results_table(rows: list[dict], baseline: str = "ft") -> str:
    """A markdown table of experiment rows; F1 and step time relative to the best `baseline` run."""
    base = [r for r in rows if r["method"] == baseline]
    best = max(base, key=lambda r: r["f1"]) if base else None
    head = "| run | LR | trainable (share) | steps | s/step | F1 (test) |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if best:
        head, rule = head + f" F1 / best {baseline} | step / {baseline} |", rule + "---:|---:|"
    lines = [head, rule]
    for r in rows:
        line = (f"| {run_name(r)} | {r['lr']:g} | {r['trainable_params']:,} "
                f"({100 * r['trainable_params'] / r['total_params']:.2f}%) | {r['steps']} | "
                f"{r['step_seconds']:.3f} | {r['f1']:.3f} |")
        if best:
            line += f" {r['f1'] / best['f1']:.2f} | {r['step_seconds'] / best['step_seconds']:.2f} |"
        lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
