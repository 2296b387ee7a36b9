"""Save and load what a method trained, the same way for every method.

A checkpoint is a folder with two files:
  ptutor_method.json    method name + its config + tensor shapes + the base preset
  weights.safetensors   the method's trainable_state_dict() (for `ft`, every weight)
Loading rebuilds the method around a base model you pass in, checks every key and
shape, and says exactly what is wrong when the folder does not fit.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .methods import Method, config_from_dict, inject

CONFIG_FILE = "ptutor_method.json"
WEIGHTS_FILE = "weights.safetensors"


class CheckpointError(RuntimeError):
    """The checkpoint folder is missing, corrupt, or does not fit the model."""


def save(model: Method, folder: str | os.PathLike, *, extra: dict | None = None) -> dict:
    """Write the method's trainable tensors and config; return a summary (keys, bytes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.trainable_state_dict().items()}
    if not tensors:
        raise CheckpointError("the model has no trainable tensors to save: was it loaded for inference only?")
    save_file(tensors, folder / WEIGHTS_FILE)
    meta = {
        **model.config.to_dict(),
        "base_preset": getattr(model.base.config, "ptutor_preset", None),
        "base_class": type(model.base).__name__,
        "shapes": {k: list(v.shape) for k, v in tensors.items()},
        "extra": extra or {},
    }
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return {"keys": len(tensors), "params": sum(v.numel() for v in tensors.values()),
            "bytes": (folder / WEIGHTS_FILE).stat().st_size}


def read_meta(folder: str | os.PathLike) -> dict:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} not found: {folder} is not a ptutor checkpoint (save one with ptutor.checkpoint.save)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}): the checkpoint is corrupt; save it again") from e


def load(base: torch.nn.Module, folder: str | os.PathLike, *, trainable: bool = False) -> Method:
    """Rebuild the saved method around `base` and load its tensors.

    `trainable=False` (inference) freezes everything; `trainable=True` leaves the
    method's own parameters trainable so training can resume where it stopped.
    """
    folder = Path(folder)
    meta = read_meta(folder)
    shapes = meta.pop("shapes", {})
    for key in ("base_preset", "base_class", "extra"):
        meta.pop(key, None)
    model = inject(base, config_from_dict(meta))
    try:
        tensors = load_file(folder / WEIGHTS_FILE)
    except FileNotFoundError as e:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} is missing: the checkpoint is incomplete") from e
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} cannot be read ({e}): the file is corrupt; save it again") from e
    expected = model.trainable_state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {folder} does not fit this model: missing {missing[:5]}"
                              f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}. "
                              "Was it saved from a different method config or backbone?")
    for key, t in tensors.items():
        if tuple(t.shape) != tuple(expected[key].shape) or list(t.shape) != shapes.get(key, list(t.shape)):
            raise CheckpointError(f"{key}: checkpoint has shape {tuple(t.shape)}, the model expects "
                                  f"{tuple(expected[key].shape)}. Was it saved from a different backbone "
                                  "(hidden size, layers, heads) or method length?")
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for key, t in tensors.items():
            target = params.get(key, buffers.get(key))
            target.copy_(t.to(target.dtype))
    trained = set(expected)
    for name, p in model.named_parameters():
        p.requires_grad_(trainable and name in trained)
    return model.train(trainable)  # inference: eval mode, so dropout is off
