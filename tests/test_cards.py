"""The "use it" cards (ptutor.book.cards): every registered method has one on the page; every card's peft (or plain
transformers) code runs on a tiny model of its family, trains as many numbers as ptutor's call and starts from the
same outputs; its rate and steps are the book's picks; the formulas give the counts ptutor trains and the logs
recorded; each listed mistake raises the error its card shows."""
import importlib.util
import re
from pathlib import Path

import pytest
import torch
import transformers
from transformers.pytorch_utils import Conv1D

from ptutor import methods
from ptutor.arch import default_target_modules
from ptutor.backbones import load_backbone, model_dir
from ptutor.book import cards
from ptutor.data import WNUT17_LABELS, read_conll, read_jsonl
from ptutor.measure import count_parameters, predict_training_memory
from ptutor.methods import METHODS, find_modules, inject
from ptutor.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"causal-lm": "tiny-llama", "token-classification": "tiny-bert"}
AUTO = {"causal-lm": transformers.AutoModelForCausalLM, "token-classification": transformers.AutoModelForTokenClassification}
CODED = [m for m, c in cards.CARDS.items() if c.code]


def head_kwargs(head):
    return {"num_labels": len(WNUT17_LABELS)} if head == "token-classification" else {}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny model of each kind saved as a folder, as a reader's model would be; the causal LM's tokenizer without a
    padding token, as Llama's ships."""
    out = {}
    for head, preset in PRESETS.items():
        folder = tmp_path_factory.mktemp(preset)
        model, tok = load_backbone(preset, head, **head_kwargs(head))
        model.save_pretrained(folder)
        if head == "causal-lm":
            tok.pad_token = None
        tok.save_pretrained(folder)
        out[head] = folder
    return out


@pytest.fixture(scope="module")
def train_sets():
    """A few tokenised examples of the real data for each kind: E2E pairs for the causal LM, WNUT-17 for the tagger."""
    gen, ner = get_task("gen"), get_task("ner")
    _, smol_tok = load_backbone("tiny-llama", "causal-lm")
    _, bert_tok = load_backbone("tiny-bert", "token-classification", num_labels=len(WNUT17_LABELS))
    sentences = read_conll(ROOT / "data" / "wnut17" / "train.conll", labels=None)[:8]
    ner.learn(read_conll(ROOT / "data" / "wnut17" / "train.conll", labels=None))
    return {"causal-lm": gen.encode(read_jsonl(ROOT / "data" / "e2e" / "train.jsonl")[:8], smol_tok, 48),
            "token-classification": ner.encode(sentences, bert_tok, 48)}


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def ptutor_model(card, folder):
    torch.manual_seed(0)
    base = AUTO[card.head].from_pretrained(folder, dtype="auto", **head_kwargs(card.head))
    ns = {**vars(methods), "base": base}
    exec(card.call, ns)  # the card's own ptutor call
    return ns["model"]


def align(method, ours, theirs):
    """The random starts of prompts and prefixes, copied from ptutor's model into peft's (the rest start equal)."""
    with torch.no_grad():
        if method == "pt":
            theirs.prompt_encoder["default"].embedding.weight.copy_(ours.prompt)
        elif method == "ptv1":
            theirs.prompt_encoder["default"].load_state_dict(ours.prompt_encoder.state_dict())
        elif method == "pt2":
            ours.prefix_encoder.load_state_dict({k.split("prompt_encoder.default.")[1]: v for k, v in
                                                 theirs.state_dict().items() if "prompt_encoder.default." in k})


class OneStep(transformers.TrainingArguments):
    """transformers' TrainingArguments cut to one step, saving nothing; without CUDA, `use_cpu=True` (transformers
    asks for it to run bf16 on a CPU) and the plain AdamW instead of the paged one, which needs CUDA's unified
    memory. The card's Trainer code runs as written otherwise."""

    def __init__(self, output_dir, **kwargs):
        kwargs.update(max_steps=1, save_strategy="no")
        if not torch.cuda.is_available():
            kwargs["use_cpu"] = True
            if kwargs.get("optim", "").startswith("paged"):
                kwargs["optim"] = "adamw_torch"
        super().__init__(output_dir, **kwargs)


def test_every_registered_method_has_a_card_on_the_page():
    missing = sorted(set(METHODS) - set(cards.CARDS))
    assert not missing, f"no card for {missing}: add one to ptutor/book/cards.py (CARDS)"
    text = cards.page()
    for method in METHODS:
        assert f"(`{method}`)" in text and "No card yet" not in text
    for method, card in cards.CARDS.items():
        assert card.code or "No peft equivalent" in card.about_code, method  # code, or why there is none


def test_the_build_writes_the_cards_into_the_page():
    spec = importlib.util.spec_from_file_location("cards_ext", ROOT / "book" / "_ext" / "cards.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    source = [(ROOT / "book" / "cards.md").read_text()]
    assert ext.PLACEHOLDER in source[0]
    ext.fill(None, "book/cards", source)
    assert ext.PLACEHOLDER not in source[0] and all(f"(`{m}`)" in source[0] for m in METHODS)
    other = ["# another page\n" + ext.PLACEHOLDER]
    ext.fill(None, "chapters/00_setup", other)
    assert ext.PLACEHOLDER in other[0]  # only the cards page changes


@pytest.mark.parametrize("method", CODED)
def test_the_cards_code_trains_what_ptutor_trains_and_starts_from_the_same_outputs(method, folders, train_sets,
                                                                                   tmp_path, monkeypatch):
    card = cards.CARDS[method]
    assert cards.code_lines(card.code) <= 15
    build, train = cards.split_code(card.code)
    monkeypatch.chdir(tmp_path)
    ns = {"name": str(folders[card.head]), "train_set": train_sets[card.head], "labels": WNUT17_LABELS}
    torch.manual_seed(0)
    exec(build, ns)
    theirs, ours = ns["model"], ptutor_model(card, folders[card.head])
    assert trainable(theirs) == count_parameters(ours)[0]
    align(method, ours, theirs)
    ids = torch.randint(100, 2000, (2, 9), generator=torch.Generator().manual_seed(0))
    ours.eval(), theirs.eval()
    with torch.no_grad():
        a, b = ours(input_ids=ids).logits, theirs(input_ids=ids).logits
    b = b[:, -ids.shape[1]:]  # peft returns the soft prompt's positions first
    assert (a - b).abs().max() < (0.05 if method == "qlora" else 1e-4), (a - b).abs().max()  # 4-bit: its own rounding
    ns["TrainingArguments"] = OneStep  # the name the code imported, cut to one step
    exec(train, ns)  # the Trainer part, as written
    assert trainable(ns["model"]) == trainable(theirs)


@pytest.mark.parametrize("method", CODED)
def test_the_cards_code_uses_the_rate_and_steps_the_book_picked(method):
    card = cards.CARDS[method]
    task = "gen" if card.head == "causal-lm" else "ner"
    cls = METHODS[method].config_class
    rate = float(re.search(r"learning_rate=([0-9.e-]+)", card.code).group(1))
    assert rate == cls.lr_for(task), (method, rate, cls.lr_for(task))  # the pick, or the default of a method not swept
    if task not in cls.task_lrs:
        assert "not swept" in card.about_code
        return
    rows = [r for r in read_jsonl(ROOT / cls.lr_source[task]) if r["method"] == method and r["lr"] == cls.task_lrs[task]]
    steps = {r["budget"]["steps"] for r in rows if r["budget"].get("steps")}
    assert steps and f"max_steps={max(steps)}" in card.code, (method, steps)


def test_the_vera_cards_advice_on_its_rate_holds_on_both_real_sets():
    """The card says VeRA's pick lies well above LoRA's on both real sets: ten times or more, on each."""
    assert "On both real sets its pick lies well above LoRA's" in cards.CARDS["vera"].about_code
    vera, lora = METHODS["vera"].config_class, METHODS["lora"].config_class
    for task in ("ner", "gen"):
        assert vera.task_lrs[task] >= 10 * lora.task_lrs[task], (task, vera.task_lrs[task], lora.task_lrs[task])


@pytest.mark.parametrize("method", sorted(cards.CARDS))
def test_every_picked_rate_on_a_card_comes_with_its_test_score_at_the_pick(method):
    """A card's measured settings quote the logged runs at the pick, whatever else the log records of them."""
    cls = METHODS[method].config_class
    lines = cards._measured(method)
    assert len(lines) == max(1, len(cls.task_lrs))
    for task, line in zip(cls.task_lrs, lines):
        assert "at the pick (mean ± s.d. over seeds)" in line, (method, task, line)


FORMULA_BASES = [("tiny-bert", "token-classification"), ("tiny-llama", "causal-lm"), ("tiny-qwen2", "causal-lm")]


@pytest.mark.parametrize("method", sorted(cards.CARDS))
def test_the_trainable_formula_gives_ptutors_count_on_tiny_models(method):
    for preset, head in FORMULA_BASES:
        if head == "causal-lm" and method in ("probe",):
            continue  # a probe trains a task head: a tagger's
        base, _ = load_backbone(preset, head, with_tokenizer=False, **head_kwargs(head))
        total = count_parameters(base)[1]
        cls = METHODS[method].config_class
        config = cls(add_biases=True) if method == "bitfit" and head == "causal-lm" else cls()
        model = inject(base, config)
        labels = len(WNUT17_LABELS) if head == "token-classification" else 0
        assert cards.TRAINABLE[method](cards.shape_of(base.config), config.to_dict(), labels, total) == \
            count_parameters(model)[0], (method, preset)


def test_the_trainable_formulas_give_the_counts_the_logs_recorded_on_the_real_backbones():
    checked = set()
    logs = sorted({log for m in METHODS for log in METHODS[m].config_class.lr_source.values()})  # the picks' logs
    for log in logs:
        for row in read_jsonl(ROOT / log):
            key = (row["method"], row["model"], row["trainable_params"])
            if key in checked or row["method"] not in cards.TRAINABLE:
                continue
            config = transformers.AutoConfig.from_pretrained(model_dir(row["model"]))
            labels = len(WNUT17_LABELS) if row["task"] == "ner" else 0
            got = cards.TRAINABLE[row["method"]](cards.shape_of(config), row["config"], labels, row["total_params"])
            assert got == row["trainable_params"], (log, key, got)
            checked.add(key)
    swept = {m for m in cards.CARDS if METHODS[m].config_class.task_lrs}  # a method not swept yet has no logged run
    assert {m for m, _, _ in checked} == swept


@pytest.mark.parametrize("method", ["ft", "lora", "pt2", "adapter", "qlora"])
def test_the_memory_formula_gives_what_ptutor_counts_for_weights_gradients_and_adamw(method):
    base, _ = load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)
    model = inject(base, METHODS[method].config_class())
    batch = {"input_ids": torch.randint(100, 2000, (2, 8))}
    batch["labels"] = batch["input_ids"]
    predicted = predict_training_memory(model, batch)
    measured = (predicted["weights"] + predicted["gradients"] + predicted["optimizer_state"]) * 2**20
    weights, trained = count_parameters(model)[1], count_parameters(model)[0]
    quantized = sum(m.in_features * m.out_features for m in model.modules() if type(m).__name__ == "NF4Linear")
    formula = cards.training_bytes(weights, trained, 32, quantized)
    assert formula == pytest.approx(measured, rel=0.02), (method, formula, measured)


MISTAKES = [(m, i) for m, c in cards.CARDS.items() for i in range(len(c.mistakes))]


@pytest.mark.parametrize("method,index", MISTAKES, ids=[f"{m}-{i}" for m, i in MISTAKES])
def test_each_mistake_raises_the_error_its_card_shows(method, index, folders, tmp_path, monkeypatch):
    from ptutor import checkpoint
    from ptutor.train import TrainConfig, fit

    mistake = cards.CARDS[method].mistakes[index]
    head = "token-classification" if mistake.on == "tiny-bert" else "causal-lm"
    base, _ = load_backbone(mistake.on, head, with_tokenizer=False, **head_kwargs(head))
    monkeypatch.chdir(tmp_path)
    ns = {**vars(methods), "base": base, "name": str(folders[head]), "checkpoint": checkpoint, "fit": fit,
          "TrainConfig": TrainConfig, "AutoTokenizer": transformers.AutoTokenizer}
    with pytest.raises(Exception) as caught:
        exec(mistake.code, ns)
    kind, message = mistake.error.split(": ", 1)
    assert type(caught.value).__name__ == kind
    if message.endswith("..."):
        assert str(caught.value).startswith(message[:-3]), str(caught.value)
    else:
        assert str(caught.value) == message


@pytest.mark.parametrize("preset", ["tiny-bert", "tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-glm"])
def test_the_families_table_names_layers_that_exist(preset):
    base, _ = load_backbone(preset, "base", with_tokenizer=False)
    targets = default_target_modules(base.config)
    kinds = (torch.nn.Linear, Conv1D)
    assert find_modules(base, targets, kinds)  # every default target is there
    assert all(f"`{t}`" in cards.families_table() for t in targets)
    with pytest.raises(ValueError, match="Its module names end in: .*" + targets[-1].split(".")[-1]):
        find_modules(base, ["no_such_layer"], kinds)  # a wrong name: the error lists what exists


def test_the_cards_cite_keys_the_bibliography_has():
    bib = (ROOT / "book" / "references.bib").read_text()
    for card in cards.CARDS.values():
        for setting in card.published:
            assert "{" + setting.cite + "," in bib, setting.cite
