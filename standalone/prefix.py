"""Prefix tuning / P-Tuning v2 in one file: trained keys and values in front of every attention layer of a frozen
transformers model.

Prefix tuning (Li and Liang, 2021) and P-Tuning v2 (Liu et al., 2022) give every layer P extra keys and values
that every token may attend to; only they (and a new task head) train. In transformers 5 they travel as a
`DynamicCache`, a new one for every forward (a forward appends its own keys and values to it), with P ones on the
left of the attention mask. The ptutor book teaches them in chapter 3 (BERT tagging: `PrefixEncoder`,
`prefix_cache`, `PrefixTuning`) and chapter 4 (decoders, grouped-query attention, generation, starting from real
words' activations); this file is checked against ptutor's `PrefixConfig` on the same inputs: the same logits,
generated ids and trained parameters (tests/test_copyable.py). It needs torch and transformers (5.x) only. Copy it
into your project:

    from transformers import AutoModelForCausalLM
    from prefix import PrefixModel

    base = AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M")
    model = PrefixModel(base, num_virtual_tokens=16)
    model.init_from_tokens(torch.randint(0, base.config.vocab_size, (16,)))  # a pretrained decoder trains far
    loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss        # better from real activations
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20)  # left-padded prompts

Encoders of the BERT kind (pass `train_also=["classifier"]` for a new tagging head) and decoders with a standard
cache (GPT-2, Llama, Qwen2, GLM) work; encoder-decoders (BART: ptutor has them) and ChatGLM's remote code do not.
"""
import torch
from torch import nn
from transformers import DynamicCache

ENCODERS = ("bert",)  # model types whose attention looks both ways: tokens keep the model's own positions


def kv_shape(config) -> tuple[int, int, int]:
    """(layers, key/value heads, head size) of a transformers config. Grouped-query models (Llama, Qwen2, GLM) have
    fewer key/value heads than attention heads, and a prefix needs the key/value count."""
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(f"{config.model_type} is an encoder-decoder: this file prefixes encoders and decoders only")
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return config.num_hidden_layers, getattr(config, "num_key_value_heads", None) or heads, head_dim


class PrefixEncoder(nn.Module):
    """Row ids (batch, P) -> the prefix, flat: (batch, P, layers * 2 * kv_heads * head_dim). Without projection the
    embedding table is the prefix; with one, P small embeddings go through Linear -> tanh -> Linear (Li and Liang's
    reparametrisation). The names (embedding, transform) are peft's and ptutor's, so trained weights copy across."""

    def __init__(self, num_virtual_tokens: int, layers: int, kv_width: int, projection: bool = False,
                 projection_hidden: int = 0):
        super().__init__()
        self.projection, out = projection, layers * 2 * kv_width
        if projection:
            self.embedding = nn.Embedding(num_virtual_tokens, kv_width)
            self.transform = nn.Sequential(nn.Linear(kv_width, projection_hidden or kv_width), nn.Tanh(),
                                           nn.Linear(projection_hidden or kv_width, out))
        else:
            self.embedding = nn.Embedding(num_virtual_tokens, out)  # N(0, 1), as peft starts it

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        x = self.embedding(rows)
        return self.transform(x) if self.projection else x


class PrefixModel(nn.Module):
    """A frozen model with a trained prefix: a fresh cache and a mask extended by P for every forward."""

    def __init__(self, model: nn.Module, num_virtual_tokens: int = 16, projection: bool = False,
                 projection_hidden: int = 0, train_also=()):
        super().__init__()
        self.model, self.num_virtual_tokens = model.requires_grad_(False), num_virtual_tokens
        self.layers, self.kv_heads, self.head_dim = kv_shape(model.config)
        self.encoder_only = model.config.model_type in ENCODERS
        self.prefix_encoder = PrefixEncoder(num_virtual_tokens, self.layers, self.kv_heads * self.head_dim,
                                            projection, projection_hidden)
        for name in train_also:
            model.get_submodule(name).requires_grad_(True)

    def new_cache(self, batch: int) -> DynamicCache:
        """The prefix as a new cache: per layer (keys, values), each (batch, kv_heads, P, head_dim)."""
        P, device = self.num_virtual_tokens, self.prefix_encoder.embedding.weight.device
        flat = self.prefix_encoder(torch.arange(P, device=device).expand(batch, -1))
        x = flat.to(next(self.model.parameters()).dtype).view(batch, P, self.layers * 2, self.kv_heads, self.head_dim)
        x = x.permute(2, 0, 3, 1, 4)  # (layers * 2, batch, kv_heads, P, head_dim): 2i keys, 2i + 1 values of layer i
        return DynamicCache([(x[2 * i], x[2 * i + 1]) for i in range(self.layers)])

    def extended(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """P ones on the left of a (batch, L) mask: every token may see the whole prefix."""
        return torch.cat([attention_mask.new_ones(attention_mask.shape[0], self.num_virtual_tokens), attention_mask], 1)

    def forward(self, input_ids, attention_mask=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if not self.encoder_only and kwargs.get("position_ids") is None:
            # a decoder's tokens sit after the prefix, counting real tokens only: left padding changes nothing
            kwargs["position_ids"] = (self.num_virtual_tokens + attention_mask.long().cumsum(-1) - 1).clamp(
                min=self.num_virtual_tokens)
        return self.model(input_ids=input_ids, attention_mask=self.extended(attention_mask),
                          cache=self.new_cache(input_ids.shape[0]), **kwargs)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, **kwargs):
        """A decoder's continuation of left-padded prompts from a fresh prefix cache: prompt ids + new ids."""
        if self.encoder_only:
            raise ValueError(f"{self.model.config.model_type} is an encoder: it cannot generate")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.model.generate(input_ids=input_ids, attention_mask=self.extended(attention_mask),
                                   cache=self.new_cache(input_ids.shape[0]), **kwargs)

    @torch.no_grad()
    def init_from_tokens(self, token_ids: torch.Tensor) -> None:
        """Start the prefix (without projection) as the keys and values the frozen model computes for P real tokens
        at positions 0..P-1: a pretrained model then starts as itself reading those tokens (chapter 4)."""
        if self.prefix_encoder.projection or token_ids.shape != (self.num_virtual_tokens,):
            raise ValueError(f"init_from_tokens sets a prefix without projection from {self.num_virtual_tokens} "
                             f"token ids; got projection={self.prefix_encoder.projection}, ids {tuple(token_ids.shape)}")
        cache = DynamicCache()
        self.model(input_ids=token_ids[None].to(self.prefix_encoder.embedding.weight.device), cache=cache,
                   use_cache=True)
        x = torch.stack([t for layer in cache.layers for t in (layer.keys, layer.values)])  # (2L, 1, kv, P, d)
        self.prefix_encoder.embedding.weight.copy_(x.permute(1, 3, 0, 2, 4).reshape(self.num_virtual_tokens, -1))
