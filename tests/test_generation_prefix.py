"""What chapter 4 relies on: prefix tuning trains and generates on causal LMs, batched like one by one."""
import pytest
import torch

from ptutor.backbones import load_backbone
from ptutor.cache import kv_layout, prefix_cache_bytes
from ptutor.data import batches
from ptutor.methods import inject
from ptutor.methods.prefix import PrefixConfig
from ptutor.textgen import PROMPT, encode_d2t, generate_texts
from ptutor.train import TrainConfig, fit

CAUSAL = ["tiny-gpt2", "tiny-llama", "tiny-glm"]


def _examples(n=48):
    """A toy data-to-text set in the layout of data/d2t (record -> sentence)."""
    names = ["Ada", "Bo", "Cy", "Dee", "Eve", "Fox", "Gil", "Hal"]
    cities = ["Paris", "Oslo", "Rome", "Lima", "Kyiv", "Doha"]
    rows = []
    for i in range(n):
        name, city = names[i % len(names)], cities[(i * 5) % len(cities)]
        rows.append({"fields": {"name": name, "city": city}, "record": f"name: {name} | city: {city}",
                     "text": f"{name} lives in {city}."})
    return rows


def _prefix(preset, p=4, seed=0, **kw):
    """A prefix of random keys/values: far from anything the model computes, so it visibly changes outputs."""
    model, tok = load_backbone(preset, "causal-lm")
    torch.manual_seed(seed)
    return inject(model, PrefixConfig(num_virtual_tokens=p, **{"init": "random", **kw})), tok


def test_d2t_prefix_training_on_tiny_llama_lowers_the_loss():
    # A random tiny model sits near the uniform loss ln(49152) = 10.8; its small random weights cap how far
    # a prefix alone can move the logits, so we ask for a clear, steady fall rather than a low loss.
    method, tok = _prefix("tiny-llama", p=8)
    rows = encode_d2t(_examples(16), tok, max_length=24)
    hist = fit(method, batches(rows, 8, pad_id=tok.pad_token_id, shuffle=True),
               TrainConfig(lr=1e-1, steps=15, progress=False), device=torch.device("cpu"))
    first, last = sum(hist.losses[:3]) / 3, sum(hist.losses[-3:]) / 3
    assert last < first - 0.15, hist.losses


@pytest.mark.parametrize("preset", CAUSAL)
def test_batched_left_padded_generation_equals_one_by_one(preset):
    method, tok = _prefix(preset)
    prompts = [PROMPT.format(record=e["record"]) for e in _examples(4)]
    prompts[1] = "A much longer prompt so that the batch needs left padding: " + prompts[1]
    batched = generate_texts(method, tok, prompts, max_new_tokens=6, batch_size=4, stop=None)
    single = [generate_texts(method, tok, [p], max_new_tokens=6, batch_size=1, stop=None)[0] for p in prompts]
    assert batched == single


def _greedy_by_hand(method, ids, steps):
    """Full forward over the whole sequence each step (a fresh prefix, no generation cache at all)."""
    with torch.no_grad():
        for _ in range(steps):
            nxt = method(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
    return ids


@pytest.mark.parametrize("preset", CAUSAL)
def test_generate_continues_the_prefix_like_a_manual_greedy_loop(preset):
    method, tok = _prefix(preset)
    ids = tok(["Record: name: Ada"], return_tensors="pt")["input_ids"]
    kw = dict(max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    out = method.generate(input_ids=ids, **kw)
    assert torch.equal(out, _greedy_by_hand(method, ids, 5))
    assert not torch.equal(out, method.base.generate(input_ids=ids, **kw))  # the prefix does matter here


@pytest.mark.parametrize("preset", ["tiny-gpt2", "tiny-llama"])
def test_generate_without_cache_equals_generate_with_cache(preset):
    # was a bug (transformers re-fed the sequence while the prefix cache grew in place); fixed in 5026741
    method, tok = _prefix(preset)
    ids = tok(["Record: name: Ada"], return_tensors="pt")["input_ids"]
    kw = dict(max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert torch.equal(method.generate(input_ids=ids, use_cache=False, **kw), method.generate(input_ids=ids, **kw))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_prefix_cache_bytes_formula_equals_bytes_of_the_real_cache(dtype):
    method, _ = _prefix("tiny-glm", p=6)
    method.to(dtype)
    cache = method.new_cache(3)
    real = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert real == prefix_cache_bytes(kv_layout(method.base.config), 3, 6, dtype)


def test_removing_the_prefix_restores_the_base_model_exactly():
    model, tok = load_backbone("tiny-llama", "causal-lm")
    ids = tok(["The capital of France is"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = model(input_ids=ids).logits.clone()
    method = inject(model, PrefixConfig(num_virtual_tokens=4))
    rows = encode_d2t(_examples(16), tok, max_length=32)
    fit(method, batches(rows, 8, pad_id=tok.pad_token_id, shuffle=True),
        TrainConfig(lr=1e-2, steps=3, progress=False), device=torch.device("cpu"))
    with torch.no_grad():
        with_prefix = method(input_ids=ids).logits
        after = method.base(input_ids=ids).logits
    assert not torch.allclose(with_prefix, before)  # the prefix changes the output ...
    assert torch.equal(after, before)  # ... and the bare base is bit-identical to before training


def test_gradient_checkpointing_is_refused_with_a_message():
    model, _ = load_backbone("tiny-glm", "causal-lm", with_tokenizer=False)
    model.gradient_checkpointing_enable()
    with pytest.raises(ValueError, match="gradient checkpointing"):
        inject(model, PrefixConfig(num_virtual_tokens=4))
