"""BitFit in one function: chapter 5's `mini_bitfit`.

BitFit (Ben Zaken et al., 2022) trains every bias of a model and no weight: about 0.1% of a BERT-size model. The
ptutor book writes it in chapter 5 (next to Adapters, (IA)³ and DoRA); this file holds that very function (checked
letter for letter against the chapter) and is checked against ptutor's `BitFitConfig`: the same biases train
(tests/test_copyable.py). It needs torch only. Copy it into your project:

    from bitfit import mini_bitfit
    trained = mini_bitfit(model)                  # a transformers model: only its biases train now
    model.classifier.requires_grad_(True)         # a new classification head is random: train all of it (BERT)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

The biases change in place: keep a copy of the model if you need the untrained one. Llama-family models have no
biases at all, so there this trains nothing (ptutor's `BitFitConfig(add_biases=True)` adds zero biases first).
"""
from torch import nn


def mini_bitfit(model: nn.Module) -> list[str]:
    """Ben Zaken et al.'s BitFit: every bias trains, every weight stays frozen. Returns the trained names."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.endswith(".bias"))
    return [n for n, p in model.named_parameters() if p.requires_grad]
