"""Every chapter's full-scale GPU cell runs here on a CPU, in stand-in mode (ptutor.book.standin): the cell's own code,
with tiny random models of the same families, a few sentences of the book's real data, two steps, under bf16 autocast.
A cell that skips, names an undefined variable or calls an API wrongly fails here, not on a reader's first GPU."""
import json
from pathlib import Path

import pytest
import torch

from ptutor.book.gpu_cells import find_cells, run_cell
from ptutor.book.notebook import gpu_cell

EXPECTED = 10  # the chapters' GPU cells today: a cell removed (or no longer found) must be noticed
CELLS = find_cells()
RUN_KEYS = {"task", "method", "model", "metric", "primary", "trainable_params", "total_params", "steps",
            "step_seconds", "tokens_per_second", "train_seconds", "eval_seconds", "peak_mb", "lr", "batch_size",
            "train_items", "budget", "seed", "device", "config", "versions", "hardware", "started_at", "finished_at"}


def test_every_chapter_has_its_gpu_cells():
    assert len(CELLS) >= EXPECTED, [c.name for c in CELLS]
    assert {Path(c.notebook).name[:2] for c in CELLS} == {f"{i:02d}" for i in range(8)}


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.name)
def test_the_gpu_cell_runs_in_stand_in_mode_and_logs_its_runs(cell, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # tiny stand-ins, even on a GPU machine
    text = run_cell(cell, logs=tmp_path)  # any error propagates; "Skipped" is an error
    assert "Stand-in mode" in text and "stand-in: " in text, text  # the stand-in says so, and names the backbone
    rows = [json.loads(line) for log in tmp_path.glob("*.jsonl") for line in log.read_text().splitlines()]
    assert rows, f"{cell.name} logged no run"
    for row in rows:  # the runner's schema, whoever wrote the row, and a device named
        assert RUN_KEYS <= set(row), sorted(RUN_KEYS - set(row))
        assert row["steps"] >= 1 and row["device"].startswith(("cpu", "cuda"))


def test_without_the_switch_every_gpu_cell_skips_with_its_reason(monkeypatch, capsys):
    monkeypatch.delenv("PTUTOR_STANDIN", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    for cell in CELLS:
        exec(compile(cell.source, cell.name, "exec"), {"__name__": "__main__"})
        out = capsys.readouterr().out
        assert "Skipped: no CUDA GPU here." in out, (cell.name, out)
        assert "stand-in" not in out.split("Skipped")[0], (cell.name, out)  # nothing ran before the skip


def test_in_stand_in_mode_a_cell_never_skips_and_raises_its_errors(monkeypatch, capsys):
    monkeypatch.setenv("PTUTOR_STANDIN", "1")

    def offline():
        raise OSError("We couldn't connect to 'https://huggingface.co'")
    with pytest.raises(OSError, match="couldn't connect"):  # without the switch this would be a skip
        gpu_cell(offline, what="A cell.")
    assert "Skipped" not in capsys.readouterr().out
    assert gpu_cell(lambda: torch.is_autocast_enabled("cpu")) is True  # on a CPU: under bf16 autocast
