"""What a reader meets on every page of the built book, checked in one headless Chromium session.

`visit_pages` serves a built book (its CDN scripts vendored by book/offline_assets.py, so it needs no network)
from a plain local server, as `python -m http.server -d _build/html` does, and has pages.mjs (puppeteer-core)
open every page at a desktop window size. The checks turn its report into problems:

- `console_problems`: a console error, an uncaught script error, a request that failed, got HTTP >= 400 or
  never finished, or a widget output that was never drawn.
- `table_problems`: a table wider than the text column, or reaching past it, that is not inside a box that
  scrolls it within the column and always draws its scrollbar (overlay scrollbars, as on macOS and phones,
  stay hidden until one scrolls: a cut-off table then looks like one whose right-hand columns are empty).
- `figure_problems`: figure text under `MIN_TEXT_PX` CSS pixels. A figure is a PNG, so its text cannot be
  measured on the page; instead each figure carries the size of its smallest text in its own pixels (a PNG
  entry written when the chapter ran or the page was built, ptutor.book.figures), and the page shows it scaled
  by displayed width over natural width. A figure without that entry is a problem too: a cell output (its
  chapter ran without setup()) or any other PNG that matplotlib wrote (save it with figures.save_png). An SVG that
  matplotlib wrote needs no entry: its glyphs are scaled by their size in the drawing's own units.
- `code_problems`: text that does not read as its source: every line of a code block (`<pre>`) and every
  inline code span must occur in the page's source (the notebook's cells, outputs and widget state; a
  Markdown page's text as Sphinx reads it, after the book's source-read hooks have written in what pages get at
  build time; the ptutor sources for the API page), so a typographic quote or dash, or whitespace
  collapsed, shows up as a line that exists nowhere; and every word of the page with a typographic dash or
  quote must have it in the source too (a command in a docstring that reStructuredText did not read as code
  printed `--method` as "–method"). Text drawn by widgets' scripts is left to their tests.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

DRIVER = Path(__file__).with_name("pages.mjs")
WIDTH, HEIGHT = 1280, 900  # a laptop's browser window: the text column is 688 px wide beside both sidebars
MIN_TEXT_PX = 9.0
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# a typographic dash or curly quote with the letters, digits and hyphens around it ("–method", "reader’s", "1–12")
TYPOGRAPHIC = re.compile(r"[\w-]*[\u2013\u2014\u2018\u2019\u201c\u201d][\w-]*")
SPACE = re.compile(r"\s+")


def pages_of(html_root: Path) -> list[str]:
    """Every HTML page of a build, as paths relative to its root (the vendored scripts' own pages excluded)."""
    skip = ("_static/", "_sources/", "_images/", "_downloads/")
    return sorted(p.relative_to(html_root).as_posix() for p in html_root.rglob("*.html")
                  if not p.relative_to(html_root).as_posix().startswith(skip))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_plain(html_root: Path):
    """The folder on 127.0.0.1:<free port>, as `python -m http.server -d FOLDER` serves it; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(html_root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def visit_pages(chromium: str, html_root: Path, modules: Path, pages: list[str], node: str = "node",
                timeout: int = 300) -> dict:
    """pages.mjs's report for `pages` of the book in `html_root` (modules: node_modules with puppeteer-core)."""
    with serve_plain(html_root) as base:
        job = {"chromium": chromium, "modules": str(modules), "base": base, "pages": pages,
               "width": WIDTH, "height": HEIGHT, "timeout_ms": 30000}
        proc = subprocess.Popen([node, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(json.dumps(job), timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise RuntimeError(f"pages.mjs took over {timeout} s; pages done:\n{err[-4000:]}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"pages.mjs failed (rc {proc.returncode}):\n{err[-4000:]}")
    report = json.loads(out)
    for page in report["pages"]:
        page["base"] = base
    return report


# ----------------------------------------------------------------------------- checks
def console_problems(report: dict) -> list[str]:
    problems = []
    for p in report["pages"]:
        problems += [f"{p['page']}: console error: {m['text']} ({m['url']})" for m in p["console"]
                     if m["type"] == "error"]
        problems += [f"{p['page']}: script error: {e}" for e in p["errors"]]
        problems += [f"{p['page']}: request failed ({f['why']}): {f['url']}" for f in p["failed"]]
        problems += [f"{p['page']}: request still loading after 30 s: {url}" for url in p.get("stalled", [])]
        if p.get("undrawn"):
            problems.append(f"{p['page']}: {p['undrawn']} widget output(s) not drawn after 30 s")
    return problems


def table_problems(report: dict) -> list[str]:
    problems = []
    for p in report["pages"]:
        col = p["column"]
        for t in p["tables"]:
            if t["scrollWidth"] <= col["width"] + 1 and t["right"] <= col["right"] + 1:
                continue  # fits the column
            box, what = t["box"], f"{p['page']}: table '{t['head'][:50]}' ({t['scrollWidth']:.0f} px, column {col['width']:.0f} px)"
            if box is None or box["right"] > col["right"] + 1 or box["left"] < col["left"] - 1:
                problems.append(f"{what} reaches past the text column, with no box that scrolls it inside the column")
            elif box["bar"] <= 0 or not box["barStyled"]:
                problems.append(f"{what} scrolls inside '{box['className']}', whose scrollbar is not always drawn "
                                "(overlay scrollbars hide it: the cut-off columns look empty)")
    return problems


def figure_problems(report: dict, html_root: Path, min_px: float = MIN_TEXT_PX) -> list[str]:
    from ptutor.book.figures import TEXT_KEY, png_text

    problems = []
    for p in report["pages"]:
        for img in p["images"]:
            name = Path(unquote(urlparse(img["src"]).path)).name
            path = html_root / unquote(urlparse(img["src"]).path).lstrip("/")
            if not img["complete"] or not img["natural"] or not path.is_file():
                if img["output"]:
                    problems.append(f"{p['page']}: figure {name} did not load")
                continue
            if path.suffix == ".svg":
                problems += _svg_problems(p["page"], name, path.read_text(encoding="utf-8"), img["shown"], min_px)
                continue
            text = png_text(path.read_bytes()) if path.suffix == ".png" else {}
            if TEXT_KEY not in text:
                if img["output"]:
                    problems.append(f"{p['page']}: figure {name} does not say how small its text is (no '{TEXT_KEY}' "
                                    "entry): re-execute the chapter (its setup() cell labels figures)")
                elif text.get("Software", "").startswith("Matplotlib"):
                    problems.append(f"{p['page']}: figure {name}, drawn by matplotlib, does not say how small its text "
                                    f"is (no '{TEXT_KEY}' entry): save it with ptutor.book.figures.save_png")
                continue  # a picture that is not a figure (a logo, an icon)
            px = float(text[TEXT_KEY])
            on_page = px * img["shown"] / img["natural"]
            if on_page < min_px:
                problems.append(f"{p['page']}: figure {name}: smallest text {on_page:.1f} px on the page "
                                f"({px:.1f} px in a {img['natural']} px image shown {img['shown']:.0f} px wide; "
                                f"at least {min_px:g} px: a narrower figure, or larger text)")
    return problems


SVG_TEXT = re.compile(r"scale\(([\d.]+) -\1\)")  # matplotlib draws text as glyph paths scaled by size / 100
SVG_FONT = re.compile(r"font(?:-size)?:\s*(?:[a-z]+\s+)*([\d.]+)px")  # or as <text> (svg.fonttype "none")
SVG_VIEWBOX = re.compile(r'<svg[^>]*viewBox="[\d.-]+ [\d.-]+ ([\d.]+) [\d.]+"')


def _svg_problems(page: str, name: str, svg: str, shown: float, min_px: float) -> list[str]:
    """A matplotlib SVG's smallest text as shown: its size in the drawing's units (points) times shown width over
    the drawing's width. Pictures not made by matplotlib are left alone."""
    if "matplotlib" not in svg[:2000].lower():
        return []
    box = SVG_VIEWBOX.search(svg)
    sizes = [100 * float(a) for a in SVG_TEXT.findall(svg)] + [float(x) for x in SVG_FONT.findall(svg)]
    if not box or not sizes:
        return []
    on_page = min(sizes) * shown / float(box.group(1))
    if on_page < min_px:
        return [f"{page}: figure {name}: smallest text {on_page:.1f} px on the page (at least {min_px:g} px: a "
                "narrower figure, or larger text)"]
    return []


def _strings(node, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for value in node.values():
            _strings(value, out)
    elif isinstance(node, list):
        if node and all(isinstance(x, str) for x in node):
            out.append("".join(node))  # a notebook's multi-line strings are lists of lines
        else:
            for value in node:
                _strings(value, out)


class _HookApp:
    """Enough of a Sphinx application for the book's local extensions to register their handlers on."""

    def __init__(self, srcdir: Path):
        self.srcdir, self.handlers = str(srcdir), []

    def connect(self, event, handler, *args, **kwargs):
        self.handlers.append((event, handler))

    def __getattr__(self, name):  # add_js_file, add_config_value, ...: nothing to do here
        return lambda *args, **kwargs: None


@functools.cache
def _book_module(repo: Path, name: str, folder: str = "book/_ext"):
    """A module of the book's local extensions folder, loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"ptutor_book_ext_{name}", repo / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _source_read_hooks(repo: Path) -> tuple:
    """The source-read handlers of the local extensions _config.yml names (those that write pages at build time)."""
    import yaml

    config = yaml.safe_load((repo / "_config.yml").read_text(encoding="utf-8"))
    app = _HookApp(repo)
    for name, folder in (config.get("sphinx", {}).get("local_extensions") or {}).items():
        _book_module(repo, name, folder).setup(app)
    return app, tuple(handler for event, handler in app.handlers if event == "source-read")


def read_as_sphinx(path: Path, repo: Path) -> str:
    """A Markdown page's text as Sphinx reads it: the file after the book's source-read handlers ran on it."""
    app, hooks = _source_read_hooks(repo)
    source = [path.read_text(encoding="utf-8")]
    docname = path.relative_to(repo).with_suffix("").as_posix()
    for hook in hooks:
        hook(app, docname, source)
    return source[0]


def page_source(page: str, repo: Path) -> str:
    """The text a page is made from: a notebook's every string (cells, outputs, widget state), a Markdown page's
    text, and for pages generated from code (the API page, indices) the package's sources too."""
    stem = repo / Path(page).with_suffix("")
    parts: list[str] = []
    if stem.with_suffix(".ipynb").is_file():
        # read as the book reads it (book/_ext/notebook_reader.py: a run of printed pieces is one text)
        _strings(_book_module(repo, "notebook_reader").read(stem.with_suffix(".ipynb").read_text(encoding="utf-8")),
                 parts)
    else:
        if stem.with_suffix(".md").is_file():
            parts.append(read_as_sphinx(stem.with_suffix(".md"), repo))
        modules = sorted((repo / "ptutor").rglob("*.py"))
        parts += [p.read_text(encoding="utf-8") for p in modules]
        parts += [".".join(p.relative_to(repo).with_suffix("").parts) for p in modules]  # the module index
    if Path(page).stem == "bibliography":  # pybtex sets BibTeX's page ranges (1--12) with an en dash
        parts += [bib.read_text(encoding="utf-8").replace("--", "\u2013") for bib in (repo / "book").glob("*.bib")]
    return ANSI.sub("", "\n".join(parts))


def code_problems(report: dict, repo: Path) -> list[str]:
    problems = []
    for p in report["pages"]:
        source = page_source(p.get("landed") or p["page"], repo)
        lines = {line.strip() for line in source.splitlines()}
        flat = SPACE.sub(" ", source)
        for block in p["pre"]:
            for line in block["text"].splitlines():
                if line.strip() and line.strip() not in lines and SPACE.sub(" ", line.strip()) not in flat:
                    problems.append(f"{p['page']}: a code line that is not in its source: {line.strip()[:120]!r}")
        for span in p["code"]:
            text = SPACE.sub(" ", span["text"].strip())
            if text and text not in flat:
                problems.append(f"{p['page']}: inline code that is not in its source: {text[:120]!r}")
        for word in sorted(set(TYPOGRAPHIC.findall(p.get("text", "")))):
            if word not in source:
                problems.append(f"{p['page']}: {word[:60]!r} has a typographic dash or quote its source does not have")
    return problems
