"""The method contract, checked once for every registered method on every backbone family it applies to.

A new method gets all of this by registering: ownership decides what trains; what it does
not own stays bit-identical; save -> load gives the same outputs without re-running
initialisation; train 2N == train N, save, resume, train N; the base runs alone inside
disable_adapter(); and the runner runs it on both tasks.
"""
import functools
import itertools

import pytest
import torch

from ptutor import checkpoint
from ptutor.arch import task_head_name
from ptutor.backbones import load_backbone, load_tokenizer
from ptutor.data import NER_LABELS, batches, read_jsonl
from ptutor.experiments import RunConfig, run
from ptutor.methods import METHODS, inject
from ptutor.tasks import GenTask, NerTask
from ptutor.train import TrainConfig, fit, make_optimizer

from conftest import D2T, toy_sentences

# the smallest useful config of each method (defaults where they are already small)
SMALL = {"pt": dict(num_virtual_tokens=3), "ptv1": dict(num_virtual_tokens=3, encoder_hidden_size=16),
         "pt2": dict(num_virtual_tokens=3, prefix_dropout=0.1), "lora": dict(r=2, dropout=0.1),
         "qlora": dict(r=2, blocksize=16),
         "pt2lora": dict(num_virtual_tokens=3, r=2),
         "adapter": dict(bottleneck=4), "bitfit": dict(add_biases=True)}  # add_biases: tiny Llama has no biases
BACKBONES = [("tiny-bert", "token-classification"), ("tiny-gpt2", "causal-lm"), ("tiny-llama", "causal-lm"),
             ("tiny-glm", "causal-lm"), ("tiny-bart", "seq2seq-lm")]
NEEDS_HEAD = {"probe"}


def cases():
    for method, (preset, task) in itertools.product(sorted(METHODS), BACKBONES):
        if method in NEEDS_HEAD and task != "token-classification":
            continue
        yield pytest.param(method, preset, task, id=f"{method}-{preset}")


@functools.cache
def tokenizer(preset):
    """One tokenizer per preset for all the cases (loading one takes longer than building a tiny model); the tests
    only read it, and the generation helpers restore the padding side they set."""
    return load_tokenizer(preset)


def backbone(preset, task, seed=0, with_tokenizer=True):
    """The tiny base model (a tagging head with the NER labels unless it generates) and its tokenizer."""
    model, _ = load_backbone(preset, task, seed=seed, with_tokenizer=False,
                             **({"labels": NER_LABELS} if task == "token-classification" else {}))
    if not with_tokenizer:
        return model, None
    tok = tokenizer(preset)
    if model.config.pad_token_id is None:  # as load_backbone sets it
        model.config.pad_token_id = tok.pad_token_id
    return model, tok


def make(method, preset, task, seed=0):
    base, tok = backbone(preset, task, seed)
    torch.manual_seed(seed)  # every method takes the tokenizer (one signature), used or not
    return inject(base, METHODS[method].config_class(**SMALL.get(method, {})), tokenizer=tok), tok


def rows_for(task, tok, model):
    if task in ("causal-lm", "seq2seq-lm"):
        return GenTask().encode(read_jsonl(D2T)[:16], tok, max_length=32, model=model)
    return NerTask().encode(toy_sentences(16), tok)


def stream(rows, seed=0):
    return batches(rows, 4, pad_id=0, shuffle=True, seed=seed)


def probe_batch(task, tok):
    ids = torch.randint(1000, 2000, (2, 6))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if task == "seq2seq-lm":  # the decoder's input: start token + a few tokens
        batch["decoder_input_ids"] = torch.cat([torch.full((2, 1), 2), ids[:, :3]], dim=1)
    return batch


@pytest.mark.parametrize("method,preset,task", list(cases()))
def test_ownership_decides_what_trains_and_the_rest_stays_bit_identical(method, preset, task):
    model, tok = make(method, preset, task)
    owned = model.owned_parameters()
    assert owned, "a method must own something to train"
    for name, p in model.named_parameters():
        assert p.requires_grad == model.owns(name), name
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    frozen = {n: t.clone() for n, t in model.frozen_state_dict().items()}  # needed, never trained (VeRA's pair)
    fit(model, stream(rows_for(task, tok, model)), TrainConfig(lr=1e-2, steps=3, progress=False), device=torch.device("cpu"))
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before if n not in owned), "a frozen weight moved"
    assert frozen.keys() == model.frozen_state_dict().keys()
    assert all(torch.equal(frozen[n], t) for n, t in model.frozen_state_dict().items()), "frozen state moved"
    assert any(not torch.equal(before[n], after[n]) for n in owned), "no owned parameter trained"
    assert set(model.trainable_state_dict()) == set(owned)


@pytest.mark.parametrize("method,preset,task", list(cases()))
def test_save_then_load_gives_identical_outputs(method, preset, task, tmp_path):
    model, tok = make(method, preset, task)
    fit(model, stream(rows_for(task, tok, model)), TrainConfig(lr=1e-2, steps=2, progress=False), device=torch.device("cpu"))
    checkpoint.save(model, tmp_path)
    fresh, _ = backbone(preset, task, with_tokenizer=False)  # the same frozen base, untrained
    loaded = checkpoint.load(fresh, tmp_path)
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    batch = probe_batch(task, tok)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)


@pytest.mark.parametrize("method,preset,task", list(cases()))
def test_train_2n_equals_train_n_save_resume_train_n(method, preset, task, tmp_path):
    N, lr = 2, 1e-2  # two steps after the resume: the optimizer's moments must carry over too
    model, tok = make(method, preset, task)
    rows = rows_for(task, tok, model)
    start = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    full = fit(model, stream(rows), TrainConfig(lr=lr, steps=2 * N, progress=False), device=torch.device("cpu"))
    want = model.trainable_state_dict()

    first, _ = make(method, preset, task)
    first.load_state_dict({**first.state_dict(), **start})
    opt = make_optimizer(first, lr)  # the optimizer fit() would build
    h1 = fit(first, itertools.islice(stream(rows), N), TrainConfig(lr=lr, steps=2 * N, progress=False),
             optimizer=opt, device=torch.device("cpu"))
    checkpoint.save_for_resume(first, opt, tmp_path, step=N)
    torch.manual_seed(123)  # whatever runs in between must not matter
    base, _ = backbone(preset, task, with_tokenizer=False)
    resumed, opt2, step = checkpoint.load_for_resume(base, tmp_path, method=method)
    h2 = fit(resumed, itertools.islice(stream(rows), N, None),
             TrainConfig(lr=lr, steps=2 * N, start_step=step, progress=False), optimizer=opt2,
             device=torch.device("cpu"))
    assert h1.losses + h2.losses == pytest.approx(full.losses, abs=1e-5)
    got = resumed.trainable_state_dict()
    assert all(torch.allclose(got[k], want[k], atol=1e-5) for k in want)


def test_resume_rebuilds_a_head_rate_and_refuses_a_missing_one(tmp_path):
    """A run with its own head rate has one more optimizer group; resuming with the same head_lr continues it
    exactly, resuming without it is a clear error instead of a state loaded into the wrong groups."""
    N, lr, head_lr = 2, 1e-2, 3e-2
    model, tok = make("lora", "tiny-bert", "token-classification")
    rows = rows_for("token-classification", tok, model)
    start = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    full = fit(model, stream(rows), TrainConfig(lr=lr, head_lr=head_lr, steps=2 * N, progress=False),
               device=torch.device("cpu"))
    first, _ = make("lora", "tiny-bert", "token-classification")
    first.load_state_dict({**first.state_dict(), **start})
    opt = make_optimizer(first, lr, head_lr=head_lr)
    h1 = fit(first, itertools.islice(stream(rows), N), TrainConfig(lr=lr, steps=2 * N, progress=False),
             optimizer=opt, device=torch.device("cpu"))
    checkpoint.save_for_resume(first, opt, tmp_path, step=N)
    base = lambda: backbone("tiny-bert", "token-classification", with_tokenizer=False)[0]  # noqa: E731
    with pytest.raises(checkpoint.CheckpointError, match="head_lr"):
        checkpoint.load_for_resume(base(), tmp_path, lr=lr)
    resumed, opt2, step = checkpoint.load_for_resume(base(), tmp_path, lr=lr, head_lr=head_lr)
    h2 = fit(resumed, itertools.islice(stream(rows), N, None),
             TrainConfig(lr=lr, steps=2 * N, start_step=step, progress=False), optimizer=opt2,
             device=torch.device("cpu"))
    assert h1.losses + h2.losses == pytest.approx(full.losses, abs=1e-5)


@pytest.mark.parametrize("method,preset,task", list(cases()))
def test_disable_adapter_runs_the_base_alone(method, preset, task):
    model, tok = make(method, preset, task)
    batch = probe_batch(task, tok)
    if not model.keeps_base:
        with pytest.raises(ValueError, match="no unchanged base"):
            with model.disable_adapter():
                pass
        return
    pristine, _ = backbone(preset, task, with_tokenizer=False)
    head = task_head_name(model.base)
    with torch.no_grad():  # as if trained: some methods (LoRA, B = 0) start exactly at the base model
        for name, p in model.owned_parameters().items():
            if not (head and name.startswith(f"base.{head}.")):  # a trained head is part of the base model
                p.add_(0.1 * torch.randn_like(p))
    model.eval()
    with torch.no_grad():
        with model.disable_adapter():
            alone = model(**batch).logits
        on = model(**batch).logits
        assert torch.equal(alone, model.reference_base(pristine)(**batch).logits)
        assert not torch.equal(on, alone), "the method changed nothing"
    assert model.active


@functools.cache
def merges(method: str) -> bool:
    """Does `method` put layers that merge into the base? (Asked once, of the tiny BERT.)"""
    return bool(make(method, "tiny-bert", "token-classification")[0].mergeable_layers())


@pytest.mark.parametrize("method,preset,task", list(cases()))
def test_a_merged_model_equals_the_unmerged_one_and_unmerge_restores_the_base(method, preset, task):
    """Every method whose injected layers only change the weights they wrap merges through the one mechanism of
    the contract; the others say why they cannot."""
    if preset != "tiny-bert" and not merges(method):
        pytest.skip(f"{method} has no layer to merge (checked on tiny-bert)")
    model, tok = make(method, preset, task)
    if not model.mergeable_layers():
        with pytest.raises(RuntimeError, match="no layer to merge"):
            model.merge()
        return
    if any(layer.merge_refusal() for layer in model.mergeable_layers()):
        with pytest.raises(RuntimeError, match="cannot merge"):  # QLoRA: 4-bit weights
            model.merge()
        return
    head = task_head_name(model.base)
    with torch.no_grad():  # as if trained: LoRA's B = 0 or VeRA's b = 0 would make the check trivial
        for name, p in model.owned_parameters().items():
            if not (head and name.startswith(f"base.{head}.")):
                p.add_(0.1 * torch.randn_like(p))
    base_weights = {n: p.clone() for n, p in model.base.named_parameters() if not model.owns("base." + n)}
    batch = probe_batch(task, tok)
    model.eval()
    with torch.no_grad():
        unmerged = model(**batch).logits
        model.merge()
        assert (model(**batch).logits - unmerged).abs().max() < 1e-5
        model.unmerge()
        assert all((p - base_weights[n]).abs().max() < 1e-6 for n, p in model.base.named_parameters() if n in base_weights)
        assert (model(**batch).logits - unmerged).abs().max() < 1e-5


def test_merging_is_written_once_in_the_contract():
    """merge/unmerge live in ptutor/methods/base.py only: a method supplies its change (delta_weight), not its own
    merging code."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "ptutor"
    found = [(path.relative_to(package).as_posix(), node.name) for path in sorted(package.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.FunctionDef) and node.name in ("merge", "unmerge", "set_merged")]
    assert sorted(found) == [("methods/base.py", "merge"), ("methods/base.py", "set_merged"),
                             ("methods/base.py", "unmerge")]


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("task", ["ner", "gen"])
def test_the_runner_runs_every_method_on_both_tasks(method, task, tmp_path):
    if task == "gen" and method in NEEDS_HEAD:
        pytest.skip(f"{method} needs a task head; a causal LM has none")
    if task == "ner":
        data = toy_sentences(24)
        model = "tiny-bert"
    else:
        data = read_jsonl(D2T)[:24]
        model = "tiny-llama"
    outcome = run(RunConfig.of(task, method, model, data, data[:3], dev=data[:2], steps=2, **SMALL.get(method, {})),
                  save=str(tmp_path / "ckpt"))
    assert outcome.model is None and outcome.history.steps == 2  # one RunResult; a model only when asked for
    result = outcome.record
    assert result["steps"] == 2 and result["method"] == method and result["task"] == task
    assert result["metric"] == ("f1" if task == "ner" else "bleu")
    assert result["primary"] == result[result["metric"]] and f"dev_{result['metric']}" in result
    assert 0 < result["trainable_params"] <= result["total_params"] and result["checkpoint_bytes"] > 0
    assert {"versions", "hardware", "seed", "tokens_per_second", "peak_mb"} <= set(result)


def test_extra_batch_keys_survive_the_data_path():
    rows = [{"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1], "labels": [0, 1, 2], "adapter": "a", "task_id": 0},
            {"input_ids": [4, 5], "attention_mask": [1, 1], "labels": [1, 1], "adapter": "b", "task_id": 1}]
    batch = next(batches(rows, 2))
    assert batch["adapter"] == ["a", "b"] and batch["task_id"].tolist() == [0, 1]
    assert batch["labels"].tolist() == [[0, 1, 2], [1, 1, -100]]


def test_loading_does_not_rerun_initialisation(tmp_path, monkeypatch):
    """A text-initialised prefix needs the tokenizer and a forward pass to start; loading needs neither."""
    from ptutor.methods import PrefixConfig, prefix as prefix_module

    base, tok = load_backbone("tiny-llama", "causal-lm")
    model = inject(base, PrefixConfig(num_virtual_tokens=4, init="text", init_text="Write a sentence."), tokenizer=tok)
    checkpoint.save(model, tmp_path)

    def boom(*args, **kwargs):
        raise AssertionError("initialisation ran again while loading")

    monkeypatch.setattr(prefix_module, "activation_prefix", boom)
    monkeypatch.setattr(prefix_module, "tokenizer_for", boom)
    loaded = checkpoint.load(load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)[0], tmp_path)
    assert loaded.config.init == "text"  # the saved config is kept as it was
    assert torch.equal(loaded.prefix_encoder.embedding.weight, model.prefix_encoder.embedding.weight)


def test_a_new_method_is_one_class_and_a_registration():
    """CONTRIBUTING's "Add a method": a throwaway method (a trained per-channel scale after BERT's query and value
    projections), registered here, shows up in the shoot-out's default methods, the diagrams (as a layer put
    into the base) and the command line, with no other edit."""
    from dataclasses import dataclass

    import torch
    from torch import nn

    from ptutor.book.diagrams import trained_parts
    from ptutor.experiments import parse_args
    from ptutor.methods import METHODS, InjectedLayer, Method, MethodConfig, find_modules, register, replace_modules
    from ptutor.runs import swept_methods

    class Scaled(InjectedLayer):
        def __init__(self, base_layer):
            super().__init__()
            self.base_layer, self.scale = base_layer, nn.Parameter(torch.ones(base_layer.out_features))

        def forward(self, x):
            out = self.base_layer(x)
            return out * self.scale if self.enabled else out

    @dataclass
    class ScaleConfig(MethodConfig):
        method, title, task_lrs = "scale-test", "output scale", {"ner": 1e-3}
        init_scale: float = 1.0

    try:
        @register
        class Scale(Method):
            config_class = ScaleConfig

            def __init__(self, base, config, *, tokenizer=None):
                super().__init__(base, config)
                names = find_modules(base, ["query", "value"], kinds=(nn.Linear,))
                replace_modules(base, names, Scaled)
                self.set_trainable()

        assert "scale-test" in swept_methods("ner") and "scale-test" not in swept_methods("gen")
        model = inject(load_backbone("tiny-bert", "token-classification", num_labels=9, with_tokenizer=False)[0],
                       ScaleConfig())
        parts = trained_parts(model)
        assert parts.injected and all(v == {"q", "v"} for v in parts.injected.values()) and not parts.layers
        args = parse_args(["ner", "--method", "scale-test", "--train", "x", "--test", "y", "--init-scale", "2"])
        assert args.method == "scale-test" and args.options == {"init_scale": 2.0}
    finally:
        METHODS.pop("scale-test", None)
