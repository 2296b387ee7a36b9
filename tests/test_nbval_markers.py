"""Every NBVAL_ comment in a notebook is a marker nbval really reads.

nbval (0.11, `find_comment_markers` in nbval/plugin.py) takes a code cell's line as a marker only when
the line, stripped, starts with `#` and what follows the `#`s, stripped, is exactly a marker name. So
`# NBVAL_IGNORE_OUTPUT  (why...)` or `# NBVAL_IGNORE_OUTPUT: why...` silently does nothing and the
output is compared after all. Write the marker alone on its line and the reason on the next:

    # NBVAL_IGNORE_OUTPUT
    # generated text differs by a token between CPUs
"""
import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_SKIP", "NBVAL_RAISES_EXCEPTION"}
MENTION = re.compile(r"#.*NBVAL_")  # a comment, whole-line or trailing, that names an nbval marker


def is_marker(line: str) -> bool:
    """nbval's rule: the stripped line starts with '#', and the rest, '#'s and spaces stripped, is a marker."""
    line = line.strip()
    return line.startswith("#") and line.lstrip("#").strip() in MARKERS


def notebooks() -> list[Path]:
    """Every notebook of the repository, outside hidden folders (.venv, .ipynb_checkpoints), _build and node_modules."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_build")) and d != "node_modules")
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".ipynb")]
    return found


def bad_markers(nb: Path) -> list[str]:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    bad = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for number, line in enumerate(source.splitlines(), 1):
            if MENTION.search(line) and not is_marker(line):
                bad.append(f"{nb.relative_to(ROOT)}: cell {index}, line {number}: {line.strip()!r}")
    return bad


def test_the_chapters_are_found():
    assert any(p.parent.name == "chapters" for p in notebooks()), "no notebook found under chapters/"


def test_every_nbval_comment_is_a_marker_nbval_reads():
    bad = [line for nb in notebooks() for line in bad_markers(nb)]
    assert not bad, (
        "nbval ignores these comments (a marker must stand alone on its line; put the reason on the next line, "
        "e.g. '# NBVAL_IGNORE_OUTPUT' then '# why'):\n" + "\n".join(bad))


CASES = ["# NBVAL_IGNORE_OUTPUT", "  # NBVAL_SKIP  ", "#NBVAL_CHECK_OUTPUT", "## NBVAL_RAISES_EXCEPTION",
         "# NBVAL_IGNORE_OUTPUT  (the reason)", "# NBVAL_IGNORE_OUTPUT: the reason", "# NBVAL_IGNORE_OUTPUT.",
         "x = 1  # NBVAL_SKIP", "# nbval_skip", "# NBVAL_SKIPPED", "# NBVAL IGNORE OUTPUT"]


@pytest.mark.parametrize("line", CASES)
def test_the_rule_is_nbvals(line):
    """The check agrees with nbval itself on markers written well and badly."""
    plugin = pytest.importorskip("nbval.plugin", reason="nbval is in requirements.txt")
    names = {k for k in plugin.comment_markers if k.startswith("NBVAL_")}
    assert names == MARKERS, f"nbval's markers changed: {sorted(names)}"
    assert is_marker(line) == bool(list(plugin.find_comment_markers(line))), line
