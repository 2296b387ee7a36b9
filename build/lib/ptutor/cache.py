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

import torch
from transformers import DynamicCache

from .arch import SUPPORTED, KVLayout, kv_layout  # noqa: F401  (re-exported: the layout lives in arch)


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


def extend_4d_mask(mask: torch.Tensor | None, prefix_len: int) -> torch.Tensor | None:
    """Give a prepared (batch, 1, queries, keys) attention mask `prefix_len` visible key columns on the left.

    transformers builds this form inside the model (True = may attend for boolean masks, 0 = may attend for
    additive ones); None means "every key is visible" and stays None."""
    if mask is None:
        return None
    if mask.dim() != 4:
        raise ValueError(f"expected a prepared (batch, 1, queries, keys) mask, got shape {tuple(mask.shape)}: this "
                         "attention implementation is not supported with an encoder prefix; use 'sdpa' or 'eager'")
    visible = True if mask.dtype == torch.bool else 0.0
    cols = torch.full((*mask.shape[:3], prefix_len), visible, dtype=mask.dtype, device=mask.device)
    return torch.cat([cols, mask], dim=-1)


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
