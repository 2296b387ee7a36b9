"""Architecture facts in one place: key/value layout, task heads, position tables, target modules, weight layout.

Every method asks this module, never a config attribute or a module path directly, so a new model family
is taught to ptutor here once: how many layers, key/value heads and head size its cache
has (prefix methods), where its task head sits (which parameters a method trains with
`train_head`), whether it has a learned position table (how long a soft prompt may be),
which linear layers LoRA/Adapters target by default, how a dense layer stores its weight (GPT-2's
`Conv1D` keeps it transposed), which layers sit inside the transformer blocks (QLoRA quantises those),
and where an encoder-decoder's encoder self-attention layers are (prefix tuning hooks them).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

SUPPORTED = ("bert", "gpt2", "llama", "qwen2", "glm", "chatglm", "bart")
ENCODER_DECODERS = ("bart",)  # the encoder-decoder family ptutor knows (prefix: encoder and decoder self-attention)
ENCODERS = ("bert",)  # encoder-only families: bidirectional attention, no generation, a tagging or classification head


def is_encoder_family(arch: str) -> bool:
    """Is `arch` (a family name of SUPPORTED) an encoder-only model, whose attention looks both ways?"""
    return arch in ENCODERS

# Task heads a classification model puts on top of its backbone (BERT: classifier, Llama: score).
HEAD_NAMES = ("classifier", "score", "qa_outputs")

# Linear layers that low-rank / bottleneck methods wrap by default: the attention query and value
# projections, as in Hu et al. (2021). Patterns match the end of a module's dotted name.
DEFAULT_TARGET_MODULES = {
    "bert": ("query", "value"),
    "gpt2": ("c_attn",),
    "llama": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "glm": ("q_proj", "v_proj"),
    "chatglm": ("query_key_value",),
    "bart": ("q_proj", "v_proj"),  # in BART this also matches the decoder's cross-attention projections
}


@dataclass(frozen=True)
class KVLayout:
    """What one layer's prefix keys/values look like: (batch, num_kv_heads, prefix_len, head_dim).

    For an encoder-decoder, `num_layers` counts both stacks: the first `encoder_layers` are the encoder's
    self-attention layers, the rest the decoder's."""

    arch: str
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    encoder_layers: int = 0

    @property
    def kv_width(self) -> int:
        """Numbers per token per layer for the keys (and again for the values)."""
        return self.num_kv_heads * self.head_dim


def family(config) -> str:
    """The ptutor family name of a transformers config (one of SUPPORTED), or a clear error."""
    model_type = getattr(config, "model_type", "") or ""
    if getattr(config, "is_encoder_decoder", False) and model_type not in ENCODER_DECODERS:
        raise ValueError(f"{model_type!r} is an encoder-decoder ptutor has no layout for; the one it knows is BART, "
                         "whose encoder attention ptutor's prefix hooks are written and tested for (T5's attention "
                         "shares one relative-position bias across layers and would need its own; peft's prefix "
                         f"tuning supports T5). Use a BART model (tiny-bart, bart-base) or one of: {', '.join(SUPPORTED)}")
    if model_type == "chatglm" or getattr(config, "multi_query_group_num", None) is not None:
        return "chatglm"
    if model_type in SUPPORTED:
        return model_type
    raise ValueError(f"no layout for model_type {model_type!r}. Supported architectures: "
                     f"{', '.join(SUPPORTED)} (BERT encoders and GPT-2/Llama/Qwen2/GLM/ChatGLM decoders)")


def kv_layout(config) -> KVLayout:
    """Read layers, heads, kv heads and head size from a transformers config.

    Covers BERT (`num_attention_heads`, hidden/heads), GPT-2 (`n_layer`, `n_head`,
    `n_embd`), Llama/Qwen2/GLM (`num_key_value_heads`, `head_dim` when given) and
    remote-code ChatGLM (`num_layers`, `multi_query_group_num`, `kv_channels`).
    """
    arch = family(config)
    get = lambda name, default=None: getattr(config, name, default)  # noqa: E731
    if arch == "chatglm":
        heads, hidden = get("num_attention_heads"), get("hidden_size")
        kv = get("multi_query_group_num") if get("multi_query_attention", True) else heads
        return KVLayout("chatglm", get("num_layers"), heads, kv, get("kv_channels") or hidden // heads, hidden)
    if arch == "bart":
        heads, hidden = get("encoder_attention_heads"), get("d_model")
        if get("decoder_attention_heads") != heads:
            raise ValueError(f"this BART has {heads} encoder and {get('decoder_attention_heads')} decoder heads: "
                             "one prefix table needs the same key/value shape in both stacks")
        return KVLayout("bart", get("encoder_layers") + get("decoder_layers"), heads, heads, hidden // heads, hidden,
                        encoder_layers=get("encoder_layers"))
    if arch == "gpt2":
        return KVLayout("gpt2", get("n_layer"), get("n_head"), get("n_head"), get("n_embd") // get("n_head"),
                        get("n_embd"))
    heads, hidden = get("num_attention_heads"), get("hidden_size")
    kv = get("num_key_value_heads") or heads
    head_dim = get("head_dim") or hidden // heads
    return KVLayout(arch, get("num_hidden_layers"), heads, kv, head_dim, hidden)


def is_encoder_decoder(model: nn.Module) -> bool:
    """True for an encoder-decoder (BART), also when wrapped by a ptutor method (which keeps it as `.base`)."""
    return bool(getattr(getattr(model, "base", model).config, "is_encoder_decoder", False))


def can_generate(model: nn.Module) -> bool:
    """Does this model have a language-modelling head that `generate` can drive?"""
    can = getattr(model, "can_generate", None)
    return bool(can and can())


def is_causal_lm(model: nn.Module) -> bool:
    """True for a decoder that can generate text (GPT-2, Llama, ...); False for encoders and heads."""
    return can_generate(model) and not is_encoder_decoder(model)


def is_seq2seq_lm(model: nn.Module) -> bool:
    """True for an encoder-decoder that generates text (BART): the input goes to the encoder, the output is
    the decoder's."""
    return can_generate(model) and is_encoder_decoder(model)


def task_head_name(model: nn.Module) -> str | None:
    """Attribute name of the task head a classification model puts on its backbone (None for a bare LM)."""
    for name in HEAD_NAMES:
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    return None


def task_head(model: nn.Module) -> nn.Module | None:
    """The task head module (BERT's token classifier, Llama's `score`), or None."""
    name = task_head_name(model)
    return getattr(model, name) if name else None


def position_table_size(model: nn.Module) -> int | None:
    """Rows of a learned absolute position table (BERT, GPT-2); None for rotary models (Llama, Qwen2)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) and (name.endswith("position_embeddings") or name.endswith("wpe")):
            return module.num_embeddings
    return None


def default_target_modules(config) -> tuple[str, ...]:
    """Module-name patterns that LoRA/Adapters wrap when the user names none."""
    return DEFAULT_TARGET_MODULES[family(config)]


# (IA)³ (Liu et al., 2022): the layers whose outputs are the keys and values (scaled at their output), and the
# feed-forward output layer (scaled at its input: the block's inner activations). GPT-2 and ChatGLM fuse q, k and v
# in one layer, so there the queries are scaled too (as in peft). BART's k/v patterns take cross-attention's too.
IA3_MODULES = {
    "bert": (("key", "value"), (r"(.*\.)?layer\.\d+\.output\.dense",)),
    "gpt2": (("c_attn",), ("mlp.c_proj",)),
    "llama": (("k_proj", "v_proj"), ("down_proj",)),
    "qwen2": (("k_proj", "v_proj"), ("down_proj",)),
    "glm": (("k_proj", "v_proj"), ("down_proj",)),
    "chatglm": (("query_key_value",), ("dense_4h_to_h",)),
    "bart": (("k_proj", "v_proj"), ("fc2",)),
}


def ia3_modules(config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(key/value patterns, feed-forward output patterns) that (IA)³ scales in this family."""
    return IA3_MODULES[family(config)]


# Output projections that bottleneck adapters follow (Houlsby et al., 2019): the attention block's output
# projection and the feed-forward block's output projection of every layer. BERT names both `...output.dense`,
# so its feed-forward pattern is a regular expression that leaves out `attention.output.dense`.
ADAPTER_MODULES = {
    "bert": {"attn": "attention.output.dense", "ffn": r"(.*\.)?layer\.\d+\.output\.dense"},
    "gpt2": {"attn": "attn.c_proj", "ffn": "mlp.c_proj"},
    "llama": {"attn": "o_proj", "ffn": "down_proj"},
    "qwen2": {"attn": "o_proj", "ffn": "down_proj"},
    "glm": {"attn": "o_proj", "ffn": "down_proj"},
    "chatglm": {"attn": "self_attention.dense", "ffn": "mlp.dense_4h_to_h"},
    "bart": {"attn": "self_attn.out_proj", "ffn": "fc2"},
}
ADAPTER_PLACEMENTS = {"houlsby": ("attn", "ffn"), "pfeiffer": ("ffn",)}


def adapter_modules(config, placement: str = "houlsby") -> tuple[str, ...]:
    """Module-name patterns an adapter follows: after attention and feed-forward ("houlsby") or after the
    feed-forward only ("pfeiffer", Pfeiffer et al., 2021)."""
    if placement not in ADAPTER_PLACEMENTS:
        raise ValueError(f"unknown adapter placement {placement!r}; choose one of {', '.join(ADAPTER_PLACEMENTS)}")
    arch = family(config)  # a clear error for an architecture ptutor has no layout for
    if arch not in ADAPTER_MODULES:
        raise ValueError(f"no adapter positions for {arch!r}; adapters know {', '.join(ADAPTER_MODULES)}. "
                         "Name the output projections yourself with target_modules=[...]")
    return tuple(ADAPTER_MODULES[arch][block] for block in ADAPTER_PLACEMENTS[placement])


# Dense layers as the families store them: nn.Linear keeps W as (out, in); GPT-2's Conv1D keeps it as (in, out).
LINEAR_KINDS = (nn.Linear, Conv1D)


def linear_features(layer: nn.Module) -> tuple[int, int]:
    """(in_features, out_features) of a dense layer: an nn.Linear, a GPT-2 Conv1D, or a layer that names both
    (ptutor's 4-bit NF4Linear)."""
    if isinstance(layer, Conv1D):
        return tuple(layer.weight.shape)  # Conv1D keeps W transposed: (in, out)
    if isinstance(getattr(layer, "in_features", None), int) and isinstance(getattr(layer, "out_features", None), int):
        return layer.in_features, layer.out_features
    raise TypeError(f"{type(layer).__name__} is not a dense layer ptutor knows (nn.Linear, GPT-2 Conv1D, NF4Linear)")


def weight_out_in(layer: nn.Module) -> torch.Tensor:
    """The layer's weight as (out, in), the way the papers write W, whatever its own layout: a view of the stored
    tensor (GPT-2's Conv1D: its transpose), so an in-place change of the view changes the layer."""
    if isinstance(layer, Conv1D):
        return layer.weight.T
    if isinstance(layer, nn.Linear):
        return layer.weight
    raise TypeError(f"{type(layer).__name__} has no plain weight matrix (an nn.Linear or GPT-2 Conv1D has one)")


# The linear layers inside the transformer blocks (attention and feed-forward), whatever the family calls its list
# of blocks (BERT: encoder.layer, GPT-2: h, Llama/GLM/BART: layers); heads and embeddings stay outside.
BLOCK_LINEARS = r".*\.(layer|layers|h|blocks)\.\d+\..*"


def block_linear_patterns(config) -> tuple[str, ...]:
    """Module-name patterns of the linear layers inside the blocks (what QLoRA stores in 4 bits)."""
    family(config)  # a clear error for an architecture ptutor has no layout for
    return (BLOCK_LINEARS,)


def encoder_self_attentions(model: nn.Module) -> list[nn.Module]:
    """The self-attention module of every encoder layer of an encoder-decoder (BART: `layers[i].self_attn`), in
    order: where an encoder prefix goes."""
    if not is_encoder_decoder(model):
        raise ValueError(f"{type(model).__name__} is not an encoder-decoder: it has no separate encoder")
    arch = family(model.config)
    if arch != "bart":
        raise ValueError(f"no encoder layout for {arch!r}; ptutor knows BART's")
    return [layer.self_attn for layer in model.get_encoder().layers]
