"""Text and JSON-lines files: a results log or a data file is UTF-8 text, one JSON object a line; every error
names the file and the line."""
from __future__ import annotations

import json
import os
from pathlib import Path


def text_lines(path: str | os.PathLike):
    """Yield (line number, line) of a UTF-8 text file; a line that is not UTF-8 is an error naming file and line."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: not UTF-8 text ({e.reason} at byte {e.start} of the line): is this "
                                 "the right file? Save it as UTF-8.") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """One dict per non-blank line; a broken line is an error that names the file and line."""
    rows = []
    for n, line in text_lines(path):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not a JSON line ({e})") from None
    return rows


def write_jsonl(rows: list[dict], path: str | os.PathLike) -> None:
    """Write rows as JSON lines (keys sorted, UTF-8), replacing the file; `append_jsonl` adds to a log."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


def append_jsonl(row: dict, path: str | os.PathLike) -> None:
    """Add one line to a JSON-lines log (e.g. a results log), creating its folder if needed. The line is
    written under an exclusive lock where the OS has one, so parallel runs sharing a log never interleave."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        try:
            import fcntl
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        except ImportError:  # Windows: no flock; a single short write is still one append
            pass
        f.write(json.dumps(row) + "\n")
