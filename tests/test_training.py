"""The shared training loop, checkpoints, baselines and the experiment command."""
import json
import subprocess
import sys

import pytest
import torch

from ptutor import checkpoint
from ptutor.backbones import load_backbone
from ptutor.checkpoint import CheckpointError
from ptutor.data import NER_LABELS, batches, encode_ner, write_conll
from ptutor.methods import FineTuneConfig, ProbeConfig, inject
from ptutor.ner import evaluate_ner
from ptutor.train import TrainConfig, fit, lr_factor

from conftest import toy_sentences

@pytest.fixture(scope="module")
def tiny():
    model, tok = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, seed=0)
    return model, tok, encode_ner(toy_sentences(48), tok)


def train_tiny(tok, rows, method_config, steps=30, seed=0, lr=3e-3):
    model, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, seed=seed, with_tokenizer=False)
    model = inject(model, method_config)
    hist = fit(model, batches(rows, 8, shuffle=True, seed=seed), TrainConfig(lr=lr, steps=steps, progress=False),
               device=torch.device("cpu"))
    return model, hist


def test_full_fine_tuning_learns_the_toy_task(tiny):
    _, tok, rows = tiny
    model, hist = train_tiny(tok, rows, FineTuneConfig(), steps=60)
    assert hist.steps == 60 and sum(hist.losses[-5:]) < 0.5 * sum(hist.losses[:5])
    assert evaluate_ner(model, rows)["f1"] > 0.9


def test_training_is_deterministic_on_cpu(tiny):
    _, tok, rows = tiny
    _, h1 = train_tiny(tok, rows, FineTuneConfig(), steps=10)
    _, h2 = train_tiny(tok, rows, FineTuneConfig(), steps=10)
    assert h1.losses == h2.losses


def test_probe_trains_only_the_head_and_leaves_the_backbone_bit_identical(tiny):
    _, tok, rows = tiny
    before, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)
    model, hist = train_tiny(tok, rows, ProbeConfig(), steps=10)
    assert hist.trainable_params == 9 * 64 + 9
    after = model.base.state_dict()
    for name, t in before.state_dict().items():
        if name.startswith("classifier"):
            assert not torch.equal(t, after[name])
        else:
            assert torch.equal(t, after[name]), name


def test_probe_needs_a_head():
    model, _ = load_backbone("tiny-bert", "base", with_tokenizer=False)
    with pytest.raises(ValueError, match="no task head"):
        inject(model, ProbeConfig())


def test_nothing_trainable_is_a_clear_error(tiny):
    _, tok, rows = tiny
    model, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)
    model = inject(model, ProbeConfig())
    model.base.classifier.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        fit(model, batches(rows, 8), TrainConfig(steps=1, progress=False))


def test_time_budget_stops_training(tiny):
    _, tok, rows = tiny
    model, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)
    hist = fit(inject(model, FineTuneConfig()), batches(rows, 8, shuffle=True), TrainConfig(steps=None, minutes=0.02, progress=False))
    assert 0 < hist.steps and hist.train_seconds < 5


def test_lr_schedule_warms_up_then_decays_to_zero():
    assert lr_factor(0.0, 0.1, "linear") < 0.01 and lr_factor(0.05, 0.1, "linear") == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1, "linear") == pytest.approx(1.0) and lr_factor(1.0, 0.1, "linear") == 0.0
    assert lr_factor(0.9, 0.1, "constant") == 1.0


def test_checkpoint_round_trip_restores_head_and_outputs(tiny, tmp_path):
    _, tok, rows = tiny
    model, _ = train_tiny(tok, rows, ProbeConfig(), steps=10)
    info = checkpoint.save(model, tmp_path / "probe")
    assert info["keys"] == 2 and info["params"] == 9 * 64 + 9
    fresh, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, seed=0, with_tokenizer=False)
    loaded = checkpoint.load(fresh, tmp_path / "probe")
    assert torch.equal(loaded.base.classifier.weight, model.base.classifier.weight)  # not a random head
    batch = next(batches(rows, 4))
    batch.pop("labels")
    assert torch.equal(loaded(**batch).logits, model(**batch).logits)
    assert not any(p.requires_grad for p in loaded.parameters())  # inference load is frozen
    resumed = checkpoint.load(fresh, tmp_path / "probe", trainable=True)
    assert sum(p.numel() for p in resumed.parameters() if p.requires_grad) == 9 * 64 + 9


def test_checkpoint_errors_say_what_is_wrong(tiny, tmp_path):
    _, tok, rows = tiny
    model, _ = train_tiny(tok, rows, ProbeConfig(), steps=1)
    checkpoint.save(model, tmp_path / "ok")
    other, _ = load_backbone("tiny-bert", "token-classification", num_labels=3, with_tokenizer=False)
    with pytest.raises(CheckpointError, match=r"classifier.*shape \(9,.*expects \(3,"):
        checkpoint.load(other, tmp_path / "ok")
    with pytest.raises(CheckpointError, match="not a ptutor checkpoint"):
        checkpoint.load(other, tmp_path)
    (tmp_path / "ok" / "weights.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(other, tmp_path / "ok")
    ft_model, _ = train_tiny(tok, rows, FineTuneConfig(), steps=1)
    checkpoint.save(ft_model, tmp_path / "ft")
    meta = json.loads((tmp_path / "ft" / "ptutor_method.json").read_text())
    meta["method"] = "probe"
    (tmp_path / "ft" / "ptutor_method.json").write_text(json.dumps(meta))
    fresh, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)
    with pytest.raises(CheckpointError, match="unexpected"):
        checkpoint.load(fresh, tmp_path / "ft")


def test_experiment_command_prints_one_json_line(tmp_path):
    write_conll(toy_sentences(40), tmp_path / "train.conll")
    write_conll(toy_sentences(12), tmp_path / "test.conll")
    out = subprocess.run([sys.executable, "-m", "ptutor.experiments", "ner", "--method", "probe", "--model", "tiny-bert",
                          "--train", str(tmp_path / "train.conll"), "--test", str(tmp_path / "test.conll"),
                          "--dev", str(tmp_path / "test.conll"), "--steps", "5", "--quiet"],
                         capture_output=True, text=True, check=True)
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    assert len(lines) == 1
    result = json.loads(lines[0])
    for key in ("method", "model", "f1", "trainable_params", "total_params", "steps", "step_seconds",
                "train_seconds", "peak_mb"):
        assert key in result
    assert result["steps"] == 5 and result["trainable_params"] == 9 * 64 + 9 and 0 <= result["f1"] <= 1


def test_experiment_flags_parse_to_the_config_field_types():
    from ptutor.experiments import parse_args

    args = parse_args(["ner", "--method", "pt2", "--train", "a", "--test", "b",
                       "--num-virtual-tokens", "16", "--prefix-projection", "true", "--init-std", "0.02"])
    assert args.options == {"num_virtual_tokens": 16, "prefix_projection": True, "init_std": 0.02}
    args = parse_args(["ner", "--method", "pt", "--train", "a", "--test", "b", "--init-text", "tag names"])
    assert args.options == {"init_text": "tag names"}


def _row(method, f1, step, lr=1e-3, seed=0, **config):
    return {"method": method, "f1": f1, "lr": lr, "trainable_params": 10, "total_params": 1000, "steps": 5,
            "step_seconds": step, "seed": seed, "config": {"method": method, **config}}


def test_results_log_reads_back_and_tabulates_relative_to_the_best_baseline(tmp_path):
    from ptutor.data import read_jsonl as read_results
    from ptutor.results import results_table

    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        _row("ft", 0.8, 1.0), _row("ft", 0.9, 1.0, lr=2e-4), _row("pt2", 0.45, 0.5, num_virtual_tokens=64)]) + "\n")
    rows = read_results(log)
    table = results_table(rows).splitlines()
    assert len(table) == 2 + 3
    assert table[-1].startswith("| P-Tuning v2 (num_virtual_tokens=64) |") and table[-1].endswith("| 0.50 | 0.50 |")


def test_results_table_pools_seeds_as_mean_and_spread():
    from ptutor.results import results_table

    rows = [_row("ft", 0.8, 1.0, seed=0), _row("ft", 0.9, 1.0, seed=1), _row("ft", 1.0, 1.0, seed=2),
            _row("pt2", 0.45, 0.5, num_virtual_tokens=64)]
    table = results_table(rows).splitlines()
    assert len(table) == 2 + 2
    assert "| 3 |" in table[2] and "| 0.900 ± 0.100 |" in table[2]  # mean ± sample s.d. of 0.8, 0.9, 1.0
    assert table[-1].endswith("| 0.50 | 0.50 |")  # relative to the pooled fine-tuning mean, 0.9


def test_a_corrupt_results_log_names_the_line(tmp_path):
    from ptutor.data import read_jsonl as read_results

    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(_row("ft", 0.8, 1.0)) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"log.jsonl:2: not a JSON line"):
        read_results(log)


def test_evaluation_time_does_not_use_up_the_training_budget(tiny):
    import time

    _, tok, rows = tiny
    model, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)

    calls = []

    def slow_eval(m):  # the first three take 1.5 s in all: more than the whole budget, were they charged to it
        calls.append(m)
        if len(calls) <= 3:
            time.sleep(0.5)
        return {"ok": 1.0}

    hist = fit(inject(model, FineTuneConfig()), batches(rows, 8, shuffle=True),
               TrainConfig(steps=None, minutes=0.02, eval_every=1, progress=False), eval_fn=slow_eval)
    assert hist.steps >= 3, "each 0.5 s evaluation was charged to the 1.2 s training budget"
    assert hist.train_seconds < 1.2 + 0.5 and len(hist.evals) >= 3


def test_a_checkpoint_does_not_depend_on_where_the_backbone_cache_lives(tmp_path, monkeypatch):
    """The saved description names the preset, not the unpacked folder: the same training gives the same
    files whatever the reader's home folder or PTUTOR_CACHE (nbval compares their sizes)."""
    import json

    from ptutor import checkpoint
    from ptutor.methods import inject
    from ptutor.methods.lora import LoraConfig

    base, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)
    base.config._name_or_path = str(tmp_path / "some" / "cache" / "tiny-bert")  # as an unpacked preset has
    (tmp_path / "some" / "cache" / "tiny-bert").mkdir(parents=True)
    checkpoint.save(inject(base, LoraConfig(r=2)), tmp_path / "ckpt")
    text = "".join(p.read_text() for p in (tmp_path / "ckpt").glob("*.json"))
    assert str(tmp_path) not in text
    assert "tiny-bert" in json.dumps(checkpoint.describe_base(base))  # the preset still identifies the base


def test_head_lr_puts_the_task_head_alone_in_a_group_at_its_own_rate():
    from ptutor.methods import inject
    from ptutor.methods.lora import LoraConfig
    from ptutor.train import with_head_rate

    base, _ = load_backbone("tiny-bert", "token-classification", labels=NER_LABELS, with_tokenizer=False)
    model = inject(base, LoraConfig(r=2))
    groups = with_head_rate(model, model.param_groups(1e-3), 3e-2)
    head = {id(p) for p in base.classifier.parameters()}
    assert [g["lr"] for g in groups] == [1e-3, 3e-2]
    assert {id(p) for p in groups[1]["params"]} == head and not head & {id(p) for p in groups[0]["params"]}
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())
    lm = inject(load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)[0], LoraConfig(r=2))
    with pytest.raises(ValueError, match="trains no task head"):
        with_head_rate(lm, lm.param_groups(1e-3), 3e-2)
