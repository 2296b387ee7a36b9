"""QLoRA: LoRA on NF4-stored linear layers (ptutor.methods.qlora); the contract tests cover the rest."""
import pytest
import torch

from ptutor.backbones import load_backbone
from ptutor.methods import inject
from ptutor.methods.lora import LoraLinear
from ptutor.methods.qlora import QLoraConfig
from ptutor.quant import NF4Linear


def qlora(preset="tiny-llama", **kw):
    task = "causal-lm" if preset != "tiny-bert" else "token-classification"
    base, _ = load_backbone(preset, task, with_tokenizer=False, **({"num_labels": 9} if task != "causal-lm" else {}))
    return inject(base, QLoraConfig(r=4, blocksize=16, **kw))


@pytest.mark.parametrize("preset", ["tiny-llama", "tiny-gpt2", "tiny-bert"])
def test_every_block_linear_is_4bit_and_the_targets_carry_lora(preset):
    model = qlora(preset)
    layers = [m for m in model.base.modules() if isinstance(m, NF4Linear)]
    loras = [m for m in model.base.modules() if isinstance(m, LoraLinear)]
    assert layers and len(layers) == len(model.quantized_names)
    assert loras and all(isinstance(m.base_layer, NF4Linear) for m in loras)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)


def test_training_starts_from_the_4bit_base_and_gradients_reach_the_adapters():
    model = qlora()
    pristine, _ = load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)
    ids = torch.randint(100, 1000, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        start = model(input_ids=ids).logits
        assert torch.equal(start, model.reference_base(pristine)(input_ids=ids).logits)  # B = 0
        full = pristine(input_ids=ids).logits
    assert 0 < (start - full).abs().max() < 0.5 * full.abs().max()  # 4-bit storage changes the outputs a little
    model(input_ids=ids, labels=ids).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if "lora_" in n}
    # with B = 0 the first gradient reaches B only (dL/dA goes through B); A follows once B moves
    assert grads and all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
    assert all(g.abs().sum() == 0 for n, g in grads.items() if "lora_A" in n)


def test_merging_into_a_4bit_layer_is_refused_with_the_way_out():
    model = qlora()
    with pytest.raises(RuntimeError, match="cannot merge into a 4-bit NF4 layer"):
        model.merge()


def test_both_merge_routes_keep_the_4bit_rest_and_only_requantising_loses_the_update():
    torch.manual_seed(0)
    model = qlora().eval()
    with torch.no_grad():
        for layer in model.lora_layers().values():
            layer.lora_B.weight.normal_(std=0.05)
    x = torch.randint(100, 2000, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        unmerged = model(input_ids=x).logits
        with model.disable_adapter():
            effect = (unmerged - model(input_ids=x).logits).abs().max()
        kept = model.merged_copy()(input_ids=x).logits
        rounded = model.merged_copy(requantize=True)(input_ids=x).logits
    assert (kept - unmerged).abs().max() < 1e-4 * unmerged.abs().max()  # float merge: the same outputs
    assert (rounded - unmerged).abs().max() > 1e-3 * effect  # 4-bit again: the update is partly rounded away
    merged = model.merged_copy(requantize=True)
    assert not any(isinstance(m, LoraLinear) for m in merged.modules())
    assert all(isinstance(merged.get_submodule(n), NF4Linear) for n in model.quantized_names)
