"""ptutor.cache: layouts read from configs match real caches; bad prefixes fail with clear errors."""
import pytest
import torch
import transformers as tf

from ptutor.backbones import load_backbone
from ptutor.cache import (KVLayout, check_fresh, extend_attention_mask, kv_layout, prefix_cache, prefix_cache_bytes,
                          prefixed_forward)


def _chatglm_config(**kw):
    """A stand-in for THUDM's remote-code ChatGLMConfig (its attribute names, no code download)."""
    cfg = tf.PretrainedConfig(num_layers=28, hidden_size=4096, num_attention_heads=32, multi_query_attention=True,
                              multi_query_group_num=2, kv_channels=128, **kw)
    cfg.model_type = "chatglm"
    return cfg


@pytest.mark.parametrize("config, expected", [
    (tf.BertConfig(hidden_size=384, num_attention_heads=12, num_hidden_layers=6), ("bert", 6, 12, 12, 32, 384)),
    (tf.GPT2Config(n_embd=768, n_layer=12, n_head=12), ("gpt2", 12, 12, 12, 64, 768)),
    (tf.LlamaConfig(hidden_size=576, num_attention_heads=9, num_key_value_heads=3, num_hidden_layers=30),
     ("llama", 30, 9, 3, 64, 576)),
    (tf.LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=32, num_hidden_layers=2),
     ("llama", 2, 4, 2, 32, 64)),  # explicit head_dim != hidden / heads (peft #2881)
    (tf.Qwen2Config(hidden_size=1536, num_attention_heads=12, num_key_value_heads=2, num_hidden_layers=28),
     ("qwen2", 28, 12, 2, 128, 1536)),
    (tf.GlmConfig(hidden_size=2048, num_attention_heads=16, num_key_value_heads=4, head_dim=128, num_hidden_layers=28),
     ("glm", 28, 16, 4, 128, 2048)),
    (_chatglm_config(), ("chatglm", 28, 32, 2, 128, 4096)),
])
def test_kv_layout_reads_every_supported_config(config, expected):
    assert kv_layout(config) == KVLayout(*expected)


def test_chatglm_without_multi_query_uses_all_heads():
    cfg = _chatglm_config()
    cfg.multi_query_attention = False
    assert kv_layout(cfg).num_kv_heads == 32


@pytest.mark.parametrize("preset", ["tiny-gpt2", "tiny-llama", "tiny-glm", "tiny-qwen2"])
def test_layout_matches_the_cache_a_real_forward_builds(preset):
    model, _ = load_backbone(preset, "causal-lm", with_tokenizer=False)
    ids = torch.randint(5, 500, (2, 7))
    cache = model(input_ids=ids, use_cache=True).cache
    lay = kv_layout(model.config)
    assert len(cache.layers) == lay.num_layers
    for layer in cache.layers:
        assert tuple(layer.keys.shape) == (2, lay.num_kv_heads, 7, lay.head_dim)
        assert tuple(layer.values.shape) == (2, lay.num_kv_heads, 7, lay.head_dim)


def test_layout_with_explicit_head_dim_matches_a_real_cache():
    cfg = tf.LlamaConfig(vocab_size=100, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                         num_hidden_layers=2, intermediate_size=64)
    model = tf.LlamaForCausalLM(cfg)
    cache = model(input_ids=torch.randint(0, 100, (1, 3)), use_cache=True).cache
    lay = kv_layout(cfg)
    assert tuple(cache.layers[0].keys.shape) == (1, lay.num_kv_heads, 3, lay.head_dim) == (1, 2, 3, 32)


def test_bert_layout_matches_the_cache_after_a_prefixed_forward():
    model, _ = load_backbone("tiny-bert", "token-classification", num_labels=3, with_tokenizer=False)
    lay = kv_layout(model.config)
    kv = [(torch.randn(2, lay.num_kv_heads, 3, lay.head_dim),) * 2 for _ in range(lay.num_layers)]
    cache = prefix_cache(kv, lay)
    prefixed_forward(model, cache, torch.randint(5, 500, (2, 4)))
    assert tuple(cache.layers[0].keys.shape) == (2, lay.num_kv_heads, 3 + 4, lay.head_dim)


def test_unsupported_architectures_are_named():
    with pytest.raises(ValueError, match="encoder-decoder"):
        kv_layout(tf.T5Config())
    with pytest.raises(ValueError, match="Supported architectures: bert, gpt2"):
        kv_layout(tf.OPTConfig())


def test_prefix_cache_is_new_each_time_and_holds_the_tensors():
    lay = KVLayout("llama", 2, 4, 2, 16, 64)
    kv = [(torch.randn(1, 2, 5, 16), torch.randn(1, 2, 5, 16)) for _ in range(2)]
    a, b = prefix_cache(kv, lay), prefix_cache(kv, lay)
    assert a is not b and a.get_seq_length() == 5
    assert torch.equal(a.layers[1].values, kv[1][1])


def test_wrong_head_count_says_kv_heads_vs_attention_heads():
    lay = KVLayout("llama", 2, 4, 2, 16, 64)
    kv = [(torch.randn(1, 4, 5, 16), torch.randn(1, 4, 5, 16)) for _ in range(2)]  # attention heads, not kv heads
    with pytest.raises(ValueError, match="kv heads vs attention heads") as err:
        prefix_cache(kv, lay)
    assert "grouped-query" in str(err.value)


def test_other_shape_errors():
    lay = KVLayout("gpt2", 2, 4, 4, 16, 64)
    ok = (torch.randn(1, 4, 5, 16), torch.randn(1, 4, 5, 16))
    with pytest.raises(ValueError, match="3 layers, the model has 2"):
        prefix_cache([ok] * 3, lay)
    with pytest.raises(ValueError, match="head size is 8"):
        prefix_cache([(torch.randn(1, 4, 5, 8),) * 2] * 2, lay)
    with pytest.raises(ValueError, match="one shape"):
        prefix_cache([ok, (torch.randn(1, 4, 6, 16),) * 2], lay)
    with pytest.raises(ValueError, match="none"):
        prefix_cache([], lay)


def test_a_reused_cache_is_caught():
    model, _ = load_backbone("tiny-gpt2", "causal-lm", with_tokenizer=False)
    lay = kv_layout(model.config)
    cache = prefix_cache([(torch.randn(1, 4, 3, 16),) * 2 for _ in range(2)], lay)
    ids = torch.randint(5, 500, (1, 4))
    prefixed_forward(model, cache, ids)
    assert cache.get_seq_length() == 7  # the forward grew it in place
    with pytest.raises(ValueError, match="Build a new cache per forward"):
        prefixed_forward(model, cache, ids, prefix_len=3)
    with pytest.raises(TypeError, match="tuple-of-tuples"):
        check_fresh(((torch.zeros(1),),), 3)


def test_attention_mask_must_cover_the_real_tokens_only():
    model, _ = load_backbone("tiny-gpt2", "causal-lm", with_tokenizer=False)
    cache = prefix_cache([(torch.randn(1, 4, 3, 16),) * 2 for _ in range(2)], kv_layout(model.config))
    ids = torch.randint(5, 500, (1, 4))
    with pytest.raises(ValueError, match="already extended"):
        prefixed_forward(model, cache, ids, torch.ones(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="must match"):
        prefixed_forward(model, cache, ids, torch.ones(1, 5, dtype=torch.long))


def test_extend_attention_mask():
    m = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert extend_attention_mask(m, 2).tolist() == [[1, 1, 0, 1, 1], [1, 1, 1, 1, 1]]


def test_prefix_cache_bytes_counts_the_real_tensors():
    lay = KVLayout("llama", 30, 9, 3, 64, 576)  # SmolLM2-135M
    kv = [(torch.zeros(2, 3, 16, 64, dtype=torch.float16),) * 2 for _ in range(30)]
    real = sum(k.nbytes + v.nbytes for k, v in kv)
    assert prefix_cache_bytes(lay, 2, 16, torch.float16) == real == 737_280  # 30 layers x (k, v) x 2 rows x 3 heads x 16 x 64 x 2 bytes
