"""Every protocol log is exactly what its recipe makes (data/results/recipes.py): each run the recipe plans is in the
log, and each line of the log is a run the recipe plans (one rule for "the same run": ptutor.experiments.run_key)."""
import importlib.util
from pathlib import Path

import pytest

from ptutor.experiments import run_key
from ptutor.jsonl import read_jsonl
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
