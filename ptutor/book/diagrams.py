"""Where each method's trained parameters enter a BERT-style model, drawn from the method itself.

`trained_parts(model)` reads a wrapped model's owned parameters (the method contract decides
them, see ptutor.methods.base) and sorts them into the parts of the picture: virtual tokens
at the input, a prompt encoder, per-layer key/value prefixes, weights inside each layer, the
embeddings and the task head. `draw_method` draws that, so the diagram cannot disagree with
the code: a new method gets its picture by registering.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

TRAINED, FROZEN, EDGE = "#f28e2b", "#d9d9d9", "#555555"
# Smallest text in points: 7 pt at the inline dpi (100) is 9.7 px, readable where the book shows a diagram unscaled
# (three panels of 2.3 inches fit its text column).
TEXT_PT = 7
# the sub-blocks of one transformer layer, bottom to top, and the name pieces that identify them
LAYER_PARTS = {"q": ("query", "q_proj", "c_attn"), "k": ("key", "k_proj"), "v": ("value", "v_proj"),
               "out": ("attention.output", "o_proj", "attn.c_proj"),
               "ffn": ("intermediate", "output.dense", "mlp", "up_proj", "down_proj", "gate_proj", "c_fc")}


@dataclass
class TrainedParts:
    """What a method trains, by part of the model (the input of `draw_method`)."""

    method: str
    virtual_tokens: bool = False  # a soft prompt in front of the input embeddings
    prompt_encoder: bool = False  # a network that computes that prompt (P-Tuning v1)
    prefix: bool = False  # key/value prefixes in every layer (prefix tuning, P-Tuning v2)
    embeddings: bool = False
    layers: dict[int, set[str]] = field(default_factory=dict)  # layer -> {"q", "k", "v", "out", "ffn"}
    injected: dict[int, set[str]] = field(default_factory=dict)  # new modules inside a layer (LoRA), by sub-block
    head: bool = False
    num_layers: int = 0


def _layer_part(rest: str) -> str | None:
    for part, keys in LAYER_PARTS.items():
        if any(k in rest for k in keys):
            return part
    return None


def trained_parts(model) -> TrainedParts:
    """Sort a wrapped model's owned parameters into the parts of the diagram."""
    from ..arch import kv_layout, task_head_name

    parts = TrainedParts(model.config.method, num_layers=kv_layout(model.base.config).num_layers)
    head = task_head_name(model.base)
    for name in model.owned_parameters():
        if not name.startswith("base."):  # the method's own modules
            if name.startswith("prompt_encoder."):
                parts.prompt_encoder = parts.virtual_tokens = True
            elif name.startswith("prefix_encoder."):
                parts.prefix = True
            else:
                parts.virtual_tokens = True
            continue
        name = name[len("base."):]
        if head and name.startswith(head + "."):
            parts.head = True
            continue
        m = re.search(r"\.(?:layer|layers|h)\.(\d+)\.(.*)", name)
        if m:
            layer, rest = int(m.group(1)), m.group(2)
            part = _layer_part(rest)
            if part is None:
                part = "ffn"  # layer norms and the like: drawn with the feed-forward block
            injected = model.is_injected("base." + name)  # a layer the method put in, not a base weight
            (parts.injected if injected else parts.layers).setdefault(layer, set()).add(part)
        elif "embed" in name or name.startswith(("wte", "wpe")) or ".wte" in name or ".wpe" in name:
            parts.embeddings = True
        else:
            parts.layers.setdefault(-1, set()).add("ffn")  # a final norm: drawn with the top layer
    if -1 in parts.layers:
        parts.layers.setdefault(parts.num_layers - 1, set()).update(parts.layers.pop(-1))
    return parts


def draw_method(parts: TrainedParts, ax=None, *, title: str | None = None):
    """Draw one model: tokens at the bottom, embeddings, each layer (attention q/k/v/out and the
    feed-forward block), the head on top. Trained parts in orange, frozen ones in grey."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(2.6, 3.6))
    ax.set_xlim(0, 10)
    rows = parts.num_layers + 3
    ax.set_ylim(0, rows + 0.2)
    ax.axis("off")

    def box(x, y, w, h, trained, label="", size=TEXT_PT):
        ax.add_patch(Rectangle((x, y), w, h, facecolor=TRAINED if trained else FROZEN, edgecolor=EDGE, lw=0.6))
        if label:
            ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=size)

    # virtual tokens join the input's vectors after the embedding layer (left of it)
    if parts.virtual_tokens:
        box(0.3, 1.0, 2.4, 0.6, True, "P virtual")
        if parts.prompt_encoder:
            box(0.3, 0.15, 2.4, 0.6, True, "encoder")
            ax.annotate("", (1.5, 1.0), (1.5, 0.75), arrowprops=dict(arrowstyle="->", lw=0.6))
    box(3.0, 0.15, 6.7, 0.6, False, "input tokens")
    box(3.0, 1.0, 6.7, 0.6, parts.embeddings, "embeddings")
    for layer in range(parts.num_layers):
        y = 1.85 + layer
        trained = parts.layers.get(layer, set())
        injected = parts.injected.get(layer, set())
        if parts.prefix:
            box(0.3, y, 2.4, 0.7, True, "K,V prefix")
        for k, (part, label) in enumerate([("q", "q"), ("k", "k"), ("v", "v"), ("out", "out")]):
            box(3.0 + k * 1.0, y, 0.95, 0.7, part in trained, label)
            if part in injected:
                box(3.15 + k * 1.0, y + 0.72, 0.65, 0.22, True, "BA")
        box(7.1, y, 2.6, 0.7, "ffn" in trained, "feed-\nforward")
        if "ffn" in injected:
            box(7.35, y + 0.72, 2.1, 0.22, True, "adapter")
        ax.text(9.85, y + 0.35, f"{layer + 1}", fontsize=TEXT_PT, va="center")
    box(3.0, 1.85 + parts.num_layers + 0.1, 6.7, 0.6, parts.head, "task head")
    ax.set_title(title or parts.method, fontsize=TEXT_PT + 2)
    return ax


def draw_methods(models: dict, *, ncols: int | None = None):
    """One panel per wrapped model ({title: model}); returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    ncols = ncols or len(models)
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 3.4 * nrows), squeeze=False)
    for ax, (title, model) in zip(axes.flat, models.items()):
        draw_method(trained_parts(model), ax, title=title)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    fig.text(0.5, 0.01, "orange: trained   grey: frozen", ha="center", fontsize=TEXT_PT + 1)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def draw_registered(methods: dict[str, str], preset: str = "tiny-bert"):
    """Draw registered methods ({title: method name}) as injected into a tiny random model of `preset`
    (2 layers, so the picture stays small; the real models repeat the middle rows)."""
    from ..arch import is_encoder_family
    from ..backbones import get_preset, load_backbone
    from ..methods import METHODS, inject

    task = "token-classification" if is_encoder_family(get_preset(preset).arch) else "causal-lm"
    models = {}
    for title, name in methods.items():
        base, _ = load_backbone(preset, task, num_labels=9 if task != "causal-lm" else None, with_tokenizer=False)
        models[title] = inject(base, METHODS[name].config_class())
    return draw_methods(models)
