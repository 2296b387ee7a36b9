"""Render built book pages in headless Chromium and check that their ipywidgets were drawn.

The built pages load require.js and @jupyter-widgets/html-manager from cdn.jsdelivr.net. Here
those exact files come from npm instead (`npm install --prefix CACHE pkg@version`), their
subresource-integrity hashes are checked against the pins in the page, and a local
`http.server` serves the book with the CDN URLs rewritten to the local copies. Chromium runs
with every host but 127.0.0.1 unresolvable, so nothing leaves the machine.

Used by tests/test_book.py; also runnable by hand on a built book:

    python tests/browser/widgetcheck.py _build/html chapters/widget_smoke.html
"""
from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CDN_NPM = "https://cdn.jsdelivr.net/npm/"
LOCAL_NPM = "/__npm__/"
# <script ... src="https://cdn.jsdelivr.net/npm/<pkg>@<version>/<path>" ...>
SCRIPT_RE = re.compile(r"<script\b[^>]*>", re.I)
ATTR_RE = re.compile(r'([\w-]+)="([^"]*)"')
NPM_URL_RE = re.compile(r"^https://cdn\.jsdelivr\.net/npm/((?:@[\w.-]+/)?[\w.-]+)@([\w.+-]+)/(.+)$")
# The CSS class html-manager gives the view of each widget model (checked in the bundle).
MODEL_CLASS = {
    "IntSliderModel": "widget-slider",
    "FloatSliderModel": "widget-slider",
    "FloatLogSliderModel": "widget-slider",
    "IntRangeSliderModel": "widget-slider",
    "FloatRangeSliderModel": "widget-slider",
    "SelectionSliderModel": "widget-slider",
    "IntTextModel": "widget-text",
    "FloatTextModel": "widget-text",
    "BoundedIntTextModel": "widget-text",
    "BoundedFloatTextModel": "widget-text",
    "TextModel": "widget-text",
    "DropdownModel": "widget-dropdown",
    "CheckboxModel": "widget-checkbox",
    "ButtonModel": "widget-button",
    "ToggleButtonsModel": "widget-toggle-buttons",
    "LabelModel": "widget-label",
    "HTMLModel": "widget-html",
    "HBoxModel": "widget-hbox",
    "VBoxModel": "widget-vbox",
    "OutputModel": "widget-output",
}


# ----------------------------------------------------------------------------- notebooks
@dataclass
class WidgetNotebook:
    path: Path
    view_ids: list[str]  # model ids shown by widget-view outputs, in order
    state: dict  # model id -> stored model (model_name, state, ...)
    missing_state: list[str] = field(default_factory=list)  # views whose model has no stored state

    def reachable_models(self) -> dict[str, dict]:
        """The models drawn on the page: the viewed ones and every model they reference."""
        seen: dict[str, dict] = {}
        todo = list(self.view_ids)
        while todo:
            mid = todo.pop()
            if mid in seen or mid not in self.state:
                continue
            seen[mid] = self.state[mid]
            todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(self.state[mid].get("state", {})))
        return seen

    def expected_classes(self) -> set[str]:
        models = self.reachable_models().values()
        return {MODEL_CLASS[m["model_name"]] for m in models if m.get("model_name") in MODEL_CLASS}

    def expected_texts(self) -> list[str]:
        """First line of the stdout each Output widget captured (shown by the Output view)."""
        texts = []
        for m in self.reachable_models().values():
            if m.get("model_name") != "OutputModel":
                continue
            for out in m.get("state", {}).get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stdout":
                    line = "".join(out.get("text", "")).strip().splitlines()[:1]
                    texts += [line[0].strip()] if line and line[0].strip() else []
        return texts


def widget_notebook(path: Path) -> WidgetNotebook | None:
    """Widget views and stored state of a notebook, or None if it shows no widget."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    views = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data", {}) or {}
            if WIDGET_VIEW in data:
                views.append(data[WIDGET_VIEW]["model_id"])
    if not views:
        return None
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return WidgetNotebook(Path(path), views, state, [v for v in views if v not in state])


# ----------------------------------------------------------------------------- pages and npm
@dataclass(frozen=True)
class CdnScript:
    url: str
    package: str
    version: str
    file: str  # path inside the package
    integrity: str  # "" when the page pins none

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def local_url(self) -> str:
        return f"{LOCAL_NPM}{self.package}@{self.version}/{self.file}"


def cdn_scripts(html: str) -> list[CdnScript]:
    """The widget-manager scripts a built page loads from cdn.jsdelivr.net/npm."""
    found = []
    for tag in SCRIPT_RE.findall(html):
        attrs = dict(ATTR_RE.findall(tag))
        src = attrs.get("src", "")
        if "require" not in src and "jupyter-widgets" not in src:
            continue
        m = NPM_URL_RE.match(src)
        if not m:
            raise ValueError(
                f"widget script {src!r} is not a pinned cdn.jsdelivr.net/npm/<pkg>@<version>/<file> URL; "
                "set nb_ipywidgets_js in _config.yml (sphinx: config:) to such URLs"
            )
        found.append(CdnScript(src, m.group(1), m.group(2), m.group(3), attrs.get("integrity", "")))
    return found


def npm_install(specs: list[str], prefix: Path, npm: str = "npm", timeout: int = 300) -> Path:
    """`npm install --prefix prefix specs...` unless those exact versions are already there."""
    modules = prefix / "node_modules"

    def present(spec: str) -> bool:
        name, version = spec.rsplit("@", 1)
        pj = modules / name / "package.json"
        return pj.exists() and json.loads(pj.read_text()).get("version") == version

    if not all(present(s) for s in specs):
        prefix.mkdir(parents=True, exist_ok=True)
        cmd = [npm, "install", "--prefix", str(prefix), "--no-save", "--no-package-lock", "--no-audit",
               "--no-fund", "--ignore-scripts", "--loglevel=error", *specs]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    missing = [s for s in specs if not present(s)]
    if missing:
        raise RuntimeError(f"npm did not install {missing} into {modules}")
    return modules


def sri(path: Path, algo: str) -> str:
    digest = hashlib.new(algo, Path(path).read_bytes()).digest()
    return f"{algo}-{base64.b64encode(digest).decode()}"


def check_integrity(script: CdnScript, modules: Path) -> None:
    """The npm file must match the page's integrity pin, or the browser would refuse it."""
    local = modules / script.package / script.file
    if not local.is_file():
        raise AssertionError(f"{script.spec} from npm has no file {script.file}")
    for pin in script.integrity.split():
        algo = pin.split("-", 1)[0]
        if sri(local, algo) != pin:
            raise AssertionError(
                f"{script.url}: integrity pin {pin} does not match npm's {script.spec}/{script.file} "
                f"({sri(local, algo)}); fix nb_ipywidgets_js in _config.yml"
            )


# ----------------------------------------------------------------------------- server
# Headless Chromium paints a blank viewport after scrolling a long page, so for the screenshot
# we bring the first rendered widget to the top by hiding everything that comes before its cell.
WIDGET_TO_TOP = (
    "<script>window.addEventListener('load',function(){setTimeout(function(){"
    "var w=[].slice.call(document.querySelectorAll('.jupyter-widgets'))"
    ".filter(function(e){return e.offsetHeight>0;})[0];"
    "if(!w||w.getBoundingClientRect().bottom<window.innerHeight-50)return;"
    "var n=w.closest('.cell')||w;"
    "while(n&&n.tagName!=='ARTICLE'&&n!==document.body){var s=n.previousElementSibling;"
    "while(s){s.style.display='none';s=s.previousElementSibling;}n=n.parentElement;}"
    "},4000);});</script>"
)


def _handler(html_root: Path, modules: Path, rewrites: dict[str, str], widget_to_top: bool):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(html_root), **kwargs)

        def log_message(self, *args):  # keep pytest output quiet
            pass

        def translate_path(self, path):
            clean = path.split("?", 1)[0].split("#", 1)[0]
            if clean.startswith(LOCAL_NPM):
                rest = clean[len(LOCAL_NPM):]
                m = re.match(r"^((?:@[\w.-]+/)?[\w.-]+)@[\w.+-]+/(.+)$", rest)
                if m:
                    target = (modules / m.group(1) / m.group(2)).resolve()
                    if modules.resolve() in target.parents:
                        return str(target)
                return str(modules / "__not_found__")
            return super().translate_path(path)

        def send_head(self):
            path = Path(self.translate_path(self.path))
            if path.suffix != ".html" or not path.is_file():
                return super().send_head()
            text = path.read_text(encoding="utf-8")
            for old, new in rewrites.items():
                text = text.replace(old, new)
            if widget_to_top:
                text = text.replace("</body>", WIDGET_TO_TOP + "</body>")
            body = text.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)

    return Handler


@contextlib.contextmanager
def serve(html_root: Path, modules: Path, rewrites: dict[str, str], widget_to_top: bool = False):
    """Serve the built book on 127.0.0.1:<free port>; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(html_root, modules, rewrites, widget_to_top))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# ----------------------------------------------------------------------------- chromium
def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def chromium(exe: str, url: str, *action: str, budget_ms: int = 20000, size: str = "1280,1400",
             timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="ptutor-chromium-") as profile:
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
            "--mute-audio", f"--user-data-dir={profile}",
            # nothing but the local server resolves: the check cannot pass thanks to a real CDN
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            f"--window-size={size}", f"--virtual-time-budget={budget_ms}", *action, url,
        ]
        env = dict(os.environ, HOME=profile)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@dataclass
class PageResult:
    url: str
    dom: str
    screenshot: Path | None
    stderr: str


def render_page(exe: str, html_root: Path, page: str, modules: Path, scripts: list[CdnScript],
                screenshot: Path | None = None) -> PageResult:
    """Dump the DOM of `page` (relative to html_root) after its widgets had time to render."""
    rewrites = {s.url: s.local_url for s in scripts}
    with serve(html_root, modules, rewrites) as base:
        url = base + page
        dump = chromium(exe, url, "--dump-dom")
    if dump.returncode != 0 or "<html" not in dump.stdout:
        raise RuntimeError(f"chromium --dump-dom {url} failed (rc {dump.returncode}):\n{dump.stderr[-3000:]}")
    shot = None
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        with serve(html_root, modules, rewrites, widget_to_top=True) as base:
            proc = chromium(exe, base + page, f"--screenshot={screenshot}")
        shot = screenshot if proc.returncode == 0 and screenshot.is_file() else None
    return PageResult(url, dump.stdout, shot, dump.stderr)


def check_dom(dom: str, nb: WidgetNotebook) -> list[str]:
    """Problems with the rendered DOM of a page built from `nb` (empty list: all good)."""
    problems = []
    element_classes = [attr.split() for attr in re.findall(r'class="([^"]*)"', dom)]
    classes = {c for cls in element_classes for c in cls}
    n_views = dom.count("widget-view+json")
    n_roots = sum("jupyter-widgets" in cls for cls in element_classes)
    if "jupyter-widgets" not in classes:
        problems.append("no element with class 'jupyter-widgets': the widget manager did not render anything")
    if n_views < len(nb.view_ids):
        problems.append(f"page has {n_views} widget-view scripts, notebook has {len(nb.view_ids)} widget outputs")
    if n_roots < len(nb.view_ids):
        problems.append(f"only {n_roots} rendered widget elements for {len(nb.view_ids)} widget outputs")
    for cls in sorted(nb.expected_classes() - classes):
        problems.append(f"no element with class {cls!r} in the rendered page")
    visible = re.sub(r"<script\b.*?</script>", "", dom, flags=re.S | re.I)  # not the stored state
    for text in nb.expected_texts():
        if text not in visible:
            problems.append(f"Output widget text {text!r} not in the rendered page")
    if re.search(r"Error (rendering|displaying) (Jupyter )?widget|Could not (create|render)", dom):
        problems.append("the page shows a widget rendering error")
    return problems


if __name__ == "__main__":  # python tests/browser/widgetcheck.py _build/html chapters/widget_smoke.html
    root, page = Path(sys.argv[1]), sys.argv[2]
    exe = find_chromium() or sys.exit("chromium not found")
    html = (root / page).read_text(encoding="utf-8")
    scripts = cdn_scripts(html)
    mods = npm_install([s.spec for s in scripts], Path(tempfile.gettempdir()) / "ptutor-widget-npm")
    for s in scripts:
        check_integrity(s, mods)
    nb_path = Path(page).with_suffix(".ipynb")
    result = render_page(exe, root, page, mods, scripts, Path("_build/screenshots") / Path(page).with_suffix(".png").name)
    nbw = widget_notebook(nb_path) if nb_path.exists() else None
    print("screenshot:", result.screenshot)
    print("\n".join(check_dom(result.dom, nbw)) if nbw else result.dom[:2000])
