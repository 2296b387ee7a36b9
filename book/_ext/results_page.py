"""Sphinx extension: the results page ("Results at a glance", book/results.md) gets its tables, claims and figure from
the logs in data/results/ at build time: the placeholder line becomes `ptutor.book.glance.page()`, so the page
always shows what the logs hold. The figure is a build output (.gitignore lists it)."""
from pathlib import Path

PLACEHOLDER = "<!-- results: written here at build time by book/_ext/results_page.py -->"


def fill(app, docname: str, source: list) -> None:
    """Sphinx's source-read hook: replace the placeholder of the results page with the page's body."""
    if docname == "book/results" and PLACEHOLDER in source[0]:
        from ptutor.book.glance import page

        source[0] = source[0].replace(PLACEHOLDER, page(Path(app.srcdir)))


def setup(app):
    app.connect("source-read", fill)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
