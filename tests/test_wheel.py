"""The wheel works outside the repository: built from this checkout, installed into a folder of its own, and the
README's "Use ptutor in your project" example run from another directory against it."""
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The Python block of the README's "Use ptutor in your project" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use ptutor in your project", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel built from the checkout and installed (no dependencies: they are this environment's) into a folder
    that is put first on the path, so `import ptutor` finds the wheel's copy, not the editable checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(tmp / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    if built.returncode:
        pytest.skip(f"cannot build a wheel here: {built.stderr[-300:]}")
    wheel = next((tmp / "dist").glob("ptutor-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(tmp / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return wheel, tmp / "site"


def test_the_wheel_holds_the_package_and_its_widget_scripts_and_nothing_of_the_book(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "ptutor/methods/lora.py" in names and "ptutor/book/kv_explorer.mjs" in names
    assert not [n for n in names if n.startswith(("data/", "chapters/", "tests/", "book/"))]


def test_the_readme_example_runs_from_another_folder_against_the_installed_wheel(installed, tmp_path):
    _, site = installed
    (tmp_path / "example.py").write_text("import ptutor, sys\nprint('ptutor from', ptutor.__file__)\n"
                                         + readme_example())
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"ptutor from {site}" in done.stdout  # the wheel's copy, not the checkout
    assert "reloaded equal: True" in done.stdout
    assert "generated ids: [100, 101, 102, 103" in done.stdout, done.stdout
    assert (tmp_path / "my-lora").is_dir()
