"""The experiment runner and the checkpoints it writes, fed bad input the way a new user would."""
import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch

from ptutor import checkpoint
from ptutor.backbones import load_backbone
from ptutor.checkpoint import CheckpointError
from ptutor.data import NER_LABELS, read_jsonl
from ptutor.experiments import main as experiments_main
from ptutor.experiments import (RunConfig, config_from_args, field_parser, method_config, parse_args, resolve, run,
                                run_key, warm_start)
from ptutor.results import at_edge, pick_lr
from ptutor.runs import main as runs_main
from ptutor.methods import PrefixConfig, PromptTuningConfig, inject
from ptutor.tasks import GenTask, TaskDataError
from ptutor.textgen import generation_scores, input_values, mentions_all, rouge_l

from conftest import D2T, main_in_process, toy_sentences


def cli(*args):
    """`python -m ptutor.experiments ARGS`, run in this process (the traceback test below starts the real one)."""
    return main_in_process(experiments_main, list(args))


def real_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "ptutor.experiments", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_a_training_set_smaller_than_the_batch_still_trains(tmp_path):
    """It used to hang at 100% CPU: the shuffled stream never yielded a full batch."""
    result = run(RunConfig.of("ner", "probe", "tiny-bert", toy_sentences(3), toy_sentences(2), steps=4, batch_size=16))
    assert result["steps"] == 4 and result["train_items"] == 3


def test_the_runner_hands_its_tokenizer_to_the_method():
    """A prompt started from text needs the tokenizer: the runner passes the one it holds, so a base that
    ptutor.backbones did not load (nothing to look its tokenizer up by) still works."""
    base, tok = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS)
    del base.config.ptutor_preset
    with pytest.raises(ValueError, match="needs a tokenizer"):
        inject(base, PromptTuningConfig(num_virtual_tokens=2, init="text", init_text="city"))
    result, model, _ = run(RunConfig.of("ner", "pt", None, toy_sentences(3), toy_sentences(2), steps=1,
                                        num_virtual_tokens=2, init="text", init_text="city"),
                           model=(base, tok), return_model=True)
    assert result["steps"] == 1 and model.config.init == "text"


def test_a_non_positive_budget_is_refused_not_run_forever(tmp_path):
    with pytest.raises(ValueError, match="minutes must be a positive"):
        run(RunConfig.of("ner", "probe", "tiny-bert", toy_sentences(3), toy_sentences(2), minutes=-1))
    out = cli("ner", "--method", "ft", "--train", "x", "--test", "y", "--minutes", "-1")
    assert out.returncode == 2 and "--minutes: must be positive, got -1" in out.stderr


def test_an_option_of_another_method_is_an_error_naming_its_owner():
    with pytest.raises(ValueError, match="num_virtual_tokens belongs to pt, pt2, pt2lora, ptv1"):
        method_config("ft", {"num_virtual_tokens": 5})
    out = cli("ner", "--method", "ft", "--train", "x", "--test", "y", "--num-virtual-tokens", "5")
    assert out.returncode == 2 and "--num-virtual-tokens is an option of method pt, pt2, pt2lora, ptv1, not of ft" in out.stderr
    out = cli("ner", "--method", "ft", "--train", "x", "--test", "y", "--no-such-flag", "1")
    assert out.returncode == 2 and "unrecognized arguments: --no-such-flag" in out.stderr


def test_help_after_a_method_lists_its_own_options_with_its_own_defaults():
    pt2 = cli("ner", "--method", "pt2", "--help").stdout
    pt = cli("ner", "--method", "pt", "--help").stdout
    assert "--prefix-projection" in pt2 and "--prefix-projection" not in pt
    assert "--num-virtual-tokens NUM_VIRTUAL_TOKENS\n                        (default 16)" in pt2
    assert "--num-virtual-tokens NUM_VIRTUAL_TOKENS\n                        (default 20)" in pt
    assert "--num-virtual-tokens" not in cli("ner", "--method", "ft", "--help").stdout


def test_list_and_bool_options_parse():
    @dataclass
    class Demo:
        target_modules: list[str] | None = None
        ranks: list[int] | None = None
        flag: bool = False

    assert field_parser(Demo, "target_modules", None)("q_proj, v_proj") == ["q_proj", "v_proj"]
    assert field_parser(Demo, "ranks", None)("4,8") == [4, 8]
    assert field_parser(Demo, "flag", False)("true") is True
    with pytest.raises(Exception, match="expected true or false"):
        field_parser(Demo, "flag", False)("maybe")
    args = parse_args(["gen", "--method", "pt2", "--train", "a", "--test", "b", "--lr", "3e-3"])
    assert args.lr == 3e-3 and args.model is None  # None: the task's backbone
    assert resolve(config_from_args("gen", args)).model == "smollm2-135m"


def test_a_gen_row_without_input_or_target_names_file_and_line(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_text(json.dumps({"input": "a: 1", "target": "One."}) + "\n\n" + json.dumps({"input": "b: 2"}) + "\n")
    with pytest.raises(TaskDataError, match=r"rows.jsonl:3: .*'target' missing or empty"):
        GenTask().read(f)
    f.write_text("{oops\n")
    with pytest.raises(TaskDataError, match=r"rows.jsonl:1: not a JSON line"):
        GenTask().read(f)


def test_an_empty_test_set_is_an_error(tmp_path):
    with pytest.raises(TaskDataError, match="the test set is empty"):
        run(RunConfig.of("ner", "probe", "tiny-bert", toy_sentences(3), [], steps=1))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(TaskDataError, match="no rows"):
        run(RunConfig.of("gen", "pt", "tiny-llama", str(D2T), str(empty), steps=1))


def test_generation_on_an_encoder_is_refused_with_the_fix():
    rows = read_jsonl(D2T)[:4]
    with pytest.raises(ValueError, match="task 'gen' cannot use backbone 'tiny-bert'.*causal preset"):
        run(RunConfig.of("gen", "pt", "tiny-bert", rows, rows, steps=1))
    base, tok = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS)
    with pytest.raises(ValueError, match="needs a causal LM"):
        run(RunConfig.of("gen", "pt", None, rows, rows, steps=1), model=(base, tok))


def test_a_checkpoint_for_another_base_or_format_is_refused(tmp_path):
    llama, _ = load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)
    checkpoint.save(inject(llama, PrefixConfig(num_virtual_tokens=2)), tmp_path / "llama")
    glm, _ = load_backbone("tiny-glm", "causal-lm", with_tokenizer=False)
    with pytest.raises(CheckpointError, match="preset 'tiny-llama' in the checkpoint, 'tiny-glm' in the model"):
        checkpoint.load(glm, tmp_path / "llama")
    bf16, _ = load_backbone("tiny-llama", "causal-lm", with_tokenizer=False, dtype=torch.bfloat16)
    with pytest.raises(CheckpointError, match="dtype 'float32' in the checkpoint, 'bfloat16'"):
        checkpoint.load(bf16, tmp_path / "llama")
    meta_file = tmp_path / "llama" / "ptutor_method.json"
    meta = json.loads(meta_file.read_text())
    meta["format"] = 1
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format 1; this ptutor reads format 2"):
        checkpoint.load(llama, tmp_path / "llama")


def test_a_resume_file_from_another_method_is_refused(tmp_path):
    base, _ = load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)
    pt = inject(base, PromptTuningConfig(num_virtual_tokens=2))
    opt = torch.optim.AdamW([p for p in pt.parameters() if p.requires_grad])
    checkpoint.save_for_resume(pt, opt, tmp_path / "a", step=1)
    with pytest.raises(CheckpointError, match="training state of method 'pt'.*you asked for 'pt2'"):
        checkpoint.load_for_resume(base, tmp_path / "a", method="pt2")
    pt2 = inject(load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)[0], PrefixConfig(num_virtual_tokens=2))
    checkpoint.save(pt2, tmp_path / "a")  # weights of another method over the training state of the first
    with pytest.raises(CheckpointError, match="training state of method 'pt', but the folder's weights are method 'pt2'"):
        checkpoint.load_for_resume(base, tmp_path / "a")


def test_a_warm_start_begins_from_the_checkpoint_and_refuses_other_settings(tmp_path):
    """Transfer (a prefix trained on other tasks starts a new one): the run's model starts as the saved one."""
    first, tok = load_backbone("tiny-llama", "causal-lm", seed=0)
    trained = inject(first, PrefixConfig(num_virtual_tokens=2))
    with torch.no_grad():
        trained.prefix_encoder.embedding.weight.add_(1.0)  # unlike any fresh initialisation
    checkpoint.save(trained, tmp_path / "src")
    fresh, _ = load_backbone("tiny-llama", "causal-lm", seed=0)
    started = warm_start(fresh, PrefixConfig(num_virtual_tokens=2, init="random"), tmp_path / "src")
    assert torch.equal(started.prefix_encoder.embedding.weight, trained.prefix_encoder.embedding.weight)
    assert all(p.requires_grad for p in started.prefix_encoder.parameters())
    with pytest.raises(ValueError, match="num_virtual_tokens: checkpoint 2, this run 4"):
        warm_start(fresh, PrefixConfig(num_virtual_tokens=4), tmp_path / "src")
    with pytest.raises(ValueError, match="holds a 'pt2' checkpoint; this run trains 'pt'"):
        warm_start(fresh, PromptTuningConfig(num_virtual_tokens=2), tmp_path / "src")
    rows = [{"input": "name: A | type: b", "target": "A is a b."}] * 4
    result = run(RunConfig.of("gen", "pt2", None, rows, rows, steps=1, num_virtual_tokens=2,
                              start_from=str(tmp_path / "src")), model=(fresh, tok))
    assert result["start_from"] == str(tmp_path / "src")


def test_a_sweep_needs_dev_and_pick_lr_picks_on_dev(tmp_path):
    out = cli("ner", "--method", "probe", "--train", "x", "--test", "y", "--lr", "1e-3,1e-2")
    assert out.returncode == 2 and "several rates are a sweep: python -m ptutor.runs sweep" in out.stderr
    out = main_in_process(runs_main, ["sweep", "ner", "--method", "probe", "--train", "x", "--test", "y", "--lrs",
                                      "1e-3,1e-2", "--out", str(tmp_path / "s.jsonl")])
    assert out.returncode == 2 and "picks on the dev set: add --dev FILE" in out.stderr
    rows = [{"method": "pt2", "metric": "f1", "lr": lr, "seed": 0, "dev_f1": f1, "f1": 1 - f1}
            for lr, f1 in [(1e-2, 0.5), (3e-2, 0.7), (1e-1, 0.6)]]
    assert pick_lr(rows, "pt2") == 3e-2
    with pytest.raises(ValueError, match="no runs of method 'ft'"):
        pick_lr(rows, "ft")


def test_gen_scores_multi_reference_bleu_rouge_and_mentions():
    inputs = ["name[Aroma] | food[Thai] | area[riverside]", "name[Blue Fig] | food[Greek]"]
    refs = [["Aroma serves Thai food by the river.", "By the river, Aroma offers Thai food."],
            ["Blue Fig serves Greek food."]]
    perfect = generation_scores(inputs, refs, ["By the river, Aroma offers Thai food.", "Blue Fig serves Greek food."])
    assert perfect["bleu"] == pytest.approx(100) and perfect["rouge_l"] == pytest.approx(100)
    assert perfect["mentions_all"] == 1.0
    assert input_values(inputs[0]) == ["Aroma", "Thai", "riverside"]
    # "riverside" is paraphrased by every reference, so it is not required; "Thai" is
    assert mentions_all(inputs[0], refs[0], "Aroma is by the river and serves Thai food.")
    assert not mentions_all(inputs[0], refs[0], "Aroma is by the river.")
    assert rouge_l("a b c d", "a x c d") == pytest.approx(0.75)
    worse = generation_scores(inputs, refs, ["Aroma is a place.", "Blue Fig."])
    assert worse["bleu"] < 30 and worse["mentions_all"] == 0.0


def test_every_swept_learning_rate_is_inside_its_grid_not_at_an_end():
    """A pick at the end of a grid may not be the best rate: the grid must bracket it (extend the sweep). Checked on
    every log a default rate comes from (each method's `lr_source`) and on the demonstration set's sweep."""
    from pathlib import Path

    from ptutor.methods import METHODS

    root = Path(__file__).resolve().parent.parent
    logs = {src for m in METHODS.values() for src in m.config_class.lr_source.values()}
    logs.add("data/results/lr_sweep_ner.jsonl")  # the chapters' demonstration picks
    for log in sorted(logs):
        rows = read_jsonl(root / log)
        for method in dict.fromkeys(r["method"] for r in rows):  # a method run at one rate has no grid to be inside
            assert not at_edge(rows, method), f"{log}/{method}: picked {pick_lr(rows, method):g} at an end of its grid"


def test_gpu_step_time_script_runs_every_method_through_the_runner(capsys):
    """data/results/gpu_step_time.py (the committed GPU log's script) still runs: tiny BERT, CPU, 2 steps."""
    import importlib.util
    import json as _json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "data/results/gpu_step_time.py"
    spec = importlib.util.spec_from_file_location("gpu_step_time", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--tiny", "--device", "cpu", "--steps", "2", "--batch", "4", "--length", "16"])
    rows = [_json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    assert [r["label"] for r in rows] == list(script.RUNS)
    assert all(r["steps"] == 2 and r["batch_size"] == 4 for r in rows)
    by_run = {r["label"]: r for r in rows}
    assert by_run["probe"]["trainable_params"] < by_run["pt2 (16)"]["trainable_params"] < by_run["ft"]["trainable_params"]


def test_a_user_error_on_the_command_line_is_one_line_and_exit_status_2_traceback_with_debug(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_bytes(b"Paris B-LOC\n\xff O\n")
    out = cli("ner", "--method", "probe", "--model", "tiny-bert", "--train", str(bad), "--test", str(bad),
              "--steps", "1", "--quiet")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "bad.conll:2: not UTF-8" in out.stderr
    out = real_cli("ner", "--method", "probe", "--model", "tiny-bert", "--train", str(bad), "--test", str(bad),
                   "--steps", "1", "--quiet", "--debug")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_an_unwritable_output_path_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for kwargs, what in (({"out": str(blocker / "log.jsonl")}, "results log"),
                         ({"save": str(blocker / "ckpt")}, "checkpoint folder")):
        with pytest.raises(ValueError, match=f"{what} .* cannot be written.*nothing was trained"):
            run(RunConfig.of("ner", "probe", "tiny-bert", toy_sentences(3), toy_sentences(2), steps=1), **kwargs)


def test_a_max_length_that_leaves_no_labelled_token_is_named_not_a_nan():
    rows = [{"input": "name[Aromi] | food[Thai]", "target": "Aromi serves Thai food."}] * 4
    with pytest.raises(ValueError, match="no training example keeps a labelled token within max_length=2"):
        run(RunConfig.of("gen", "pt2", "tiny-llama", rows, rows, steps=1, max_length=2))


def test_a_budget_curve_scores_the_test_set_at_every_point_and_ends_at_the_final_score():
    """curve_test: one long run gives the test score at every shorter budget (its --eval-every points), and its last
    point is the model the record scores. Without --eval-every it would have no points: refused before training.
    Off, it leaves the run's identity as runs logged before it existed have it (their resume still matches)."""
    train, test = toy_sentences(32), toy_sentences(8)
    config = RunConfig.of("ner", "probe", "tiny-bert", train, test, steps=6, eval_every=2, curve_test=True,
                          lr=0.3, batch_size=8)
    record = run(config).record
    assert [p["step"] for p in record["curve"]] == [2, 4, 6]
    assert all(set(p) == {"step", "seconds", "loss", "test_f1"} for p in record["curve"])
    assert record["curve"][-1]["test_f1"] == record["primary"] > 0
    with pytest.raises(ValueError, match="give --eval-every N too"):
        run(RunConfig.of("ner", "probe", "tiny-bert", train, test, steps=2, curve_test=True))
    plain = RunConfig.of("ner", "probe", "tiny-bert", "train.conll", "test.conll", steps=2).to_dict()
    older = json.loads(json.dumps(plain))
    del older["data"]["curve_test"]
    assert run_key(older) == run_key(plain) != run_key({**plain, "data": {**plain["data"], "curve_test": True}})
