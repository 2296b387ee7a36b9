"""The past_key_values explorer reports the shapes, counts and bytes that ptutor really produces."""
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import transformers as tf

from ptutor.backbones import cache_dir, load_backbone
from ptutor.cache import kv_layout, prefix_cache, prefix_cache_bytes
from ptutor.methods import inject
from ptutor.methods.prefix import PrefixConfig, PrefixEncoder
from ptutor.measure import count_parameters
from ptutor.book.widgets import (ARCH_PRESETS, DTYPES, ESM_PATH, EXPLORER_ID, SLIDERS, _preset_args, default_report,
                            describe_prefix, dtype_sizes, kv_explorer, kv_explorer_js, prefix_param_count,
                            preset_table, reshape_steps)

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


# ----------------------------------------------------------------------------- the kernel-free explorer
ROOT = Path(__file__).resolve().parents[1]
NODE_RUNNER = """
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const mod = await import(pathToFileURL(process.env.PTUTOR_ESM).href);
const { cases, sizes } = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(cases.map((c) => mod.describePrefix(c, sizes))));
"""


def js_reports(cases: list[dict]) -> list[str]:
    """`describePrefix` of kv_explorer.mjs, run by node, for each describe_prefix keyword set."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("the JavaScript explorer check needs Node.js (`node`) to run kv_explorer.mjs: "
                    "apt-get install -y nodejs")
    proc = subprocess.run([node, "--input-type=module", "-e", NODE_RUNNER],
                          input=json.dumps({"cases": cases, "sizes": dtype_sizes()}), capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PTUTOR_ESM=str(ESM_PATH)))
    assert proc.returncode == 0, f"node failed on kv_explorer.mjs:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def _explorer_cases() -> list[dict]:
    cases = []
    for preset in ARCH_PRESETS.values():
        a = _preset_args(preset)
        cases += [
            dict(a),  # the widget's defaults: batch 8, P 20, no projection, float32
            dict(a, projection=True, encoder_hidden=512),
            dict(a, projection=True, encoder_hidden=0),  # e = 0 means H*d, as PrefixEncoder defaults
            dict(a, batch=64, prefix_len=256, dtype="bfloat16"),  # big: GiB
            dict(a, batch=1, prefix_len=1, dtype="float16"),  # (1,) tuple, small sizes
            dict(a, kv_heads=5),  # heads not a multiple of kv heads: the warning
            dict(a, kv_heads=a["heads"] * 2),  # more kv heads than heads: the warning too
        ]
    cases += [
        dict(layers=1, heads=1, kv_heads=1, head_dim=32, prefix_len=5, batch=1),  # 1,280 B = 1.25 KiB: ties round to even
        dict(layers=1, heads=2, kv_heads=1, head_dim=8, prefix_len=3, batch=1, dtype="float16"),  # < 1 KiB
        dict(layers=2, heads=4, kv_heads=2, head_dim=8, prefix_len=7, batch=3, projection=True, encoder_hidden=24),
    ]
    rng = random.Random(0)  # random settings across the sliders' full ranges
    for _ in range(300):
        c = {name: rng.randrange(lo, hi + 1, step) for name, _, lo, hi, step in SLIDERS}
        c.update(projection=rng.random() < 0.5, dtype=rng.choice(list(DTYPES)))
        cases.append(c)
    return cases


def test_javascript_report_equals_python_describe_prefix():
    """The page's arithmetic (kv_explorer.mjs under node) prints exactly Python's report."""
    cases = _explorer_cases()
    got = js_reports(cases)
    assert len(got) == len(cases)
    bad = [(c, describe_prefix(**c), j) for c, j in zip(cases, got) if describe_prefix(**c) != j]
    assert not bad, "JavaScript and Python reports differ, first case {}:\n--- python\n{}\n--- javascript\n{}".format(*bad[0])
    texts = "\n".join(got)
    for needle in ["grouped-query attention", "heads must be a multiple of kv-heads", "with projection:",
                   "(1.2 KiB)", " GiB)", " B)", "(1,)"]:  # the cases reach every branch
        assert needle in texts, needle


def test_javascript_types_no_preset_numbers():
    """Presets, dtype sizes and slider ranges reach the page from Python, not from the JavaScript source."""
    js = ESM_PATH.read_text(encoding="utf-8")
    for label, preset in ARCH_PRESETS.items():
        assert label not in js and preset.source not in js
    for name, label, *_ in SLIDERS:
        assert label == name or label not in js, f"slider label {label!r} is typed in the JavaScript"
    assert "float32: 4" not in js and '"float32": 4' not in js


def test_js_explorer_saves_everything_in_its_widget_state():
    w = kv_explorer_js(prefix_len=33, projection=True)
    state = w.get_state()
    assert state["_model_module"] == "anywidget" and state["_anywidget_id"] == EXPLORER_ID
    assert state["_esm"] == ESM_PATH.read_text(encoding="utf-8") and "export default" in state["_esm"]
    assert state["presets"] == preset_table() and set(state["presets"]) == set(ARCH_PRESETS)
    assert state["dtype_sizes"] == {"float32": 4, "bfloat16": 2, "float16": 2}
    assert [tuple(s) for s in state["sliders"]] == SLIDERS
    json.dumps(state)  # plain JSON: it goes into the notebook's widget state as is
    assert w.report == default_report(prefix_len=33, projection=True)
    assert "(8, 3, 33, 64)" in w.report and repr(w).startswith("KVExplorer(")


def test_js_explorer_presets_and_controls_from_python():
    w = kv_explorer_js()
    assert w.report == default_report()
    w.preset = "GPT-2 small (gpt2)"  # a preset loads its numbers, as the menu does in the page
    assert (w.layers, w.heads, w.kv_heads, w.head_dim, w.hidden) == (12, 12, 12, 64, 768)
    assert w.report == default_report("GPT-2 small (gpt2)")
    w2 = kv_explorer_js("GPT-2 small (gpt2)", kv_heads=5, dtype="bfloat16")  # explicit controls win over the preset
    assert w2.kv_heads == 5 and w2.report.startswith("!! 12 attention heads")
    with pytest.raises(ValueError, match="unknown preset"):
        kv_explorer_js("nope")
    with pytest.raises(ValueError, match="unknown dtype"):
        kv_explorer_js(dtype="int8")


def test_explorer_javascript_ships_in_the_wheel(tmp_path):
    """Readers install ptutor from git (not editable): kv_explorer.mjs must be package data of the wheel."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ["pyproject.toml", "README.md"]:
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "ptutor", src / "ptutor", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("ptutor-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ptutor/book/kv_explorer.mjs" in names, (
        "the wheel lacks ptutor/book/kv_explorer.mjs: add it as package data in pyproject.toml "
        "([tool.setuptools.package-data] ptutor = [\"*.mjs\"])")


def test_text_chooser_stores_the_text_of_every_combination():
    from ptutor.book.widgets import text_chooser

    w = text_chooser(lambda word, times: word * times, word={"a": "x", "b": "y"}, times=[1, 2, 3])
    assert w.controls == [["word", ["a", "b"]], ["times", ["1", "2", "3"]]]
    assert len(w.texts) == 6 and w.texts["b\t3"] == "yyy"
    assert w.chosen == ["a", "1"] and w.text == "x"
    w.chosen = ["b", "2"]
    assert w.text == "yy"


def test_text_chooser_refuses_what_a_page_cannot_hold():
    from ptutor.book.widgets import MAX_CHOICES, text_chooser

    with pytest.raises(ValueError, match="at most"):
        text_chooser(str, a=range(MAX_CHOICES), b=[1, 2])
    with pytest.raises(ValueError, match="at least one option"):
        text_chooser(str, a=[])
    with pytest.raises(ValueError, match="tab"):
        text_chooser(lambda a: a, a=["x\ty"])
