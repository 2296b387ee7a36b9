"""Counting and measuring: parameters, peak memory, versions of the stack."""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; shared (tied) tensors are counted once.

    A weight stored in 4 bits is still one parameter each: ptutor's NF4Linear keeps its codes in
    buffers, bitsandbytes packs two into one byte of a `Params4bit`; both count as the weight's
    own shape (see `weight_bytes` for what they cost in memory)."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        n = quantized_numel(p) or p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    for module in model.modules():
        if hasattr(module, "packed") and hasattr(module, "in_features"):  # ptutor.quant.NF4Linear
            total += module.in_features * module.out_features
    return trainable, total


def quantized_numel(p: torch.Tensor) -> int | None:
    """Weights held by a bitsandbytes 4-bit parameter (its storage has half as many bytes); else None."""
    state = getattr(p, "quant_state", None)
    shape = getattr(state, "shape", None)
    return torch.Size(shape).numel() if shape is not None else None


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes the model's parameters and buffers occupy (4-bit codes and their scales included)."""
    seen, total = set(), 0
    for t in [*model.parameters(), *model.buffers()]:
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def format_params(model: torch.nn.Module) -> str:
    """Trainable and total parameter counts of a model in one readable line."""
    trainable, total = count_parameters(model)
    return f"trainable {trainable:,} of {total:,} parameters ({100 * trainable / total:.4f} %)"


@dataclass(frozen=True)
class Architecture:
    """A transformer's shapes from its published config, enough to count its weights by hand: the
    arithmetic behind "6 B in 4 bits fits in 7 GB" for models too large to load here. Norms and biases
    are left out (well under 0.1 % of these models)."""

    layers: int
    hidden: int
    ffn: int  # inner width of the feed-forward block
    vocab: int
    kv_width: int | None = None  # width of the key and value projections (kv heads x head dim); default hidden
    glu: bool = False  # a gated feed-forward block (SwiGLU, GeGLU): gate, up and down, three matrices
    tied: bool = True  # the output layer reuses the word embeddings

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer of one block, by its Llama name."""
        kv = self.kv_width or self.hidden
        shapes = {"q_proj": (self.hidden, self.hidden), "k_proj": (self.hidden, kv), "v_proj": (self.hidden, kv),
                  "o_proj": (self.hidden, self.hidden), "up_proj": (self.hidden, self.ffn),
                  "down_proj": (self.ffn, self.hidden)}
        return {**shapes, "gate_proj": (self.hidden, self.ffn)} if self.glu else shapes

    def block_params(self) -> int:
        """Weights of the linear layers in all blocks: what 4-bit storage quantises."""
        return self.layers * sum(i * o for i, o in self.linears().values())

    def embedding_params(self) -> int:
        """The word embeddings, and the output layer when it is not tied to them: kept in 16 bits."""
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def params(self) -> int:
        return self.block_params() + self.embedding_params()

    def weight_gb(self, bits: float = 16, embedding_bits: float = 16) -> float:
        """GB (1e9 bytes) of weights with the blocks' linear layers at `bits` a weight (4 for INT4, 4.127 for
        NF4 with double quantisation) and the embeddings at `embedding_bits` (quantisers keep them 16-bit)."""
        return (self.block_params() * bits + self.embedding_params() * embedding_bits) / 8 / 1e9

    def lora_params(self, r: int, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> int:
        """Numbers in LoRA's A (r x in) and B (out x r) for every target layer of every block."""
        shapes = self.linears()
        unknown = set(targets) - set(shapes)
        if unknown:
            raise ValueError(f"no layer named {sorted(unknown)} in this architecture; it has {sorted(shapes)}")
        return self.layers * sum(r * (shapes[t][0] + shapes[t][1]) for t in targets)


def reset_peak_memory(device: torch.device) -> None:
    """Start a fresh peak-memory reading on a CUDA device (a no-op elsewhere)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: CUDA's allocator peak on a GPU; on CPU the process's peak RSS
    (a high-water mark of the whole process, so compare runs in fresh processes); NaN where the platform
    (Windows) has no such reading."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if device.type == "mps":
        return torch.mps.driver_allocated_memory() / 2**20
    try:
        import resource  # Unix only
    except ImportError:  # Windows: no peak-RSS reading in the standard library
        return float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def versions() -> dict[str, str]:
    """Versions of the packages the book relies on (those that are installed)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "datasets", "seqeval", "ipywidgets", "bitsandbytes"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def hardware() -> dict[str, str | int]:
    """What ran it: CPU model, torch threads, GPU name (for stamping results)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    out = {"cpu": cpu, "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def memory_anatomy(step, device: torch.device | str = "cpu") -> dict[str, float]:
    """Run `step()` (one training step) under torch's memory profiler and return MiB per category at
    the step's peak: parameter, optimizer_state, gradient, activation (tensors saved for backward),
    autograd_detail, temporary, input, other; and `peak`. Works on CPU and CUDA; run a step before
    (so optimizer state exists) and call it on a fresh step."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import _CATEGORY_TO_INDEX, MemoryProfileTimeline

    device = torch.device(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    prof = profile(activities=activities, profile_memory=True, record_shapes=True, with_stack=True)
    with _c_stderr_silenced():  # the profiler's C++ side prints "USDT: ... profiler_start/stop" lines
        prof.__enter__()
    try:
        step()
    finally:
        with _c_stderr_silenced():
            prof.__exit__(None, None, None)
    _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(device)
    at_peak = max(sizes, key=sum)  # column 0: no category; then one column per category
    out = {(c.name.lower() if c else "other"): at_peak[i + 1] / 2**20 for c, i in _CATEGORY_TO_INDEX.items()}
    out["other"] = out.get("other", 0.0) + at_peak[0] / 2**20
    out["peak"] = sum(at_peak) / 2**20
    return out


@contextmanager
def _c_stderr_silenced():
    """Send file descriptor 2 (where C++ code writes) to /dev/null inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def predict_training_memory(model: torch.nn.Module, batch: dict, optimizer_states: int = 2) -> dict[str, float | str]:
    """MiB one training step needs, from shapes alone: weights (their storage), gradients (one per
    trainable number, in its dtype), optimizer state (`optimizer_states` fp32 numbers per trainable
    one: 2 for AdamW) and activations (the tensors autograd saves for backward, found by running the
    forward on a copy of the model on the meta device: no memory is used, no number computed; a model with
    an op that cannot run there is traced on a real forward instead).

    `peak` = weights + optimizer state + the larger of two moments: the end of the forward pass (every
    saved activation alive, no gradient yet) and the optimizer step (every gradient; the fused AdamW that
    `train.make_optimizer` builds updates in place, with no temporary of the gradients' size). The backward pass
    lies between the two: it frees activations as it fills in gradients. `peak_at` names the moment."""
    import copy

    trainable = [p for p in model.parameters() if p.requires_grad]
    out = {"weights": weight_bytes(model) / 2**20,
           "gradients": sum(p.numel() * p.element_size() for p in trainable) / 2**20,
           "optimizer_state": optimizer_states * sum(p.numel() * 4 for p in trainable) / 2**20}
    try:
        out["activations"] = _saved_bytes(copy.deepcopy(model).to("meta").train(model.training), batch, "meta")
    except (RuntimeError, NotImplementedError):  # an op without a meta kernel (e.g. .item() on a shape check)
        out["activations"] = _saved_bytes(model, batch, None)  # trace a real forward instead (its graph is dropped)
    out["peak"] = out["weights"] + out["optimizer_state"] + max(out["activations"], out["gradients"])
    out["peak_at"] = "end of forward" if out["activations"] >= out["gradients"] else "optimizer step"
    return out


def _saved_bytes(model: torch.nn.Module, batch: dict, device: str | None) -> float:
    """MiB of the tensors autograd saves for backward in one forward of `model` on `batch` (moved to `device`):
    each storage once (views share their base), the model's own weights not at all."""
    weights = {id(t) for t in [*model.parameters(), *model.buffers()]}
    saved: dict[int, int] = {}

    def keep(t):
        root = t._base if t._base is not None else t
        if id(root) not in weights:
            saved[id(root)] = root.numel() * root.element_size()
        return root  # holding it keeps id() unique while the forward runs

    batch = {k: v.to(device) if device and torch.is_tensor(v) else v for k, v in batch.items()}
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        model(**batch)
    return sum(saved.values()) / 2**20


def compare_latency(fns: dict, rounds: int = 20, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each zero-argument function in `fns`, timed in interleaved rounds
    (every round calls each once, in a rotating order), so drifts in machine speed hit all alike; `warmup`
    untimed calls of each come first (the first call pays for allocations and cold caches)."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}
