"""(IA)³ from scratch (ptutor.methods.ia3) against peft's IA3 on the same tiny models and the same vectors."""
import copy

import pytest
import torch
from peft import IA3Config as PeftIA3Config
from peft import get_peft_model

from ptutor.measure import count_parameters
from ptutor.methods import IA3Config, inject

from conftest import tiny_base

CASES = [  # preset, task, peft's targets and feed-forward modules written as ptutor's family defaults
    ("tiny-llama", "causal-lm", ["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    ("tiny-bert", "token-classification", r".*\.(key|value)|(.*\.)?layer\.\d+\.output\.dense",
     r"(.*\.)?layer\.\d+\.output\.dense"),
    ("tiny-gpt2", "causal-lm", ["c_attn", "mlp.c_proj"], ["mlp.c_proj"]),
]



@pytest.mark.parametrize("preset,task,targets,feedforward", CASES, ids=[c[0] for c in CASES])
def test_ia3_equals_peft_with_the_same_vectors_and_merges_like_it(preset, task, targets, feedforward):
    torch.manual_seed(0)
    base = tiny_base(preset, task)
    ours = inject(copy.deepcopy(base), IA3Config(train_head=False))
    theirs = get_peft_model(copy.deepcopy(base), PeftIA3Config(target_modules=targets, feedforward_modules=feedforward,
                                                               init_ia3_weights=True))
    peft_vectors = {n.removeprefix("base_model.model.").removesuffix(".ia3_l.default"): p
                    for n, p in theirs.named_parameters() if "ia3_l" in n}
    assert sorted(peft_vectors) == sorted(ours.target_names)  # the same layers, each with its kind of vector
    assert count_parameters(ours)[0] == count_parameters(theirs)[0]
    with torch.no_grad():
        for name, layer in ours.ia3_layers().items():
            layer.ia3_l.normal_(1.0, 0.2)  # not the identity start, or the check would be trivial
            peft_vectors[name].copy_(layer.ia3_l.view_as(peft_vectors[name]))
        x = torch.randint(5, 200, (2, 9))
        a, b = ours.eval()(input_ids=x).logits, theirs.eval()(input_ids=x).logits
        assert (a - b).abs().max() < 1e-5
        ours.merge()
        merged_theirs = theirs.merge_and_unload()
        assert (ours(input_ids=x).logits - merged_theirs(input_ids=x).logits).abs().max() < 1e-4
        ours.unmerge()
        assert (ours(input_ids=x).logits - a).abs().max() < 1e-4


def test_ia3_starts_as_the_base_and_trains_one_number_per_scaled_channel():
    base = tiny_base("tiny-llama", "causal-lm")
    model = inject(copy.deepcopy(base), IA3Config())
    x = torch.randint(5, 200, (1, 6))
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, base(input_ids=x).logits)  # every vector starts at 1
    layout = base.config  # 2 layers: k and v (2 kv heads x 16) and down_proj's input (the FFN width)
    per_layer = 2 * layout.num_key_value_heads * (layout.hidden_size // layout.num_attention_heads) + layout.intermediate_size
    assert count_parameters(model)[0] == layout.num_hidden_layers * per_layer
    with pytest.raises(RuntimeError, match="already merged"):
        model.merge()
        model.merge()


def test_a_vector_with_a_zero_entry_merges_and_unmerges():
    """Merging keeps the change it added, so a channel scaled to 0 comes back on unmerge (dividing could not)."""
    model = inject(tiny_base("tiny-gpt2", "causal-lm"), IA3Config()).eval()
    x = torch.randint(5, 200, (2, 6))
    before = {n: p.clone() for n, p in model.base.named_parameters() if "base_layer" in n}
    with torch.no_grad():
        for layer in model.ia3_layers().values():
            layer.ia3_l.normal_(1.0, 0.2)
            layer.ia3_l[0] = 0.0
        unmerged = model(input_ids=x).logits
        model.merge()
        assert (model(input_ids=x).logits - unmerged).abs().max() < 1e-5
        model.unmerge()
    assert all((p - before[n]).abs().max() < 1e-6 for n, p in model.base.named_parameters() if n in before)
