"""templates/reader-ci runs unchanged in another repository: copied with a notebook into a temporary git repository
of another name (notebooks in folders of other names, no Makefile, no tests/, no constraints.txt of its own), the
commands of its workflow's `run:` steps run there as GitHub would run them, and nbval passes a right notebook and
fails a changed one.

Pointed at this environment, not the network: GitHub's runner installs torch from PyPI's CPU index and ptutor from
the book's repository; this machine may reach neither. So the install step runs with PYTHON set to a fresh virtual
environment that sees this environment's packages (a .pth file), pip told to use no index, PTUTOR=ptutor (the
ptutor installed here) and CONSTRAINTS set to this checkout's constraints.txt, and TORCH_INDEX left out. pip then
resolves the template's requirement files under the constraints for real, and must find every one satisfied: the
test checks that the step installed nothing.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import site
import subprocess
import venv
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "templates" / "reader-ci"
WORKFLOW = TEMPLATE / ".github" / "workflows" / "notebooks.yml"

# the notebook the test writes into the other repository: one stored output exact (a parameter count), one a
# timing (equal only after ci/nbval_sanitize.cfg), one ignored under the marker
CELLS = [
    "import time\n"
    "from ptutor.backbones import load_backbone\n"
    "from ptutor.methods import LoraConfig, inject",
    "base, _ = load_backbone(\"tiny-bert\", \"token-classification\", num_labels=3, with_tokenizer=False)\n"
    "model = inject(base, LoraConfig(r=2))\n"
    "print(\"trainable:\", sum(p.numel() for p in model.parameters() if p.requires_grad))",
    "start = time.perf_counter()\n"
    "model(input_ids=base.dummy_inputs[\"input_ids\"])\n"
    "print(f\"forward took {time.perf_counter() - start:.4f} s\")",
    "# NBVAL_IGNORE_OUTPUT\n"
    "print(time.time())",
]


def run_commands(wf: dict) -> list[str]:
    """The `run:` scripts of every step of every job, in order."""
    return [step["run"] for job in wf["jobs"].values() for step in job.get("steps", []) if "run" in step]


def stored_outputs(cells: list[str]) -> list[str]:
    """What each cell prints when run here, in order, in one namespace: the outputs a notebook stores."""
    namespace, outputs = {}, []
    for source in cells:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(source, "cell", "exec"), namespace)
        outputs.append(printed.getvalue())
    return outputs


def write_notebook(path: Path, cells: list[str], outputs: list[str]) -> None:
    nb_cells = []
    for i, (source, out) in enumerate(zip(cells, outputs)):
        nb_cells.append({"cell_type": "code", "id": f"c{i:07x}", "metadata": {}, "execution_count": i + 1,
                         "source": source.splitlines(keepends=True),
                         "outputs": [{"output_type": "stream", "name": "stdout", "text": out}] if out else []})
    nb = {"cells": nb_cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1) + "\n")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def other_repo(tmp_path_factory):
    """The template and two notebooks (a right one, and a copy with one stored output changed) in a git repository
    called `lab-notes`, plus a Python that sees this environment's packages (and has nothing of its own)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the template finds notebooks with git ls-files")
    tmp = tmp_path_factory.mktemp("reader-ci")
    repo = tmp / "lab-notes"
    shutil.copytree(TEMPLATE, repo)
    outputs = stored_outputs(CELLS)
    write_notebook(repo / "experiments" / "lora_check.ipynb", CELLS, outputs)
    changed = outputs[:1] + [outputs[1].replace(":", ": 1")] + outputs[2:]  # "trainable: 1 1219": a wrong count
    write_notebook(repo / "drafts" / "lora_changed.ipynb", CELLS, changed)
    (repo / "experiments" / ".ipynb_checkpoints").mkdir()
    shutil.copy(repo / "experiments" / "lora_check.ipynb", repo / "experiments" / ".ipynb_checkpoints" / "x.ipynb")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "notes")

    overlay = tmp / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(overlay)
    purelib = next(overlay.glob("lib/python3*/site-packages"))
    here = site.getsitepackages()[0]  # this environment's packages; addsitedir also reads their .pth files
    (purelib / "this_environment.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "TORCH_INDEX")}
    env.update(PYTHON=str(overlay / "bin" / "python"), PIP_NO_INDEX="1", PTUTOR="ptutor",
               CONSTRAINTS=str(ROOT / "constraints.txt"))
    return repo, env, purelib


def run_step(script: str, repo: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-c", script], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_template_names_nothing_of_the_book_repository():
    """No chapter, folder or tool of this repository in the template: it must run where none of them exist."""
    texts = {p.relative_to(TEMPLATE): p.read_text() for p in TEMPLATE.rglob("*") if p.is_file()}
    for path, text in texts.items():
        if path.name == "README.md":
            continue  # the copy instruction names templates/reader-ci
        found = re.findall(r"chapters/|[\w-]+\.ipynb\b|\bmake\b|Makefile|tests/|\.venv|requirements-run",
                           text)
        assert not found, f"{path} names the book repository's {found}"


def test_the_template_sanitizes_as_the_book_does_and_its_requirements_are_pinned():
    assert (TEMPLATE / "ci" / "nbval_sanitize.cfg").read_text() == (ROOT / "tests" / "nbval_sanitize.cfg").read_text()
    pinned = {canonicalize_name(l.split("==")[0]) for l in (ROOT / "constraints.txt").read_text().splitlines()
              if "==" in l and not l.startswith("#")}
    names = []
    for name in ("requirements.txt", "requirements-models.txt"):
        lines = (TEMPLATE / "ci" / name).read_text().splitlines()
        names += [canonicalize_name(Requirement(l).name) for l in lines if l.strip() and not l.startswith("#")]
    assert not set(names) - pinned, f"not pinned by constraints.txt: {set(names) - pinned}"
    # a chapter of the book runs with them: everything requirements-run.txt installs is there, or comes with ptutor
    import tomllib

    ptutor_deps = {canonicalize_name(Requirement(r).name)
                   for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    run = {canonicalize_name(Requirement(l.split(" #")[0]).name)
           for l in (ROOT / "requirements-run.txt").read_text().splitlines() if l.strip() and not l.startswith("#")}
    models = {canonicalize_name(Requirement(l).name)
              for l in (ROOT / "requirements-models.txt").read_text().splitlines() if l.strip() and not l.startswith("#")}
    assert not (run | models) - set(names) - ptutor_deps, (run | models) - set(names) - ptutor_deps


def test_the_workflows_steps_run_in_another_repository_passing_a_right_notebook_and_failing_a_changed_one(other_repo):
    """Both notebooks in one run (each in an xdist worker of its own, so it costs one notebook's time): the right
    one passes every cell, the copy whose stored count was changed fails that cell and only that one."""
    repo, env, purelib = other_repo
    wf = yaml.safe_load(WORKFLOW.read_text())
    commands = run_commands(wf)
    assert commands == ["bash ci/notebooks.sh install", "bash ci/notebooks.sh test"], commands
    install, test = commands

    before = sorted(p.name for p in purelib.iterdir())
    done = run_step(install, repo, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ptutor from: ptutor | versions from: " in done.stdout
    assert sorted(p.name for p in purelib.iterdir()) == before, "the install step installed something"

    done = run_step(test, repo, env)
    out = done.stdout + done.stderr
    assert "nbval on 2 notebook(s): drafts/lora_changed.ipynb experiments/lora_check.ipynb" in out, out[-2000:]
    passed = set(re.findall(r"PASSED (\S+::ipynb::Cell \d+)", out))
    failed = set(re.findall(r"FAILED (\S+::ipynb::Cell \d+)", out))
    assert passed >= {f"experiments/lora_check::ipynb::Cell {i}" for i in range(len(CELLS))}, out[-4000:]
    assert failed == {"drafts/lora_changed::ipynb::Cell 1"}, out[-4000:]
    assert done.returncode == 1 and f"1 failed, {2 * len(CELLS) - 1} passed" in out, out[-3000:]
