"""VeRA from scratch (ptutor.methods.vera) against peft's VeraConfig on the same tiny models, its frozen pair through
the checkpoint (kept or drawn again, checked either way), and merging."""
import copy
import warnings

import pytest
import torch
from peft import VeraConfig as PeftVeraConfig
from peft import get_peft_model
from safetensors.torch import load_file, save_file

from ptutor import checkpoint
from ptutor.measure import count_parameters
from ptutor.methods import LoraConfig, VeraConfig, inject
from ptutor.methods.vera import VeraBasis, VeraLinear

from conftest import tiny_base, token_ids

CASES = [("tiny-bert", "token-classification", ["query", "value"]), ("tiny-llama", "causal-lm", ["q_proj", "v_proj"]),
         ("tiny-gpt2", "causal-lm", ["c_attn"])]  # GPT-2: Conv1D, its weight transposed


def peft_vera(base, targets, r, seed, conv1d):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft notes that it keeps the pair in the checkpoint
        return get_peft_model(base, PeftVeraConfig(r=r, target_modules=targets, projection_prng_key=seed,
                                                   fan_in_fan_out=conv1d)).eval()


def randomize(model):
    """Trained-looking vectors (b = 0 at the start would make every comparison trivially equal)."""
    with torch.no_grad():
        for layer in model.vera_layers().values():
            layer.lambda_b.normal_(std=0.5)
            layer.lambda_d.normal_(std=0.5)


@pytest.mark.parametrize("preset,task,targets", CASES, ids=[c[0] for c in CASES])
def test_vera_equals_peft_with_the_same_seed_and_vectors_and_merges_like_it(preset, task, targets):
    base = tiny_base(preset, task)
    ours = inject(copy.deepcopy(base), VeraConfig(r=16, projection_seed=7, train_head=False)).eval()
    theirs = peft_vera(copy.deepcopy(base), targets, r=16, seed=7, conv1d=preset == "tiny-gpt2")
    buffers = dict(theirs.named_buffers())
    first = f"base_model.model.{ours.target_names[0]}."
    assert torch.equal(ours.basis.A, buffers[first + "vera_A.default"])  # the same seed draws the same pair
    assert torch.equal(ours.basis.B, buffers[first + "vera_B.default"])
    assert count_parameters(ours)[0] == count_parameters(theirs)[0]  # d (r) and b (out) per target
    params = dict(theirs.named_parameters())
    x = token_ids()
    with torch.no_grad():
        assert torch.equal(ours(input_ids=x).logits, base.eval()(input_ids=x).logits)  # b = 0: the base exactly
        randomize(ours)
        for name, layer in ours.vera_layers().items():
            params[f"base_model.model.{name}.vera_lambda_b.default"].copy_(layer.lambda_b)
            params[f"base_model.model.{name}.vera_lambda_d.default"].copy_(layer.lambda_d)
        unmerged = ours(input_ids=x).logits
        assert (unmerged - base(input_ids=x).logits).abs().max() > 1e-3  # the vectors change the outputs
        assert (unmerged - theirs(input_ids=x).logits).abs().max() < 1e-5
        before = {n: p.clone() for n, p in ours.base.named_parameters() if "base_layer" in n}
        ours.merge()
        assert (ours(input_ids=x).logits - unmerged).abs().max() < 1e-5
        assert (ours(input_ids=x).logits - theirs.merge_and_unload()(input_ids=x).logits).abs().max() < 1e-5
        ours.unmerge()
        assert all((p - before[n]).abs().max() < 1e-6 for n, p in ours.base.named_parameters() if n in before)


def test_a_copied_pair_gives_peft_s_outputs_whatever_the_seed():
    """The pair is the whole frozen state: copied across (peft's seed 0, ours 3), the two compute the same."""
    base = tiny_base("tiny-llama", "causal-lm")
    ours = inject(copy.deepcopy(base), VeraConfig(r=8, projection_seed=3)).eval()
    theirs = peft_vera(copy.deepcopy(base), ["q_proj", "v_proj"], r=8, seed=0, conv1d=False)
    buffers, params = dict(theirs.named_buffers()), dict(theirs.named_parameters())
    first = f"base_model.model.{ours.target_names[0]}."
    assert not torch.equal(ours.basis.A, buffers[first + "vera_A.default"])
    with torch.no_grad():
        ours.basis.A.copy_(buffers[first + "vera_A.default"])
        ours.basis.B.copy_(buffers[first + "vera_B.default"])
        randomize(ours)
        for name, layer in ours.vera_layers().items():
            params[f"base_model.model.{name}.vera_lambda_b.default"].copy_(layer.lambda_b)
            params[f"base_model.model.{name}.vera_lambda_d.default"].copy_(layer.lambda_d)
        x = token_ids()
        assert (ours(input_ids=x).logits - theirs(input_ids=x).logits).abs().max() < 1e-5


def test_one_pair_serves_every_layer_and_each_trains_r_plus_out_numbers():
    model = inject(tiny_base("tiny-llama", "causal-lm"), VeraConfig(r=16))
    layers = list(model.vera_layers().values())
    assert all(layer.shared[0] is model.basis for layer in layers)
    assert model.basis.A.shape == (16, 64) and model.basis.B.shape == (64, 16)  # q_proj 64 -> 64 is the largest
    assert [n for n, _ in model.named_buffers() if n.endswith((".A", ".B"))] == ["basis.A", "basis.B"]  # held once
    # q_proj: 64 out, v_proj: 32 out (2 kv heads of 16); LoRA at the same rank trains r (in + out) per layer
    assert count_parameters(model)[0] == 2 * ((16 + 64) + (16 + 32))
    lora = inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=16))
    assert count_parameters(lora)[0] == 2 * (16 * (64 + 64) + 16 * (64 + 32))
    assert all(not p.requires_grad for p in model.basis.parameters()) and not list(model.basis.parameters())


def test_b_starts_at_zero_so_only_b_gets_a_gradient_at_the_first_step():
    """With b = 0 the branch's output is 0 whatever d is: b's gradient is not 0, d's is (as in the paper's start)."""
    model = inject(tiny_base("tiny-llama", "causal-lm"), VeraConfig(r=8)).train()
    x = token_ids()
    model(input_ids=x, labels=x).loss.backward()
    for layer in model.vera_layers().values():
        assert layer.lambda_b.grad.abs().sum() > 0 and torch.equal(layer.lambda_d.grad, torch.zeros_like(layer.lambda_d))
    assert sorted(model.frozen_state_dict()) == ["basis.A", "basis.B"]  # the pair: kept, never trained


def vera_after_training(seed=0, **options):
    model = inject(tiny_base("tiny-llama", "causal-lm"), VeraConfig(r=8, projection_seed=seed, **options)).eval()
    randomize(model)
    return model


def test_a_checkpoint_keeps_the_pair_and_restores_the_model(tmp_path):
    model = vera_after_training(seed=5)
    info = checkpoint.save(model, tmp_path)
    assert {"basis.A", "basis.B"} <= set(load_file(tmp_path / "weights.safetensors"))
    assert info["params"] == count_parameters(model)[0]  # "params" counts what trained; the pair comes on top
    loaded = checkpoint.load(tiny_base("tiny-llama", "causal-lm"), tmp_path)
    assert torch.equal(loaded.basis.A, model.basis.A) and torch.equal(loaded.basis.B, model.basis.B)
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=token_ids()).logits, model(input_ids=token_ids()).logits)


def test_without_the_pair_the_checkpoint_is_smaller_and_the_pair_is_drawn_again_and_checked(tmp_path, monkeypatch):
    model = vera_after_training(seed=5, save_projection=False)
    kept = checkpoint.save(vera_after_training(seed=5), tmp_path / "kept")
    drawn = checkpoint.save(model, tmp_path / "drawn")
    assert "basis.A" not in load_file(tmp_path / "drawn" / "weights.safetensors")
    assert drawn["bytes"] < kept["bytes"]
    loaded = checkpoint.load(tiny_base("tiny-llama", "causal-lm"), tmp_path / "drawn")
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=token_ids()).logits, model(input_ids=token_ids()).logits)
    # a torch that draws other numbers from the same seed: a clear error, not another model
    from ptutor.methods import vera

    monkeypatch.setattr(vera, "kaiming_uniform", lambda shape, generator: torch.rand(shape, generator=generator))
    with pytest.raises(checkpoint.CheckpointError, match="basis.A: the method built another tensor"):
        checkpoint.load(tiny_base("tiny-llama", "causal-lm"), tmp_path / "drawn")


def test_a_corrupt_pair_in_the_file_is_named(tmp_path):
    checkpoint.save(vera_after_training(), tmp_path)
    tensors = load_file(tmp_path / "weights.safetensors")
    tensors["basis.B"][3, 1] += 1e-3  # one number off: the outputs would be silently different
    save_file(tensors, tmp_path / "weights.safetensors")
    with pytest.raises(checkpoint.CheckpointError, match="basis.B in .* is not the tensor that was saved"):
        checkpoint.load(tiny_base("tiny-llama", "causal-lm"), tmp_path)


def test_a_lone_layer_checks_its_basis_and_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="rank r must be at least 1"):
        VeraConfig(r=0)
    with pytest.raises(ValueError, match="smaller than this 64 -> 32 layer"):
        VeraLinear(torch.nn.Linear(64, 32), VeraBasis(4, 48, 48))
    with pytest.raises(TypeError, match="VeRA wraps nn.Linear or GPT-2 Conv1D"):
        VeraLinear(torch.nn.Embedding(10, 4), VeraBasis(4, 48, 48))
    model = vera_after_training()
    with pytest.raises(RuntimeError, match="not merged"):
        model.unmerge()
