"""Make a built book work without a network: fetch what its pages load from cdn.jsdelivr.net.

    python book/offline_assets.py _build/html        (what `make book-offline` runs after `make book`)

The pages load MathJax, require.js, the widget manager (@jupyter-widgets/html-manager) and the
widget front ends named in their saved widget state (anywidget) from the CDN. This script
installs exactly those packages and versions from npm, copies them into
`_static/vendor/<package>@<version>/` of the build folder (never into the repository), and
points every page at the copies with relative URLs, so the folder can be moved and served from
anywhere with no network (`python -m http.server -d _build/html`). Serve it rather than opening it
as a file: browsers block module scripts on file:// pages, so there the widgets stay blank however
complete the folder is. It needs `npm` and the npm registry once, at build time. Integrity pins
stay: the npm files are the bytes the CDN serves.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CDN = "https://cdn.jsdelivr.net/npm/"
SRC_RE = re.compile(r'(src=")https://cdn\.jsdelivr\.net/npm/((?:@[\w.-]+/)?[\w.-]+)@([^/"]+)/([^"]+)(")')
CDN_ATTR_RE = re.compile(r'(data-jupyter-widgets-cdn=")https://cdn\.jsdelivr\.net/npm/(")')
STATE_RE = re.compile(r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>', re.S)
VENDOR = Path("_static") / "vendor"


def page_packages(html: str) -> set[tuple[str, str]]:
    """(npm package, version as the page writes it) for every CDN script and widget front end of a page."""
    found = {(m.group(2), m.group(3)) for m in SRC_RE.finditer(html)}
    for blob in STATE_RE.findall(html):
        for model in json.loads(blob).get("state", {}).values():
            for kind in ("model", "view"):
                name, version = model.get(f"{kind}_module"), model.get(f"{kind}_module_version")
                if name and version and not name.startswith("@jupyter-widgets/"):
                    found.add((name, version))
    return found


def fetch(packages: set[tuple[str, str]], vendor: Path, npm: str = "npm") -> None:
    """npm install each package@version and copy it to vendor/<package>@<version as written>."""
    for name, version in sorted(packages):
        target = vendor / f"{name}@{version}"
        if target.is_dir():
            continue
        with tempfile.TemporaryDirectory(prefix="ptutor-npm-") as tmp:
            cmd = [npm, "install", "--prefix", tmp, "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
                   "--ignore-scripts", "--loglevel=error", f"{name}@{version}"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed (is the npm registry reachable?):\n{proc.stderr[-2000:]}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(Path(tmp) / "node_modules" / name, target)


def rewrite(html: str, page: Path, root: Path) -> str:
    """Point a page's CDN URLs at the vendored copies, relative to the page's folder."""
    up = os.path.relpath(root / VENDOR, page.parent).replace(os.sep, "/")
    html = SRC_RE.sub(lambda m: f"{m.group(1)}{up}/{m.group(2)}@{m.group(3)}/{m.group(4)}{m.group(5)}", html)
    return CDN_ATTR_RE.sub(lambda m: f"{m.group(1)}{up}/{m.group(2)}", html)


def make_offline(root: str | Path, npm: str = "npm") -> dict:
    """Vendor every CDN asset of the built book under `root`; returns what was done."""
    root = Path(root)
    pages = sorted(root.rglob("*.html"))
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {root}: build the book first (make book)")
    packages = set()
    for page in pages:
        packages |= page_packages(page.read_text(encoding="utf-8"))
    fetch(packages, root / VENDOR, npm)
    changed = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        new = rewrite(text, page, root)
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed += 1
    left = [str(p.relative_to(root)) for p in pages if CDN in p.read_text(encoding="utf-8")]
    return {"packages": sorted(f"{n}@{v}" for n, v in packages), "pages_rewritten": changed, "cdn_left": left}


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else "_build/html"
    report = make_offline(root)
    print(json.dumps(report, indent=1))
    print(f"Serve it with  python -m http.server -d {root}  and open http://localhost:8000/ (not as a file://)")
