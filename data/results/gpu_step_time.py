"""Step time and peak GPU memory of each method at BERT-base size (random weights, so no download).

    python data/results/gpu_step_time.py --out data/results/gpu_step_time.jsonl

F1 means nothing with random weights; this measures cost only: the same batches (32 x 128
tokens), bf16 autocast, AdamW, median of the step times after a warm-up. One JSON line per method.
"""
import argparse
import json

import torch
from transformers import BertConfig, BertForTokenClassification

from ptutor.data import append_jsonl
from ptutor.measure import hardware, versions
from ptutor.methods import FineTuneConfig, ProbeConfig, PromptTuningConfig, inject
from ptutor.methods.prefix import PrefixConfig
from ptutor.train import TrainConfig, fit


def random_batches(n, batch, length, labels=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        ids = torch.randint(1000, 20000, (batch, length), generator=g)
        yield {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids % labels}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    runs = {"ft": FineTuneConfig(), "probe": ProbeConfig(), "pt (16)": PromptTuningConfig(num_virtual_tokens=16),
            "pt2 (16)": PrefixConfig(num_virtual_tokens=16), "pt2 (128)": PrefixConfig(num_virtual_tokens=128)}
    for name, config in runs.items():
        torch.manual_seed(0)
        model = inject(BertForTokenClassification(BertConfig(num_labels=9)), config)
        hist = fit(model, random_batches(args.steps, args.batch, args.length),
                   TrainConfig(lr=1e-4, steps=args.steps, mixed_precision=True, progress=False), device=device)
        timed = sorted(hist.step_seconds[10:])  # the first steps include CUDA warm-up
        row = {"run": name, "model": "bert-base (random)", "batch": args.batch, "length": args.length,
               "trainable_params": hist.trainable_params, "total_params": hist.total_params,
               "step_ms": round(1000 * timed[len(timed) // 2], 2), "peak_mb": round(hist.peak_mb, 1),
               "versions": versions(), "hardware": hardware(), "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"}
        print(json.dumps(row), flush=True)
        if args.out:
            append_jsonl(row, args.out)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
