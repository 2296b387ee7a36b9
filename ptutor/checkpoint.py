"""Save and load what a method trained, the same way for every method.

A checkpoint is a folder::

  ptutor_method.json    format version, method name + config, tensor shapes, the base it was
                        trained on (preset or hub id, class, dtype, quantisation), and a fingerprint
                        (sha256) of each tensor of the method's frozen state
  weights.safetensors   the method's trainable_state_dict(): what it owns (for `ft`, every weight),
                        and its frozen_state_dict() (VeRA's random pair) unless the method draws that again
  training_state.pt     only from save_for_resume: optimizer, RNG states, step, grad scaler

Loading rebuilds the method around a base model you pass in *without* re-running its
initialisation, checks the base, every key and shape, and the frozen state against its fingerprints
(a corrupt file, or a pair drawn differently here, is an error, not silently different outputs), and
says exactly what is wrong.
Two forms: `save` keeps the training form (P-Tuning's encoder, a prefix MLP), so training
can resume; `export_inference` keeps `model.inference_form()`, the smallest equivalent.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .methods import METHODS, Method, config_from_dict
from .train import make_optimizer

FORMAT_VERSION = 2
CONFIG_FILE = "ptutor_method.json"
WEIGHTS_FILE = "weights.safetensors"
TRAINING_STATE_FILE = "training_state.pt"


class CheckpointError(RuntimeError):
    """The checkpoint folder is missing, corrupt, or does not fit the model."""


def describe_base(base: torch.nn.Module) -> dict:
    """What a method was trained on: enough to refuse loading it onto another model."""
    config = base.config
    quant = getattr(config, "quantization_config", None)
    if quant is not None and not isinstance(quant, dict):
        quant = quant.to_dict() if hasattr(quant, "to_dict") else str(quant)
    if isinstance(quant, dict):  # keep what identifies the format, not every loader option
        quant = {k: quant[k] for k in ("quant_method", "load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type",
                                       "bnb_4bit_use_double_quant") if k in quant}
    name = getattr(config, "_name_or_path", "") or None
    if name and (os.path.isabs(name) or os.path.exists(name)):
        name = None  # a local folder (e.g. the unpacked offline backbone) says where a cache lives, not which model
    return {"preset": getattr(config, "ptutor_preset", None), "name_or_path": name, "class": type(base).__name__,
            "dtype": str(next(base.parameters()).dtype).replace("torch.", ""),
            "quantization": quant or None}


def verify_base(saved: dict, base: torch.nn.Module, folder) -> None:
    """Raise if the checkpoint's base description differs from `base` (keys both sides know)."""
    now = describe_base(base)
    for key in ("preset", "class", "dtype", "quantization"):
        if key == "preset" and (saved.get(key) is None or now[key] is None):
            continue
        if saved.get(key) != now[key]:
            raise CheckpointError(
                f"{folder} was trained on another base: {key} {saved.get(key)!r} in the checkpoint, {now[key]!r} in "
                f"the model you passed (checkpoint base: {saved}; yours: {now}). Load the base it was trained on, "
                "or pass check_base=False if you know the two are interchangeable.")


def fingerprint(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes: two tensors with one fingerprint are equal."""
    t = tensor.detach().to("cpu").contiguous()
    digest = hashlib.sha256(f"{t.dtype} {list(t.shape)}".encode())
    digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save(model: Method, folder: str | os.PathLike, *, extra: dict | None = None) -> dict:
    """Write what the method owns (and its frozen state, or that state's fingerprints) and its config; return a
    summary (keys, params: the trained numbers, bytes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.trainable_state_dict().items()}
    if not tensors:
        raise CheckpointError(f"{type(model).__name__} owns no tensors to save: check its owns() rule")
    frozen = {k: v.detach().to("cpu").contiguous() for k, v in model.frozen_state_dict().items()}
    save_file({**tensors, **(frozen if model.saves_frozen_state else {})}, folder / WEIGHTS_FILE)
    meta = {
        "format": FORMAT_VERSION,
        **model.config.to_dict(),
        "base": describe_base(model.base),
        "shapes": {k: list(v.shape) for k, v in tensors.items()},
        "frozen": {k: {"shape": list(v.shape), "sha256": fingerprint(v), "saved": model.saves_frozen_state}
                   for k, v in frozen.items()},
        "extra": extra or {},
    }
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return {"keys": len(tensors), "params": sum(v.numel() for v in tensors.values()),
            "bytes": (folder / WEIGHTS_FILE).stat().st_size}


def export_inference(model: Method, folder: str | os.PathLike) -> dict:
    """Save `model.inference_form()` (P-Tuning: the final prompt table; a prefix MLP: its output)."""
    form = model.inference_form()
    return save(form, folder, extra={"exported_from": model.config.to_dict()} if form is not model else None)


def read_meta(folder: str | os.PathLike) -> dict:
    """A checkpoint's ptutor_method.json (method, config, shapes, base), with a clear error if the folder is none."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} not found: {folder} is not a ptutor checkpoint (save one with ptutor.checkpoint.save)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}): the checkpoint is corrupt; save it again") from e
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format', 1)!r}; this ptutor reads format "
                              f"{FORMAT_VERSION}. Save it again with this version (or use the ptutor that wrote it).")
    return meta


def load(base: torch.nn.Module, folder: str | os.PathLike, *, trainable: bool = False,
         check_base: bool = True) -> Method:
    """Rebuild the saved method around `base` and load its tensors (no initialisation is re-run).

    `trainable=False` (inference) freezes everything and sets eval mode; `trainable=True`
    makes what the method owns trainable so training can resume where it stopped.
    """
    folder = Path(folder)
    meta = read_meta(folder)
    if check_base:
        verify_base(meta["base"], base, folder)
    config = config_from_dict({k: v for k, v in meta.items() if k not in ("format", "base", "shapes", "frozen", "extra")})
    model = METHODS[config.method](base, config.without_init())
    model.config = config
    try:
        tensors = load_file(folder / WEIGHTS_FILE)
    except FileNotFoundError as e:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} is missing: the checkpoint is incomplete") from e
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} cannot be read ({e}): the file is corrupt; save it again") from e
    frozen, recorded = model.frozen_state_dict(), meta.get("frozen", {})  # no "frozen": written before it was kept
    if "frozen" in meta and set(recorded) != set(frozen):
        raise CheckpointError(f"checkpoint {folder} records frozen tensors {sorted(recorded)[:5]}, this model has "
                              f"{sorted(frozen)[:5]}. Was it saved from a different method config or backbone?")
    expected = {**model.trainable_state_dict(), **{k: frozen[k] for k, v in recorded.items() if v["saved"]}}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {folder} does not fit this model: missing {missing[:5]}"
                              f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}. "
                              "Was it saved from a different method config or backbone?")
    shapes = {**meta.get("shapes", {}), **{k: v["shape"] for k, v in recorded.items()}}
    for key, t in tensors.items():
        if tuple(t.shape) != tuple(expected[key].shape) or list(t.shape) != shapes.get(key, list(t.shape)):
            raise CheckpointError(f"{key}: checkpoint has shape {tuple(t.shape)}, the model expects "
                                  f"{tuple(expected[key].shape)}. Was it saved from a different backbone "
                                  "(hidden size, layers, heads) or method length?")
    check_frozen_state(recorded, tensors, frozen, folder)
    with torch.no_grad():
        for key, t in tensors.items():
            expected[key].copy_(t.to(expected[key].dtype))  # a parameter's or a buffer's own storage
    model.set_trainable(trainable)
    return model.train(trainable)  # inference: eval mode, so dropout is off


def check_frozen_state(recorded: dict, tensors: dict, frozen: dict, folder) -> None:
    """Each frozen tensor must be the one the checkpoint recorded: a saved one must match its fingerprint (else the
    file is corrupt), one the rebuilt method drew again must match it too (else it drew another one here)."""
    for key, entry in recorded.items():
        if entry["saved"] and fingerprint(tensors[key]) != entry["sha256"]:
            raise CheckpointError(f"{key} in {folder / WEIGHTS_FILE} is not the tensor that was saved (its "
                                  "fingerprint differs): the file is corrupt; save the checkpoint again")
        if not entry["saved"] and fingerprint(frozen[key]) != entry["sha256"]:
            raise CheckpointError(f"{key}: the method built another tensor here than the one it was trained with "
                                  "(the checkpoint holds only its fingerprint, and this ptutor, torch or device draws "
                                  "or computes it differently). Load it where it was saved and save it again with "
                                  "the frozen state kept in the checkpoint (e.g. VeraConfig(save_projection=True))")


@dataclass
class Resumed:
    """What load_for_resume gives back; unpacks as `model, optimizer, step = ...`."""

    model: Method
    optimizer: torch.optim.Optimizer
    step: int
    scaler: torch.amp.GradScaler | None = None

    def __iter__(self):
        return iter((self.model, self.optimizer, self.step))


def save_for_resume(model: Method, optimizer: torch.optim.Optimizer, folder, step: int, *,
                    scaler: torch.amp.GradScaler | None = None) -> dict:
    """Everything training needs to continue exactly: owned weights, optimizer state, the CPU and CUDA
    random states, the step, and the fp16 grad scaler's state when there is one."""
    info = save(model, folder)
    state = {"method": model.config.to_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
             "scaler": scaler.state_dict() if scaler is not None else None}
    torch.save(state, Path(folder) / TRAINING_STATE_FILE)
    return info


def load_for_resume(base, folder, *, lr: float | None = None, weight_decay: float = 0.0, head_lr: float | None = None,
                    method: str | None = None, device: str | torch.device | None = None) -> Resumed:
    """Rebuild (model, AdamW optimizer, step[, scaler]) from `save_for_resume`, RNGs where they were.

    Continue with `fit(model, stream, TrainConfig(..., start_step=step), optimizer=optimizer,
    scaler=resumed.scaler)` and a batch stream that skips the `step` batches already seen.
    `method` (e.g. "ptv1"), when given, must be the method that saved the folder. Pass the
    `device` training continues on: the optimizer's state is loaded onto the parameters' device. Give the
    `lr`, `weight_decay` and `head_lr` the run was started with: the optimizer is rebuilt as `fit` built it.
    """
    path = Path(folder) / TRAINING_STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} not found: {folder} holds no training state (was it saved "
                              "with export_inference or checkpoint.save? use save_for_resume)")
    meta = read_meta(folder)
    state = torch.load(path, weights_only=True)
    saved_method = state.get("method", {}).get("method")
    if saved_method != meta["method"] or (method is not None and method != saved_method):
        raise CheckpointError(f"{path} is the training state of method {saved_method!r}, but the folder's weights are "
                              f"method {meta['method']!r}" + (f" and you asked for {method!r}" if method else "")
                              + ": resume only from a folder written by one save_for_resume call.")
    model = load(base, folder, trainable=True)
    if device is not None:
        model.to(device)
    optimizer = make_optimizer(model, lr or model.config.default_lr, weight_decay=weight_decay, head_lr=head_lr)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except ValueError as e:  # another number or size of parameter groups than the saved run's
        raise CheckpointError(f"{path}: the saved optimizer state does not fit this model's parameter groups ({e}): "
                              "resume with the head_lr the run was started with") from None
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    scaler = None
    if state.get("scaler") is not None:
        scaler = torch.amp.GradScaler("cuda")
        scaler.load_state_dict(state["scaler"])
    return Resumed(model, optimizer, state["step"], scaler)
