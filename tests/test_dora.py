"""DoRA from scratch (ptutor.methods.dora) against peft's LoraConfig(use_dora=True) on the same tiny models."""
import copy

import pytest
import torch
from peft import LoraConfig as PeftLoraConfig
from peft import get_peft_model

from ptutor import checkpoint
from ptutor.measure import count_parameters
from ptutor.methods import DoraConfig, LoraConfig, inject

from conftest import tiny_base

CASES = [("tiny-llama", "causal-lm", ["q_proj", "v_proj"]), ("tiny-bert", "token-classification", ["query", "value"]),
         ("tiny-gpt2", "causal-lm", ["c_attn"])]



@pytest.mark.parametrize("preset,task,targets", CASES, ids=[c[0] for c in CASES])
def test_dora_equals_peft_with_the_same_weights_and_merges_like_it(preset, task, targets):
    torch.manual_seed(0)
    base = tiny_base(preset, task)
    ours = inject(copy.deepcopy(base), DoraConfig(r=4, alpha=8, target_modules=targets, train_head=False))
    theirs = get_peft_model(copy.deepcopy(base), PeftLoraConfig(r=4, lora_alpha=8, target_modules=targets,
                                                                use_dora=True))
    assert count_parameters(ours)[0] == count_parameters(theirs)[0]  # A, B and one magnitude per output channel
    params = dict(theirs.named_parameters())
    with torch.no_grad():
        for name, layer in ours.lora_layers().items():
            layer.lora_B.weight.normal_(std=0.5)  # B = 0 would make the check trivial
            layer.magnitude.mul_(torch.rand_like(layer.magnitude) + 0.5)
            prefix = f"base_model.model.{name}."
            params[prefix + "lora_A.default.weight"].copy_(layer.lora_A.weight)
            params[prefix + "lora_B.default.weight"].copy_(layer.lora_B.weight)
            params[prefix + "lora_magnitude_vector.default.weight"].copy_(layer.magnitude)
        x = torch.randint(5, 200, (2, 9))
        a, b = ours.eval()(input_ids=x).logits, theirs.eval()(input_ids=x).logits
        assert (a - b).abs().max() < 1e-4
        ours.merge()
        assert (ours(input_ids=x).logits - theirs.merge_and_unload()(input_ids=x).logits).abs().max() < 1e-4
        ours.unmerge()
        assert (ours(input_ids=x).logits - a).abs().max() < 1e-4


def test_dora_starts_as_the_base_and_its_magnitude_trains():
    base = tiny_base("tiny-llama", "causal-lm")
    model = inject(copy.deepcopy(base), DoraConfig(r=2))
    x = torch.randint(5, 200, (2, 6))
    with torch.no_grad():
        assert (model(input_ids=x).logits - base(input_ids=x).logits).abs().max() < 1e-5  # m = ||W||, B = 0
    model(input_ids=x, labels=x).loss.backward()
    layer = next(iter(model.lora_layers().values()))
    assert layer.magnitude.grad is not None and layer.magnitude.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one magnitude vector per layer"):
        DoraConfig(num_adapters=2)


def trained_dora(preset, task, targets, seed=0):
    """A DoRA with trained-looking B and magnitude (B = 0 and m = ||W|| would make every check trivial)."""
    torch.manual_seed(seed)
    model = inject(tiny_base(preset, task), DoraConfig(r=4, alpha=8, target_modules=targets)).eval()
    with torch.no_grad():
        for layer in model.lora_layers().values():
            layer.lora_B.weight.normal_(std=0.5)
            layer.magnitude.mul_(torch.rand_like(layer.magnitude) + 0.5)
    return model


@pytest.mark.parametrize("preset,task,targets", CASES, ids=[c[0] for c in CASES])
def test_a_merged_dora_equals_the_unmerged_one_and_unmerge_restores_the_weights(preset, task, targets):
    model = trained_dora(preset, task, targets)
    x = torch.randint(5, 200, (2, 9))
    before = {n: p.clone() for n, p in model.base.named_parameters() if "base_layer" in n}
    with torch.no_grad():
        unmerged = model(input_ids=x).logits
        model.merge()  # the magnitude goes in: m * (W + s B A) / ||W + s B A||
        assert any(not torch.equal(before[n], p) for n, p in model.base.named_parameters() if n in before)
        assert (model(input_ids=x).logits - unmerged).abs().max() < 1e-5
        model.unmerge()
        assert all((p - before[n]).abs().max() < 1e-6 for n, p in model.base.named_parameters() if n in before)
        assert (model(input_ids=x).logits - unmerged).abs().max() < 1e-5


def test_a_checkpoint_round_trip_restores_the_magnitude(tmp_path):
    model = trained_dora("tiny-llama", "causal-lm", ["q_proj", "v_proj"])
    checkpoint.save(model, tmp_path)
    loaded = checkpoint.load(tiny_base("tiny-llama", "causal-lm"), tmp_path)
    ours, theirs = model.lora_layers(), loaded.lora_layers()
    assert all(torch.equal(ours[n].magnitude, theirs[n].magnitude) for n in ours)
    x = torch.randint(5, 200, (2, 9))
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=x).logits, model(input_ids=x).logits)


def test_load_adapter_copies_the_magnitude_and_refuses_another_method():
    targets = ["q_proj", "v_proj"]
    trained, fresh = trained_dora("tiny-llama", "causal-lm", targets), trained_dora("tiny-llama", "causal-lm", targets, 1)
    fresh.load_adapter(0, trained)
    x = torch.randint(5, 200, (2, 9))
    with torch.no_grad():
        assert torch.equal(fresh(input_ids=x).logits, trained(input_ids=x).logits)  # A, B and m: the same layer
    lora = inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=4, target_modules=targets))
    with pytest.raises(ValueError, match="one-adapter Dora .* got a Lora"):
        fresh.load_adapter(0, lora)
