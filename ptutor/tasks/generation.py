"""Generation (`gen`): JSON lines `{"input": ..., "target": ...}` in, a causal LM (or an encoder-decoder) trained on
prompt + target with the loss on the target; scored by greedy generation once per distinct input, against every
reference of that input: corpus BLEU (sacrebleu), ROUGE-L, and the share of outputs that state every input value the
references state."""
from __future__ import annotations

import json
from pathlib import Path

from ..arch import is_causal_lm, is_encoder_decoder, is_seq2seq_lm
from ..jsonl import text_lines
from ..textgen import PROMPT, encode_causal, encode_seq2seq, generate_texts, generation_scores
from .base import Task, TaskDataError, register_task


@register_task
class GenTask(Task):
    """Generation: JSON lines of input and target, a causal LM or an encoder-decoder, scored by corpus BLEU."""
    name, backbone_task, metric = "gen", "causal-lm", "bleu"
    batch_size = 8
    default_model = "smollm2-135m"
    method_options = {"bitfit": {"add_biases": True}}  # SmolLM2 (Llama) has no biases: BitFit adds zero ones to train

    def __init__(self, prompt: str = PROMPT, max_new_tokens: int = 64):
        self.prompt, self.max_new_tokens = prompt, max_new_tokens

    def check_backbone(self, model) -> None:
        base = getattr(model, "base", model)
        if not (is_causal_lm(base) or is_seq2seq_lm(base)):
            raise ValueError(f"task 'gen' generates text and needs a causal LM or an encoder-decoder, but "
                             f"{type(base).__name__} is neither (an encoder such as BERT cannot generate). Use --model "
                             "smollm2-135m, tiny-gpt2, tiny-llama, tiny-bart or another generating preset.")

    def backbone_task_for(self, model_name: str) -> str:
        from ..backbones import PRESETS, generation_task

        return generation_task(model_name) if model_name in PRESETS or model_name.startswith("hub:") \
            else self.backbone_task

    def read(self, path) -> list[dict]:
        """Rows {"input": str, "target": str}; any other key is kept. Errors name the file and line."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"gen data file not found: {path}")
        rows = []
        for n, line in text_lines(path):  # a line that is not UTF-8 is an error naming the file and line
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TaskDataError(f"{path}:{n}: not a JSON line ({e})") from None
            bad = [k for k in ("input", "target") if not isinstance(row, dict) or not isinstance(row.get(k), str)
                   or not row[k].strip()]
            if bad:
                raise TaskDataError(f"{path}:{n}: a gen row needs non-empty string fields \"input\" and \"target\"; "
                                    f"{' and '.join(repr(k) for k in bad)} missing or empty in {line.strip()[:120]}")
            rows.append(row)
        if not rows:
            raise TaskDataError(f"{path}: no rows (empty file?)")
        return rows

    @staticmethod
    def examples(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
        """Group rows by input, in first-seen order: the distinct inputs and each one's references."""
        refs: dict[str, list[str]] = {}
        for r in rows:
            refs.setdefault(r["input"], []).append(r["target"])
        return list(refs), list(refs.values())

    def encode(self, items, tokenizer, max_length=None, model=None):
        """Causal LM: prompt + target in one sequence. Encoder-decoder (pass `model`): prompt in, target out."""
        encode = encode_seq2seq if model is not None and is_encoder_decoder(model) else encode_causal
        return encode([self.prompt.format(record=r["input"]) for r in items], [r["target"] for r in items],
                      tokenizer, max_length or self.max_length)

    def evaluate(self, model, items, tokenizer, *, batch_size=16, max_new_tokens=None, **_):
        self.check_backbone(model)
        inputs, references = self.examples(items)
        outputs = generate_texts(model, tokenizer, [self.prompt.format(record=i) for i in inputs],
                                 max_new_tokens=max_new_tokens or self.max_new_tokens, batch_size=batch_size)
        return {**generation_scores(inputs, references, outputs), "examples": len(inputs)}
