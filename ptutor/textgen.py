"""Causal-LM tasks: prompt + target encoding, greedy generation, simple text metrics.

The project's data-to-text task (data/d2t) gives a record ("name: X | country: Y")
and a sentence that states it. We train on `PROMPT.format(record) + target + eos`,
with the loss on the target only (prompt labels are IGNORE_INDEX).
"""
from __future__ import annotations

import re

import torch

from .arch import is_encoder_decoder
from .batches import IGNORE_INDEX

PROMPT = "Record: {record}\nSentence:"


def encode_causal(prompts: list[str], targets: list[str], tokenizer, max_length: int = 128) -> list[dict]:
    """Token ids of prompt+target(+eos) with labels only on the target."""
    rows = []
    for prompt, target in zip(prompts, targets):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        t = tokenizer(" " + target.strip(), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (p + t)[:max_length]
        labels = ([IGNORE_INDEX] * len(p) + t)[:max_length]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows


def encode_d2t(examples: list[dict], tokenizer, max_length: int = 128) -> list[dict]:
    """Encode data-to-text records (`record`, `text`) as prompt + target rows for a causal LM, loss on the target only."""
    return encode_causal([PROMPT.format(record=e["record"]) for e in examples], [e["text"] for e in examples],
                         tokenizer, max_length)


def encode_seq2seq(prompts: list[str], targets: list[str], tokenizer, max_length: int = 128) -> list[dict]:
    """An encoder-decoder's rows: the prompt (with the tokenizer's special tokens) in, target + eos as labels."""
    rows = []
    for prompt, target in zip(prompts, targets):
        ids = tokenizer(prompt)["input_ids"][:max_length]
        labels = (tokenizer(target.strip(), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels[:max_length]})
    return rows


def pad_prompts(prompts: list[str], tokenizer, side: str = "left", **kwargs) -> dict[str, torch.Tensor]:
    """Tokenise prompts padded on `side`: the left, as batched generation with a decoder-only model needs (an
    encoder-decoder reads its input with the encoder: the right, as in training)."""
    old = tokenizer.padding_side
    tokenizer.padding_side = side
    try:
        return tokenizer(prompts, return_tensors="pt", padding=True, **{"add_special_tokens": False, **kwargs})
    finally:
        tokenizer.padding_side = old


@torch.no_grad()
def generate_texts(model, tokenizer, prompts: list[str], *, max_new_tokens: int = 40, batch_size: int = 16,
                   stop: str | None = "\n", **generate_kwargs) -> list[str]:
    """Greedy continuation of each prompt; returns only the new text, cut at `stop`.

    Works for a plain transformers model and for any ptutor method whose `generate`
    follows transformers' convention (returns prompt ids followed by new ids; an encoder-decoder
    returns the decoder's ids only).
    """
    model.eval()
    device = next(model.parameters()).device
    seq2seq = is_encoder_decoder(model)
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = (pad_prompts(prompts[i:i + batch_size], tokenizer, "right", add_special_tokens=True) if seq2seq else
               pad_prompts(prompts[i:i + batch_size], tokenizer))
        ids = model.generate(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                             **generate_kwargs)
        new = ids if seq2seq else ids[:, enc["input_ids"].shape[1]:]
        for text in tokenizer.batch_decode(new, skip_special_tokens=True):
            if stop and stop in text:
                text = text[: text.index(stop)]
            out.append(text.strip())
    return out


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower())


def slot_coverage(fields: dict, text: str) -> float:
    """Share of the record's field values that appear verbatim (case-insensitive) in `text`."""
    values = [str(v) for v in fields.values()]
    return sum(_norm(v) in _norm(text) for v in values) / max(1, len(values))


def d2t_scores(examples: list[dict], outputs: list[str]) -> dict:
    """Mean slot coverage and exact-match rate of generated sentences."""
    if len(examples) != len(outputs):
        raise ValueError(f"{len(examples)} examples but {len(outputs)} outputs")
    cov = [slot_coverage(e["fields"], o) for e, o in zip(examples, outputs)]
    exact = [_norm(e["text"]) == _norm(o) for e, o in zip(examples, outputs)]
    return {"slot_coverage": sum(cov) / len(cov), "exact_match": sum(exact) / len(exact)}


# --- scoring generated text against several references (the runner's `gen` task) ------------------

def input_values(text: str) -> list[str]:
    """The values of a structured input: `name[Aromi] | food[Thai]` or `name: Aromi | food: Thai`."""
    values = []
    for part in text.split("|"):
        part = part.strip()
        if part.endswith("]") and "[" in part:
            values.append(part[part.index("[") + 1:-1].strip())
        elif ":" in part:
            values.append(part.split(":", 1)[1].strip())
    return [v for v in values if v]


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F1: longest common subsequence of lower-cased words, as precision/recall's harmonic mean."""
    h, r = _norm(hypothesis).split(), _norm(reference).split()
    if not h or not r:
        return 0.0
    prev = [0] * (len(r) + 1)
    for a in h:
        cur = [0]
        for j, b in enumerate(r):
            cur.append(prev[j] + 1 if a == b else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    return 2 * p * rec / (p + rec)


def mentions_all(input_text: str, references: list[str], output: str) -> bool:
    """Does the output state every input value that the references state word for word?

    Values the references paraphrase (e.g. familyFriendly[no] -> "not for children") are not
    checked, since no single wording is right."""
    stated = [v for v in input_values(input_text) if any(_norm(v) in _norm(ref) for ref in references)]
    return all(_norm(v) in _norm(output) for v in stated)


def generation_scores(inputs: list[str], references: list[list[str]], outputs: list[str]) -> dict:
    """Corpus BLEU (sacrebleu, all references), mean best-reference ROUGE-L, share mentioning every value."""
    import sacrebleu

    if not (len(inputs) == len(references) == len(outputs)):
        raise ValueError(f"{len(inputs)} inputs, {len(references)} reference lists, {len(outputs)} outputs: "
                         "one of each per example")
    if not outputs:
        raise ValueError("no examples to score")
    streams = max(len(r) for r in references)
    ref_streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(streams)]
    bleu = sacrebleu.corpus_bleu(outputs, ref_streams).score
    rouge = sum(max(rouge_l(o, r) for r in refs) for o, refs in zip(outputs, references)) / len(outputs)
    mention = sum(mentions_all(i, refs, o) for i, refs, o in zip(inputs, references, outputs)) / len(outputs)
    return {"bleu": bleu, "rouge_l": 100 * rouge, "mentions_all": mention}
