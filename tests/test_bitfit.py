"""BitFit: only biases (and the head) train, Llama needs add_biases and says so, zero biases start at the base."""
import pytest
import torch

from ptutor import checkpoint
from ptutor.backbones import load_backbone
from ptutor.data import NER_LABELS
from ptutor.methods import BiasLinear, BitFitConfig, inject

from conftest import tiny_base, token_ids, train_steps

# the tiny Llama's linear layers (hidden 64, 2 kv heads of 16, intermediate 128): q, k, v, o, gate, up, down
LLAMA_BIAS_WIDTHS = (64, 32, 32, 64, 128, 128, 64)


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("preset,task", [("tiny-bert", "token-classification"), ("tiny-gpt2", "causal-lm"),
                                         ("tiny-glm", "causal-lm")])
def test_every_bias_of_the_base_trains_and_no_weight(preset, task):
    plain = tiny_base(preset, task)
    model = inject(tiny_base(preset, task), BitFitConfig(train_head=False))
    biases = {f"base.{n}" for n, _ in plain.named_parameters()
              if n.endswith(".bias") and not n.startswith("classifier.")}
    assert set(model.owned_parameters()) == biases and not model.added
    assert trainable(model) == sum(p.numel() for n, p in plain.named_parameters() if f"base.{n}" in biases)


def test_bert_trains_its_biases_and_the_head():
    plain = tiny_base("tiny-bert", "token-classification")
    model = inject(tiny_base("tiny-bert", "token-classification"), BitFitConfig())
    head = {n for n in model.owned_parameters() if n.startswith("base.classifier.")}
    assert head == {"base.classifier.weight", "base.classifier.bias"}
    biases = sum(p.numel() for n, p in plain.named_parameters() if n.endswith(".bias"))
    assert trainable(model) == biases + plain.classifier.weight.numel()


def test_glm_trains_its_own_qkv_biases_without_adding_any():
    model = inject(tiny_base("tiny-glm"), BitFitConfig())
    layers = sorted(n.rsplit(".", 2)[-2] for n in model.owned_parameters())
    assert layers == ["k_proj"] * 2 + ["q_proj"] * 2 + ["v_proj"] * 2
    assert trainable(model) == 2 * (64 + 32 + 32)


def test_llama_has_no_biases_so_bitfit_refuses_and_names_add_biases():
    with pytest.raises(ValueError, match=r"has none outside its task head.*Llama.*BitFitConfig\(add_biases=True\)"):
        inject(tiny_base("tiny-llama"), BitFitConfig())


def test_add_biases_gives_every_block_linear_a_zero_bias_and_starts_as_the_base():
    plain = tiny_base("tiny-llama")
    model = inject(tiny_base("tiny-llama"), BitFitConfig(add_biases=True)).eval()
    assert len(model.added) == 2 * len(LLAMA_BIAS_WIDTHS) and "lm_head" not in model.added
    assert all(isinstance(model.base.get_submodule(n), BiasLinear) for n in model.added)
    assert trainable(model) == 2 * sum(LLAMA_BIAS_WIDTHS)
    with torch.no_grad():
        assert torch.equal(model(input_ids=token_ids()).logits, plain(input_ids=token_ids()).logits)


def test_add_biases_with_target_modules_adds_only_there():
    model = inject(tiny_base("tiny-llama"), BitFitConfig(add_biases=True, target_modules=["o_proj", "down_proj"]))
    assert model.added == [f"model.layers.{i}.{m}" for i in range(2) for m in ("self_attn.o_proj", "mlp.down_proj")]
    assert trainable(model) == 2 * (64 + 64)


@pytest.mark.parametrize("preset,task,config", [("tiny-bert", "token-classification", BitFitConfig()),
                                                ("tiny-llama", "causal-lm", BitFitConfig(add_biases=True))])
def test_training_changes_only_biases_and_the_head(preset, task, config):
    model = inject(tiny_base(preset, task), config)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model, task)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert changed and changed <= set(model.owned_parameters())
    assert all(n.endswith(".bias") or n.startswith("base.classifier.") for n in changed)


@pytest.mark.parametrize("preset,task,config", [("tiny-bert", "token-classification", BitFitConfig()),
                                                ("tiny-llama", "causal-lm", BitFitConfig(add_biases=True))])
def test_save_then_load_gives_equal_logits(preset, task, config, tmp_path):
    model = inject(tiny_base(preset, task), config)
    train_steps(model, task)
    checkpoint.save(model, tmp_path)
    loaded = checkpoint.load(tiny_base(preset, task), tmp_path)
    assert loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(model(input_ids=token_ids()).logits, loaded(input_ids=token_ids()).logits)


def test_disable_adapter_refuses_because_the_biases_changed_in_place():
    model = inject(tiny_base("tiny-bert", "token-classification"), BitFitConfig())
    with pytest.raises(ValueError, match="no unchanged base"):
        with model.disable_adapter():
            pass


def test_bad_settings_raise_errors_that_say_what_to_do():
    with pytest.raises(ValueError, match="add_biases=True"):
        BitFitConfig(target_modules=["o_proj"])
    with pytest.raises(ValueError, match="already has a bias"):
        inject(tiny_base("tiny-bert", "token-classification"), BitFitConfig(add_biases=True, target_modules=["query"]))
    with pytest.raises(ValueError, match="match no"):
        inject(tiny_base("tiny-llama"), BitFitConfig(add_biases=True, target_modules=["dense"]))
    with pytest.raises(TypeError, match="without one"):
        BiasLinear(torch.nn.Linear(4, 4))


def test_a_model_with_only_a_head_bias_is_refused_too():
    """No bias outside the head: training would reach the head alone, which is a linear probe, not BitFit."""
    model = load_backbone("tiny-llama", "token-classification", labels=NER_LABELS, with_tokenizer=False)[0]
    model.score.bias = torch.nn.Parameter(torch.zeros(len(NER_LABELS)))
    with pytest.raises(ValueError, match="add_biases=True"):
        inject(model, BitFitConfig())
