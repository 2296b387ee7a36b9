"""Write constraints.txt: the exact versions the book was tested with, read from the environment that ran it.

    .venv/bin/python book/freeze_constraints.py            # rewrite constraints.txt from this environment
    .venv/bin/python book/freeze_constraints.py --check    # exit 1 and say what differs, writing nothing

The roots are ptutor's own dependencies (with its `book` extra) and the requirement files the Makefile installs;
every package they need, down to the last dependency, is pinned to the version installed here (the offline
backbones of requirements-models.txt too, without their dependencies, which are never installed). pyproject.toml
gives the ranges a project may use; this file gives the one set that was tested:
`pip install ptutor -c constraints.txt` (tests/test_wheel.py does, in a clean virtual environment).
"""
from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "constraints.txt"
REQUIREMENT_FILES = ["requirements.txt"]  # it includes requirements-run.txt
NO_DEPS_FILES = ["requirements-models.txt"]  # installed with --no-deps: pinned, their dependencies not followed
HEADER = """\
# The exact set the book and its tests were run with (Python {python}, Linux x86_64). Written by
# book/freeze_constraints.py from the environment `make install` made; do not edit by hand.
#   pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu   (or pip's default index)
#   pip install "ptutor @ git+https://github.com/ptutor-book/ptutor" -c constraints.txt
# pyproject.toml allows a range of each direct dependency; this file pins one tested point of it.
"""


def file_requirements(path: Path) -> list[Requirement]:
    """The requirements of a pip requirements file, following `-r other.txt`."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("-r "):
            found += file_requirements(path.parent / line[3:].strip())
        elif line and not line.startswith(("#", "-")):
            found.append(Requirement(line))
    return found


def roots() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    reqs += [Requirement(r) for extra in project.get("optional-dependencies", {}).values() for r in extra]
    for name in REQUIREMENT_FILES:
        reqs += file_requirements(ROOT / name)
    return reqs


def closure(start: list[Requirement], follow: bool = True) -> dict[str, str]:
    """{distribution name: installed version} for every package the requirements need here (markers evaluated,
    extras followed; `follow=False`: the requirements alone). A needed package that is not installed is an error:
    the environment is not the tested one."""
    pinned: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(r, "") for r in start]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        key = canonicalize_name(req.name)
        for wanted in [""] + sorted(req.extras):
            if (key, wanted) in seen:
                continue
            seen.add((key, wanted))
            try:
                dist = metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                sys.exit(f"{req.name} is needed ({req}) but not installed here: run `make install` first")
            pinned[dist.metadata["Name"]] = re.sub(r"\+.*", "", dist.version)  # 2.13.0+cpu: any build of 2.13.0
            todo += [(Requirement(r), wanted) for r in (dist.requires or []) if follow]
    return pinned


def render() -> str:
    pins = closure(roots())
    pins.update(closure([r for name in NO_DEPS_FILES for r in file_requirements(ROOT / name)], follow=False))
    pins.pop("ptutor", None)
    lines = [f"{name}=={version}" for name, version in sorted(pins.items(), key=lambda kv: kv[0].lower())]
    python = ".".join(map(str, sys.version_info[:2]))
    return HEADER.format(python=python) + "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv[1:]:
        old = OUT.read_text() if OUT.exists() else ""
        if old != text:
            removed = sorted(set(old.splitlines()) - set(text.splitlines()))
            added = sorted(set(text.splitlines()) - set(old.splitlines()))
            sys.exit(f"constraints.txt differs from this environment:\n  only in the file: {removed}\n"
                     f"  only here: {added}\nRewrite it: python book/freeze_constraints.py")
        print("constraints.txt matches this environment")
    else:
        OUT.write_text(text)
        print(f"wrote {OUT.relative_to(ROOT)}: {text.count('==')} pinned packages")
