"""LoRA: equal to peft's LoRA with the same A and B, merge/unmerge laws, and clear errors."""
import pytest
import torch
from peft import LoraConfig as PeftLoraConfig, get_peft_model

from ptutor.methods import Lora, LoraConfig, LoraLinear, inject

from conftest import tiny_base, token_ids

CASES = [("tiny-bert", "token-classification", ["query", "value"]), ("tiny-gpt2", "causal-lm", ["c_attn"]),
         ("tiny-llama", "causal-lm", ["q_proj", "v_proj"]), ("tiny-glm", "causal-lm", ["q_proj", "k_proj", "v_proj"]),
         ("tiny-bart", "seq2seq-lm", ["q_proj", "v_proj"])]  # BART: the decoder reads the shifted input


def randomize_b(model):
    with torch.no_grad():  # B = 0 at the start would make every comparison trivially equal
        for layer in model.lora_layers().values():
            layer.lora_B.weight.normal_(std=0.1)


@pytest.mark.parametrize("preset,task,targets", CASES)
def test_same_logits_as_peft_with_the_same_a_and_b(preset, task, targets):
    torch.manual_seed(0)
    ours = inject(tiny_base(preset, task), LoraConfig(r=4, alpha=8, target_modules=targets, train_head=False)).eval()
    randomize_b(ours)
    theirs = get_peft_model(tiny_base(preset, task), PeftLoraConfig(r=4, lora_alpha=8, target_modules=targets,
                                                                lora_dropout=0.0, fan_in_fan_out=preset == "tiny-gpt2"))
    theirs.eval()
    copied = 0
    with torch.no_grad():
        for name, layer in ours.lora_layers().items():
            peft_layer = theirs.base_model.model.get_submodule(name)
            peft_layer.lora_A["default"].weight.copy_(layer.lora_A.weight)
            peft_layer.lora_B["default"].weight.copy_(layer.lora_B.weight)
            copied += 1
        assert copied == len(ours.target_names) > 0
        assert (ours(input_ids=token_ids()).logits - theirs(input_ids=token_ids()).logits).abs().max() < 1e-5


@pytest.mark.parametrize("preset,task,targets", CASES)
def test_merge_equals_unmerged_and_unmerge_restores_the_base(preset, task, targets):
    torch.manual_seed(0)
    model = inject(tiny_base(preset, task), LoraConfig(r=4, target_modules=targets)).eval()
    randomize_b(model)
    before = {n: p.detach().clone() for n, p in model.base.named_parameters() if "base_layer" in n}
    with torch.no_grad():
        unmerged = model(input_ids=token_ids()).logits
        model.merge()
        merged = model(input_ids=token_ids()).logits
        assert (merged - unmerged).abs().max() < 1e-5
        assert any(not torch.equal(before[n], p) for n, p in model.base.named_parameters() if n in before)
        model.unmerge()
        for n, p in model.base.named_parameters():
            if n in before:
                assert (p - before[n]).abs().max() < 1e-6, n


def test_b_starts_at_zero_so_training_starts_from_the_base():
    plain = tiny_base("tiny-llama", "causal-lm")
    model = inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=4))
    with torch.no_grad():
        assert torch.equal(model(input_ids=token_ids()).logits, plain(input_ids=token_ids()).logits)
    assert model.target_names == [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]


def test_trainable_share_is_the_a_and_b_matrices():
    model = inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=4))
    # q_proj: 64 -> 64; v_proj: 64 -> 32 (2 kv heads of 16); per layer r*(in+out) each
    expected = 2 * (4 * (64 + 64) + 4 * (64 + 32))
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


def test_unload_gives_back_the_original_layers():
    model = inject(tiny_base("tiny-gpt2", "causal-lm"), LoraConfig(r=2))
    plain = model.unload()
    assert not any(isinstance(m, LoraLinear) for m in plain.modules())


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="rank r must be at least 1"):
        LoraConfig(r=0)
    with pytest.raises(ValueError, match=r"r=100 must be between 1 and min\(in, out\) = 32"):
        inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=100, target_modules=["v_proj"]))
    with pytest.raises(ValueError, match="match no Linear/Conv1D/NF4Linear module.*q_proj"):
        inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(target_modules=["query"]))
    model = inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=2))
    with pytest.raises(RuntimeError, match="not merged"):
        model.unmerge()
    model.merge()
    with pytest.raises(RuntimeError, match="already merged"):
        model.merge()
    with pytest.raises(RuntimeError, match="unmerge\\(\\) first"):
        with model.disable_adapter():
            model(input_ids=token_ids())


def test_lora_options_parse_on_the_command_line():
    from ptutor.experiments import parse_args

    args = parse_args(["gen", "--method", "lora", "--train", "a", "--test", "b", "--target-modules", "q_proj,v_proj",
                       "--r", "16", "--rslora", "true"])
    assert args.options == {"target_modules": ["q_proj", "v_proj"], "r": 16, "rslora": True}
    assert isinstance(inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(**args.options)), Lora)


ROUTED = [("tiny-bert", "token-classification"), ("tiny-gpt2", "causal-lm"), ("tiny-llama", "causal-lm")]


def one_adapter_models(preset, task, k=3):
    """k one-adapter LoRA models on copies of one base, each with its own random B (and the same head)."""
    models = []
    for j in range(k):
        torch.manual_seed(10 + j)
        m = inject(tiny_base(preset, task), LoraConfig(r=2, train_head=False)).eval()
        randomize_b(m)
        models.append(m)
    return models


@pytest.mark.parametrize("preset,task", ROUTED)
def test_a_mixed_batch_equals_each_adapter_alone_row_by_row(preset, task):
    singles = one_adapter_models(preset, task)
    shared = inject(tiny_base(preset, task), LoraConfig(r=2, train_head=False, num_adapters=3)).eval()
    for j, single in enumerate(singles):
        shared.load_adapter(j, single)
    x = torch.randint(100, 2000, (5, 7), generator=torch.Generator().manual_seed(1))
    route = torch.tensor([2, 0, 1, 1, 0])
    with torch.no_grad():
        mixed = shared(input_ids=x, adapter_ids=route).logits
        for row, j in enumerate(route.tolist()):
            alone = singles[j](input_ids=x[row:row + 1]).logits[0]
            assert (mixed[row] - alone).abs().max() < 1e-5, (row, j)
        with shared.disable_adapter():  # the base alone, whatever the route
            assert torch.equal(shared(input_ids=x, adapter_ids=route).logits, tiny_base(preset, task)(input_ids=x).logits)


def test_routed_generation_equals_each_adapter_generating_alone():
    singles = one_adapter_models("tiny-llama", "causal-lm", k=2)
    shared = inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=2, num_adapters=2)).eval()
    for j, single in enumerate(singles):
        shared.load_adapter(j, single)
    x = torch.randint(100, 2000, (2, 5), generator=torch.Generator().manual_seed(2))
    out = shared.generate(input_ids=x, adapter_ids=torch.tensor([1, 0]), max_new_tokens=6, do_sample=False)
    for row, j in enumerate([1, 0]):
        alone = singles[j].generate(input_ids=x[row:row + 1], max_new_tokens=6, do_sample=False)
        assert torch.equal(out[row], alone[0])


def test_training_moves_only_the_adapters_the_batch_uses():
    model = inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=2, num_adapters=3))
    randomize_b(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    x = token_ids()
    model(input_ids=x, labels=x, adapter_ids=torch.tensor([0, 2])).loss.backward()
    for name, layer in model.lora_layers().items():
        for j, moved in enumerate([True, False, True]):
            grad_a = layer.lora_A.weight.grad[j * 2:(j + 1) * 2]
            assert bool(grad_a.abs().sum() > 0) == moved, (name, j)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)  # no step yet


def test_routing_mistakes_are_clear_errors():
    model = inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=2, num_adapters=2))
    with pytest.raises(ValueError, match="holds 2 adapters: pass adapter_ids"):
        model(input_ids=token_ids())
    with pytest.raises(ValueError, match=r"adapter_ids must be in 0..1"):
        model(input_ids=token_ids(), adapter_ids=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        model(input_ids=token_ids(), adapter_ids=torch.tensor([0, 1, 1]))
    with pytest.raises(RuntimeError, match="holds 2 adapters; merging one"):
        model.merge()
    single = inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=2))
    with pytest.raises(ValueError, match="holds one adapter"):
        single(input_ids=token_ids(), adapter_ids=torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="r=2 on the same layers"):
        model.load_adapter(0, inject(tiny_base("tiny-llama", "causal-lm"), LoraConfig(r=4)))
    with pytest.raises(ValueError, match="num_adapters must be at least 1"):
        LoraConfig(num_adapters=0)
