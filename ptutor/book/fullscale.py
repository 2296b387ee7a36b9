"""What a chapter's full-scale GPU cell needs besides the runner: the learning rate carried from the book's small
backbone to a larger one (with the reason), the published numbers to read a result against, a record in the
runner's schema for a loop the runner does not run, and the GPU logs `make gpu-check` keeps, shown with their device.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from .standin import ROOT

GPU_LOGS = ROOT / "data" / "results" / "gpu"

# Published results a GPU cell's numbers are read against (the papers' settings, not ours: see each note).
ANCHORS = {
    "ner": "published: P-Tuning v2 {liu2022ptuningv2} (Table 3) reports BERT-large on CoNLL-2003, not BERT-base or "
           "WNUT-17: fine-tuning 92.8, P-Tuning v2 90.2 F1 (0.97x); on WNUT-17's test set BERTweet {nguyen2020bertweet}, "
           "a BERT-base-size model pre-trained on tweets, reaches 56.5 F1 fine-tuned",
    "e2e": "published: GPT-2 Medium on E2E's test set after 5 epochs (the challenge's scorer, beam search): "
           "fine-tuning 68.2, prefix tuning 69.7 BLEU {li2021prefix} (Table 1), LoRA 70.4 {hu2022lora} (Table 3)",
}
CITATIONS = {"liu2022ptuningv2": "Liu et al. 2022", "nguyen2020bertweet": "Nguyen et al. 2020",
             "li2021prefix": "Li & Liang 2021", "hu2022lora": "Hu et al. 2022"}


def anchor(task: str) -> str:
    """The published numbers for `task` ('ner' or 'e2e') as a printable line, citations in author-year form."""
    text = ANCHORS[task]
    for key, name in CITATIONS.items():
        text = text.replace("{" + key + "}", f"({name})")
    return text


def hidden_size(model: str) -> int:
    """The hidden size of backbone preset `model` (a hub preset reads its config from the hub)."""
    from transformers import AutoConfig

    from ..backbones import get_preset, load_backbone, model_dir

    preset = get_preset(model)
    if preset.source == "tiny":
        return load_backbone(model, "base", with_tokenizer=False)[0].config.hidden_size
    return AutoConfig.from_pretrained(preset.hub_id if preset.source == "hub" else model_dir(model)).hidden_size


def scaled_lr(method: str, task: str, model: str) -> tuple[float, str]:
    """The learning rate for `method` on `task` with backbone `model`, and why.

    The start is the rate the book picked on dev for the task's own backbone (`MethodConfig.task_lrs`, made on
    `minilm` for ner and `smollm2-135m` for gen). Full fine-tuning moves every weight by about the rate (Adam), and
    a layer's output then moves in proportion to its width, so its rate is divided by the width ratio. The other
    methods train small added parameters (prompts, prefixes, low-rank factors, vectors) at rates that carry across
    sizes in their papers (P-Tuning v2 tags with BERT-large's and RoBERTa-large's prefixes at 1e-2 and 3e-2; LoRA
    trains GPT-2 Medium at 2e-4, and QLoRA 7B models at 2e-4), so their pick is kept."""
    from ..methods import METHODS
    from ..tasks import get_task

    picked = METHODS[method].config_class.lr_for(task)
    tuned_on = get_task(task).default_model
    if method != "ft":
        return picked, f"{method}'s pick on dev with {tuned_on}, kept (added parameters: the rate carries over)"
    small, large = hidden_size(tuned_on), hidden_size(model)
    return picked * small / large, (f"fine-tuning's pick on dev with {tuned_on} ({picked:g}) x {small}/{large}, "
                                    "the width ratio: a full update moves a wider layer's output more")


def record(task: str, method: str, model: str, scores: dict, history, *, metric: str, lr: float, batch_size: int,
           train_items: int, tokens: int, trainable: int, total: int, device: str, config: dict, seed: int = 0,
           started_at: str = "", eval_seconds: float = 0.0) -> dict:
    """A run of a hand-written training loop as a record in the runner's schema (the fields of
    `ptutor.experiments.run`'s record), so one log holds both and one reader reads it."""
    from ..measure import hardware, versions

    return {"task": task, "method": method, "model": model, "metric": metric, "primary": round(scores[metric], 4),
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
            "trainable_params": trainable, "total_params": total, "steps": history.steps,
            "step_seconds": round(history.median_step_seconds, 4),
            "tokens_per_second": round(tokens / history.train_seconds, 1) if history.train_seconds else None,
            "train_seconds": round(history.train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
            "peak_mb": round(history.peak_mb, 1), "lr": lr, "batch_size": batch_size, "train_items": train_items,
            "budget": {"minutes": None, "steps": history.steps}, "seed": seed, "device": device, "config": config,
            "versions": versions(), "hardware": hardware(), "started_at": started_at,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def logged(name: str, folder: str | Path = GPU_LOGS) -> str:
    """The runs `make gpu-check` logged for GPU cell `name` on a CUDA machine, one line each with the backbone and
    device they ran on; or a line saying that no GPU log exists yet."""
    path = Path(folder) / f"{name}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    rows = [r for r in rows if str(r.get("device", "")).startswith("cuda")]  # a log made on a CPU is no GPU log
    if not rows:
        return f"No GPU log yet for this cell (make gpu-check on a CUDA machine writes data/results/gpu/{name}.jsonl)."
    gpu = rows[0]["hardware"].get("gpu", "a CUDA GPU")
    lines = [f"Logged by make gpu-check on {gpu} ({rows[0]['finished_at'][:10]}, torch {rows[0]['versions']['torch']}), "
             "with the offline stand-ins:"]
    for r in rows:
        score = f"{r['metric']} {r['primary']:.1f}" if r["metric"] == "bleu" else f"{r['metric']} {r['primary']:.3f}"
        lines.append(f"  {r['method']:10s} on {r['model']}: {score}, {r['steps']} steps, {r['step_seconds'] * 1000:.0f} ms "
                     f"per step, peak {r['peak_mb']:,.0f} MiB")
    return "\n".join(lines)
