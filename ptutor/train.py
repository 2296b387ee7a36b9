"""One small training loop for every method in the book.

`fit(model, batches, TrainConfig(...))` trains whatever parameters have
`requires_grad=True` (the method decides which), for a number of steps or a time
budget, and returns a `History` of losses, step times and peak memory. The model's
forward takes the batch as keyword arguments and returns an object with `.loss`.
"""
from __future__ import annotations

import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .measure import count_parameters, peak_memory_mb, reset_peak_memory


def pick_device(prefer: str | None = None) -> torch.device:
    """cuda, then Apple's mps, then cpu; `prefer` (or $PTUTOR_DEVICE) overrides."""
    prefer = prefer or os.environ.get("PTUTOR_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed python, torch (CPU and CUDA) so a CPU run repeats exactly."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass


def _knob(default, help: str, **kw):
    """A dataclass field with the help text the generated command line shows (ptutor.experiments)."""
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """How `fit` trains: rate, budget, schedule. A run (ptutor.experiments.RunConfig) holds one, and its fields are
    the command line's training flags, with these defaults and help texts."""
    lr: float | None = _knob(5e-5, "peak learning rate (in a run, none given: the method's rate for the task, picked "
                                   "on the book's real dev split for its backbone and budget; for another model, data "
                                   "set or budget, sweep: python -m ptutor.runs sweep)")
    steps: int | None = _knob(100, "stop after this many optimizer steps (with --minutes: whichever comes first)")
    minutes: float | None = _knob(None, "stop after this much training time (evaluations not counted)")
    warmup: float = _knob(0.06, "share of training spent warming the rate up from zero")
    schedule: str = _knob("linear", "after warm-up: linear decay to zero, or constant", choices=("linear", "constant"))
    weight_decay: float = _knob(0.0, "AdamW weight decay")
    grad_clip: float | None = _knob(1.0, "clip the gradient norm to this (none: no clipping)")
    mixed_precision: bool | None = _knob(None, "bf16/fp16 autocast (default: on for cuda, off elsewhere)")
    eval_every: int | None = _knob(None, "also score dev every N steps (a learning curve in the record)")
    head_lr: float | None = _knob(None, "a peak rate of its own for a trained task head (in a run, none given: the "
                                        "task's head rate for methods that train a new head)")
    seed: int | None = _knob(0, "seed for python and torch, set before step 1 (and for the data order)")
    progress: bool = _knob(True, "show a progress bar", cli=False)
    start_step: int = _knob(0, "resuming: steps already done, so the schedule continues where it stopped", cli=False)

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            raise ValueError("TrainConfig needs steps=..., minutes=..., or both (training must end)")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be a positive time budget, got {self.minutes}")
        for name in ("lr", "head_lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is a share of training in [0, 1), got {self.warmup}")
        if self.schedule not in ("linear", "constant"):
            raise ValueError(f"schedule must be 'linear' or 'constant', not {self.schedule!r}")


@dataclass
class History:
    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)  # each: step, seconds, loss (see point) + what eval_fn returned
    train_seconds: float = 0.0  # wall time of training, without the periodic evaluations
    peak_mb: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    scaler: object = None  # the fp16 GradScaler fit used (pass it to checkpoint.save_for_resume), else None

    @property
    def steps(self) -> int:
        return len(self.losses)

    def point(self, seconds: float, window: int) -> dict:
        """A learning-curve point: steps so far, training seconds so far, mean loss of the last `window` steps."""
        recent = self.losses[-max(1, window):]
        return {"step": self.steps, "seconds": round(seconds, 1),
                "loss": round(sum(recent) / len(recent), 4) if recent else None}

    @property
    def median_step_seconds(self) -> float:
        s = sorted(self.step_seconds[1:] or self.step_seconds)  # the first step pays for warm-up
        return s[len(s) // 2] if s else float("nan")


def lr_factor(progress: float, warmup: float, schedule: str) -> float:
    """LR multiplier for training progress in [0, 1] (by steps or by time, whichever is further)."""
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 1e-3)
    if schedule == "constant":
        return 1.0
    return max(0.0, (1.0 - progress) / max(1e-8, 1.0 - warmup))


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return nullcontext()
    dtype = torch.bfloat16 if device.type != "cuda" or torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def with_head_rate(model: torch.nn.Module, groups: list[dict], head_lr: float) -> list[dict]:
    """The optimizer groups with the trained task head (classifier/score) moved into a group at `head_lr`.

    A new head starts random and wants a large rate, while low-rank or full updates of the backbone
    diverge at that rate: one rate for both can leave the head stuck predicting the majority tag."""
    from .arch import task_head_name

    base = getattr(model, "base", model)
    name = task_head_name(base)
    head = {id(p) for p in getattr(base, name).parameters() if p.requires_grad} if name else set()
    if not head:
        raise ValueError("head_lr was given, but the model trains no task head (a language model, or train_head=False)")
    rest = [{**g, "params": [p for p in g["params"] if id(p) not in head]} for g in groups]
    head_group = {"params": [p for g in groups for p in g["params"] if id(p) in head], "lr": head_lr}
    return [g for g in rest if g["params"]] + [head_group]


def make_optimizer(model: torch.nn.Module, lr: float, *, weight_decay: float = 0.0,
                   head_lr: float | None = None) -> torch.optim.AdamW:
    """The AdamW that `fit` trains with: the method's parameter groups at `lr` (a trained task head at `head_lr`).
    Resuming builds it here too, so a saved optimizer state lines up with its groups one by one."""
    if hasattr(model, "param_groups"):
        groups = model.param_groups(lr)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    if head_lr is not None:
        groups = with_head_rate(model, groups, head_lr)
    params = [p for g in groups for p in g["params"]]
    # the same AdamW as one fused kernel instead of a Python loop over tensors: on a CPU it shortens a step in
    # which many tensors train (fine-tuning); off where a parameter is not a float on cpu/cuda
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=fused or None)


def fit(model: torch.nn.Module, batches, config: TrainConfig, *, device: torch.device | None = None,
        eval_fn=None, optimizer: torch.optim.Optimizer | None = None,
        scaler: torch.amp.GradScaler | None = None) -> History:
    """Train `model` on an iterator of batch dicts; return the History.

    `batches` is consumed lazily (an endless shuffling generator is fine).
    `eval_fn(model) -> dict` runs every `config.eval_every` steps and at the end.
    Pass your own `optimizer` (and fp16 `scaler`) to resume training (ptutor.checkpoint.load_for_resume).
    A fresh run (start_step 0) seeds the RNGs with `config.seed` first; a resumed one keeps the
    random state the checkpoint restored.
    """
    if config.seed is not None and config.start_step == 0:
        seed_everything(config.seed)
    device = device or pick_device()
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("No parameter has requires_grad=True: nothing to train. "
                         "Did you load an adapter for inference only? (see ptutor.checkpoint.load(..., trainable=True))")
    if config.lr is None:
        raise ValueError("TrainConfig.lr is None: give a learning rate (a run fills in the method's rate for its task)")
    optimizer = optimizer or make_optimizer(model, config.lr, weight_decay=config.weight_decay, head_lr=config.head_lr)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    amp = config.mixed_precision if config.mixed_precision is not None else device.type == "cuda"
    if scaler is None and amp and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        scaler = torch.amp.GradScaler("cuda")  # fp16 needs loss scaling; bf16 does not
    hist = History(scaler=scaler)
    hist.trainable_params, hist.total_params = count_parameters(model)
    budget = config.minutes * 60 if config.minutes else None
    reset_peak_memory(device)
    batches = iter(batches)
    bar = tqdm(total=config.steps, disable=not config.progress, desc="train", leave=False)
    start, eval_seconds = time.perf_counter(), 0.0
    model.train()
    while True:
        elapsed = time.perf_counter() - start - eval_seconds  # the time budget is for training only
        done = config.start_step + hist.steps
        progress = max(done / config.steps if config.steps else 0.0, elapsed / budget if budget else 0.0)
        if progress >= 1.0:
            break
        try:
            batch = next(batches)
        except StopIteration:
            break
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * lr_factor(progress, config.warmup, config.schedule)
        t0 = time.perf_counter()
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        with _autocast(device, amp):
            loss = model(**batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {hist.steps}: lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(optimizer)
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        scaler.step(optimizer) if scaler else optimizer.step()
        if scaler:
            scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
        hist.step_seconds.append(time.perf_counter() - t0)
        hist.losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{hist.losses[-1]:.3f}")
        if eval_fn and config.eval_every and hist.steps % config.eval_every == 0:
            t0 = time.perf_counter()
            hist.evals.append({**hist.point(t0 - start - eval_seconds, config.eval_every), **eval_fn(model)})
            eval_seconds += time.perf_counter() - t0
            model.train()
    bar.close()
    hist.train_seconds = time.perf_counter() - start - eval_seconds
    if eval_fn and (not hist.evals or hist.evals[-1]["step"] != hist.steps):
        hist.evals.append({**hist.point(hist.train_seconds, config.eval_every or hist.steps), **eval_fn(model)})
    hist.peak_mb = peak_memory_mb(device)
    model.eval()
    return hist


def smooth(values: list[float], window: int = 10) -> list[float]:
    """Trailing moving average, for plotting noisy losses."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_losses(histories: dict[str, History], *, window: int = 10, ax=None, title: str = "training loss"):
    """One smoothed loss curve per run; returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, h in histories.items():
        ax.plot(range(1, h.steps + 1), smooth(h.losses, window), label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss (moving average of {window})")
    ax.set_title(title)
    if any(h.losses and min(h.losses) > 0 for h in histories.values()) and math.isfinite(
            max((max(h.losses) for h in histories.values() if h.losses), default=1)):
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
