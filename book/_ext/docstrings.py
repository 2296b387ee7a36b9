"""Read ptutor's docstrings the way they are written: an indented block after a line that ends in ":" is
code (a call, a shell command, a formula), as in Markdown, and `single backquotes` are code (`default_role:
code` in _config.yml). Read as plain reStructuredText the block became a quotation, its spaces collapsed and
its `--flags` set with typographic dashes, so a command copied from the API page failed. A block that starts
with a list item stays a list."""
from __future__ import annotations

import re

LIST_ITEM = re.compile(r"\s*(?:[*+-]|\d+[.)])\s")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def mark_code_blocks(lines: list[str]) -> list[str]:
    """The docstring's lines with "text:" before an indented, non-list block turned into "text::" (a
    literal block; a blank line is put in where the block followed at once). Blocks already literal stay."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if not line.rstrip().endswith(":"):
            continue
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j == len(lines) or _indent(lines[j]) <= _indent(line) or LIST_ITEM.match(lines[j]):
            continue
        if not line.rstrip().endswith("::"):
            out[-1] = line.rstrip() + ":"
        if j == i:
            out.append("")
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > _indent(line)):
            out.append(lines[i])  # the block itself, unchanged (a "def f():" inside it is code)
            i += 1
    return out


def _process(app, what, name, obj, options, lines):
    lines[:] = mark_code_blocks(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
