"""Render built book pages in headless Chromium and check that their ipywidgets were drawn.

The built pages load require.js and @jupyter-widgets/html-manager from cdn.jsdelivr.net. Here
those exact files come from npm instead (`npm install --prefix CACHE pkg@version`), their
subresource-integrity hashes are checked against the pins in the page, and a local
`http.server` serves the book with the CDN URLs rewritten to the local copies. Chromium runs
with every host but 127.0.0.1 unresolvable, so nothing leaves the machine.

Widgets from other npm packages (anywidget: `_model_module` "anywidget") are loaded by
html-manager from the CDN named in `data-jupyter-widgets-cdn`; here that attribute is pointed
at the local copies too, after `npm install <module>@<the state's version range>`.

Pages that show ptutor's kernel-free explorer (`ptutor.book.widgets.KVExplorer`, an anywidget) are
also driven with puppeteer-core (`drive.mjs`): controls are moved like a reader would and the
report read back must equal Python's `describe_prefix` for the new setting (`kv_explorer_plan`).

Used by tests/test_book.py; also runnable by hand on a built book:

    python tests/browser/widgetcheck.py _build/html chapters/00_setup.html
"""
from __future__ import annotations

import base64
import contextlib
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
from urllib.parse import unquote

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CDN_NPM = "https://cdn.jsdelivr.net/npm/"
LOCAL_NPM = "/__npm__/"
CDN_ATTR_RE = re.compile(r'(data-jupyter-widgets-cdn=")([^"]*)(")')
PUPPETEER = "puppeteer-core@24.43.1"  # node >= 18; 25.x needs node 22
DRIVER = Path(__file__).with_name("drive.mjs")
EXPLORER_ID = "ptutor.book.widgets.KVExplorer"  # `_anywidget_id` of ptutor's kernel-free explorer
# shown by _static/ptutor-widget-offline.js where a widget could not be drawn
OFFLINE_NOTE = "ptutor-widget-offline"
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

    def npm_modules(self) -> list[str]:
        """npm specs of the widget front ends the page loads besides html-manager's (see `npm_modules`)."""
        return npm_modules(self.reachable_models().values())

    def explorers(self) -> list[tuple[str, dict]]:
        """(model id, state) of each KVExplorer view, in page order (a widget inside a box counts too)."""
        return self.anywidgets(".KVExplorer")

    def choosers(self) -> list[tuple[str, dict]]:
        """(model id, state) of each TextChooser view (ptutor.book.widgets.text_chooser), in page order."""
        return self.anywidgets(".TextChooser")

    def anywidgets(self, suffix: str) -> list[tuple[str, dict]]:
        """(model id, state) of each anywidget whose `_anywidget_id` ends with `suffix`, in page order."""
        found = []
        for vid in self.view_ids:
            seen, todo = set(), [vid]
            while todo:
                mid = todo.pop(0)
                if mid in seen or mid not in self.state:
                    continue
                seen.add(mid)
                st = self.state[mid].get("state", {})
                if st.get("_anywidget_id", "").endswith(suffix):
                    found.append((mid, st))
                todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(st))
        return found

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


def npm_modules(models) -> list[str]:
    """npm specs (`name@version-range`) of the widget front ends that stored models need besides
    html-manager's own (@jupyter-widgets/*): e.g. `anywidget@~0.11.*`."""
    specs = set()
    for m in models:
        st = m.get("state", {})
        for kind in ("model", "view"):
            name = st.get(f"_{kind}_module") or m.get(f"{kind}_module")
            version = st.get(f"_{kind}_module_version") or m.get(f"{kind}_module_version")
            if name and version and not name.startswith("@jupyter-widgets/"):
                specs.add(f"{name}@{version}")
    return sorted(specs)


STATE_RE = re.compile(r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>', re.S)


def page_npm_modules(html: str) -> list[str]:
    """`npm_modules` of the widget state embedded in a built page."""
    specs = set()
    for blob in STATE_RE.findall(html):
        try:
            state = json.loads(blob).get("state", {})
        except json.JSONDecodeError:
            continue
        specs.update(npm_modules(state.values()))
    return sorted(specs)


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


def _version_tuple(v: str) -> tuple[int, ...] | None:
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)$", v.strip())
    return tuple(map(int, m.groups())) if m else None


def satisfies(version: str, spec: str) -> bool:
    """Enough of npm's semver for widget module versions: exact, `*`, `X.Y.*`/`X.*`, `~X.Y[.Z|.*]`, `^X.Y.Z`."""
    v = _version_tuple(version)
    spec = spec.strip()
    if v is None:
        return False
    if spec in ("*", "", "latest"):
        return True
    op = spec[0] if spec[0] in "~^" else ""
    parts = spec[len(op):].split(".")
    nums = []
    for part in parts:
        if part in ("*", "x", "X"):
            break
        if not part.isdigit():
            return False
        nums.append(int(part))
    if not op:
        return tuple(v[:len(nums)]) == tuple(nums) if len(nums) < 3 or len(parts) < 3 else v == tuple(nums)
    low = tuple(nums + [0] * (3 - len(nums)))
    if v < low:
        return False
    if op == "~":  # same major.minor (same major when only the major is given)
        return v[:max(1, min(2, len(nums)))] == tuple(nums[:max(1, min(2, len(nums)))])
    first = next((i for i, n in enumerate(low) if n), 2)  # ^: the first non-zero part is fixed
    return v[:first + 1] == low[:first + 1]


def installed_version(modules: Path, name: str) -> str | None:
    pj = modules / name / "package.json"
    return json.loads(pj.read_text()).get("version") if pj.exists() else None


def npm_install(specs: list[str], prefix: Path, npm: str = "npm", timeout: int = 300) -> Path:
    """`npm install --prefix prefix specs...` unless matching versions are already there.

    A spec is `name@version` or `name@range` (`~0.11.*`, as widget state names front ends)."""
    modules = prefix / "node_modules"

    def present(spec: str) -> bool:
        name, version = spec.rsplit("@", 1)
        have = installed_version(modules, name)
        return have is not None and satisfies(have, version)

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
            clean = unquote(path.split("?", 1)[0].split("#", 1)[0])
            if clean.startswith(LOCAL_NPM):
                rest = clean[len(LOCAL_NPM):]
                # the version may be a range (anywidget@~0.11.*): one copy of each package is installed
                m = re.match(r"^((?:@[\w.-]+/)?[\w.-]+)@[^/]+/(.+)$", rest)
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
            # html-manager loads other widget modules (anywidget) from this base: the local copies
            text = CDN_ATTR_RE.sub(lambda m: m.group(1) + LOCAL_NPM + m.group(3), text)
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
    """Dump the DOM of `page` (relative to html_root) after its widgets had time to render.

    Widget front ends that the page's state names besides html-manager (anywidget) are first
    npm-installed next to `modules` (same prefix), so html-manager finds them on the local server."""
    ensure_page_modules(html_root / page, modules)
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


def ensure_page_modules(page_file: Path, modules: Path) -> None:
    specs = page_npm_modules(Path(page_file).read_text(encoding="utf-8"))
    if specs:
        npm_install(specs, modules.parent, npm=shutil.which("npm") or "npm")


def render_offline(exe: str, html_root: Path, page: str) -> PageResult:
    """The page as a reader without network sees it: no CDN resolves and nothing is served in its place."""
    with tempfile.TemporaryDirectory(prefix="ptutor-no-npm-") as empty:
        with serve(html_root, Path(empty), {}) as base:
            url = base + page
            dump = chromium(exe, url, "--dump-dom")
    if dump.returncode != 0 or "<html" not in dump.stdout:
        raise RuntimeError(f"chromium --dump-dom {url} failed (rc {dump.returncode}):\n{dump.stderr[-3000:]}")
    return PageResult(url, dump.stdout, None, dump.stderr)


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
    if "jupyter-widgets-error-widget" in dom:
        problems.append("a widget's model or view failed to load (html-manager drew its error widget)")
    if f'class="{OFFLINE_NOTE}' in dom:
        problems.append("the page shows the 'widget could not be drawn' note")
    return problems


# ----------------------------------------------------------------------------- driving controls
def drive_page(exe: str, html_root: Path, page: str, modules: Path, scripts: list[CdnScript], job: dict,
               node: str = "node", timeout: int = 180) -> dict:
    """Open `page` with puppeteer-core (from `modules`), run `job`'s actions, return what drive.mjs read.

    `job` holds ready/count/read/actions as drive.mjs documents; chromium, url and modules are filled in."""
    ensure_page_modules(html_root / page, modules)
    rewrites = {s.url: s.local_url for s in scripts}
    with serve(html_root, modules, rewrites) as base:
        full = dict(job, chromium=exe, url=base + page, modules=str(modules))
        proc = subprocess.run([node, str(DRIVER)], input=json.dumps(full), capture_output=True, text=True,
                              timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"drive.mjs on {page} failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def kv_explorer_plan(state: dict, index: int = 0) -> tuple[dict, str, list[str]]:
    """Actions on the `index`-th explorer of a page and the report Python computes after each.

    Returns (job for drive_page, initial report, expected report after each action). Starts from the
    explorer's saved state; switches the architecture (to GPT-2, or to SmolLM2 if it shows GPT-2),
    moves the prefix-length slider 5 steps with the arrow key, types a batch size, toggles the
    projection, picks another dtype, and types a kv-head count that GPT-2's 12 heads cannot share."""
    from ptutor.book.widgets import ARCH_PRESETS, DEFAULT_PRESET, SLIDERS, _preset_args, describe_prefix

    keys = ["batch", "layers", "heads", "kv_heads", "head_dim", "hidden", "prefix_len", "projection",
            "encoder_hidden", "dtype"]
    args = {k: state[k] for k in keys}
    initial = describe_prefix(**args)
    root = ".ptutor-kvx"
    other = "GPT-2 small (gpt2)" if state.get("preset") != "GPT-2 small (gpt2)" else DEFAULT_PRESET
    lo_hi = {name: (lo, hi, step) for name, _, lo, hi, step in SLIDERS}
    steps = []

    def act(update, **action):
        args.update(update)
        steps.append((dict(action, index=index), describe_prefix(**args)))

    act(_preset_args(ARCH_PRESETS[other]), op="select", selector=f"{root} select[data-name=preset]", value=other)
    lo, hi, step = lo_hi["prefix_len"]
    act({"prefix_len": min(hi, args["prefix_len"] + 5 * step)}, op="keys",
        selector=f"{root} input[type=range][data-name=prefix_len]", key="ArrowRight", times=5)
    batch = 3 if args["batch"] != 3 else 5
    act({"batch": batch}, op="type", selector=f"{root} input[type=number][data-name=batch]", value=batch)
    act({"projection": not args["projection"]}, op="click", selector=f"{root} input[data-name=projection]")
    dtype = "bfloat16" if args["dtype"] != "bfloat16" else "float16"
    act({"dtype": dtype}, op="select", selector=f"{root} select[data-name=dtype]", value=dtype)
    kv = 5 if args["heads"] % 5 else 7
    act({"kv_heads": kv}, op="type", selector=f"{root} input[type=number][data-name=kv_heads]", value=kv)
    job = {"ready": f"{root} .ptutor-kvx-report", "read": f"{root} .ptutor-kvx-report",
           "actions": [a for a, _ in steps], "timeout_ms": 30000}
    return job, initial, [text for _, text in steps]


def check_driven(exe: str, html_root: Path, page: str, modules: Path, scripts: list[CdnScript],
                 widgets: list[tuple[str, dict]], plan, what: str, node: str = "node") -> list[str]:
    """Drive each widget of a page with `plan(state, index) -> (job, initial, expected texts)`;
    problems where the page does not show the text Python expects after each action."""
    problems = []
    for index, (mid, state) in enumerate(widgets):
        job, initial, expected = plan(state, index)
        job["count"] = len(widgets)
        got = drive_page(exe, html_root, page, modules, scripts, job, node=node)
        errors = [line for line in got.get("console", []) if line.startswith("pageerror:")]
        if errors:  # an uncaught script error on the page (e.g. a script loaded twice) fails the page
            problems.append(f"{page}: script errors on the page:\n" + "\n".join(errors))
        if got["initial"][index] != initial:
            problems.append(f"{what} {index} ({mid}) first shows\n{got['initial'][index]}\ninstead of\n{initial}")
        for step, want in zip(got["steps"], expected):
            if step["texts"][index] != want:
                a = step["action"]
                problems.append(f"{what} {index}: after {a['op']} {a['selector']} {a.get('value', a.get('key', ''))} "
                                f"the page shows\n{step['texts'][index]}\ninstead of\n{want}")
                break
        if len(got["steps"]) != len(expected):
            problems.append(f"{what} {index}: {len(got['steps'])} of {len(expected)} actions ran")
    return problems


def check_kv_explorers(exe, html_root, page, modules, scripts, nb: WidgetNotebook, node: str = "node") -> list[str]:
    """Move each explorer's controls on the built page; problems where its report is not Python's
    `describe_prefix` of the same settings."""
    return check_driven(exe, html_root, page, modules, scripts, nb.explorers(), kv_explorer_plan, "explorer", node)


def text_chooser_plan(state: dict, index: int = 0) -> tuple[dict, str, list[str]]:
    """Actions on the `index`-th TextChooser of a page: pick the next option in each menu in turn.
    Returns (job for drive_page, initial text, expected text after each action), from the saved state."""
    chosen, steps = list(state["chosen"]), []
    for i, (_, options) in enumerate(state["controls"]):
        if len(options) < 2:
            continue
        chosen[i] = options[(options.index(chosen[i]) + 1) % len(options)]
        steps.append(({"op": "select", "selector": f'.ptutor-chooser select[data-index="{i}"]', "index": index,
                       "value": chosen[i]}, state["texts"]["\t".join(chosen)]))
    job = {"ready": ".ptutor-chooser-text", "read": ".ptutor-chooser-text", "actions": [a for a, _ in steps],
           "timeout_ms": 30000}
    return job, state["texts"]["\t".join(state["chosen"])], [t for _, t in steps]


def check_text_choosers(exe, html_root, page, modules, scripts, nb: WidgetNotebook, node: str = "node") -> list[str]:
    """Pick other options in each chooser on the built page; problems where its text is not the saved one."""
    return check_driven(exe, html_root, page, modules, scripts, nb.choosers(), text_chooser_plan, "chooser", node)


if __name__ == "__main__":  # python tests/browser/widgetcheck.py _build/html chapters/00_setup.html
    root, page = Path(sys.argv[1]), sys.argv[2]
    exe = find_chromium() or sys.exit("chromium not found")
    html = (root / page).read_text(encoding="utf-8")
    scripts = cdn_scripts(html)
    nb_path = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(page).with_suffix(".ipynb")
    nbw = widget_notebook(nb_path) if nb_path.exists() else None
    extra = nbw.npm_modules() if nbw else []
    if nbw and (nbw.explorers() or nbw.choosers()):
        extra.append(PUPPETEER)
    mods = npm_install([s.spec for s in scripts] + extra, Path(tempfile.gettempdir()) / "ptutor-widget-npm")
    for s in scripts:
        check_integrity(s, mods)
    result = render_page(exe, root, page, mods, scripts, Path("_build/screenshots") / Path(page).with_suffix(".png").name)
    print("screenshot:", result.screenshot)
    print("\n".join(check_dom(result.dom, nbw)) if nbw else result.dom[:2000])
    if nbw and nbw.explorers():
        print("\n".join(check_kv_explorers(exe, root, page, mods, scripts, nbw)) or "explorers: report follows the controls")
    if nbw and nbw.choosers():
        print("\n".join(check_text_choosers(exe, root, page, mods, scripts, nbw)) or "choosers: text follows the menus")
