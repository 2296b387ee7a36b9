"""The wheel works outside the repository: built from this checkout, installed the way a reader installs it, and
the README's "Use ptutor in your project" example run from another directory against it.

The install is a clean virtual environment (no system site packages) where pip resolves the wheel's dependencies
under constraints.txt, the exact set the book was tested with: torch first, as the README says, then the wheel. It
needs a package index and takes a minute or two here (pip's downloads and unpacking torch; --no-compile keeps its
CPU time to about 25 s). Without an index the wheel goes into a folder of its own instead, on this environment's
packages, so the example still runs against the wheel's copy of ptutor; the checks of the clean install skip and
say why.
"""
import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
NO_INDEX = ("No matching distribution", "Could not find a version", "Failed to establish a new connection",
            "Temporary failure in name resolution", "Network is unreachable")


def readme_example() -> str:
    """The Python block of the README's "Use ptutor in your project" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use ptutor in your project", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def build_wheel(folder: Path) -> Path:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(folder), str(ROOT)], capture_output=True, text=True, timeout=300)
    if built.returncode:
        pytest.skip(f"cannot build a wheel here: {built.stderr[-300:]}")
    return next(folder.glob("ptutor-*.whl"))


def pins() -> dict[str, str]:
    """{canonical name: version} of constraints.txt."""
    lines = [l.strip() for l in CONSTRAINTS.read_text().splitlines() if l.strip() and not l.startswith("#")]
    return {canonicalize_name(name): version for name, version in (l.split("==") for l in lines)}


# ----------------------------------------------------------------------------- a clean install, as a reader makes it
def test_the_direct_dependencies_are_ranges_that_hold_the_pinned_versions():
    """pyproject.toml: each dependency has a lower bound and an upper bound below the next major release, and the
    version constraints.txt pins lies inside it (the tested set is one the ranges allow)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins()
    for line in project["dependencies"] + project["optional-dependencies"]["book"]:
        req = Requirement(line)
        ops = {s.operator for s in req.specifier}
        assert ops == {">=", "<"} or ops == {"=="}, f"{line}: give a range `>=tested,<next major` (or an exact pin)"
        upper = [s.version for s in req.specifier if s.operator == "<"]
        lower = [s.version for s in req.specifier if s.operator == ">="]
        if upper:
            major = int(lower[0].split(".")[0])
            assert upper[0] == str(major + 1), f"{line}: the upper bound should be the next major, <{major + 1}"
        assert canonicalize_name(req.name) in pinned, f"constraints.txt does not pin {req.name}"
        assert req.specifier.contains(pinned[canonicalize_name(req.name)], prereleases=True), (
            f"constraints.txt pins {req.name}=={pinned[canonicalize_name(req.name)]}, outside {line}")


def test_the_constraints_are_this_environments_versions():
    """constraints.txt is what book/freeze_constraints.py writes from the environment the tests run in."""
    done = subprocess.run([sys.executable, str(ROOT / "book" / "freeze_constraints.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def clean_install(wheel: Path, tmp: Path) -> tuple[Path, dict] | str:
    """A new virtual environment with torch installed first, from TORCH_INDEX when it is set (the GitHub workflow's
    CPU index) and from pip's own configuration otherwise, then the wheel with `-c constraints.txt`: (its python,
    the environment to run it in). Without a package index: why, as a string."""
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(tmp / "venv")
    python = tmp / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    index = ["--index-url", os.environ["TORCH_INDEX"]] if os.environ.get("TORCH_INDEX") else []
    pip = [str(python), "-m", "pip", "install", "--no-compile", "--progress-bar", "off"]
    for step in ([*pip, f"torch=={pins()['torch']}", *index], [*pip, str(wheel), "-c", str(CONSTRAINTS)]):
        done = subprocess.run(step, cwd=tmp, env=env, capture_output=True, text=True, timeout=1200)
        out = done.stdout + done.stderr
        if done.returncode and any(s in out for s in NO_INDEX):
            return "no package index reachable: cannot install the wheel's dependencies\n" + out[-1500:]
        assert done.returncode == 0, f"{' '.join(step)}\n{out[-4000:]}"
    return python, env


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """(python, environment, the folder ptutor must come from, why there is no clean install or None)."""
    tmp = tmp_path_factory.mktemp("install")
    clean = clean_install(wheel, tmp)
    if not isinstance(clean, str):
        python, env = clean
        return python, env, tmp / "venv", None
    # offline: the wheel alone into a folder put first on the path, on this environment's packages
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(tmp / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return Path(sys.executable), {**os.environ, "PYTHONPATH": str(tmp / "site")}, tmp / "site", clean


def test_the_wheel_holds_the_package_and_its_widget_scripts_and_nothing_of_the_book(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "ptutor/methods/lora.py" in names and "ptutor/book/kv_explorer.mjs" in names
    assert not [n for n in names if n.startswith(("data/", "chapters/", "tests/", "book/"))]


def test_a_clean_install_of_the_wheel_gets_the_tested_versions_and_nothing_else(installed):
    python, env, _, offline = installed
    if offline:
        pytest.skip(offline)
    check = subprocess.run([str(python), "-m", "pip", "check"], env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr  # the resolved set is consistent
    frozen = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], env=env, capture_output=True,
                            text=True, timeout=120, check=True).stdout
    installed = {canonicalize_name(n): v.split("+")[0] for n, v in (l.split("==") for l in frozen.split())}
    pinned = pins()
    off = {n: (v, pinned[n]) for n, v in installed.items() if n in pinned and v != pinned[n]}
    assert not off, f"installed (got, pinned): {off}"
    unpinned = sorted(set(installed) - set(pinned) - {"ptutor", "pip", "setuptools"})
    assert not unpinned, f"the wheel pulled packages constraints.txt does not pin: {unpinned}"
    assert "kernels" not in installed  # transformers 5.25 would bring it; the pins keep the tested 5.24


def test_the_readme_example_runs_from_another_folder_against_the_installed_wheel(installed, tmp_path):
    python, env, home, _ = installed
    (tmp_path / "example.py").write_text("import ptutor, sys\nprint('ptutor from', ptutor.__file__)\n"
                                         + readme_example())
    env = {**env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PTUTOR_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([str(python), "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"ptutor from {home}" in done.stdout, done.stdout  # the installed copy, not the checkout
    assert "reloaded equal: True" in done.stdout
    assert "generated ids: [100, 101, 102, 103" in done.stdout, done.stdout
    assert (tmp_path / "my-lora").is_dir()
