"""Prompt tuning and P-Tuning v1 in one file: a frozen transformers model that reads trained vectors in front of
every input.

Prompt tuning (Lester et al., 2021) trains P vectors directly; P-Tuning (Liu et al., 2021, "GPT Understands, Too")
computes them with a small network (an MLP, or a bidirectional LSTM then an MLP) from P trained inputs. Everything
else is shared: the P vectors go in front of the input's word embeddings (`inputs_embeds`), the attention mask gets
P ones on the left (BERT's token types P zeros), per-token labels P times -100, and per-token logits come back for
the real tokens only, lined up with `input_ids`. The ptutor book teaches them in chapters 1 (`SoftPromptMethod`,
`PromptTuning`) and 2 (`PromptEncoder`, `PTuning`); this file is checked against ptutor's `PromptTuningConfig` and
`PTuningConfig` on the same inputs: the same logits, losses, generated ids and trained parameters
(tests/test_copyable.py). It needs torch and transformers only. Copy it into your project:

    from transformers import AutoModelForCausalLM
    from soft_prompts import PromptTuningModel, PTuningModel

    base = AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M")
    model = PromptTuningModel(base, num_virtual_tokens=20)      # or PTuningModel(base, 20, encoder="lstm")
    loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss   # trains model.prompt only
    out = model.generate(input_ids=ids[:1], max_new_tokens=20)          # prompt ids + new ids

For a classification model (BERT tagging) pass `train_also=["classifier"]`: its new head is random. Encoder-
decoders and anchor tokens are left out (ptutor has both).
"""
import torch
from torch import nn


class SoftPromptModel(nn.Module):
    """A frozen model reading `prompt_embeddings()` (P, hidden) in front of every input; subclasses say where the
    vectors come from."""

    def __init__(self, model: nn.Module, num_virtual_tokens: int, train_also=()):
        super().__init__()
        self.model, self.num_virtual_tokens = model.requires_grad_(False), num_virtual_tokens
        for name in train_also:
            model.get_submodule(name).requires_grad_(True)

    def prompt_embeddings(self) -> torch.Tensor:
        raise NotImplementedError

    def with_prompt(self, input_ids, attention_mask=None, token_type_ids=None):
        """inputs_embeds, attention_mask and the other inputs with the soft prompt in front."""
        embeds = self.model.get_input_embeddings()(input_ids)
        (batch, n), P = input_ids.shape, self.num_virtual_tokens
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and P + n > limit:
            raise ValueError(f"{P} virtual tokens + {n} input tokens = {P + n} positions; the model has {limit}. "
                             f"Truncate the inputs to {limit - P} tokens or use a shorter prompt.")
        prompt = self.prompt_embeddings().to(embeds.dtype).unsqueeze(0).expand(batch, -1, -1)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra = {"attention_mask": torch.cat([attention_mask.new_ones(batch, P), attention_mask], dim=1)}
        if token_type_ids is not None:
            extra["token_type_ids"] = torch.cat([token_type_ids.new_zeros(batch, P), token_type_ids], dim=1)
        return torch.cat([prompt, embeds], dim=1), extra

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        embeds, extra = self.with_prompt(input_ids, attention_mask, token_type_ids)
        if labels is not None and labels.dim() == 2:  # per-token labels (tagging, causal LM): none on the prompt
            labels = torch.cat([labels.new_full((labels.shape[0], self.num_virtual_tokens), -100), labels], dim=1)
        out = self.model(inputs_embeds=embeds, labels=labels, **extra, **kwargs)
        if out.logits.dim() == 3:  # per-token logits: drop the prompt's positions
            out.logits = out.logits[:, self.num_virtual_tokens:]
        return out

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, **kwargs):
        """A causal LM's continuation, through inputs_embeds (so the cache holds the prompt): prompt ids + new ids."""
        embeds, extra = self.with_prompt(input_ids, attention_mask)
        new = self.model.generate(inputs_embeds=embeds, **extra, **kwargs)
        return torch.cat([input_ids, new], dim=1)


class PromptTuningModel(SoftPromptModel):
    """Prompt tuning: the prompt is one trained (P, hidden) parameter, started from random numbers with the scale of
    the model's word embeddings."""

    def __init__(self, model: nn.Module, num_virtual_tokens: int = 20, train_also=()):
        super().__init__(model, num_virtual_tokens, train_also)
        table = model.get_input_embeddings().weight
        self.prompt = nn.Parameter(torch.randn(num_virtual_tokens, table.shape[1]) * table.detach().float().std())

    def prompt_embeddings(self) -> torch.Tensor:
        return self.prompt


class PromptEncoder(nn.Module):
    """P trained inputs -> [bidirectional LSTM] -> MLP -> (P, hidden) prompt vectors. The names (embedding,
    lstm_head, mlp_head) are peft's and ptutor's, so trained weights copy across."""

    def __init__(self, num_virtual_tokens: int, hidden: int, encoder: str = "mlp", encoder_hidden: int = 0):
        super().__init__()
        if encoder not in ("mlp", "lstm"):
            raise ValueError(f"encoder must be 'mlp' or 'lstm', not {encoder!r}")
        h, self.encoder = encoder_hidden or hidden, encoder
        self.embedding = nn.Embedding(num_virtual_tokens, hidden)
        if encoder == "lstm":
            self.lstm_head = nn.LSTM(hidden, h, num_layers=2, bidirectional=True, batch_first=True)
            self.mlp_head = nn.Sequential(nn.Linear(2 * h, 2 * h), nn.ReLU(), nn.Linear(2 * h, hidden))
        else:
            self.mlp_head = nn.Sequential(nn.Linear(hidden, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                          nn.Linear(h, hidden))

    def forward(self) -> torch.Tensor:
        x = self.embedding.weight.unsqueeze(0)  # one sequence of P vectors: the prompt is the same for every row
        if self.encoder == "lstm":
            x = self.lstm_head(x)[0]
        return self.mlp_head(x)[0]


class PTuningModel(SoftPromptModel):
    """P-Tuning v1: the prompt is the output of a trained `PromptEncoder` (run once per batch)."""

    def __init__(self, model: nn.Module, num_virtual_tokens: int = 20, encoder: str = "mlp", encoder_hidden: int = 0,
                 train_also=()):
        super().__init__(model, num_virtual_tokens, train_also)
        hidden = model.get_input_embeddings().embedding_dim
        self.prompt_encoder = PromptEncoder(num_virtual_tokens, hidden, encoder, encoder_hidden)

    def prompt_embeddings(self) -> torch.Tensor:
        return self.prompt_encoder()
