"""Every "section N" a chapter's prose points to exists: in the same chapter, or in the chapter it names
("chapter 6, section 9", "chapter 3 (section 4c)"). A renumbered section cannot leave a stale pointer."""
import json
import re
from pathlib import Path

CHAPTERS = sorted((Path(__file__).resolve().parent.parent / "chapters").glob("[0-9][0-9]_*.ipynb"))
HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*[a-z]?)[. ]", re.M)
CROSS = re.compile(r"[Cc]hapter (\d),?\s*\(?\s*sections? (\d+(?:\.\d+)*[a-z]?)\b")
LOCAL = re.compile(r"\bsections? (\d+(?:\.\d+)*[a-z]?)\b")


def markdown(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


def test_every_section_reference_points_to_a_section_that_exists():
    texts = {int(p.name[:2]): markdown(p) for p in CHAPTERS}
    sections = {n: {m.group(1) for t in md for m in HEADING.finditer(t)} for n, md in texts.items()}
    bad = []
    for n, md in texts.items():
        for t in md:
            cross_spans = []
            for m in CROSS.finditer(t):
                cross_spans.append(m.span(2))
                if m.group(2) not in sections[int(m.group(1))]:
                    bad.append(f"chapter {n}: {m.group(0)!r} (chapter {m.group(1)} has {sorted(sections[int(m.group(1))])})")
            for m in LOCAL.finditer(t):
                if any(a <= m.start(1) < b for a, b in cross_spans) or re.search(r"\d, $", t[:m.start()]):
                    continue  # a cross-chapter reference (checked above), or "sections 2, 3"
                if m.group(1) not in sections[n]:
                    bad.append(f"chapter {n}: {t[max(0, m.start() - 40):m.end()]!r} (it has {sorted(sections[n])})")
    assert not bad, "\n".join(bad)
