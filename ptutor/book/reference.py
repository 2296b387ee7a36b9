"""Prefix attention written out by hand, to read next to the library path it must equal.

`bert_prefix_tagger` is BERT token tagging spelled out layer by layer: embeddings, then in
every layer queries from the tokens and keys/values from [prefix; tokens], the attention
bias that lets every token see the whole prefix, and the two residual blocks. No cache, no
transformers attention code: `tests/test_prefix.py` checks that `PrefixTuning` on BERT
gives the same logits to 1e-5, and chapter 3 reads it line by line.
"""
from __future__ import annotations

import math

import torch


def bert_prefix_tagger(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, key_values,
                       positions: torch.Tensor) -> torch.Tensor:
    """Logits (batch, length, labels) of a BertForTokenClassification whose every layer attends over
    [prefix keys; token keys]. `key_values`: per layer (key, value), each (batch, heads, P, head_dim)."""
    bert, (b, length) = model.bert, input_ids.shape
    emb = bert.embeddings
    x = (emb.word_embeddings(input_ids) + emb.position_embeddings(positions)
         + emb.token_type_embeddings(torch.zeros_like(input_ids)))
    x = emb.LayerNorm(x)
    prefix_len = key_values[0][0].shape[2]
    visible = torch.cat([torch.ones(b, prefix_len), attention_mask.float()], dim=1)  # every token sees the prefix
    bias = (1.0 - visible)[:, None, None, :] * torch.finfo(torch.float32).min  # masked keys get -inf
    heads = model.config.num_attention_heads
    d = model.config.hidden_size // heads
    split = lambda t: t.view(b, length, heads, d).transpose(1, 2)  # noqa: E731  (b, L, hidden) -> (b, heads, L, d)
    for layer, (prefix_k, prefix_v) in zip(bert.encoder.layer, key_values):
        sa = layer.attention.self
        q = split(sa.query(x))
        k = torch.cat([prefix_k, split(sa.key(x))], dim=2)  # (b, heads, P + L, d)
        v = torch.cat([prefix_v, split(sa.value(x))], dim=2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1) @ v
        att = att.transpose(1, 2).reshape(b, length, heads * d)
        x = layer.attention.output.LayerNorm(layer.attention.output.dense(att) + x)
        x = layer.output.LayerNorm(layer.output.dense(layer.intermediate(x)) + x)
    return model.classifier(x)
