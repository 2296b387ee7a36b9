"""Step time and peak GPU memory of each method at BERT-base size (random weights, so no download).

    python data/results/gpu_step_time.py --out data/results/gpu_step_time.jsonl

F1 means nothing with random weights; this measures cost only. Every run goes through the book's
runner (ptutor.experiments.run): the same synthetic sentences (batch 32, each exactly 128 tokens
with [CLS] and [SEP]), bf16 autocast on a GPU, AdamW, median step time. One JSON line per method.
`--tiny --device cpu --steps 3` is a quick check that the script still runs (tests/test_runner.py).
"""
import argparse
import json
import random

import torch
from transformers import BertConfig, BertForTokenClassification

from ptutor.backbones import load_tokenizer
from ptutor.data import NER_LABELS, Sentence, append_jsonl
from ptutor.experiments import RunConfig, run

RUNS = {"ft": ("ft", {}), "probe": ("probe", {}), "pt (16)": ("pt", {"num_virtual_tokens": 16}),
        "pt2 (16)": ("pt2", {"num_virtual_tokens": 16}), "pt2 (128)": ("pt2", {"num_virtual_tokens": 128})}


def synthetic_sentences(tok, n: int, words: int, seed: int = 0) -> list[Sentence]:
    """`n` sentences of `words` whole-word vocabulary entries (one token each) with random tags."""
    vocab = sorted(w for w in tok.get_vocab() if w.isalpha() and w.islower() and len(w) > 2)
    rng = random.Random(seed)
    return [Sentence([rng.choice(vocab) for _ in range(words)], [rng.choice(NER_LABELS) for _ in range(words)])
            for _ in range(n)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer, 64-wide BERT (a quick check, not a benchmark)")
    args = parser.parse_args(argv)
    tok = load_tokenizer("minilm")  # MiniLM uses bert-base-uncased's WordPiece vocabulary
    train = synthetic_sentences(tok, args.batch * 4, args.length - 2)
    test = train[: args.batch]
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128) if args.tiny else {}
    for name, (method, options) in RUNS.items():
        torch.manual_seed(0)
        base = BertForTokenClassification(BertConfig(num_labels=len(NER_LABELS), **size))
        row = run(RunConfig.of("ner", method, None, train, test, steps=args.steps, seed=0, lr=1e-4,
                               batch_size=args.batch, max_length=args.length, device=args.device, **options),
                  model=(base, tok)).record
        row.update(label=name, model="bert-base (random)" if not args.tiny else "tiny-bert (random)",
                   length=args.length, step_ms=round(1000 * row["step_seconds"], 2),
                   device=torch.cuda.get_device_name(0) if row["device"].startswith("cuda") else "cpu")
        print(json.dumps(row), flush=True)
        if args.out:
            append_jsonl(row, args.out)
        del base
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
