"""Soft prompt tuning (Lester et al., 2021): P trainable vectors in front of the input.

The backbone stays frozen. Its word embeddings turn `input_ids` into vectors; we put
P learned vectors (the soft prompt) in front of them and run the frozen model on
`inputs_embeds`. For classification models the task head trains too (a new, random
head cannot classify otherwise; peft does the same), unless `train_head=False`.

`SoftPromptMethod` holds everything prompt-style methods share (masks, labels, logits,
generation); `PromptTuning` stores the prompt directly as one (P, hidden) parameter.
P-Tuning (p_tuning.py) computes it with a small network instead.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..data import IGNORE_INDEX
from ..arch import is_causal_lm, is_encoder_decoder, position_table_size
from .base import Method, MethodConfig, register


def tokenizer_for(base: nn.Module, tokenizer=None):
    """The tokenizer to turn init/anchor text into ids: the one given, else the base preset's."""
    if tokenizer is not None:
        return tokenizer
    preset = getattr(base.config, "ptutor_preset", None)
    if preset is None:
        raise ValueError("text needs a tokenizer: pass tokenizer=... (the base model was not loaded "
                         "with ptutor.backbones.load_backbone, so its tokenizer is unknown)")
    from ..backbones import load_tokenizer

    return load_tokenizer(preset)


class SoftPromptMethod(Method):
    """A frozen model that reads `prompt_embeddings()` (P, hidden) in front of every input.

    forward: attention mask gets P ones on the left, token_type_ids P zeros, per-token
    labels P times -100; per-token logits come back for the real tokens only (lined up
    with input_ids). Sequence classification: BERT's pooler reads position 0, which is
    now the first virtual token ([CLS] sits right after the prompt); the prompt learns
    to play that role. peft does the same, and so the logits match peft's.
    """

    def prompt_embeddings(self) -> torch.Tensor:  # (P, hidden)
        raise NotImplementedError

    @property
    def prompt_length(self) -> int:
        raise NotImplementedError

    def check_prompt_length(self, prompt_length: int) -> None:
        table = position_table_size(self.base)
        if table is not None and prompt_length >= table:
            raise ValueError(f"a prompt of {prompt_length} virtual tokens does not fit: {type(self.base).__name__} "
                             f"has only {table} positions and the input needs some too. Use fewer virtual tokens.")

    @property
    def is_encoder_decoder(self) -> bool:
        return is_encoder_decoder(self.base)

    def _with_prompt(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None):
        """inputs_embeds, attention_mask (and token_type_ids) with the soft prompt in front."""
        embed = self.base.get_input_embeddings()
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids or inputs_embeds")
            inputs_embeds = embed(input_ids)
        batch, n = inputs_embeds.shape[:2]
        P = self.prompt_length
        table = position_table_size(self.base)
        if table is not None and P + n > table:
            raise ValueError(f"{P} virtual tokens + {n} input tokens = {P + n} positions, but "
                             f"{type(self.base).__name__} has only {table}. Truncate inputs to max_length={table - P} "
                             "or use a shorter prompt.")
        prompt = self.prompt_embeddings()
        if prompt.shape != (P, inputs_embeds.shape[-1]):
            raise ValueError(f"soft prompt has shape {tuple(prompt.shape)} but the model's embeddings are "
                             f"{inputs_embeds.shape[-1]}-dimensional: was it made for another backbone?")
        prompt = prompt.to(inputs_embeds.dtype).unsqueeze(0).expand(batch, -1, -1)
        inputs_embeds = torch.cat([prompt, inputs_embeds], dim=1)
        device = inputs_embeds.device
        if attention_mask is None:
            attention_mask = torch.ones(batch, n, dtype=torch.long, device=device)
        attention_mask = torch.cat([attention_mask.new_ones(batch, P), attention_mask], dim=1)
        extra = {}
        if token_type_ids is not None:
            extra["token_type_ids"] = torch.cat([token_type_ids.new_zeros(batch, P), token_type_ids], dim=1)
        return inputs_embeds, attention_mask, extra

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, inputs_embeds=None,
                **kwargs):
        if not self.active:  # inside disable_adapter(): the base model alone
            extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            return self.base(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                             inputs_embeds=inputs_embeds, **extra, **kwargs)
        inputs_embeds, attention_mask, extra = self._with_prompt(input_ids, attention_mask, token_type_ids,
                                                                 inputs_embeds)
        P = self.prompt_length
        seq2seq = self.is_encoder_decoder  # the prompt goes to the encoder; labels and logits are the decoder's
        if labels is not None and labels.dim() == 2 and not seq2seq:  # tagging, causal LM: no labels on the prompt
            labels = torch.cat([labels.new_full((labels.shape[0], P), IGNORE_INDEX), labels], dim=1)
        out = self.base(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **extra, **kwargs)
        if out.logits.dim() == 3 and not seq2seq:  # per-token logits: drop the virtual positions
            out.logits = out.logits[:, P:]
        return out

    def generate(self, input_ids=None, attention_mask=None, **kwargs):
        """Greedy/sampled continuation through inputs_embeds; returns input_ids + new ids (as transformers; an
        encoder-decoder: the decoder's ids)."""
        if not self.active:
            return self.base.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if self.is_encoder_decoder:  # Lester et al.'s setting (T5): the soft prompt is read by the encoder
            with torch.no_grad():
                inputs_embeds, attention_mask, extra = self._with_prompt(input_ids, attention_mask)
                return self.base.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs)
        if not is_causal_lm(self.base):
            raise TypeError(f"{type(self.base).__name__} cannot generate text: it is not a causal LM. "
                            "Load a causal backbone with load_backbone(preset, 'causal-lm').")
        with torch.no_grad():
            inputs_embeds, attention_mask, extra = self._with_prompt(input_ids, attention_mask)
            new = self.base.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **extra, **kwargs)
        return torch.cat([input_ids, new.to(input_ids.device)], dim=1)

    def nearest_tokens(self, tokenizer, k: int = 3) -> list[list[str]]:
        """For each virtual token, the k vocabulary tokens closest by cosine similarity (a diagnostic)."""
        with torch.no_grad():
            vocab = self.base.get_input_embeddings().weight
            prompt = self.prompt_embeddings().to(vocab.dtype)
            sims = nn.functional.normalize(prompt, dim=-1) @ nn.functional.normalize(vocab, dim=-1).T
        return [tokenizer.convert_ids_to_tokens(row.tolist()) for row in sims.topk(k, dim=-1).indices]


@dataclass
class PromptTuningConfig(MethodConfig):
    method = "pt"
    title = "prompt tuning"
    default_lr = 3e-2  # soft prompts want large LRs (Lester et al. used 0.3 with Adafactor)
    task_lrs = {"ner": 3e-1, "gen": 3.0}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl", "gen": "data/results/e2e_steps.jsonl"}
    num_virtual_tokens: int = 20
    init: str = "random"  # random | vocab (embeddings of random vocabulary tokens) | text (of init_text)
    init_text: str | None = None  # for init="text": tokenised, repeated or cut to num_virtual_tokens
    train_head: bool = True  # classification backbones: train the task head too (as peft)

    def __post_init__(self):
        if self.num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be at least 1, got {self.num_virtual_tokens}")
        check_init(self.init, self.init_text)

    def without_init(self):
        return dataclasses.replace(self, init="random", init_text=None)


def check_init(init: str, init_text: str | None, allowed=("random", "vocab", "text")) -> None:
    """The init options shared by soft prompts and prefixes: random, vocab, or text (with init_text)."""
    if init not in allowed:
        raise ValueError(f"init must be one of {', '.join(repr(a) for a in allowed)}, not {init!r}")
    if init == "text" and not init_text:
        raise ValueError("init='text' needs init_text='...'")


def init_token_ids(init: str, init_text: str | None, length: int, vocab_size: int, tokenizer=None) -> torch.Tensor:
    """(length,) token ids to start a prompt from: random vocabulary tokens (init="vocab"), or the
    tokens of init_text repeated or cut to length (init="text")."""
    if init == "vocab":
        return torch.randint(0, vocab_size, (length,))
    ids = tokenizer(init_text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"init_text {init_text!r} has no tokens")
    return torch.tensor((ids * math.ceil(length / len(ids)))[:length])


def initial_prompt(embed: nn.Embedding, config: PromptTuningConfig, tokenizer=None) -> torch.Tensor:
    """(P, hidden) starting vectors. random: N(0, std of the vocabulary embeddings), so the prompt
    has the scale of real tokens (peft uses N(0, 1)); vocab: embeddings of P random tokens;
    text: embeddings of the tokens of init_text, repeated or cut to P."""
    P, table = config.num_virtual_tokens, embed.weight.detach()
    if config.init == "random":
        return torch.randn(P, table.shape[1]) * table.float().std()
    ids = init_token_ids(config.init, config.init_text, P, table.shape[0], tokenizer)
    return table[ids.to(table.device)].float().cpu().clone()


@register
class PromptTuning(SoftPromptMethod):
    """`self.prompt` (num_virtual_tokens, hidden) is the only new parameter.

    `init_embeddings` (a (P, hidden) tensor) overrides config.init; `tokenizer` is needed for
    init="text" when the base was not loaded by ptutor.backbones.load_backbone.
    """

    config_class = PromptTuningConfig

    def __init__(self, base, config, *, tokenizer=None, init_embeddings: torch.Tensor | None = None):
        super().__init__(base, config)
        self.check_prompt_length(config.num_virtual_tokens)
        embed = base.get_input_embeddings()
        if init_embeddings is None:
            tok = tokenizer_for(base, tokenizer) if config.init == "text" else None
            init_embeddings = initial_prompt(embed, config, tok)
        expected = (config.num_virtual_tokens, embed.embedding_dim)
        if tuple(init_embeddings.shape) != expected:
            raise ValueError(f"init_embeddings has shape {tuple(init_embeddings.shape)}, expected {expected} "
                             "(num_virtual_tokens, the backbone's hidden size)")
        self.prompt = nn.Parameter(init_embeddings.detach().clone().to(embed.weight.device, torch.float32))
        self.set_trainable()

    @property
    def prompt_length(self) -> int:
        return self.prompt.shape[0]

    def prompt_embeddings(self) -> torch.Tensor:
        return self.prompt
