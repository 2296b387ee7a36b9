"""P-Tuning v2 + LoRA on one base: the prefix part is P-Tuning v2 on the LoRA-changed base, LoRA trains at its own rate."""
import pytest
import torch

from ptutor.methods import PrefixConfig, PrefixLoraConfig, inject

from conftest import tiny_base


@pytest.mark.parametrize("preset,task", [("tiny-bert", "token-classification"), ("tiny-llama", "causal-lm"),
                                         ("tiny-gpt2", "causal-lm")])
def test_equals_the_prefix_alone_on_a_base_with_the_lora_update_merged(preset, task):
    torch.manual_seed(0)
    both = inject(tiny_base(preset, task), PrefixLoraConfig(num_virtual_tokens=3, r=2, init="random")).eval()
    with torch.no_grad():
        for name in both.target_names:
            both.base.get_submodule(name).lora_B.weight.normal_(std=0.1)
    x = torch.randint(100, 2000, (2, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = both(input_ids=x).logits
        both.merge()  # the method's merge: the LoRA layers' change goes into the weights, the prefix is left
        prefix_only = inject(both.base, PrefixConfig(num_virtual_tokens=3, init="random")).eval()
        prefix_only.prefix_encoder.load_state_dict(both.prefix_encoder.state_dict())
        assert (prefix_only(input_ids=x).logits - want).abs().max() < 1e-5


def test_lora_trains_at_its_own_rate_in_a_second_group():
    model = inject(tiny_base("tiny-llama", "causal-lm"), PrefixLoraConfig(num_virtual_tokens=3, r=2, lora_lr_scale=0.1))
    prefix_group, lora_group = model.param_groups(1e-1)
    assert prefix_group["lr"] == 1e-1 and lora_group["lr"] == pytest.approx(1e-2)
    lora_names = {n for n, p in model.named_parameters() if any(p is q for q in lora_group["params"])}
    assert lora_names and all(".lora_A." in n or ".lora_B." in n for n in lora_names)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for g in (prefix_group, lora_group) for p in g["params"]}
    assert len(trainable) == 1 + 2 * len(model.target_names)  # the prefix table, A and B of each target


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="rank r must be at least 1"):
        PrefixLoraConfig(r=0)
    with pytest.raises(ValueError, match="lora_lr_scale must be positive"):
        PrefixLoraConfig(lora_lr_scale=0)
