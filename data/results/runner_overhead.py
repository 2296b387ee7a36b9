"""How much the runner's training loop (ptutor.train.fit, which ptutor.experiments.run calls) adds to a
step, against the bare loop a reader would write: forward, backward, clip, AdamW step.

Both train the same method on the same batches; the two are interleaved in rounds so that drift in the
machine's speed hits both alike. Prints one JSON line (and appends it to --out).

    python data/results/runner_overhead.py --method pt2 --steps 40 --rounds 8 --out data/results/runner_overhead.jsonl
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

from types import SimpleNamespace

import torch

from ptutor.backbones import load_backbone
from ptutor.data import NER_LABELS, append_jsonl, batches, encode_ner, read_conll
from ptutor.experiments import method_config, TokenCounter
from ptutor.measure import hardware, versions
from ptutor.methods import inject
from ptutor.train import TrainConfig, fit


def bare_loop(model, stream, steps: int, lr: float) -> None:
    """The loop without any of fit's bookkeeping (no schedule, no budget checks, no progress bar)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        loss = model(**next(stream)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()


def runner_loop(model, stream, steps: int, lr: float, seed: int) -> None:
    fit(model, stream, TrainConfig(lr=lr, steps=steps, progress=False, seed=seed), device=torch.device("cpu"))


class Toy(torch.nn.Module):
    """A model with almost no compute, so a loop's own bookkeeping is what the clock sees."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(8, 1)

    def forward(self, x, labels):
        return SimpleNamespace(loss=(self.w(x).squeeze(-1) - labels).pow(2).mean())


def toy_stream(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    while True:
        yield {"x": torch.randn(16, 8, generator=g), "labels": torch.randn(16, generator=g)}


def bookkeeping_seconds(steps: int = 3000, rounds: int = 5) -> tuple[float, float]:
    """Seconds per step of (bare loop, fit) on the toy model, best of `rounds`: the difference is what
    fit adds per step, independent of the model's own step time."""
    best = {"bare": float("inf"), "runner": float("inf")}
    for r in range(rounds):
        for kind in ("bare", "runner"):
            torch.manual_seed(r)
            model, stream = Toy(), toy_stream(r)
            train = (lambda: bare_loop(model, stream, steps, 1e-3)) if kind == "bare" else (
                lambda: runner_loop(model, stream, steps, 1e-3, r))
            best[kind] = min(best[kind], wall_per_step(train, steps))
    return best["bare"], best["runner"]


def wall_per_step(train, steps: int) -> float:
    t0 = time.perf_counter()
    train()
    return (time.perf_counter() - t0) / steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", default="pt2")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    pristine, tok = load_backbone("minilm", "token-classification", labels=NER_LABELS)
    rows = encode_ner(read_conll("data/ner/train.conll")[:800], tok)
    config = method_config(args.method, {})
    bare, runner = [], []
    for r in range(args.rounds):
        for kind in (("bare", "runner") if r % 2 == 0 else ("runner", "bare")):  # alternate who goes first
            torch.manual_seed(r)
            model = inject(copy.deepcopy(pristine), config)
            stream = TokenCounter(batches(rows, 16, pad_id=tok.pad_token_id, shuffle=True, seed=r))
            if kind == "bare":
                bare.append(wall_per_step(lambda: bare_loop(model, stream, args.steps, config.default_lr), args.steps))
            else:
                runner.append(wall_per_step(lambda: runner_loop(model, stream, args.steps, config.default_lr, r),
                                            args.steps))
    toy_bare, toy_runner = bookkeeping_seconds()
    added = toy_runner - toy_bare
    out = {"what": "wall seconds per training step, bare loop vs ptutor.train.fit (the runner's loop)",
           # fit's own per-step work (LR schedule, finite-loss check, loss.item(), progress), measured on a
           # model with almost no compute, as a share of the real model's median step
           "toy_bare_us_per_step": round(1e6 * toy_bare, 1), "toy_runner_us_per_step": round(1e6 * toy_runner, 1),
           "bookkeeping_share_of_real_step": round(added / statistics.median(bare), 5),
           "method": args.method, "model": "minilm", "steps": args.steps, "rounds": args.rounds,
           "bare_s_per_step": [round(x, 4) for x in bare], "runner_s_per_step": [round(x, 4) for x in runner],
           "overhead": round(statistics.median(runner) / statistics.median(bare) - 1, 4),
           # each round pairs a bare and a runner pass on the same batches, run back to back
           "overhead_per_round": [round(r / b - 1, 4) for b, r in zip(bare, runner)],
           "overhead_median_of_rounds": round(statistics.median(r / b - 1 for b, r in zip(bare, runner)), 4),
           "versions": versions(), "hardware": hardware()}
    print(json.dumps(out))
    if args.out:
        append_jsonl(out, args.out)


if __name__ == "__main__":
    main()
