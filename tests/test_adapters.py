"""Adapters: start as the base, the parameter count formula, Houlsby vs Pfeiffer placement, what trains, errors."""
from types import SimpleNamespace

import pytest
import torch

from ptutor import checkpoint
from ptutor.arch import adapter_modules
from ptutor.data import NER_LABELS
from ptutor.experiments import parse_args
from ptutor.methods import AdapterConfig, AdapterLayer, inject

from conftest import tiny_base, token_ids, train_steps

BACKBONES = [("tiny-bert", "token-classification"), ("tiny-gpt2", "causal-lm"), ("tiny-llama", "causal-lm"),
             ("tiny-glm", "causal-lm")]
D, LAYERS = 64, 2  # the tiny presets' hidden size and depth


def perturb(model):
    with torch.no_grad():  # up = 0 at the start would make every comparison trivially equal
        for layer in model.adapter_layers().values():
            layer.up.weight.normal_(std=0.1)


@pytest.mark.parametrize("preset,task", BACKBONES)
@pytest.mark.parametrize("placement", ["houlsby", "pfeiffer"])
def test_zero_up_projection_makes_the_adapted_model_equal_the_base(preset, task, placement):
    plain = tiny_base(preset, task)
    model = inject(tiny_base(preset, task), AdapterConfig(bottleneck=8, placement=placement)).eval()
    with torch.no_grad():  # exact in math (x + 0); two model instances may round the last bit differently
        assert (model(input_ids=token_ids()).logits - plain(input_ids=token_ids()).logits).abs().max() < 1e-6


@pytest.mark.parametrize("preset,task", BACKBONES)
def test_trainable_count_is_2_d_bottleneck_plus_d_plus_bottleneck_per_adapter(preset, task):
    b = 8
    houlsby = inject(tiny_base(preset, task), AdapterConfig(bottleneck=b, train_head=False))
    pfeiffer = inject(tiny_base(preset, task), AdapterConfig(bottleneck=b, placement="pfeiffer", train_head=False))
    per_adapter = 2 * D * b + D + b
    assert len(houlsby.target_names) == 2 * LAYERS and len(pfeiffer.target_names) == LAYERS
    assert sum(p.numel() for p in houlsby.parameters() if p.requires_grad) == 2 * LAYERS * per_adapter
    assert sum(p.numel() for p in pfeiffer.parameters() if p.requires_grad) == LAYERS * per_adapter


def test_houlsby_follows_attention_and_feed_forward_outputs_pfeiffer_only_feed_forward():
    layer = "bert.encoder.layer"
    houlsby = inject(tiny_base("tiny-bert", "token-classification"), AdapterConfig())
    pfeiffer = inject(tiny_base("tiny-bert", "token-classification"), AdapterConfig(placement="pfeiffer"))
    assert houlsby.target_names == [f"{layer}.{i}.{m}" for i in range(LAYERS)
                                    for m in ("attention.output.dense", "output.dense")]
    assert pfeiffer.target_names == [f"{layer}.{i}.output.dense" for i in range(LAYERS)]
    gpt2 = inject(tiny_base("tiny-gpt2"), AdapterConfig())
    assert gpt2.target_names == [f"transformer.h.{i}.{m}" for i in range(LAYERS) for m in ("attn.c_proj", "mlp.c_proj")]
    assert all(isinstance(layer, AdapterLayer) for layer in gpt2.adapter_layers().values())


def test_the_head_trains_with_the_adapters_unless_train_head_is_false():
    with_head = inject(tiny_base("tiny-bert", "token-classification"), AdapterConfig(bottleneck=8))
    without = inject(tiny_base("tiny-bert", "token-classification"), AdapterConfig(bottleneck=8, train_head=False))
    head = D * len(NER_LABELS) + len(NER_LABELS)
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    assert count(with_head) - count(without) == head
    assert not any(p.requires_grad for p in without.base.classifier.parameters())


@pytest.mark.parametrize("preset,task", BACKBONES)
def test_training_changes_only_the_adapters_and_the_head(preset, task):
    torch.manual_seed(0)
    model = inject(tiny_base(preset, task), AdapterConfig(bottleneck=8))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model, task)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert changed and changed <= set(model.owned_parameters())
    assert all(".down." in n or ".up." in n or n.startswith("base.classifier.") for n in changed)
    assert any(".down." in n for n in changed), "the down-projection never trained"


@pytest.mark.parametrize("preset,task", BACKBONES)
@pytest.mark.parametrize("placement", ["houlsby", "pfeiffer"])
def test_save_then_load_gives_equal_logits(preset, task, placement, tmp_path):
    torch.manual_seed(0)
    model = inject(tiny_base(preset, task), AdapterConfig(bottleneck=8, placement=placement)).eval()
    perturb(model)
    checkpoint.save(model, tmp_path)
    loaded = checkpoint.load(tiny_base(preset, task), tmp_path)
    assert loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(model(input_ids=token_ids()).logits, loaded(input_ids=token_ids()).logits)


def test_disable_adapter_runs_the_base_and_enabled_comes_back():
    plain = tiny_base("tiny-llama")
    model = inject(tiny_base("tiny-llama"), AdapterConfig(bottleneck=8)).eval()
    perturb(model)
    with torch.no_grad():
        with model.disable_adapter():
            assert not any(layer.enabled for layer in model.adapter_layers().values())
            assert torch.equal(model(input_ids=token_ids()).logits, plain(input_ids=token_ids()).logits)
        assert not torch.equal(model(input_ids=token_ids()).logits, plain(input_ids=token_ids()).logits)
    assert all(layer.enabled for layer in model.adapter_layers().values())


def test_bad_settings_raise_errors_that_say_what_to_do():
    with pytest.raises(ValueError, match="bottleneck must be at least 1"):
        AdapterConfig(bottleneck=0)
    with pytest.raises(ValueError, match="placement 'middle'.*houlsby, pfeiffer"):
        AdapterConfig(placement="middle")
    with pytest.raises(ValueError, match="match no .*o_proj"):  # lists the module names there are
        inject(tiny_base("tiny-llama"), AdapterConfig(target_modules=["output.dense"]))
    with pytest.raises(ValueError, match="Supported architectures"):
        adapter_modules(SimpleNamespace(model_type="mamba"), "houlsby")
    with pytest.raises(TypeError, match="nn.Linear or GPT-2 Conv1D"):
        AdapterLayer(torch.nn.LayerNorm(8), 4)


def test_the_command_line_takes_adapter_options(capsys):
    with pytest.raises(SystemExit):
        parse_args(["ner", "--method", "adapter", "--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--bottleneck", "--placement", "--target-modules", "--train-head"))
    args = parse_args(["ner", "--method", "adapter", "--train", "a", "--test", "b", "--bottleneck", "16",
                       "--placement", "pfeiffer"])
    assert args.options == {"bottleneck": 16, "placement": "pfeiffer"}
