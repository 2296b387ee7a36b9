"""ruff finds nothing in the code `make lint` checks, and the pre-commit hook runs the ruff pinned in requirements.txt.

`make lint` runs in .ci/run; this test runs the same check inside `make test`, so the GitHub workflow
(which runs only the README's test command) lints too. Skips, saying how to install it, without ruff.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LINTED = ["ptutor", "tests", "book", "data", "standalone"]  # as the Makefile's lint target


def ruff_pin() -> str:
    pin = re.search(r"^ruff==([\w.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin, "requirements.txt does not pin ruff (ruff==X.Y.Z)"
    return pin.group(1)


def test_lint_target_checks_what_this_test_checks():
    rule = re.search(r"^lint:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert rule and rule.group(1).split()[-len(LINTED):] == LINTED, rule and rule.group(1)


def test_pre_commit_hook_uses_the_pinned_ruff():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    ruff = [r for r in config["repos"] if r["repo"].endswith("/ruff-pre-commit")]
    assert ruff, ".pre-commit-config.yaml has no ruff-pre-commit hook"
    assert ruff[0]["rev"] == f"v{ruff_pin()}", f"hook rev {ruff[0]['rev']}, requirements.txt ruff=={ruff_pin()}"


def test_ruff_finds_nothing():
    beside_python = Path(sys.executable).with_name("ruff")
    exe = str(beside_python) if beside_python.is_file() else shutil.which("ruff")
    if exe is None:
        pytest.skip(f"ruff is not installed: pip install ruff=={ruff_pin()} (requirements.txt)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()[-1]
    proc = subprocess.run([exe, "check", "--no-cache", *LINTED], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"ruff {version} (pinned: {ruff_pin()}) found problems; see `make lint`:\n{proc.stdout}{proc.stderr}"
