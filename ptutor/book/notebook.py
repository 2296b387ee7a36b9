"""Small conveniences for the chapters: a setup cell and `show`, which prints the
ptutor source a chapter teaches, so the book shows the code that runs (never a copy)."""
from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path

import torch

from ..measure import versions
from ..train import pick_device, seed_everything
from .figures import label_inline_figures


def setup(seed: int = 0, *, threads: int | None = None) -> torch.device:
    """Seed everything, quiet library chatter, print versions and the device; return the device. In a notebook,
    figures then carry the size of their smallest text (ptutor.book.figures), which the book's test checks."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    # peft reads transformers' deprecated `is_gradient_checkpointing` alias; the warning is not ours to fix
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if threads:
        torch.set_num_threads(threads)
    seed_everything(seed)
    device = pick_device()
    note = _import_bitsandbytes()
    label_inline_figures()
    print(" | ".join(f"{k} {v}" for k, v in versions().items()))
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else "")
          + f", torch threads: {torch.get_num_threads()}")
    if note:
        print(note)
    return device


# What bitsandbytes logs when it is imported on a CPU with AVX-512 BF16 and the optional `kernels` package (which
# fetches a fused 4-bit kernel from the Hugging Face hub) is missing; it then uses its own CPU kernel.
BNB_KERNEL_MESSAGE = "Failed to load CPU gemm_4bit_forward from kernels-community"


def _import_bitsandbytes() -> str | None:
    """Import bitsandbytes now (peft imports it anyway) and turn its one known import-time message into a line
    that says why it is harmless; any other message passes through. None if there was nothing to say."""
    import logging

    caught = []

    def known_message(record):
        if record.getMessage().startswith(BNB_KERNEL_MESSAGE):
            caught.append(record)
            return False
        return True

    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    logger.addFilter(known_message)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return None
    finally:
        logger.removeFilter(known_message)
    if not caught:
        return None
    return ("bitsandbytes: its optional fused 4-bit CPU kernel (the `kernels` package, fetched from the Hugging Face "
            "hub) is not installed, so 4-bit layers use its built-in CPU kernel: same results, no action needed")


def source_of(obj) -> str:
    """`# defined in ptutor/<file>.py` header + the source of a ptutor function, class or module."""
    obj = inspect.unwrap(obj)  # a decorated function: show the function, not the decorator's wrapper
    path = Path(inspect.getsourcefile(obj))
    root = Path(__file__).resolve().parents[2]  # the folder that holds the ptutor package
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        rel = path.name
    return f"# defined in {rel}\n" + inspect.getsource(obj)


class _Source:
    """Displays as highlighted Python in Jupyter, and as plain text elsewhere (and in nbval)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self):
        return self.text

    def _repr_markdown_(self):
        return f"```python\n{self.text}\n```"


def show(*objs) -> _Source:
    """Show the source of ptutor objects in a notebook cell (the code that runs, not a copy)."""
    return _Source("\n\n".join(source_of(o).rstrip() for o in objs))


def gpu_cell(fn, *args, what: str = "", **kwargs):
    """Run a chapter's full-scale GPU cell `fn(*args, **kwargs)` and return its result.

    Without CUDA, or when the hub cannot be reached (download errors are OSError,
    ConnectionError or TimeoutError; load_backbone turns them into ArtifactError), print why it
    is skipped and return None. Any other error is a bug and is raised, not hidden behind
    "no network". In stand-in mode (`PTUTOR_STANDIN=1`, ptutor.book.standin) it never skips: the cell runs
    with stand-ins for the hub models and data (on a CPU under bf16 autocast, as CUDA training would) and every
    error is raised.
    """
    from ..backbones import ArtifactError
    from . import standin

    if standin.active():
        print(f"Stand-in mode ({standin.describe()}). {what}".rstrip())
        if standin.on_cpu():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fn(*args, **kwargs)
        return fn(*args, **kwargs)
    if not torch.cuda.is_available():
        print(f"Skipped: no CUDA GPU here. {what}".rstrip() + " On Colab: Runtime > Change runtime type > GPU.")
        return None
    try:
        return fn(*args, **kwargs)
    except (OSError, ConnectionError, TimeoutError, ArtifactError) as e:
        print(f"Skipped: a hub model or data set could not be loaded ({type(e).__name__}: {str(e)[:300]})")
        return None
