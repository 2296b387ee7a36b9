"""Prefix tuning / P-Tuning v2: trained keys and values in front of every attention layer.

Prompt tuning puts trained vectors in front of the *input*; prefix tuning
{cite}`li2021prefix` and P-Tuning v2 {cite}`liu2022ptuningv2` give *every* layer its
own `num_virtual_tokens` keys and values, so the prompt acts at every depth. The
backbone stays frozen; only the prefix (and, for tagging, the task head) trains.

The prefix enters through the key/value cache (ptutor.cache): a fresh cache per
forward, an attention mask extended by the prefix length. Parameter names and layout
match peft's PrefixEncoder, so trained weights copy across both ways.

Several prefixes on one frozen base (`num_prefixes` > 1, one per task): each row of a batch
picks its own with a `prefix_ids` batch key (one integer per row, kept by `collate`), so a
single forward serves rows of different tasks, the same as running each task alone.

On an encoder-decoder (BART) the prefix is split as in Li & Liang's encoder-decoder setting: the first
`encoder_layers` entries prefix the encoder's self-attention (handed to each encoder layer by a forward
pre-hook, with the prepared attention mask widened), the rest the decoder's self-attention (through the
decoder's cache); cross-attention keeps the encoder's outputs only.

A prefix passed as a cache does not mix with transformers' gradient checkpointing
(peft #869): checkpointing recomputes each layer's forward in the backward pass, but the
cache is mutated in place by the first forward (the layer's own keys/values are appended
to the prefix), so the recomputed layer sees a different, longer cache; transformers 5's
decoder layers drop the cache outright when checkpointing is on. (ChatGLM's own code
checkpoints with a prefix because it hands each layer its prefix slice as an explicit
input instead.) We refuse a base model with checkpointing on.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from transformers import DynamicCache, EncoderDecoderCache

from ..arch import KVLayout, encoder_self_attentions, is_encoder_family, kv_layout
from ..cache import extend_4d_mask, extend_attention_mask, prefix_cache, prefixed_forward
from .base import Method, MethodConfig, register
from .prompt_tuning import check_init, init_token_ids, tokenizer_for


@dataclass
class PrefixConfig(MethodConfig):
    method = "pt2"
    title = "P-Tuning v2"
    default_lr = 5e-2  # with prefix_projection use ~1e-3
    task_lrs = {"ner": 3e-2, "gen": 1e-1}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}
    num_virtual_tokens: int = 16  # prefix length per layer
    prefix_projection: bool = False  # True: embeddings -> two-layer tanh MLP -> keys/values (reparametrisation)
    encoder_hidden_size: int = 0  # hidden size of that MLP; 0: the key/value width (peft's default)
    prefix_dropout: float = 0.0  # dropout on the prefix keys/values while training (P-Tuning v2 uses 0.1)
    init_std: float = 0.0  # std of the initial prefix embedding; 0: N(0, 1) like nn.Embedding/peft
    init: str = "auto"  # auto | random | vocab | text; vocab/text: the keys/values the frozen model computes
    #                     for real tokens; auto: vocab without projection (random N(0, 1) keys/values throw a
    #                     pretrained decoder far off: chapter 4), random with a projection or an init_std
    init_text: str | None = None  # for init="text": tokenised, repeated or cut to num_virtual_tokens
    shift_positions: bool = True  # BERT: tokens at positions P..P+L-1 (peft, P-Tuning v2 code); False: 0..L-1
    train_head: bool = True  # train the task head (classifier) together with the prefix
    num_prefixes: int = 1  # prefixes on one base; a batch's `prefix_ids` (one per row) picks each row's

    def __post_init__(self):
        if self.num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be at least 1, got {self.num_virtual_tokens}")
        if self.num_prefixes < 1:
            raise ValueError(f"num_prefixes must be at least 1, got {self.num_prefixes}")
        if not 0.0 <= self.prefix_dropout < 1.0:
            raise ValueError(f"prefix_dropout must be in [0, 1), got {self.prefix_dropout}")
        check_init(self.init, self.init_text, allowed=("auto", "random", "vocab", "text"))
        if self.init not in ("auto", "random") and self.prefix_projection:
            raise ValueError(f"init={self.init!r} sets the prefix itself; with prefix_projection=True the prefix is "
                             "an MLP's output. Use init='random' with the projection.")

    def without_init(self):
        return dataclasses.replace(self, init="random", init_text=None)


class PrefixEncoder(nn.Module):
    """Prefix ids (batch, P) -> per-layer keys/values, as a flat (batch, P, layers * 2 * kv_width) tensor.

    Without projection the embedding table *is* the prefix. With projection, P small
    embeddings go through Linear -> tanh -> Linear, which Li & Liang found trains more
    stably; after training only the output matters. With several prefixes the table has
    num_prefixes * P rows: prefix k is rows k*P .. k*P + P-1.
    """

    def __init__(self, layout: KVLayout, num_virtual_tokens: int, projection: bool = False,
                 encoder_hidden_size: int = 0, init_std: float = 0.0, num_prefixes: int = 1):
        super().__init__()
        self.layout, self.num_virtual_tokens, self.projection = layout, num_virtual_tokens, projection
        out = layout.num_layers * 2 * layout.kv_width
        rows = num_prefixes * num_virtual_tokens
        if projection:
            width = encoder_hidden_size or layout.kv_width
            self.embedding = nn.Embedding(rows, layout.kv_width)
            self.transform = nn.Sequential(nn.Linear(layout.kv_width, width), nn.Tanh(), nn.Linear(width, out))
        else:
            self.embedding = nn.Embedding(rows, out)
        if init_std:
            nn.init.normal_(self.embedding.weight, std=init_std)

    def forward(self, prefix_ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(prefix_ids)
        return self.transform(x) if self.projection else x

    @staticmethod
    def flatten(key_values) -> torch.Tensor:
        """Per-layer (key, value), each (batch, kv_heads, P, head_dim) -> (batch, P, layers*2*kv_width): the
        inverse of key_values, so a cache computed by the model can become the embedding table."""
        x = torch.stack([t for kv in key_values for t in kv])  # (layers*2, batch, kv_heads, P, head_dim)
        b, p = x.shape[1], x.shape[3]
        return x.permute(1, 3, 0, 2, 4).reshape(b, p, -1)

    def key_values(self, flat: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(batch, P, layers*2*kv_heads*head_dim) -> per layer (key, value), each (batch, kv_heads, P, head_dim)."""
        lay = self.layout
        b, p, _ = flat.shape
        x = flat.view(b, p, lay.num_layers * 2, lay.num_kv_heads, lay.head_dim)
        x = x.permute(2, 0, 3, 1, 4)  # (layers*2, batch, kv_heads, P, head_dim): entry 2i is layer i's keys, 2i+1 values
        return [(x[2 * i], x[2 * i + 1]) for i in range(lay.num_layers)]


@torch.no_grad()
def activation_prefix(base: nn.Module, token_ids: torch.Tensor) -> torch.Tensor:
    """(P,) token ids -> (P, layers*2*kv_width): the keys and values the frozen model computes for
    those tokens at positions 0..P-1, as a starting prefix (Li & Liang: real-word activations
    train better than random vectors)."""
    param = next(base.parameters())
    cache = DynamicCache()
    base(input_ids=token_ids[None].to(param.device), cache=cache, use_cache=True)
    pairs = [(layer.keys, layer.values) for layer in cache.layers]
    return PrefixEncoder.flatten(pairs)[0].float().cpu()


@register
class PrefixTuning(Method):
    """Frozen backbone + trained per-layer prefix (+ trained task head for BERT tagging/classification)."""

    config_class = PrefixConfig

    def __init__(self, base, config: PrefixConfig, *, tokenizer=None):
        super().__init__(base, config)
        if any(getattr(m, "gradient_checkpointing", False) is True for m in base.modules()):
            raise ValueError("a prefix passed as a cache cannot run with transformers' gradient checkpointing "
                             "(peft #869): the recomputed layers would see a cache the first forward already grew, "
                             "and transformers 5 drops the cache when checkpointing is on. Call "
                             "base.gradient_checkpointing_disable() first; the prefix itself needs little memory.")
        self.layout = kv_layout(base.config)
        self.encoder_only = is_encoder_family(self.layout.arch)  # BERT: attention looks both ways, no generation
        self.prefix_encoder = PrefixEncoder(self.layout, config.num_virtual_tokens, config.prefix_projection,
                                            config.encoder_hidden_size, config.init_std, config.num_prefixes)
        seq2seq = self.layout.encoder_layers > 0
        init = config.init if config.init != "auto" else ("random" if config.prefix_projection or config.init_std
                                                          or seq2seq else "vocab")
        if seq2seq and init != "random":
            raise ValueError(f"init={config.init!r} computes the prefix from a decoder-only forward; on an encoder-"
                             "decoder use init='random' (or prefix_projection=True, Li & Liang's choice for BART)")
        self._encoder_cache = None  # set only while a forward/generate runs: the encoder's prefix
        if seq2seq:
            for attention in encoder_self_attentions(base):
                attention.register_forward_pre_hook(self._prefix_encoder_layer, with_kwargs=True)
        if init != "random":
            tok = tokenizer_for(base, tokenizer) if init == "text" else None
            ids = init_token_ids(init, config.init_text, config.num_virtual_tokens,
                                 base.get_input_embeddings().num_embeddings, tok)
            with torch.no_grad():  # every prefix starts from the same activations
                self.prefix_encoder.embedding.weight.copy_(activation_prefix(base, ids).repeat(config.num_prefixes, 1))
        self.dropout = nn.Dropout(config.prefix_dropout)
        self.register_buffer("positions", torch.arange(config.num_virtual_tokens), persistent=False)  # 0..P-1
        self.set_trainable()

    def inference_form(self) -> "PrefixTuning":
        """With a projection MLP: the same prefix as a plain table (the MLP's output), which computes the same
        outputs with fewer tensors to store. Without one: the model itself."""
        if not self.config.prefix_projection:
            return self
        with torch.no_grad():
            rows = torch.arange(self.prefix_encoder.embedding.num_embeddings, device=self.positions.device)
            table = self.prefix_encoder(rows[None])[0].detach().clone()
        config = dataclasses.replace(self.config, prefix_projection=False, encoder_hidden_size=0)
        form = self.on_same_base(PrefixTuning, config)
        with torch.no_grad():
            form.prefix_encoder.embedding.weight.copy_(table)
        return form.to(table.device)

    def table_rows(self, batch_size: int, prefix_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, P) rows of the prefix table: prefix k of row i is rows k*P .. k*P + P-1 (k = prefix_ids[i])."""
        n, p = self.config.num_prefixes, self.config.num_virtual_tokens
        if prefix_ids is None:
            if n > 1:
                raise ValueError(f"this model holds {n} prefixes: pass prefix_ids (one per row, 0..{n - 1}) to say "
                                 "which prefix each row uses")
            return self.positions.unsqueeze(0).expand(batch_size, -1)
        prefix_ids = torch.as_tensor(prefix_ids, device=self.positions.device).long()
        if prefix_ids.shape != (batch_size,):
            raise ValueError(f"prefix_ids must hold one integer per row, shape ({batch_size},); got "
                             f"{tuple(prefix_ids.shape)}")
        if bool(((prefix_ids < 0) | (prefix_ids >= n)).any()):
            raise ValueError(f"prefix_ids must be in 0..{n - 1} (num_prefixes={n}); got {prefix_ids.tolist()}")
        return prefix_ids[:, None] * p + self.positions

    def key_values(self, batch_size: int, prefix_ids: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The prefix as per-layer (key, value) for a batch (row i uses prefix prefix_ids[i]; default: the one)."""
        flat = self.prefix_encoder(self.table_rows(batch_size, prefix_ids))
        dtype = next(self.base.parameters()).dtype
        return self.prefix_encoder.key_values(self.dropout(flat).to(dtype))

    def new_cache(self, batch_size: int, prefix_ids: torch.Tensor | None = None):
        """A fresh cache holding the prefix: one per forward (a forward appends to it)."""
        return prefix_cache(self.key_values(batch_size, prefix_ids), self.layout)

    def _prefix_encoder_layer(self, module, args, kwargs):
        """Pre-hook on each encoder self-attention: hand it this forward's prefix cache, widen its mask."""
        if self._encoder_cache is None:
            return None
        kwargs["cache"] = self._encoder_cache
        kwargs["attention_mask"] = extend_4d_mask(kwargs.get("attention_mask"), self.config.num_virtual_tokens)
        return args, kwargs

    @contextmanager
    def _seq2seq_prefix(self, batch_size: int, prefix_ids=None):
        """The decoder's prefix cache, with the encoder's prefix in place for the encoder run(s) meanwhile."""
        kv, split = self.key_values(batch_size, prefix_ids), self.layout.encoder_layers
        self._encoder_cache = DynamicCache(kv[:split])
        try:
            yield EncoderDecoderCache(DynamicCache(kv[split:]), DynamicCache())
        finally:
            self._encoder_cache = None

    def _seq2seq_forward(self, input_ids, attention_mask, prefix_ids=None, decoder_attention_mask=None, **kwargs):
        if decoder_attention_mask is not None:  # the decoder sees its prefix, then its own tokens
            decoder_attention_mask = extend_attention_mask(decoder_attention_mask, self.config.num_virtual_tokens)
        with self._seq2seq_prefix(input_ids.shape[0], prefix_ids) as cache:
            return self.base(input_ids=input_ids, attention_mask=attention_mask, cache=cache,
                             decoder_attention_mask=decoder_attention_mask, **kwargs)

    def _positions(self, attention_mask: torch.Tensor) -> torch.Tensor | None:
        p = self.config.num_virtual_tokens
        if not self.encoder_only:  # a decoder: after the prefix, counting only real tokens (left padding stays correct)
            return (p + attention_mask.long().cumsum(-1) - 1).clamp(min=p)
        if not self.config.shift_positions:
            return torch.arange(attention_mask.shape[1], device=attention_mask.device).expand_as(attention_mask)
        return None  # BERT's own default: positions P..P+L-1

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                prefix_ids: torch.Tensor | None = None, **kwargs):
        if not self.active:  # inside disable_adapter(): the base model alone
            return self.base(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        for key in ("cache", "past_key_values"):
            if kwargs.get(key) is not None:
                raise ValueError(f"PrefixTuning builds its own prefix cache; do not pass {key}=")
            kwargs.pop(key, None)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if self.layout.encoder_layers:
            return self._seq2seq_forward(input_ids, attention_mask, prefix_ids, **kwargs)
        if kwargs.get("position_ids") is None:
            kwargs["position_ids"] = self._positions(attention_mask)
        cache = self.new_cache(input_ids.shape[0], prefix_ids)
        return prefixed_forward(self.base, cache, input_ids, attention_mask, self.config.num_virtual_tokens,
                                **kwargs)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 prefix_ids: torch.Tensor | None = None, **kwargs):
        """Continue left-padded prompts from a fresh prefix cache; returns prompt ids + new ids (an encoder-decoder:
        the decoder's start token + new ids)."""
        if not self.active:
            return self.base.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if self.encoder_only:
            raise ValueError(f"generate needs a decoder or an encoder-decoder; this is a {self.layout.arch} encoder")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids "
                             f"{tuple(input_ids.shape)}: pass the mask of the real tokens only (the prefix is added "
                             "here)")
        if self.layout.encoder_layers:  # returns the decoder's ids (start token + new ids), as transformers does
            if kwargs.get("use_cache") is False:
                raise ValueError("generate(use_cache=False) is not supported with an encoder-decoder prefix: the "
                                 "decoder's prefix travels in its cache. Leave use_cache on.")
            with self._seq2seq_prefix(input_ids.shape[0], prefix_ids) as cache:
                return self.base.generate(input_ids=input_ids, attention_mask=attention_mask, cache=cache, **kwargs)
        if input_ids.shape[0] > 1 and bool((attention_mask[:, -1] == 0).any()):
            raise ValueError("batched generation needs left padding (the last column of the mask is 0 somewhere): "
                             "tokenize with tokenizer.padding_side = 'left'")
        if kwargs.pop("use_cache", True) is False:
            return self._greedy_without_cache(input_ids, attention_mask, prefix_ids, **kwargs)
        p = self.config.num_virtual_tokens
        mask = torch.cat([attention_mask.new_ones(attention_mask.shape[0], p), attention_mask], dim=1)
        return self.base.generate(input_ids=input_ids, attention_mask=mask,
                                  cache=self.new_cache(input_ids.shape[0], prefix_ids), **kwargs)

    def _greedy_without_cache(self, input_ids, attention_mask, prefix_ids=None, max_new_tokens=20, do_sample=False,
                              eos_token_id=None, pad_token_id=None, **unsupported):
        """use_cache=False: a full forward over the whole sequence per new token, each with a fresh prefix.

        transformers' own use_cache=False path would re-feed the sequence while our prefix cache keeps
        growing in place, losing or duplicating the prefix; this slow loop is the honest reference."""
        if do_sample or unsupported:
            raise ValueError("generate(use_cache=False) with a prefix supports greedy decoding only (max_new_tokens, "
                             f"eos_token_id, pad_token_id); got do_sample={do_sample}, {sorted(unsupported)}")
        eos = self.base.generation_config.eos_token_id if eos_token_id is None else eos_token_id
        eos = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), device=input_ids.device)
        pad = pad_token_id if pad_token_id is not None else (eos[0].item() if len(eos) else 0)
        ids, mask = input_ids, attention_mask
        done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        for _ in range(max_new_tokens):
            nxt = self(input_ids=ids, attention_mask=mask, prefix_ids=prefix_ids).logits[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
            ids, mask = torch.cat([ids, nxt[:, None]], 1), torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
            done |= torch.isin(nxt, eos)
            if done.all():
                break
        return ids


FOREIGN_PREFIXES = ("transformer.prefix_encoder.", "base_model.prefix_encoder.", "prefix_encoder.")


def load_foreign_prefix(model: PrefixTuning, state_dict: dict, strip=FOREIGN_PREFIXES) -> PrefixTuning:
    """Copy a prefix encoder saved by ChatGLM's P-Tuning v2 trainer or by peft into `model`, checking first.

    Key prefixes in `strip` are removed and ChatGLM's `trans.` becomes our `transform.`. ChatGLM2/3
    checkpoints trained without `prefix_projection` load as they are: their table has our flat layout
    (per virtual token, layer by layer, keys then values, kv heads x kv_channels each). With projection,
    ChatGLM's encoder takes the full key/value width as input where peft's and ours take one layer's,
    so those checkpoints are refused with the shapes named. A wrong `pre_seq_len` is named too.
    """
    own = model.prefix_encoder.state_dict()
    renamed = {}
    for key, tensor in state_dict.items():
        for s in strip:
            key = key[len(s):] if key.startswith(s) else key
        renamed["transform." + key[len("trans."):] if key.startswith("trans.") else key] = tensor
    missing, unexpected = sorted(set(own) - set(renamed)), sorted(set(renamed) - set(own))
    if missing or unexpected:
        raise ValueError(f"prefix keys do not match: missing {missing}, unexpected {unexpected}. Was the checkpoint "
                         f"saved with prefix_projection={not model.config.prefix_projection}?")
    want_p, got_p = model.prefix_encoder.embedding.num_embeddings, renamed["embedding.weight"].shape[0]
    if got_p != want_p:
        raise ValueError(f"the checkpoint was trained with pre_seq_len={got_p}, this model has num_virtual_tokens="
                         f"{want_p}: build it with PrefixConfig(num_virtual_tokens={got_p})")
    for key, tensor in renamed.items():
        if tensor.shape != own[key].shape:
            lay = model.layout
            raise ValueError(f"{key}: checkpoint {tuple(tensor.shape)}, model {tuple(own[key].shape)}: the backbone "
                             f"differs (this one: {lay.num_layers} layers x 2 x {lay.num_kv_heads} kv heads x "
                             f"{lay.head_dim} = {lay.num_layers * 2 * lay.kv_width} numbers per virtual token)")
    model.prefix_encoder.load_state_dict(renamed)
    return model
