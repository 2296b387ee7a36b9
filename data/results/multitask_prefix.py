"""Multi-task prefixes (chapter 7, a demonstration on the generated d2t set: its record types are the tasks). A prefix
trained on town and person records (source), each start scored untrained on product records (step0), swept on
product dev (sweep), then at its pick with seeds 0-2 after 30, 5 and 10 steps (final, curve). Every training run goes
through the orchestrator, so a stopped recipe resumes: `python data/results/multitask_prefix.py [--workers 2]`.
"""
import argparse
import os
import sys
from pathlib import Path

LOG, WORK = "data/results/multitask_prefix.jsonl", Path("runs/multitask")
STARTS = {"default": {}, "random": {"init": "random"}, "two-task": {"start_from": str(WORK / "source_prefix")}}


def files() -> dict[str, str]:
    """The d2t splits cut by record type, made once in WORK: source = town and person records, target = product."""
    from ptutor.jsonl import read_jsonl, write_jsonl
    out = {f"{n}_{s}": str(WORK / f"{n}_{s}.jsonl") for n in ("source", "target") for s in ("train", "dev", "test")}
    for key, path in out.items():
        name, split = key.split("_")
        types = ("town", "person") if name == "source" else ("product",)
        if not Path(path).exists():
            write_jsonl([r for r in read_jsonl(f"data/d2t/{split}.jsonl") if r["type"] in types], path)
    return out


def config(train, test, steps, seed=0, lr=0.1, dev=None, start="default", limit=32):
    from ptutor.experiments import RunConfig  # P-Tuning v2 on SmolLM2, batch 8, from `start`
    return RunConfig.of("gen", "pt2", "smollm2-135m", train, test, dev=dev, train_limit=limit, batch_size=8,
                        steps=steps, seed=seed, lr=lr, **STARTS[start])


def role_of(r: dict) -> tuple[str, str | None]:
    """(role, start) of a logged run of this recipe, read from its configuration."""
    if "source" in (run := r["run"])["data"]["train"]:
        return "source", None
    start = "two-task" if run["start_from"] else "random" if run["options"].get("init") == "random" else "default"
    return ("sweep" if run["data"]["dev"] else "final" if run["train"]["steps"] == 30 else "curve"), start


def step0(start: str, test: str) -> dict:
    """A start's BLEU, ROUGE-L and share of outputs stating every value, on the product test rows, untrained."""
    from ptutor.backbones import load_backbone
    from ptutor.experiments import warm_start
    from ptutor.methods import PrefixConfig, inject
    from ptutor.tasks import get_task
    __import__("torch").manual_seed(0)
    base, tok = load_backbone("smollm2-135m", "causal-lm")
    model = warm_start(base, PrefixConfig(), STARTS[start]["start_from"]) if start == "two-task" else \
        inject(base, PrefixConfig(**STARTS[start]), tokenizer=tok)
    scores = get_task("gen").evaluate(model.eval(), get_task("gen").read(test), tok)
    return {k: round(scores[k], 4) for k in ("bleu", "rouge_l", "mentions_all")}


def main(workers: int) -> None:
    from ptutor.experiments import run
    from ptutor.jsonl import append_jsonl, read_jsonl
    from ptutor.results import pick_lr
    from ptutor.runs import execute, pending
    f = files()
    source = config(f["source_train"], f["source_test"], 200, limit=None)
    logged = not pending([source], read_jsonl(LOG) if Path(LOG).exists() else [])
    if not (logged and Path(STARTS["two-task"]["start_from"]).exists()):  # a logged run's prefix is made again
        run(source, out=None if logged else LOG, save=STARTS["two-task"]["start_from"])
    if not any(r.get("role") == "step0" for r in read_jsonl(LOG)):
        for start in STARTS:
            append_jsonl({"role": "step0", "start": start, **step0(start, f["target_test"])}, LOG)
    rows = execute([config(f["target_train"], f["target_dev"], 30, lr=lr, dev=f["target_dev"], start=s)
                    for s in STARTS for lr in (3e-2, 1e-1, 3e-1)], LOG, workers=workers)
    picked = {s: pick_lr([r for r in rows if role_of(r)[1] == s], "pt2") for s in STARTS}
    execute([config(f["target_train"], f["target_test"], n, seed, picked[s], start=s)
             for n in (30, 5, 10) for s in STARTS for seed in (0, 1, 2)], LOG, workers=workers)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.chdir(Path(__file__).resolve().parents[2])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    main(parser.parse_args().workers)
