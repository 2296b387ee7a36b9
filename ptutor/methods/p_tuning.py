"""P-Tuning v1 (Liu et al., 2021, "GPT Understands, Too"): the soft prompt comes out of a small network.

Instead of training the P prompt vectors directly, P-Tuning trains a `PromptEncoder`:
P input vectors -> (bidirectional LSTM) -> MLP -> the P prompt vectors. The network
couples the virtual tokens and speeds up optimisation; after training only its output
matters, so `export_inference` bakes that output into a plain prompt-tuning checkpoint.
Optional anchor tokens: real words (e.g. "?" or "is") whose frozen word embeddings sit
among the virtual tokens.

Two checkpoints, two purposes (both in ptutor.checkpoint, the same for every method):
  - `checkpoint.export_inference(model, folder)` saves `model.inference_form()`: here the
    final vectors only, as a PromptTuning checkpoint (tiny). Training cannot resume from it.
  - `checkpoint.save_for_resume(model, optimizer, folder, step)` / `load_for_resume(base,
    folder)`: encoder weights + optimizer, RNG state and step, so training continues
    exactly as if it had never stopped.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
import torch
from torch import nn

from .base import MethodConfig, register
from .prompt_tuning import PromptTuning, PromptTuningConfig, SoftPromptMethod, tokenizer_for

class PromptEncoder(nn.Module):
    """P learned inputs -> [bidirectional LSTM] -> MLP -> (P, hidden) prompt vectors.

    Module names (embedding, lstm_head, mlp_head) follow peft's PromptEncoder so weights can
    be copied across: mlp = Linear-ReLU-Linear-ReLU-Linear; lstm = BiLSTM then Linear-ReLU-Linear.
    """

    def __init__(self, num_virtual_tokens: int, hidden: int, encoder: str = "mlp", encoder_hidden: int | None = None,
                 lstm_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        if encoder not in ("mlp", "lstm"):
            raise ValueError(f"encoder must be 'mlp' or 'lstm', not {encoder!r}")
        h = encoder_hidden or hidden
        self.encoder = encoder
        self.embedding = nn.Embedding(num_virtual_tokens, hidden)
        if encoder == "lstm":
            self.lstm_head = nn.LSTM(hidden, h, num_layers=lstm_layers, dropout=dropout, bidirectional=True,
                                     batch_first=True)
            self.mlp_head = nn.Sequential(nn.Linear(2 * h, 2 * h), nn.ReLU(), nn.Linear(2 * h, hidden))
        else:
            self.mlp_head = nn.Sequential(nn.Linear(hidden, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                          nn.Linear(h, hidden))

    def forward(self) -> torch.Tensor:
        x = self.embedding.weight.unsqueeze(0)  # one sequence of P vectors: the prompt is the same for every row
        if self.encoder == "lstm":
            x = self.lstm_head(x)[0]
        return self.mlp_head(x)[0]


@dataclass
class PTuningConfig(MethodConfig):
    method = "ptv1"
    title = "P-Tuning v1"
    default_lr = 1e-3
    task_lrs = {"ner": 1e-2}  # picked on dev, real data (lr_source)
    lr_source = {"ner": "data/results/wnut17_steps.jsonl"}
    num_virtual_tokens: int = 20
    encoder: str = "mlp"  # mlp | lstm
    encoder_hidden_size: int = 0  # 0: the backbone's hidden size
    encoder_num_layers: int = 2  # LSTM layers
    encoder_dropout: float = 0.0
    anchor_text: str | None = None  # real tokens kept among the virtual ones, e.g. " is"
    anchor_position: int = -1  # anchors go before virtual token i (-1: after all of them)
    anchor_ids: list[int] | None = field(default=None, metadata={"derived": True})  # filled in from anchor_text when built
    train_head: bool = True

    def __post_init__(self):
        if self.num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be at least 1, got {self.num_virtual_tokens}")
        if self.encoder not in ("mlp", "lstm"):
            raise ValueError(f"encoder must be 'mlp' or 'lstm', not {self.encoder!r}")
        if not -1 <= self.anchor_position <= self.num_virtual_tokens:
            raise ValueError(f"anchor_position must be -1 or 0..{self.num_virtual_tokens}, got {self.anchor_position}")


@register
class PTuning(SoftPromptMethod):
    """The prompt is `prompt_encoder()`, with anchor word embeddings spliced in; the backbone is frozen."""

    config_class = PTuningConfig

    def __init__(self, base, config, *, tokenizer=None):
        super().__init__(base, config)
        embed = base.get_input_embeddings()
        anchors = config.anchor_ids
        if config.anchor_text and anchors is None:  # tokenised once; the ids are saved with the config
            anchors = tokenizer_for(base, tokenizer)(config.anchor_text, add_special_tokens=False)["input_ids"]
            if not anchors:
                raise ValueError(f"anchor_text {config.anchor_text!r} has no tokens")
            self.config = dataclasses.replace(config, anchor_ids=list(anchors))
        self.register_buffer("anchor_ids", torch.tensor(anchors or [], dtype=torch.long), persistent=False)
        self.check_prompt_length(config.num_virtual_tokens + len(self.anchor_ids))
        self.prompt_encoder = PromptEncoder(config.num_virtual_tokens, embed.embedding_dim, config.encoder,
                                            config.encoder_hidden_size, config.encoder_num_layers,
                                            config.encoder_dropout).to(embed.weight.device)
        self.set_trainable()

    @property
    def prompt_length(self) -> int:
        return self.config.num_virtual_tokens + len(self.anchor_ids)

    def prompt_embeddings(self) -> torch.Tensor:
        virtual = self.prompt_encoder()
        if len(self.anchor_ids) == 0:
            return virtual
        anchors = self.base.get_input_embeddings()(self.anchor_ids).to(virtual.dtype)
        i = self.config.num_virtual_tokens if self.config.anchor_position < 0 else self.config.anchor_position
        return torch.cat([virtual[:i], anchors, virtual[i:]], dim=0)

    def inference_form(self) -> PromptTuning:
        """The final prompt vectors (anchors included) as a PromptTuning model on the same base; the encoder
        is dropped. It computes the same outputs; training cannot continue through the encoder from it."""
        with torch.no_grad():
            vectors = self.prompt_embeddings().detach().float()
        config = PromptTuningConfig(num_virtual_tokens=vectors.shape[0], train_head=self.config.train_head)
        form = self.on_same_base(PromptTuning, config, init_embeddings=vectors.cpu())
        return form.to(self.prompt_encoder.embedding.weight.device)
