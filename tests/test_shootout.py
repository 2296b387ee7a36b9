"""The shoot-out command: one process per run, a resumable log, a table with provenance, fair LRs only."""
import csv
import json
import os
import subprocess
import sys

import pytest

from ptutor.data import read_jsonl, write_conll
from ptutor.methods import METHODS
from ptutor.shootout import command, check_methods, markdown, run_shootout, swept_methods, setting_rows, write_tables

from conftest import toy_sentences


def test_only_methods_with_a_swept_learning_rate_take_part():
    assert {"ft", "lora", "pt2", "qlora"} <= set(swept_methods("ner"))
    assert "ptv1" in swept_methods("ner") and "ptv1" not in swept_methods("gen")  # no gen sweep for P-Tuning v1
    with pytest.raises(ValueError, match="no learning rate was picked on dev for ptv1 on task 'gen'"):
        check_methods("gen", ["ptv1"])
    with pytest.raises(ValueError, match="unknown method"):
        check_methods("ner", ["nope"])


def test_a_child_command_carries_the_task_options_of_the_backbone():
    """SmolLM2 has no biases: BitFit on the generation task must add them, or it would train nothing."""
    cmd = command("gen", "bitfit", 1, "smollm2-135m", "tr", "te", 10.0, None, "log.jsonl")
    assert cmd[cmd.index("--add-biases") + 1] == "true" and cmd[cmd.index("--seed") + 1] == "1"
    assert "--add-biases" not in command("ner", "bitfit", 0, "minilm", "tr", "te", 3.0, 600, "log.jsonl")


def test_a_shootout_runs_each_method_in_its_own_process_resumes_and_writes_its_table(tmp_path):
    write_conll(toy_sentences(24), tmp_path / "train.conll")
    write_conll(toy_sentences(8), tmp_path / "test.conll")
    out, lines = str(tmp_path / "shoot.jsonl"), []
    kwargs = dict(model="tiny-bert", train=str(tmp_path / "train.conll"), test=str(tmp_path / "test.conll"),
                  minutes=0.02, train_limit=None, workers=2, heartbeat=0.5, log=lines.append)
    rows = run_shootout("ner", [0, 1], out, methods=["probe", "lora"], **kwargs)
    assert sorted((r["method"], r["seed"]) for r in rows) == [("lora", 0), ("lora", 1), ("probe", 0), ("probe", 1)]
    assert all("checkpoint_bytes" in r and r["checkpoint_bytes"] > 0 for r in rows)
    assert all(r["lr"] == METHODS[r["method"]].config_class.lr_for("ner") for r in rows)  # each one's swept rate
    assert sum("seed" in line and "steps" in line for line in lines) == 4  # progress: one line per finished run
    beats = [line for line in lines if line.startswith("running: ")]  # and while runs go, which ones and how long
    assert beats and all(" seed " in b and " min" in b for b in beats)
    lines.clear()
    again = run_shootout("ner", [0, 1, 2], out, methods=["probe", "lora"], **kwargs)
    assert "4 runs already in" in lines[0] and "2 to go" in lines[0]  # only seed 2 ran
    assert len(again) == 6 and len(read_jsonl(out)) == 6

    paths = write_tables(again, str(tmp_path / "table"))
    records = json.loads(open(paths["json"]).read())
    assert records["provenance"]["seeds"] == [0, 1, 2] and records["provenance"]["hardware"]
    assert [r["method"] for r in records["methods"]] == ["probe", "lora"]
    lora = records["methods"][1]
    scores = [r["primary"] for r in again if r["method"] == "lora"]
    assert lora["mean"] == pytest.approx(sum(scores) / 3, abs=1e-4)
    assert list(csv.DictReader(open(paths["csv"])))[1]["seeds"] == "0 1 2"
    md = open(paths["md"]).read()
    assert f"| LoRA | {METHODS['lora'].config_class.lr_for('ner'):g} |" in md and "tokens/s" in md and "checkpoint MB" in md


def test_a_single_seed_is_marked_as_such_in_the_table():
    row = {"method": "lora", "lr": 3e-3, "trainable_params": 10, "total_params": 100, "seed": 0, "steps": 5,
           "step_seconds": 0.1, "tokens_per_second": 50.0, "peak_mb": 10.0, "metric": "f1", "primary": 0.5,
           "config": {"method": "lora"}}
    assert "0.500 (1 seed)" in markdown(setting_rows([row]))


def test_the_command_line_refuses_an_unswept_method_with_the_fix(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ptutor.experiments", "shootout", "--task", "gen", "--methods", "ptv1",
                          "--out", str(tmp_path / "x.jsonl")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Sweep first" in out.stderr


def accelerate_shootout(tmp_path, processes: int, methods: str):
    """`accelerate launch` a one-seed NER shoot-out on tiny-bert and toy data; returns (finished process, log rows)."""
    write_conll(toy_sentences(24), tmp_path / "train.conll")
    write_conll(toy_sentences(8), tmp_path / "test.conll")
    out = tmp_path / "shoot.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", *(["--multi_gpu"] if processes > 1 else []),
         "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "ptutor.experiments", "shootout", "--task", "ner", "--model", "tiny-bert",
         "--train", str(tmp_path / "train.conll"), "--test", str(tmp_path / "test.conll"),
         "--minutes", "0.02", "--methods", methods, "--seeds", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done, read_jsonl(out)


def test_processes_launched_by_accelerate_share_the_runs_and_the_first_writes_the_table(tmp_path):
    """`accelerate launch` (here two CPU processes; on a GPU machine one per GPU): each run happens exactly once."""
    done, rows = accelerate_shootout(tmp_path, 2, "probe,lora,bitfit")
    assert sorted(r["method"] for r in rows) == ["bitfit", "lora", "probe"]  # each once, not once per process
    assert "2 of them in process 0 of 2" in done.stdout and "1 of them in process 1 of 2" in done.stdout
    assert done.stdout.count("wrote ") == 1 and "(1 seed)" in (tmp_path / "shoot.md").read_text()


def test_a_task_carries_what_the_book_measured_it_with_and_the_shootout_uses_it():
    """Backbone, real data and budget live on the Task (ptutor.tasks); the shoot-out and the sweep script read
    them from there, and the data files exist."""
    from pathlib import Path

    from ptutor.tasks import TASKS, get_task

    root = Path(__file__).resolve().parent.parent
    for name in TASKS:
        t = get_task(name)
        assert t.default_model and t.default_minutes > 0
        assert all((root / f).exists() for f in t.default_data), t.default_data
    cmd = command("gen", "bitfit", 0, "m", "tr", "te", 1.0, None, "out")
    assert cmd[-2:] == ["--add-biases", "true"]  # the task's option for the method reaches the child run
