"""The past_key_values explorer reports the shapes, counts and bytes that ptutor really produces."""
import json

import pytest
import torch
import transformers as tf

from ptutor.backbones import cache_dir, load_backbone
from ptutor.cache import kv_layout, prefix_cache, prefix_cache_bytes
from ptutor.methods import inject
from ptutor.methods.prefix import PrefixConfig, PrefixEncoder
from ptutor.measure import count_parameters
from ptutor.widgets import ARCH_PRESETS, describe_prefix, kv_explorer, prefix_param_count, reshape_steps

TINY = ["tiny-gpt2", "tiny-llama", "tiny-glm", "tiny-bert"]


def _real_shapes(layout, batch, prefix_len, projection, encoder_hidden):
    """Run PrefixEncoder and prefix_cache, recording the shape after each step."""
    torch.manual_seed(0)
    enc = PrefixEncoder(layout, prefix_len, projection, encoder_hidden)
    ids = torch.arange(prefix_len)
    shapes = [tuple(ids.shape)]
    ids = ids.unsqueeze(0).expand(batch, -1)
    shapes.append(tuple(ids.shape))
    x = enc.embedding(ids)
    shapes.append(tuple(x.shape))
    if projection:
        x = enc.transform[1](enc.transform[0](x))
        shapes.append(tuple(x.shape))
        x = enc.transform[2](x)
        shapes.append(tuple(x.shape))
    assert torch.equal(x, enc(ids))
    L, H, d = layout.num_layers, layout.num_kv_heads, layout.head_dim
    viewed = x.view(batch, prefix_len, 2 * L, H, d)
    shapes += [tuple(viewed.shape), tuple(viewed.permute(2, 0, 3, 1, 4).shape)]
    pairs = enc.key_values(x)
    assert len(pairs) == L and all(k.shape == v.shape == pairs[0][0].shape for k, v in pairs)
    shapes.append(tuple(pairs[0][0].shape))
    cache = prefix_cache(pairs, layout)
    assert len(cache.layers) == L
    shapes.append(tuple(cache.layers[0].keys.shape))
    return shapes, enc, cache


@pytest.mark.parametrize("preset", TINY)
@pytest.mark.parametrize("projection", [False, True])
def test_reported_shapes_equal_the_shapes_of_real_prefix_tensors(preset, projection):
    model, _ = load_backbone(preset, "causal-lm" if preset != "tiny-bert" else "base", with_tokenizer=False)
    layout = kv_layout(model.config)
    reported = [shape for _, shape in reshape_steps(layout, 3, 5, projection=projection, encoder_hidden=24)]
    real, _, _ = _real_shapes(layout, 3, 5, projection, 24)
    assert reported == real


@pytest.mark.parametrize("projection,encoder_hidden", [(False, 0), (True, 24), (True, 0)])
def test_parameter_count_equals_trainable_parameters_of_the_prefix_method(projection, encoder_hidden):
    model, _ = load_backbone("tiny-llama", "causal-lm", with_tokenizer=False)
    layout = kv_layout(model.config)
    method = inject(model, PrefixConfig(num_virtual_tokens=7, prefix_projection=projection,
                                        encoder_hidden_size=encoder_hidden))
    trainable, _ = count_parameters(method)
    assert prefix_param_count(layout, 7, projection=projection, encoder_hidden=encoder_hidden) == trainable


def test_cache_bytes_in_report_equal_bytes_of_the_real_cache():
    model, _ = load_backbone("tiny-glm", "causal-lm", with_tokenizer=False)
    layout = kv_layout(model.config)
    _, _, cache = _real_shapes(layout, 4, 6, False, 0)
    real = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert prefix_cache_bytes(layout, 4, 6, torch.float32) == real
    text = describe_prefix(batch=4, layers=layout.num_layers, heads=layout.num_attention_heads,
                           kv_heads=layout.num_kv_heads, head_dim=layout.head_dim, prefix_len=6)
    assert f"{real:,} bytes" in text


def test_presets_match_the_configs_they_cite():
    assert kv_layout(tf.GPT2Config()) == ARCH_PRESETS["GPT-2 small (gpt2)"].layout
    glm = tf.GlmConfig(num_hidden_layers=28, hidden_size=2048, num_attention_heads=16, num_key_value_heads=4,
                       head_dim=128)
    assert kv_layout(glm) == ARCH_PRESETS["GLM: GLM-Edge-1.5B-chat (glm-edge-1.5b)"].layout
    for name, label in [("minilm", "BERT: all-MiniLM-L6-v2 (minilm)"),
                        ("smollm2-135m", "Llama / GQA: SmolLM2-135M (smollm2-135m)")]:
        path = cache_dir() / name / "config.json"
        if not path.is_file():
            pytest.skip(f"{name} is not prepared (python -m ptutor.backbones prepare)")
        config = tf.AutoConfig.for_model(**json.loads(path.read_text()))
        assert kv_layout(config) == ARCH_PRESETS[label].layout


def test_widget_builds_and_its_report_follows_the_sliders():
    box = kv_explorer()
    c = box.controls
    assert "(8, 3, 20, 64)" in box.report.value  # SmolLM2 defaults: 3 kv heads, head dim 64
    c["prefix_len"].value = 33
    assert "(8, 3, 33, 64)" in box.report.value
    c["preset"].value = "GPT-2 small (gpt2)"
    assert c["kv_heads"].value == 12 and "(8, 12, 33, 64)" in box.report.value
    c["projection"].value = True
    assert "with projection" in box.report.value
    c["kv_heads"].value = 5  # 12 heads cannot be split over 5 kv heads: say so
    assert "!!" in box.report.value
