"""Prefix key/values for transformers 5: shapes from a config, a fresh cache per forward.

P-Tuning v2 / prefix tuning hand every attention layer `prefix_len` extra keys and
values. In transformers 5 they travel as a `DynamicCache` (the forward keyword is
`cache`; `past_key_values` still works until 5.40 with a warning; tuple-of-tuples
caches are gone). Three facts this module turns into checks:

* the prefix needs the model's *key/value* head count (grouped-query models such as
  Llama, Qwen2 and GLM have fewer kv heads than attention heads) and head size;
* a forward pass appends the input's keys/values to the cache *in place*, so a cache
  is good for exactly one forward: build a new one each time;
* the attention mask must cover prefix + tokens: `prefix_len` ones on the left.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache

SUPPORTED = ("bert", "gpt2", "llama", "qwen2", "glm", "chatglm")


@dataclass(frozen=True)
class KVLayout:
    """What one layer's prefix keys/values look like: (batch, num_kv_heads, prefix_len, head_dim)."""

    arch: str
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int

    @property
    def kv_width(self) -> int:
        """Numbers per token per layer for the keys (and again for the values)."""
        return self.num_kv_heads * self.head_dim


def kv_layout(config) -> KVLayout:
    """Read layers, heads, kv heads and head size from a transformers config.

    Covers BERT (`num_attention_heads`, hidden/heads), GPT-2 (`n_layer`, `n_head`,
    `n_embd`), Llama/Qwen2/GLM (`num_key_value_heads`, `head_dim` when given) and
    remote-code ChatGLM (`num_layers`, `multi_query_group_num`, `kv_channels`).
    """
    model_type = getattr(config, "model_type", "") or ""
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(f"{model_type!r} is an encoder-decoder model: this prefix code only feeds one stack of "
                         f"self-attention layers (the encoder would get no prefix). Supported: {', '.join(SUPPORTED)}")
    get = lambda name, default=None: getattr(config, name, default)  # noqa: E731
    if model_type == "chatglm" or get("multi_query_group_num") is not None:
        heads, hidden = get("num_attention_heads"), get("hidden_size")
        kv = get("multi_query_group_num") if get("multi_query_attention", True) else heads
        return KVLayout("chatglm", get("num_layers"), heads, kv, get("kv_channels") or hidden // heads, hidden)
    if model_type == "gpt2":
        return KVLayout("gpt2", get("n_layer"), get("n_head"), get("n_head"), get("n_embd") // get("n_head"),
                        get("n_embd"))
    if model_type in ("bert", "llama", "qwen2", "glm"):
        heads, hidden = get("num_attention_heads"), get("hidden_size")
        kv = get("num_key_value_heads") or heads
        head_dim = get("head_dim") or hidden // heads
        return KVLayout(model_type, get("num_hidden_layers"), heads, kv, head_dim, hidden)
    raise ValueError(f"no prefix layout for model_type {model_type!r}. Supported architectures: "
                     f"{', '.join(SUPPORTED)} (BERT encoders and GPT-2/Llama/Qwen2/GLM/ChatGLM decoders)")


def prefix_cache(key_values, layout: KVLayout | None = None) -> DynamicCache:
    """A NEW DynamicCache holding per-layer (key, value), each (batch, kv_heads, prefix_len, head_dim).

    With `layout`, check the number of layers, kv heads and head size first, so a wrong
    shape fails here with a message instead of deep inside attention.
    """
    key_values = list(key_values)
    if not key_values:
        raise ValueError("prefix_cache needs one (key, value) pair per layer, got none")
    first = key_values[0][0].shape
    for i, (k, v) in enumerate(key_values):
        if k.dim() != 4 or k.shape != v.shape or k.shape != first:
            raise ValueError(f"layer {i}: key {tuple(k.shape)} / value {tuple(v.shape)}; every layer needs key and "
                             f"value of one shape (batch, kv_heads, prefix_len, head_dim) = {tuple(first)}")
    if layout is not None:
        _, heads, _, head_dim = first
        if len(key_values) != layout.num_layers:
            raise ValueError(f"prefix has {len(key_values)} layers, the model has {layout.num_layers}")
        if heads != layout.num_kv_heads:
            hint = (f" This {layout.arch} model uses grouped-query attention: the prefix needs the kv heads "
                    f"({layout.num_kv_heads}), not the attention heads ({layout.num_attention_heads})."
                    if layout.num_kv_heads != layout.num_attention_heads else "")
            raise ValueError(f"prefix has {heads} heads per layer, the model's keys/values have "
                             f"{layout.num_kv_heads} (kv heads vs attention heads: "
                             f"{layout.num_kv_heads} vs {layout.num_attention_heads}).{hint}")
        if head_dim != layout.head_dim:
            raise ValueError(f"prefix head size is {head_dim}, the model's is {layout.head_dim}")
    return DynamicCache([(k, v) for k, v in key_values])


def extend_attention_mask(mask: torch.Tensor, prefix_len: int) -> torch.Tensor:
    """Put `prefix_len` ones on the left of a (batch, L) mask: every token may see the prefix."""
    ones = torch.ones(mask.shape[0], prefix_len, dtype=mask.dtype, device=mask.device)
    return torch.cat([ones, mask], dim=1)


def check_fresh(cache, prefix_len: int) -> None:
    """Raise if `cache` is not a fresh prefix cache (a forward pass already grew it)."""
    if not hasattr(cache, "get_seq_length"):
        raise TypeError(f"past key/values must be a transformers Cache (e.g. ptutor.cache.prefix_cache(...)), not "
                        f"{type(cache).__name__}: tuple-of-tuples caches no longer work in transformers 5")
    length = cache.get_seq_length()
    if length != prefix_len:
        raise ValueError(f"the cache holds {length} positions but the prefix has {prefix_len}: it was used by an "
                         "earlier forward (forwards append to the cache in place). Build a new cache per forward.")


def prefixed_forward(model, cache, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                     prefix_len: int | None = None, **kwargs):
    """Run `model` on `input_ids` after a fresh prefix cache: check the cache, extend the mask.

    `attention_mask` covers the real tokens only, (batch, L); the prefix part is added here.
    """
    prefix_len = cache.get_seq_length() if prefix_len is None else prefix_len
    check_fresh(cache, prefix_len)
    batch, length = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if tuple(attention_mask.shape) != (batch, length):
        extra = (" It looks already extended by the prefix: pass the mask of the real tokens only."
                 if attention_mask.shape[-1] == length + prefix_len else "")
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids {tuple(input_ids.shape)}:"
                         f" they must match.{extra}")
    return model(input_ids=input_ids, attention_mask=extend_attention_mask(attention_mask, prefix_len),
                 cache=cache, **kwargs)


def prefix_cache_bytes(layout: KVLayout, batch: int, prefix_len: int, dtype: torch.dtype = torch.float32) -> int:
    """Bytes the prefix keys + values take: layers x 2 x batch x kv_heads x prefix_len x head_dim x element size."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    return layout.num_layers * 2 * batch * layout.num_kv_heads * prefix_len * layout.head_dim * itemsize
