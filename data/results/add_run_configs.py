"""One-off conversion (kept in history, then removed): give every line of the logs the book keeps the `run` field
that lines have had since runs became one configuration, built from the line's own fields and the files its
recipe names, so that `python -m ptutor.experiments rerun LOG --line N` and the orchestrator's resume read them.
A line's head rate was the method's own rate then (one rate for everything): `head_lr` is stored as that rate.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from ptutor.experiments import DataConfig, RunConfig, TrainConfig, resolve  # noqa: E402
from ptutor.jsonl import read_jsonl  # noqa: E402
from ptutor.methods import METHODS  # noqa: E402

WNUT = ("data/wnut17/train.conll", "data/wnut17/test.conll", "data/wnut17/dev.conll")
E2E = ("data/e2e/train.jsonl", "data/e2e/test.jsonl", "data/e2e/dev.jsonl")
LOGS = {"wnut17_one_rate_steps": (WNUT, 75), "wnut17_sweep_3min": (WNUT, 75), "wnut17_lora_rank_steps": (WNUT, 75),
        "e2e_steps": (E2E, 40), "e2e_sweep_10min": (E2E, 40), "cpu_step_rates": (None, None)}


def legacy_run(r: dict, files, eval_every) -> dict:
    files = files or (WNUT if r["task"] == "ner" else E2E)
    cls = METHODS[r["method"]].config_class
    options = {k: v for k, v in cls.options(r["config"]).items() if cls().to_dict().get(k) != v}
    one_rate = r["method"] != "probe" and r["task"] == "ner"  # the head trained at the method's rate
    train = TrainConfig(lr=r["lr"], head_lr=r.get("head_lr") or (r["lr"] if one_rate else None), seed=r["seed"],
                        steps=r["budget"]["steps"], minutes=r["budget"]["minutes"], eval_every=eval_every)
    full = {"ner": 3394, "gen": 3511}[r["task"]]
    data = DataConfig(*files, train_limit=None if r["train_items"] == full else r["train_items"])
    config = RunConfig(r["task"], r["method"], data, model=r["model"], options=options, train=train)
    return {**resolve(config).to_dict(), "device": None}


for name, (files, eval_every) in LOGS.items():
    path = ROOT / "data" / "results" / f"{name}.jsonl"
    rows = read_jsonl(path)
    out = [{**r, "run": r.get("run") or legacy_run(r, files, eval_every)} for r in rows]
    path.write_text("".join(json.dumps(r) + "\n" for r in out))
    print(f"{path.name}: {len(out)} lines")


def multitask_runs() -> None:
    """The multi-task log's training lines get the configurations data/results/multitask_prefix.py now plans."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mt", ROOT / "data" / "results" / "multitask_prefix.py")
    mt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mt)
    f = {f"{n}_{s}": str(mt.WORK / f"{n}_{s}.jsonl") for n in ("source", "target") for s in ("train", "dev", "test")}
    path = ROOT / mt.LOG
    out = []
    for r in read_jsonl(path):
        if r["role"] == "source":
            c = mt.config(f["source_train"], f["source_test"], 200, limit=None)
        elif r["role"] == "sweep":
            c = mt.config(f["target_train"], f["target_dev"], 30, lr=r["lr"], dev=f["target_dev"], start=r["start"])
        elif r["role"] in ("final", "curve"):
            c = mt.config(f["target_train"], f["target_test"], r["steps"], r["seed"], r["lr"], start=r["start"])
        else:
            out.append(r)
            continue
        out.append({**r, "run": r.get("run") or {**resolve(c).to_dict(), "device": None}})
    path.write_text("".join(json.dumps(r) + "\n" for r in out))
    print(f"{path.name}: {len(out)} lines")


multitask_runs()
