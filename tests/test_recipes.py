"""Every protocol log is exactly what its recipe makes (data/results/recipes.py): each run the recipe plans is in the
log, and each line of the log is a run the recipe plans (one rule for "the same run": ptutor.experiments.run_key)."""
import importlib.util
from pathlib import Path

import pytest

from ptutor.experiments import run_key
from ptutor.jsonl import read_jsonl
from ptutor.results import pick_lr
from ptutor.runs import parse

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("recipes", ROOT / "data" / "results" / "recipes.py")
recipes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipes)


@pytest.mark.parametrize("log", sorted(recipes.RECIPES))
def test_a_protocol_log_holds_exactly_the_runs_its_recipe_plans(log, monkeypatch):
    monkeypatch.chdir(ROOT)  # recipes name files relative to the book's root
    planned = {run_key(c.to_dict()) for line in recipes.RECIPES[log]
               for c in parse([*line.split(), "--out", f"data/results/{log}"])[1]}
    logged = [run_key(r["run"]) for r in read_jsonl(ROOT / "data" / "results" / log)]
    assert len(logged) == len(set(logged)), f"{log} holds a run twice"
    assert planned - set(logged) == set(), f"{len(planned - set(logged))} planned runs are not in {log}"
    assert set(logged) - planned == set(), f"{len(set(logged) - planned)} lines of {log} are in no recipe"


def test_the_multi_task_log_holds_exactly_the_runs_its_script_plans(monkeypatch):
    """data/results/multitask_prefix.py's training runs (source, sweep, final and curve) are its log's lines."""
    monkeypatch.chdir(ROOT)
    spec = importlib.util.spec_from_file_location("mt", ROOT / "data" / "results" / "multitask_prefix.py")
    mt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mt)
    f = {f"{n}_{s}": str(mt.WORK / f"{n}_{s}.jsonl") for n in ("source", "target") for s in ("train", "dev", "test")}
    rows = read_jsonl(ROOT / mt.LOG)
    runs = [r for r in rows if "run" in r]
    sweep = [mt.config(f["target_train"], f["target_dev"], 30, lr=lr, dev=f["target_dev"], start=s)
             for s in mt.STARTS for lr in (3e-2, 1e-1, 3e-1)]
    picked = {s: pick_lr([r for r in runs if mt.role_of(r) == ("sweep", s)], "pt2") for s in mt.STARTS}
    final = [mt.config(f["target_train"], f["target_test"], n, seed, picked[s], start=s)
             for n in (30, 5, 10) for s in mt.STARTS for seed in (0, 1, 2)]
    planned = [mt.config(f["source_train"], f["source_test"], 200, limit=None), *sweep, *final]
    assert {run_key(c.to_dict()) for c in planned} == {run_key(r["run"]) for r in runs}
    assert all(mt.role_of(r) == (r["role"], r["start"] if r["role"] != "source" else None) for r in runs)
    assert sorted(r["start"] for r in rows if r["role"] == "step0") == ["default", "random", "two-task"]
