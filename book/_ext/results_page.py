"""Sphinx extension: write book/results.md ("Results at a glance") from the logs in data/results/ before the build
reads its sources (`ptutor.book.glance.page`), so the page always shows what the logs hold. The generated page and
its figure are build outputs: .gitignore lists them."""
from pathlib import Path


def write_results_page(app) -> None:
    from ptutor.book.glance import page

    root = Path(app.srcdir)
    text = page(root)
    target = root / "book" / "results.md"
    if not target.exists() or target.read_text(encoding="utf-8") != text:  # unchanged: keep the build's cache
        target.write_text(text, encoding="utf-8")


def setup(app):
    app.connect("builder-inited", write_results_page)
    return {"parallel_read_safe": True}
