"""Stand-in mode and the full-scale cells' helpers: hub presets map to offline or tiny models of the same family only
with the switch, the local data keeps every tag of training, rates carry to a larger model by the stated rule, and a
GPU log is shown only when a GPU made it."""
import json

import pytest
import torch

from ptutor.backbones import PRESETS
from ptutor.book import fullscale, standin
from ptutor.book.cloze import EntityCloze, entities
from ptutor.data import Sentence
from ptutor.methods import METHODS


@pytest.fixture
def cpu_standin(monkeypatch):
    monkeypatch.setenv(standin.SWITCH, "1")
    monkeypatch.delenv(standin.LOGS, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_without_the_switch_a_cell_asks_for_what_it_names(monkeypatch):
    monkeypatch.delenv(standin.SWITCH, raising=False)
    assert standin.backbone("bert-base-cased") == "bert-base-cased"
    assert (standin.steps(1500), standin.minutes(3), standin.device()) == (1500, 3, "cuda")
    assert standin.wnut17_file("validation") == "data/wnut17/dev.conll"  # the hub's sentences, as files
    assert standin.few(["a", "b", "c"]) == ["a", "b", "c"]
    assert standin.log("x", default="runs/x.jsonl") == "runs/x.jsonl"


def test_every_stand_in_is_a_preset_of_the_same_family_on_a_cpu(cpu_standin, capsys):
    for hub, (on_cuda, on_cpu) in standin.STANDINS.items():
        assert PRESETS[hub].source == "hub" and PRESETS[on_cuda].source in ("wheel-zip", "wheel-gguf", "tiny")
        assert PRESETS[on_cpu].source == "tiny" and PRESETS[on_cpu].arch == PRESETS[hub].arch, hub
        assert standin.backbone(hub) == on_cpu
        assert f"stand-in: {hub} -> {on_cpu}" in capsys.readouterr().out  # visible
    with pytest.raises(ValueError, match="no stand-in for backbone 'gpt-j'"):
        standin.backbone("gpt-j")
    assert (standin.steps(1500), standin.device(), standin.few([1, 2, 3])) == (2, "cpu", [1, 2])
    assert standin.log("x").endswith("x.jsonl") and "ptutor-standin-" in standin.log("x")  # never the book's folders


def test_the_local_wnut17_cut_keeps_every_tag_in_training_and_only_those_elsewhere(cpu_standin):
    splits = standin.wnut17()
    train_tags = {t for s in splits["train"] for t in s.tags}
    assert len(train_tags) == 13  # O and B-/I- of WNUT-17's six types
    for name in ("validation", "test"):
        assert 0 < len(splits[name]) <= standin.CPU_ITEMS and {t for s in splits[name] for t in s.tags} <= train_tags
    from ptutor.data import read_conll

    assert len(read_conll(standin.wnut17_file("test"), labels=None)) == len(splits["test"])  # the cut, as a file
    e2e = standin.e2e()
    assert set(e2e) == {"train", "validation", "test"} and all(set(r) == {"input", "target"} for r in e2e["test"])


def test_full_fine_tuning_divides_its_pick_by_the_width_ratio_and_the_others_keep_theirs():
    lr, why = fullscale.scaled_lr("ft", "ner", "tiny-bert")  # picked with minilm (hidden 384); tiny-bert is 64 wide
    assert lr == pytest.approx(METHODS["ft"].config_class.lr_for("ner") * 384 / 64) and "384/64" in why
    for method in ("pt2", "lora", "qlora"):
        assert fullscale.scaled_lr(method, "gen", "tiny-llama")[0] == METHODS[method].config_class.lr_for("gen")


def test_the_record_of_a_hand_written_loop_has_the_runners_fields():
    from ptutor.train import History

    hist = History(losses=[2.0, 1.5], step_seconds=[0.2, 0.1], train_seconds=0.3, peak_mb=12.0)
    row = fullscale.record("gen", "peft-qlora", "tiny-qwen2", {"bleu": 1.25, "examples": 2}, hist, metric="bleu",
                           lr=1e-2, batch_size=4, train_items=8, tokens=60, trainable=10, total=100, device="cpu",
                           config={"method": "peft-qlora"})
    assert row["primary"] == 1.25 and row["steps"] == 2 and row["tokens_per_second"] == 200.0
    from test_gpu_cells import RUN_KEYS

    assert RUN_KEYS <= set(row)


def test_a_log_is_shown_only_when_a_gpu_made_it(tmp_path):
    assert fullscale.logged("cell", tmp_path).startswith("No GPU log yet")
    row = {"method": "lora", "model": "minilm", "metric": "f1", "primary": 0.41, "steps": 150, "step_seconds": 0.02,
           "peak_mb": 900.0, "device": "cpu", "hardware": {"cpu": "x"}, "finished_at": "2026-12-06T00:00:00",
           "versions": {"torch": "2.13.0"}}
    (tmp_path / "cell.jsonl").write_text(json.dumps(row) + "\n")
    assert fullscale.logged("cell", tmp_path).startswith("No GPU log yet")  # a CPU-made log is no GPU log
    gpu_row = {**row, "device": "cuda:0", "hardware": {"cpu": "x", "gpu": "NVIDIA H100 80GB HBM3"}}
    (tmp_path / "cell.jsonl").write_text(json.dumps(gpu_row) + "\n")
    text = fullscale.logged("cell", tmp_path)
    assert "NVIDIA H100 80GB HBM3" in text and "lora" in text and "f1 0.410" in text


def test_the_published_anchors_cite_their_papers():
    assert "(Liu et al. 2022)" in fullscale.anchor("ner") and "92.8" in fullscale.anchor("ner")
    assert "69.7" in fullscale.anchor("e2e") and "70.4" in fullscale.anchor("e2e") and "{" not in fullscale.anchor("e2e")


def test_the_entity_cloze_reads_spans_and_scores_with_the_answer_words():
    from ptutor.backbones import load_backbone

    s = Sentence(["Ana", "Lima", "joined", "Acme", "Corp", "."],
                 ["B-person", "I-person", "O", "B-corporation", "I-corporation", "O"])
    items = entities([s])
    assert items == [("Ana Lima joined Acme Corp .", "Ana Lima", "person"),
                     ("Ana Lima joined Acme Corp .", "Acme Corp", "corporation")]
    task = EntityCloze()
    task.learn(items)
    assert task.words() == ["company", "person"] and 'is "Acme Corp" a company or person?' in task.prompt(items[1])
    model, tok = load_backbone("tiny-llama", "causal-lm")
    rows = task.encode(items, tok)
    assert all(any(label != -100 for label in r["labels"]) for r in rows)  # the loss is on the answer word
    assert task.evaluate(model, items, tok)["accuracy"] in (0.0, 0.5, 1.0)
