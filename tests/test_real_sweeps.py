"""The sweep script's bookkeeping: a logged run counts as done only for the setting it was made with."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("real_sweeps", ROOT / "data/results/real_sweeps.py")
real_sweeps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real_sweeps)


def lora_line(r: int, seed: int = 0) -> dict:
    return {"method": "lora", "lr": 1e-3, "seed": seed, "head_lr": None,
            "config": {"method": "lora", "r": r, "alpha": 16.0}}


def test_a_run_counts_as_done_only_for_its_own_option_values(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(lora_line(r)) + "\n" for r in (4, 8)))
    assert real_sweeps.logged(log, ["--r", "4"]) == {("lora", 1e-3, 0)}
    assert real_sweeps.logged(log, ["--r", "16"]) == set()
    assert real_sweeps.logged(log, []) == {("lora", 1e-3, 0)}  # the default r = 8
    assert real_sweeps.logged(log, ["--r", "4", "--alpha", "16"]) == {("lora", 1e-3, 0)}  # 16 is the logged 16.0
    assert real_sweeps.logged(log, ["--r", "4", "--head-lr", "0.03"]) == set()


def test_option_values_compare_as_numbers_or_words():
    assert real_sweeps.same_value(16.0, "16") and real_sweeps.same_value(False, "false")
    assert not real_sweeps.same_value(8, "4") and not real_sweeps.same_value("q,v", "16")
    assert not real_sweeps.same_value(8, None)


def test_an_option_without_a_value_is_refused_before_any_run(capsys):
    with pytest.raises(SystemExit) as exc:
        real_sweeps.main(["ner", "--methods", "lora", "--option", "r4"])
    assert exc.value.code == 2 and "NAME=VALUE" in capsys.readouterr().err
