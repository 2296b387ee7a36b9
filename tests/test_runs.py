"""The orchestrator (ptutor.runs): a grid planned with every rate resolved, one process per run, one rule for "the
same run", a resumable log, a table with provenance, fair rates only, budgets that are time-equivalent."""
import csv
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from ptutor.data import read_jsonl, write_conll
from ptutor.experiments import main as experiments_main
from ptutor.experiments import DataConfig, RunConfig, TrainConfig, command, config_from_args, parse_args, run_fields
from ptutor.methods import METHODS
from ptutor.results import markdown, setting_rows, write_tables
from ptutor.runs import main as runs_main
from ptutor.runs import check_methods, execute, pending, plan, swept_methods, time_equivalent_steps

from conftest import ROOT, main_in_process, toy_sentences


def toy_files(tmp_path):
    write_conll(toy_sentences(24), tmp_path / "train.conll")
    write_conll(toy_sentences(8), tmp_path / "test.conll")
    return str(tmp_path / "train.conll"), str(tmp_path / "test.conll")


def test_only_methods_with_a_swept_learning_rate_take_part():
    assert {"ft", "lora", "pt2", "qlora"} <= set(swept_methods("ner"))
    assert "ptv1" in swept_methods("ner") and "ptv1" not in swept_methods("gen")  # no gen sweep for P-Tuning v1
    with pytest.raises(ValueError, match="no learning rate was picked on dev for ptv1 on task 'gen'"):
        check_methods("gen", ["ptv1"])
    with pytest.raises(ValueError, match="unknown method"):
        check_methods("ner", ["nope"])


def test_a_plan_resolves_each_methods_rate_head_rate_and_the_backbones_options():
    """SmolLM2 has no biases: BitFit on the generation task must add them, or it would train nothing; a tagging head
    trains at the task's head rate beside every method but the probe, whose rate is the head's."""
    gen = plan(RunConfig.of("gen", "ft", None, "tr", "te"), ["bitfit", "lora"], [1])
    assert gen[0].options == {"add_biases": True} and gen[1].options == {}
    assert [c.train.lr for c in gen] == [METHODS[m].config_class.lr_for("gen") for m in ("bitfit", "lora")]
    assert all(c.train.seed == 1 and c.train.head_lr is None and c.model == "smollm2-135m" for c in gen)
    assert command(gen[0])[-3:] == ["--add-biases", "true", "--quiet"]
    ner = {c.method: c for c in plan(RunConfig.of("ner", "ft", None, "tr", "te"), ["ft", "probe", "lora"], [0])}
    assert ner["ft"].train.head_lr == ner["lora"].train.head_lr == 3e-2 and ner["probe"].train.head_lr is None
    grid = plan(RunConfig.of("ner", "ft", None, "tr", "te"), ["lora"], [0, 1], lrs={"lora": [1e-3, 3e-3]},
                head_lrs=[1e-2, 1e-1], steps={"lora": 283})
    assert len(grid) == 8 and {c.train.steps for c in grid} == {283}
    assert [(c.train.seed, c.train.lr, c.train.head_lr) for c in grid][:3] == [(0, 1e-3, 1e-2), (0, 1e-3, 1e-1),
                                                                                (0, 3e-3, 1e-2)]


def test_a_logged_run_is_the_same_run_by_its_whole_configuration_not_by_a_few_fields():
    base = RunConfig.of("ner", "lora", "tiny-bert", "tr", "te", steps=5)
    record = {"run": plan(base, ["lora"], [0])[0].to_dict()}
    assert pending(plan(base, ["lora"], [0]), [record]) == []
    assert len(pending(plan(base, ["lora"], [0, 1]), [record])) == 1  # another seed
    other_rank = dataclasses.replace(base, options={"r": 4})
    assert len(pending(plan(other_rank, ["lora"], [0]), [record])) == 1  # another option value
    as_given = dataclasses.replace(base, options={"r": 8.0})  # 8.0 is the default 8: the same run
    assert pending(plan(as_given, ["lora"], [0]), [record]) == []
    other_budget = dataclasses.replace(base, train=dataclasses.replace(base.train, steps=6))
    assert len(pending(plan(other_budget, ["lora"], [0]), [record])) == 1
    on_gpu = {"run": {**record["run"], "device": "cuda"}}  # a step-budgeted run is the same training anywhere
    assert pending(plan(base, ["lora"], [0]), [on_gpu]) == []
    assert len(pending(plan(base, ["lora"], [0]), [{"method": "lora", "lr": 1e-3}])) == 1  # no stored config


def test_time_equivalent_budgets_reproduce_the_logged_step_budgets():
    """The book's WNUT-17 and E2E budgets: the steps each method makes in 3 (10) CPU minutes, from the logged
    one-thread CPU runs of the time-budget logs and the speed log."""
    logs = ["wnut17_sweep_3min", "e2e_sweep_10min", "cpu_step_rates"]
    rows = [r for name in logs for r in read_jsonl(ROOT / "data" / "results" / f"{name}.jsonl")]
    assert time_equivalent_steps(rows, "ner", "ft", "minilm", 3) == 176
    assert time_equivalent_steps(rows, "ner", "pt2", "minilm", 3) == 297
    assert time_equivalent_steps(rows, "gen", "lora", "smollm2-135m", 10) == 99
    with pytest.raises(ValueError, match="no logged one-thread CPU run of nope"):
        time_equivalent_steps(rows, "ner", "nope", "minilm", 3)


def test_an_orchestrated_grid_runs_each_method_in_its_own_process_resumes_and_writes_its_table(tmp_path):
    train, test = toy_files(tmp_path)
    base = RunConfig.of("ner", "ft", "tiny-bert", train, test, steps=3)
    out, lines = str(tmp_path / "shoot.jsonl"), []
    rows = execute(plan(base, ["probe", "lora"], [0]), out, workers=2, heartbeat=0.5, save_checkpoints=True,
                   log=lines.append)
    assert sorted((r["method"], r["seed"]) for r in rows) == [("lora", 0), ("probe", 0)]
    assert all(r["checkpoint_bytes"] > 0 and r["steps"] == 3 for r in rows)
    assert all(r["lr"] == METHODS[r["method"]].config_class.lr_for("ner") for r in rows)  # each one's swept rate
    assert sum(" seed " in line and "steps" in line for line in lines) == 2  # progress: one line per finished run
    lines.clear()
    again = execute(plan(base, ["probe", "lora"], [0, 1]), out, workers=2, heartbeat=0, log=lines.append)
    assert "2 of 4 runs already in" in lines[0] and "2 to go" in lines[0]  # only seed 1 ran
    assert len(again) == 4 and len(read_jsonl(out)) == 4

    paths = write_tables(again, str(tmp_path / "table"))
    records = json.loads(open(paths["json"]).read())
    assert records["provenance"]["seeds"] == [0, 1] and records["provenance"]["hardware"]
    assert [r["method"] for r in records["methods"]] == ["probe", "lora"]
    scores = [r["primary"] for r in again if r["method"] == "lora"]
    assert records["methods"][1]["mean"] == pytest.approx(sum(scores) / 2, abs=1e-4)
    assert list(csv.DictReader(open(paths["csv"])))[1]["seeds"] == "0 1"
    assert f"| LoRA | {METHODS['lora'].config_class.lr_for('ner'):g} |" in open(paths["md"]).read()


def test_a_single_seed_is_marked_as_such_in_the_table():
    row = {"method": "lora", "lr": 3e-3, "trainable_params": 10, "total_params": 100, "seed": 0, "steps": 5,
           "step_seconds": 0.1, "tokens_per_second": 50.0, "peak_mb": 10.0, "metric": "f1", "primary": 0.5,
           "config": {"method": "lora"}}
    assert "0.500 (1 seed)" in markdown(setting_rows([row]))


def cli(*args):
    """`python -m ptutor.runs ARGS`, run in this process (the orchestrator's own tests start real processes)."""
    return main_in_process(runs_main, list(args))


def test_the_command_line_refuses_an_unswept_method_and_a_missing_log_with_the_fix(tmp_path):
    out = cli("shootout", "gen", "--methods", "ptv1", "--train", "a", "--test", "b", "--out", str(tmp_path / "x.jsonl"))
    assert out.returncode == 2 and "Sweep first" in out.stderr
    out = cli("shootout", "ner", "--train", "a", "--test", "b")
    assert out.returncode == 2 and "pass --out FILE" in out.stderr


def test_the_command_line_has_the_apis_defaults_and_help_for_every_knob():
    """The flags are generated from RunConfig, DataConfig and TrainConfig: a run's defaults from Python and from a
    shell are one and the same, and every knob has its help text."""
    args = parse_args(["ner", "--method", "lora", "--train", "a", "--test", "b"])
    from_cli = config_from_args("ner", args)
    from_api = RunConfig("ner", "lora", DataConfig("a", "b"))
    assert from_cli == from_api and from_api.train == TrainConfig(lr=None)
    assert all(f.metadata.get("help") for _, f, _ in run_fields())
    names = [f.name for _, f, _ in run_fields()]
    assert len(names) == len(set(names)), "two dataclasses declare a knob of the same name"


def test_a_logged_run_reruns_from_its_line(tmp_path):
    train, test = toy_files(tmp_path)
    log = tmp_path / "log.jsonl"
    first = subprocess.run([sys.executable, "-m", "ptutor.experiments", "ner", "--method", "probe", "--model",
                            "tiny-bert", "--train", train, "--test", test, "--steps", "3", "--quiet", "--out",
                            str(log)], capture_output=True, text=True, timeout=120, check=True)
    again = main_in_process(experiments_main, ["rerun", str(log), "--line", "1", "--quiet"])
    a, b = json.loads(first.stdout), json.loads(again.stdout)
    assert a["run"] == b["run"] and a["primary"] == b["primary"]  # a CPU run repeats exactly
    bad = main_in_process(experiments_main, ["rerun", str(log), "--line", "5"])
    assert bad.returncode == 2 and "has 1 lines; --line must be between 1 and 1" in bad.stderr


def accelerate_shootout(tmp_path, processes: int, methods: str):
    """`accelerate launch` a one-seed NER shoot-out on tiny-bert and toy data; returns (finished process, log rows)."""
    train, test = toy_files(tmp_path)
    out = tmp_path / "shoot.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", *(["--multi_gpu"] if processes > 1 else []),
         "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "ptutor.runs", "shootout", "ner", "--model", "tiny-bert", "--train", train, "--test", test,
         "--steps", "2", "--methods", methods, "--seeds", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done, read_jsonl(out)


def test_processes_launched_by_accelerate_share_the_runs_and_the_first_writes_the_table(tmp_path):
    """`accelerate launch` (here two CPU processes; on a GPU machine one per GPU): each run happens exactly once."""
    done, rows = accelerate_shootout(tmp_path, 2, "probe,lora,bitfit")  # three runs: an uneven split loses none
    assert sorted(r["method"] for r in rows) == ["bitfit", "lora", "probe"]  # each once, not once per process
    assert "2 of them in process 0 of 2" in done.stdout and "1 of them in process 1 of 2" in done.stdout
    assert done.stdout.count("wrote ") == 1 and "(1 seed)" in (tmp_path / "shoot.md").read_text()
