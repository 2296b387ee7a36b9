"""The chapters' full-scale GPU cells, found and run outside Jupyter: each in a fresh namespace, from the book's root
(as the chapters run), in stand-in mode (ptutor.book.standin), so that any machine checks the code a reader's GPU
runs. Without a GPU a stand-in cell trains tiny models for a few steps; on CUDA, the offline backbones.

    python -m ptutor.book.gpu_cells                 # run every GPU cell, one log per cell (make gpu-check)
    python -m ptutor.book.gpu_cells --list          # which cells there are
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .standin import LOGS, ROOT, SWITCH

CHAPTERS = ROOT / "chapters"
MARK = "gpu_cell("


@dataclass
class GpuCell:
    notebook: str  # e.g. chapters/03_p_tuning_v2_ner.ipynb
    cell_id: str
    source: str

    @property
    def name(self) -> str:
        return f"{Path(self.notebook).stem}:{self.cell_id}"


def find_cells(folder: str | os.PathLike = CHAPTERS) -> list[GpuCell]:
    """Every code cell of the chapters that calls `gpu_cell(`, in chapter order."""
    cells = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and MARK in source:
                cells.append(GpuCell(str(path.relative_to(Path(folder).parent)), cell.get("id", "?"), source))
    return cells


def run_cell(cell: GpuCell, logs: str | os.PathLike | None = None) -> str:
    """Execute one GPU cell in stand-in mode in a fresh namespace, from the book's root; return what it printed.
    Any error propagates; a cell that prints "Skipped" is an error too (stand-in mode never skips)."""
    env = {SWITCH: "1", **({LOGS: str(logs)} if logs else {})}
    saved = {k: os.environ.get(k) for k in env}
    cwd, out = os.getcwd(), io.StringIO()
    os.environ.update(env)
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(cell.source, f"<{cell.name}>", "exec"), {"__name__": "__main__"})
    finally:
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = out.getvalue()
    if "Skipped" in text:
        raise RuntimeError(f"{cell.name} skipped in stand-in mode:\n{text}")
    return text


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m ptutor.book.gpu_cells", description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", default=None, help="folder for the per-cell results logs (default: "
                        "data/results/gpu on CUDA; runs/gpu-cells-cpu elsewhere: a CPU log is no GPU log)")
    parser.add_argument("--only", default=None, help="run only cells whose name (chapter:cell id) contains this")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    cells = [c for c in find_cells() if args.only is None or args.only in c.name]
    if args.list:
        print("\n".join(c.name for c in cells))
        return 0
    logs = Path(args.logs or (ROOT / "data" / "results" / "gpu" if torch.cuda.is_available()
                              else ROOT / "runs" / "gpu-cells-cpu"))
    fresh = Path(tempfile.mkdtemp(prefix="ptutor-gpu-cells-"))  # this run's logs; they replace the old ones at the end
    failed, started = [], time.perf_counter()
    for cell in cells:
        t0 = time.perf_counter()
        print(f"=== {cell.name}", flush=True)
        try:
            print(run_cell(cell, fresh), end="", flush=True)
            print(f"--- {cell.name}: ok in {time.perf_counter() - t0:.0f} s", flush=True)
        except Exception:  # report every cell, then fail
            failed.append(cell.name)
            traceback.print_exc()
            print(f"--- {cell.name}: FAILED after {time.perf_counter() - t0:.0f} s", flush=True)
    logs.mkdir(parents=True, exist_ok=True)
    for path in sorted(fresh.glob("*.jsonl")):
        shutil.copy(path, logs / path.name)
        print(f"log: {logs / path.name} ({len(path.read_text().splitlines())} runs)")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (stand-in: tiny models)"
    print(f"{len(cells) - len(failed)} of {len(cells)} GPU cells ran on {device} in "
          f"{(time.perf_counter() - started) / 60:.1f} min" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed or not cells else 0


if __name__ == "__main__":
    sys.exit(main())
