"""The book builds, every page in _toc.yml is there, and ipywidgets really render in a browser.

1. `jupyter-book build . --builder html` into a temporary folder (from stored outputs, so fast);
   the build must succeed without errors or broken references, in under 3 minutes.
2. Every file listed in _toc.yml has its HTML page; _toc.yml matches `python book/toc.py`.
3. Every notebook in the book that shows a widget stored the widget state, and the built page,
   opened in headless Chromium with require.js and @jupyter-widgets/html-manager fetched from npm
   (the versions the page pins, integrity-checked), draws those widgets. Screenshots go to
   _build/screenshots/. Skips, saying what to install, when chromium or npm is missing.
4. Every page of the offline build (`make book-offline`: its scripts vendored from npm), served as a reader
   serves it and opened in one Chromium session at a laptop's window size (tests/browser/pagecheck.py):
   no console error or failed request, no table cut off at the text column, figure text of at least 9 px,
   and code and commands that read exactly as their source.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD_LIMIT_S = float(os.environ.get("PTUTOR_BOOK_BUILD_LIMIT_S", 180))
SCREENSHOTS = ROOT / "_build" / "screenshots"
NPM_CACHE = Path(os.environ.get("PTUTOR_WIDGET_NPM_CACHE", ROOT / "_build" / ".widget-npm"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Build messages that mean the reader gets a broken page even though Sphinx "succeeded".
BROKEN = re.compile(
    r"could not find bibtex key|undefined label|unknown document|nonexisting document|"
    r"toctree contains reference|Unknown directive type|Unknown interpreted text role|"
    r"image file not readable|xref_missing|Notebook JSON is invalid|Failed to parse",
    re.I,
)


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


widgetcheck = _load("ptutor_book_widgetcheck", ROOT / "tests" / "browser" / "widgetcheck.py")
pagecheck = _load("ptutor_book_pagecheck", ROOT / "tests" / "browser" / "pagecheck.py")
tocgen = _load("ptutor_book_toc", ROOT / "book" / "toc.py")


def toc_files() -> list[str]:
    """Every `file:` entry of _toc.yml (root first), without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [re.sub(r"\.(ipynb|md)$", "", f) for f in found]


def toc_notebooks() -> list[Path]:
    return [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def widget_notebooks() -> list:
    return [w for w in (widgetcheck.widget_notebook(p) for p in toc_notebooks()) if w is not None]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """Build the book into a temporary folder; returns (html folder, log text, seconds)."""
    out = tmp_path_factory.mktemp("book")
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else (shutil.which("jupyter-book") or "jupyter-book"),
           "build", str(ROOT), "--builder", "html", "--path-output", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(600, 2 * BUILD_LIMIT_S),
                          env=dict(os.environ, NO_COLOR="1", PYTHONWARNINGS="ignore"))
    seconds = time.perf_counter() - start
    log = ANSI.sub("", proc.stdout + "\n" + proc.stderr)
    (tmp_path_factory.getbasetemp() / "book-build.log").write_text(log)
    assert proc.returncode == 0, f"jupyter-book build failed (rc {proc.returncode}):\n{log[-6000:]}"
    print(f"book built in {seconds:.1f} s into {out}")
    return out / "_build" / "html", log, seconds


def test_toc_matches_chapters():
    assert (ROOT / "_toc.yml").read_text() == tocgen.render(), (
        "_toc.yml does not list exactly the chapter notebooks in chapters/: run `python book/toc.py`"
    )


def test_build_has_no_errors(book):
    _, log, seconds = book
    errors = [line for line in log.splitlines()
              if re.search(r"\b(ERROR|CRITICAL|SEVERE)\b|Traceback|Exception occurred", line)]
    broken = [line for line in log.splitlines() if BROKEN.search(line)]
    assert not errors, "errors in the book build:\n" + "\n".join(errors)
    assert not broken, "broken references or pages in the book build:\n" + "\n".join(broken)
    assert "build succeeded" in log
    assert seconds < BUILD_LIMIT_S, f"the book build took {seconds:.0f} s (limit {BUILD_LIMIT_S:.0f} s)"


def test_every_toc_page_is_built(book):
    html, _, _ = book
    assert (html / "index.html").exists()
    missing = [f for f in toc_files() if not (html / f"{f}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML output: {missing}"
    for nb in toc_notebooks():
        page = (html / nb.relative_to(ROOT).with_suffix(".html")).read_text(encoding="utf-8")
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        if code:
            assert "cell_input" in page, f"{nb.name}: its page shows no code cells"
        if any(c.get("outputs") for c in code):
            assert "cell_output" in page, f"{nb.name} has stored outputs but its page shows none"


def _markdown_tables(nb: Path) -> int:
    """How many pipe tables the notebook's stored cell outputs hold as text/markdown."""
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    texts = ["".join(o.get("data", {}).get("text/markdown", "")) for o in outputs]
    return sum(bool(re.search(r"^\|.*\|\s*$\n^\|[-:| ]+\|\s*$", t, re.M)) for t in texts)


def test_results_tables_render_as_tables(book):
    """A table printed by code must reach the reader as an HTML table, not a paragraph of `|` text."""
    html, _, _ = book
    for nb in toc_notebooks():
        page = (html / nb.relative_to(ROOT).with_suffix(".html")).read_text(encoding="utf-8")
        assert not re.search(r"<p>\|[^<]*\|", page), f"{nb.name}: a markdown table shows as raw text"
        tables = _markdown_tables(nb)
        assert page.count("<table") >= tables, f"{nb.name}: {tables} tables in its outputs, fewer on the page"


def test_bibliography_resolves(book):
    html, _, _ = book
    bib = (html / "book" / "bibliography.html").read_text(encoding="utf-8")
    keys = re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), re.M)
    intro = (ROOT / "book" / "intro.md").read_text()
    cited = {k for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", intro) for k in group.split(",")}
    assert cited <= set(keys), f"intro cites unknown keys {cited - set(keys)}"
    entries = bib.count('role="doc-biblioentry"')
    assert entries >= len(cited), f"bibliography lists {entries} entries, the intro cites {len(cited)} works"


def test_bibliography_labels_use_the_author_year_form_of_the_citations(book):
    """The list's labels read "Lester et al., 2021", like the text's citations, not alpha codes like [LAC21]."""
    html, _, _ = book
    bib = (html / "book" / "bibliography.html").read_text(encoding="utf-8")
    labels = re.findall(r'class="label"><span class="fn-bracket">\[</span>([^<]+)<', bib)
    assert labels, "no bibliography labels found on the page"
    alpha = [l for l in labels if re.fullmatch(r"[A-Z][A-Za-z+]{1,7}\d{2}[a-z]?", l.strip())]
    assert not alpha, f"alpha-style labels left: {alpha[:5]}"
    assert any(re.search(r"et al\., \d{4}", l) for l in labels), labels[:5]


def test_widget_notebooks_store_widget_state():
    bad = {str(w.path.relative_to(ROOT)): w.missing_state for w in widget_notebooks() if w.missing_state}
    assert not bad, (
        f"widget outputs without stored widget state (they would render blank in the book): {bad}. "
        "Re-execute with `jupyter execute --inplace NOTEBOOK` (nbclient stores widget state by default) "
        "or save the notebook from Jupyter with 'Save Widget State Automatically' on."
    )


def _widget_ids():
    return [str(w.path.relative_to(ROOT)) for w in widget_notebooks()]


NPM_OFFLINE = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|getaddrinfo|network", re.I)


def skip_if_offline(error: Exception) -> None:
    """An npm failure because the registry cannot be reached is a skip (with the fix), not a failure."""
    if NPM_OFFLINE.search(str(error)):
        pytest.skip("browser check skipped: the npm registry is not reachable (the check installs the page's "
                    f"scripts from npm). Run it with network access. npm said: {str(error)[-300:]}")


def npm_or_skip(specs, npm):
    try:
        return widgetcheck.npm_install(specs, NPM_CACHE, npm=npm)
    except RuntimeError as e:
        skip_if_offline(e)
        raise


@pytest.fixture(scope="module")
def browser_tools():
    exe = widgetcheck.find_chromium()
    if exe is None:
        pytest.skip("browser widget check skipped: no chromium. Install it: apt-get update && apt-get install -y chromium")
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("browser widget check skipped: no npm. Install Node.js with npm: apt-get install -y nodejs npm")
    return exe, npm


@pytest.mark.parametrize("notebook", _widget_ids() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no notebook in _toc.yml shows an ipywidget (widget-view output); nothing to render"))])
def test_widgets_render_in_chromium(book, browser_tools, notebook):
    exe, npm = browser_tools
    html, _, _ = book
    nb = widgetcheck.widget_notebook(ROOT / notebook)
    page = Path(notebook).with_suffix(".html").as_posix()
    text = (html / page).read_text(encoding="utf-8")
    assert "widget-state+json" in text, f"{page}: the build did not embed the widget state"
    scripts = widgetcheck.cdn_scripts(text)
    names = {s.package for s in scripts}
    assert {"requirejs", "@jupyter-widgets/html-manager"} <= names, f"{page} loads {names}"
    if len(nb.explorers()) + len(nb.choosers()) == len(nb.view_ids):
        # anywidget front ends load by dynamic import, which `chromium --dump-dom` does not wait for;
        # test_kernel_free_widgets_follow_their_controls_in_chromium renders and drives them in a real session
        pytest.skip(f"{page}: its only widgets are ptutor's kernel-free widgets, driven by the test that follows")

    # html-manager's own scripts, plus the widget front ends the page's state names (anywidget)
    specs = sorted({s.spec for s in scripts} | set(widgetcheck.page_npm_modules(text)))
    modules = npm_or_skip(specs, npm)
    for script in scripts:  # the local copy is byte-identical to what the page pins
        widgetcheck.check_integrity(script, modules)

    shot = SCREENSHOTS / (Path(notebook).stem + ".png")
    result = widgetcheck.render_page(exe, html, page, modules, scripts, screenshot=shot)
    problems = widgetcheck.check_dom(result.dom, nb)
    assert not problems, f"{result.url}: widgets did not render:\n- " + "\n- ".join(problems) + (
        f"\nchromium stderr:\n{result.stderr[-3000:]}")
    assert result.screenshot is not None and result.screenshot.stat().st_size > 10_000, "no screenshot"
    print(f"{page}: {len(nb.view_ids)} widget outputs rendered; screenshot {result.screenshot}")


def test_every_notebook_cell_has_an_id():
    """nbformat 4.5 requires cell ids; cells pasted in by a script often lack one (a warning today, an error later)."""
    missing = {str(nb.relative_to(ROOT)): [i for i, c in enumerate(json.loads(nb.read_text())["cells"]) if "id" not in c]
               for nb in toc_notebooks()}
    assert not any(missing.values()), f"cells without an id (open and save in Jupyter, or nbformat.validator.normalize): {missing}"


ROADMAP = {0: "setup", 1: "prompt tuning", 2: "P-Tuning v1", 3: "P-Tuning v2 NER", 4: "deep prompts for generation",
           5: "LoRA", 6: "QLoRA", 7: "shoot-out"}


def test_chapter_references_name_chapters_of_the_book():
    """`chapter N` in any page must be a chapter of the book's plan (0-7), and each written chapter's
    file must carry its number, so a reference cannot point at a chapter that does not exist."""
    pages = [*toc_notebooks(), *(ROOT / "book").glob("*.md")]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for n in map(int, re.findall(r"\b[Cc]hapters? (\d+)\b", text)):
            assert n in ROADMAP, f"{page.name} refers to chapter {n}; the book has chapters 0-7"
    for nb in toc_notebooks():
        if re.match(r"\d\d_", nb.name):
            title = json.loads(nb.read_text(encoding="utf-8"))["cells"][0]["source"][0]
            assert title.startswith(f"# {int(nb.name[:2])}."), f"{nb.name}: title {title!r} lacks its number"


# ----------------------------------------------------------------------------- kernel-free widgets
OFFLINE_JS = "_static/ptutor-widget-offline.js"


def _driveable_page(html: Path, notebook: str, npm: str):
    """(widget notebook, page path, CDN scripts, node_modules with the page's front ends and puppeteer)."""
    nb = widgetcheck.widget_notebook(ROOT / notebook)
    page = Path(notebook).with_suffix(".html").as_posix()
    text = (html / page).read_text(encoding="utf-8")
    scripts = widgetcheck.cdn_scripts(text)
    specs = sorted({s.spec for s in scripts} | set(widgetcheck.page_npm_modules(text)) | {widgetcheck.PUPPETEER})
    modules = npm_or_skip(specs, npm)
    for script in scripts:
        widgetcheck.check_integrity(script, modules)
    return nb, page, scripts, modules


DRIVEN = {"explorer": ("explorers", "check_kv_explorers"), "chooser": ("choosers", "check_text_choosers")}


def _driven_ids():
    return [pytest.param(str(w.path.relative_to(ROOT)), kind, id=f"{kind}:{w.path.name}")
            for w in widget_notebooks() for kind, (found, _) in DRIVEN.items() if getattr(w, found)()]


def _chooser_ids():
    return [str(w.path.relative_to(ROOT)) for w in widget_notebooks() if w.choosers()]


@pytest.mark.parametrize("notebook,kind", _driven_ids() or [pytest.param(None, None, marks=pytest.mark.skip(
    reason="no notebook in _toc.yml shows a kernel-free ptutor widget (kv_explorer_js, text_chooser); nothing to drive"))])
def test_kernel_free_widgets_follow_their_controls_in_chromium(book, browser_tools, notebook, kind):
    """On the static page, moving a control changes what the widget shows to what Python computes:
    the explorer's report is `describe_prefix` of the new settings, a chooser's text is the saved one."""
    exe, npm = browser_tools
    node = shutil.which("node")
    if node is None:
        pytest.skip("widget drive skipped: no node. Install Node.js: apt-get install -y nodejs npm")
    html, _, _ = book
    nb, page, scripts, modules = _driveable_page(html, notebook, npm)
    problems = getattr(widgetcheck, DRIVEN[kind][1])(exe, html, page, modules, scripts, nb, node=node)
    assert not problems, f"{page}: the {kind} does not follow its controls:\n" + "\n\n".join(problems)


def test_widget_pages_load_the_offline_note(book):
    """Every page with a widget output includes the script that says when widgets could not be drawn."""
    html, _, _ = book
    assert (ROOT / OFFLINE_JS).is_file() and (html / OFFLINE_JS).is_file()
    for w in widget_notebooks():
        page = (html / w.path.relative_to(ROOT).with_suffix(".html")).read_text(encoding="utf-8")
        assert "ptutor-widget-offline.js" in page, f"{w.path.name}: its page does not load {OFFLINE_JS}"


@pytest.mark.parametrize("notebook", _widget_ids()[:1] or [pytest.param(None, marks=pytest.mark.skip(
    reason="no notebook in _toc.yml shows an ipywidget; nothing to check offline"))])
def test_offline_reader_sees_a_note_where_widgets_could_not_load(book, browser_tools, notebook):
    """With no CDN reachable the widgets cannot be drawn; the page must say so at each widget output."""
    exe, _ = browser_tools
    html, _, _ = book
    nb = widgetcheck.widget_notebook(ROOT / notebook)
    page = Path(notebook).with_suffix(".html").as_posix()
    result = widgetcheck.render_offline(exe, html, page)
    notes = result.dom.count(f'class="{widgetcheck.OFFLINE_NOTE}"')
    assert notes == len(nb.view_ids), (
        f"{page} offline: {notes} 'could not be drawn' notes for {len(nb.view_ids)} widget outputs")


@pytest.fixture(scope="module")
def offline_book(book, browser_tools, tmp_path_factory):
    """A copy of the build with its CDN scripts vendored by book/offline_assets.py, as `make book-offline` makes
    it; returns (html folder, offline_assets' report). The vendored packages are kept in NPM_CACHE/vendor, so
    later runs copy them instead of installing them again."""
    _, npm = browser_tools
    html, _, _ = book
    offline = tmp_path_factory.mktemp("offline") / "html"
    shutil.copytree(html, offline)
    vendor, kept = offline / "_static" / "vendor", NPM_CACHE / "vendor"  # the theme has a vendor/ folder of its own
    for package in (kept.glob("*@*") if kept.is_dir() else []):
        for folder in [package, *package.glob("*@*")]:  # name@version, or @scope/name@version
            if "@" in folder.name[1:] and not (vendor / folder.relative_to(kept)).exists():
                shutil.copytree(folder, vendor / folder.relative_to(kept))
    try:
        report = _load("offline_assets", ROOT / "book" / "offline_assets.py").make_offline(offline, npm=npm)
    except RuntimeError as e:
        skip_if_offline(e)
        raise
    for package in report["packages"]:  # what offline_assets.py installed: kept for the next run
        shutil.copytree(vendor / package, kept / package, dirs_exist_ok=True)
    return offline, report


def test_offline_build_typesets_math_and_runs_widgets_with_no_network(offline_book, browser_tools):
    """book/offline_assets.py vendors the CDN scripts into a copy of the build; with every host but
    the local server unresolvable, its math is typeset and its chooser widget follows its menus."""
    exe, npm = browser_tools
    node = shutil.which("node")
    if node is None:
        pytest.skip("offline check skipped: no node. Install Node.js: apt-get install -y nodejs npm")
    offline, report = offline_book
    assert any(p.startswith("mathjax@") for p in report["packages"]), report
    modules = npm_or_skip([widgetcheck.PUPPETEER], npm)
    math = widgetcheck.drive_page(exe, offline, "book/notation.html", modules, [],
                                  {"ready": "mjx-container", "read": "mjx-container", "count": 5, "actions": []},
                                  node=node)
    assert len(math["initial"]) >= 5, "MathJax did not typeset the notation page offline"
    for notebook in _chooser_ids():
        nb = widgetcheck.widget_notebook(ROOT / notebook)
        page = Path(notebook).with_suffix(".html").as_posix()
        for index, (_, state) in enumerate(nb.choosers()):
            job, initial, expected = widgetcheck.text_chooser_plan(state, index)
            job["count"] = len(nb.choosers())
            got = widgetcheck.drive_page(exe, offline, page, modules, [], job, node=node)
            assert got["initial"][index] == initial and [s["texts"][index] for s in got["steps"]] == expected, (
                f"{page} offline: the chooser does not follow its menus")


# ----------------------------------------------------------------------------- every page, as a reader sees it
@pytest.fixture(scope="module")
def page_report(offline_book, browser_tools):
    """pages.mjs's report on every page of the offline build (one Chromium session for all of them)."""
    exe, npm = browser_tools
    node = shutil.which("node")
    if node is None:
        pytest.skip("page check skipped: no node. Install Node.js: apt-get install -y nodejs npm")
    offline, _ = offline_book
    modules = npm_or_skip([widgetcheck.PUPPETEER], npm)
    start = time.perf_counter()
    report = pagecheck.visit_pages(exe, offline, modules, pagecheck.pages_of(offline), node=node)
    print(f"{len(report['pages'])} pages visited in {time.perf_counter() - start:.1f} s")
    return offline, report


def _listing(problems: list[str], limit: int = 40) -> str:
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n- " + "\n- ".join(problems[:limit]) + more


def test_every_page_of_the_book_was_visited(page_report):
    html, report = page_report
    visited = {p["page"] for p in report["pages"]}
    assert {f"{f}.html" for f in toc_files()} <= visited, "pages in _toc.yml that the page check did not open"
    assert all(p["text"].strip() for p in report["pages"]), "a page showed no text"


def test_pages_load_without_console_errors_or_failed_requests(page_report):
    """A reader's console stays clean: no error (a theme script's complaint, a missing file), no script error,
    no request that fails (fonts or front ends asked for where none exist, /favicon.ico)."""
    _, report = page_report
    problems = pagecheck.console_problems(report)
    assert not problems, "what the browser reported:" + _listing(problems)


def test_wide_tables_scroll_inside_the_column_with_a_scrollbar_always_drawn(page_report):
    _, report = page_report
    problems = pagecheck.table_problems(report)
    assert not problems, f"tables at a {pagecheck.WIDTH} px window:" + _listing(problems)


def test_figure_text_is_at_least_9_px_on_the_page(page_report):
    """Figures are PNGs that the page scales to its column; their smallest text, as shown, is at least 9 px."""
    html, report = page_report
    problems = pagecheck.figure_problems(report, html)
    assert not problems, f"figures at a {pagecheck.WIDTH} px window:" + _listing(problems)


def test_code_and_commands_read_as_their_source(page_report):
    """Every code line and inline code span on a page is in its source, and no dash or quote was made
    typographic on the way (a copied command must run)."""
    _, report = page_report
    problems = pagecheck.code_problems(report, ROOT)
    assert not problems, "text that differs from its source:" + _listing(problems)


def test_the_api_page_documents_the_public_api_without_warnings(book):
    """book/api.md is generated from the docstrings: the names a reader's project uses are on it, and no
    docstring breaks the reStructuredText it is read as."""
    html, log, _ = book
    page = (html / "book" / "api.html").read_text(encoding="utf-8")
    documented = set(re.findall(r'<span class="pre">(\w+)</span></span><span class="sig-paren">', page))
    for name in ("inject", "LoraConfig", "PrefixConfig", "fit", "save", "load", "run", "read_conll", "pick_lr",
                 "benchmark_table", "load_backbone"):
        assert name in documented, f"{name} is missing from the API page"
    warnings = [line for line in log.splitlines() if "docstring of ptutor" in line]
    assert not warnings, "docstrings that do not build:\n" + "\n".join(warnings)
