"""Stand-in mode: a chapter's full-scale GPU cell, run anywhere with small models, local data and a few steps.

A GPU cell names hub models (bert-base-cased, GPT-2 Medium, ...), hub data sets and thousands of steps on CUDA.
Set `PTUTOR_STANDIN=1` and the same cell runs instead of skipping, so its code is checked on any machine:

- `backbone(name)`: a hub preset becomes an offline one of the same kind: on CUDA a pretrained offline backbone
  (`minilm` for BERT, `smollm2-135m` for decoders), on a CPU a tiny random model of the same family;
- `wnut17()` / `e2e()`: the hub data sets become the book's local copies (a few sentences on a CPU);
- `steps(n)` / `minutes(m)`: the budget shrinks; `device()` is cuda where there is one, else the CPU.

Without the switch each function returns what the cell asked for, so a reader's GPU runs the real thing.
`PTUTOR_GPU_LOGS=FOLDER` makes `log(name)` a results log in that folder (`make gpu-check` sets it).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

SWITCH = "PTUTOR_STANDIN"
LOGS = "PTUTOR_GPU_LOGS"
ROOT = Path(__file__).resolve().parents[2]  # the book's root: data/ lives there

# hub preset -> (stand-in on CUDA, stand-in on a CPU). No GPT-2, GLM or BART weights ship offline, so on CUDA the
# pretrained SmolLM2 (a Llama decoder) stands in for every decoder and the tiny BART for bart-base.
STANDINS = {
    "bert-base-cased": ("minilm", "tiny-bert"),
    "gpt2": ("smollm2-135m", "tiny-gpt2"),
    "gpt2-medium": ("smollm2-135m", "tiny-gpt2"),
    "glm-edge-1.5b": ("smollm2-135m", "tiny-glm"),
    "qwen2-1.5b-r1": ("smollm2-135m", "tiny-qwen2"),
    "bart-base": ("tiny-bart", "tiny-bart"),
}
CPU_STEPS, CUDA_STEPS = 2, 150  # a stand-in's step budget: a few on a CPU; on CUDA enough to show learning
CPU_MINUTES, CUDA_MINUTES = 0.02, 0.1
CPU_ITEMS = 8  # training sentences or pairs on a CPU (dev and test: half as many)


def active() -> bool:
    """Is the stand-in switch on (`PTUTOR_STANDIN` set to anything but empty or 0)?"""
    return os.environ.get(SWITCH, "") not in ("", "0")


def on_cpu() -> bool:
    """Stand-in mode without CUDA: tiny models, a few items, a few steps."""
    return active() and not torch.cuda.is_available()


def describe() -> str:
    """Where and how a stand-in cell runs, in words."""
    if not active():
        return "off"
    if on_cpu():
        return "CPU, tiny random models of the same family, a few items and steps, bf16 autocast"
    return f"CUDA ({torch.cuda.get_device_name(0)}), offline backbones, the book's local data, at most {CUDA_STEPS} steps"


def backbone(name: str) -> str:
    """The preset to load for hub preset `name`: `name` itself, or (stand-in mode) its stand-in, announced."""
    if not active():
        return name
    if name not in STANDINS:
        raise ValueError(f"no stand-in for backbone {name!r}; known: {', '.join(STANDINS)} (add one to STANDINS)")
    from ..backbones import PRESETS

    preset = STANDINS[name][1 if on_cpu() else 0]
    print(f"stand-in: {name} -> {preset} ({PRESETS[preset].description})")
    return preset


def steps(n: int) -> int:
    """`n` training steps, or a stand-in's few."""
    return n if not active() else CPU_STEPS if on_cpu() else min(n, CUDA_STEPS)


def minutes(m: float) -> float:
    """`m` minutes of training, or a stand-in's seconds."""
    return m if not active() else CPU_MINUTES if on_cpu() else min(m, CUDA_MINUTES)


def device() -> str:
    """Where a GPU cell trains: cuda (the CPU only in stand-in mode without a GPU)."""
    return "cpu" if on_cpu() else "cuda"


def dtype() -> str:
    """The half-precision type for a GPU cell's weights, by name (as the runner takes it; `getattr(torch, name)` is the
    torch dtype): bfloat16, or float16 on GPUs without bf16 (a T4)."""
    if device() == "cuda" and not torch.cuda.is_bf16_supported():
        return "float16"
    return "bfloat16"


def few(names: list, keep: int = 2) -> list:
    """A list a cell loops over (methods, rates): whole, or its first `keep` on a CPU in stand-in mode."""
    return list(names)[:keep] if on_cpu() else list(names)


def log(name: str, default: str | None = None) -> str | None:
    """The results log a GPU cell appends its runs to: `$PTUTOR_GPU_LOGS/<name>.jsonl` when set; else `default`,
    or (stand-in mode) a temporary file, so a check never writes into the book's folders."""
    folder = os.environ.get(LOGS)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return str(Path(folder) / f"{name}.jsonl")
    if active():
        return str(Path(tempfile.mkdtemp(prefix="ptutor-standin-")) / f"{name}.jsonl")
    return default


def _cover(sentences: list, count: int, tags: set | None = None) -> list:
    """The first `count` sentences plus, for every tag of `tags` (default: all the set's tags) they lack, the first
    sentence that has it; with `tags` given, only sentences whose tags all belong to it."""
    pool = [s for s in sentences if tags is None or set(s.tags) <= tags]
    chosen = pool[:count]
    for tag in sorted(tags if tags is not None else {t for s in pool for t in s.tags}):
        if not any(tag in s.tags for s in chosen):
            chosen += [next(s for s in pool if tag in s.tags)] if any(tag in s.tags for s in pool) else []
    return chosen


def wnut17(announce: bool = True) -> dict[str, list]:
    """WNUT-17 as {train, validation, test}: from the hub (`ptutor.data.load_wnut17_hub`), or (stand-in mode) the
    book's copy of the same sentences in data/wnut17, cut to a few on a CPU (every tag kept in training)."""
    from ..data import load_wnut17_hub, read_conll

    if not active():
        return load_wnut17_hub()
    folder = ROOT / "data" / "wnut17"
    splits = {"train": read_conll(folder / "train.conll", labels=None),
              "validation": read_conll(folder / "dev.conll", labels=None),
              "test": read_conll(folder / "test.conll", labels=None)}
    if on_cpu():
        train = _cover(splits["train"], CPU_ITEMS)
        known = {t for s in train for t in s.tags}
        splits = {"train": train, **{k: _cover(v, CPU_ITEMS // 2, known)[:CPU_ITEMS // 2]
                                     for k, v in splits.items() if k != "train"}}
    if announce:
        print(f"stand-in: WNUT-17 from data/wnut17 ({', '.join(f'{k} {len(v)}' for k, v in splits.items())} sentences)")
    return splits


def wnut17_file(split: str) -> str:
    """A WNUT-17 split as a CoNLL file, for commands that read files: the book's copy (data/wnut17, the hub's
    sentences), or on a CPU in stand-in mode a temporary file with its few sentences."""
    from ..data import write_conll

    path = f"data/wnut17/{'dev' if split == 'validation' else split}.conll"
    if not on_cpu():
        return path
    cut = Path(tempfile.mkdtemp(prefix="ptutor-standin-")) / Path(path).name
    write_conll(wnut17(announce=False)[split], cut)
    return str(cut)


def e2e() -> dict[str, list]:
    """E2E as {train, validation, test} rows {input, target}: the challenge's sets from the hub
    (`ptutor.data.load_e2e_hub`), or (stand-in mode) the book's cut in data/e2e (a few pairs on a CPU)."""
    from ..data import load_e2e_hub, read_jsonl

    if not active():
        return load_e2e_hub()
    folder = ROOT / "data" / "e2e"
    splits = {name: [{"input": r["input"], "target": r["target"]} for r in read_jsonl(folder / f"{file}.jsonl")]
              for name, file in (("train", "train"), ("validation", "dev"), ("test", "test"))}
    if on_cpu():
        splits = {k: v[:CPU_ITEMS if k == "train" else CPU_ITEMS // 4] for k, v in splits.items()}  # 1-2 inputs
    print(f"stand-in: E2E from data/e2e ({', '.join(f'{k} {len(v)}' for k, v in splits.items())} rows)")
    return splits
